//! What a cell's axes need from the machine, and what they did.
//!
//! `prepare` checks that a condition can be given here (strace for `trace`,
//! two CPUs for `cpu1`) and says why not; a cell that cannot be given is an
//! error for every one of its runs, never quietly run as `none`. The
//! details and the cell's note come from what the proxy and the timing
//! driver recorded, so the report says "12 of 14 GETs served from cache"
//! rather than only which condition was asked for; a run that errored
//! before its condition was given adds nothing to the note, and a cell none
//! of whose runs got its condition has no note at all.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::matrix::{Cell, Timing};
use super::outcome::Outcome;
use crate::proxy::Stats;
use crate::report::RunResult;

/// What the sandbox must set up for a cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Setup {
    /// Run the `run` step under `strace -f`.
    pub strace: bool,
    /// Pin the run to this CPU.
    pub cpu: Option<usize>,
}

/// Checks that `cell` can be run here.
pub fn prepare(cell: &Cell) -> Result<Setup, String> {
    let mut setup = Setup::default();
    match cell.timing {
        Timing::Trace => {
            if find_program("strace").is_none() {
                return Err(
                    "timing=trace needs strace, which is not installed (apt-get install strace)"
                        .into(),
                );
            }
            setup.strace = true;
        }
        Timing::Cpu1 => {
            let cpus = allowed_cpus();
            if cpus.len() < 2 {
                return Err(
                    "timing=cpu1 needs a machine with more than one CPU to mean anything".into(),
                );
            }
            setup.cpu = cpus.first().copied();
        }
        Timing::Load => {
            if allowed_cpus().is_empty() {
                return Err(
                    "timing=load cannot tell which CPUs this process may use (sched_getaffinity failed)"
                        .into(),
                );
            }
        }
        Timing::Chaos => {
            if allowed_cpus().is_empty() {
                return Err(
                    "timing=chaos cannot tell which CPUs this process may use (sched_getaffinity failed)"
                        .into(),
                );
            }
        }
        Timing::Quota(_) => super::perturb::quota_possible()?,
        Timing::None | Timing::Slow | Timing::Jitter | Timing::Noise => {}
    }
    Ok(setup)
}

/// The CPUs this process may run on.
pub(super) fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What the axes did in one run, for its `axes_detail`.
pub fn run_detail(
    cell: &Cell,
    timing: Option<Value>,
    proxy_stats: &Path,
    fault_stats: &Path,
    strace: Option<&Path>,
) -> BTreeMap<String, Value> {
    let mut detail = BTreeMap::new();
    if let Some(t) = timing {
        detail.insert("timing".to_owned(), t);
    }
    if cell.timing == Timing::Cpu1 {
        detail.insert("timing".to_owned(), json!({"cpu": allowed_cpus().first()}));
    }
    if let Some(path) = strace {
        let lines = std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        detail.insert("timing".to_owned(), json!({"strace_lines": lines}));
    }
    if cell.proxy != "none" {
        let stats = std::fs::read(proxy_stats)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or_else(|| json!({}));
        detail.insert("proxy".to_owned(), stats);
    }
    if cell.net_fault != "none"
        && let Some(stats) = std::fs::read(fault_stats)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    {
        detail.insert("net_fault".to_owned(), stats);
    }
    detail
}

/// One line on what the cell's axes did over its runs, from what its runs
/// recorded; `None` when no run got its condition (every run errored before
/// its step, e.g. `cpu1` on a single CPU) or the cell has no condition.
pub fn cell_note(cell: &Cell, results: &[RunResult]) -> Option<String> {
    let given: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Error)
        .collect();
    let runs = |n: usize| match n {
        1 => "1 run".to_owned(),
        n => format!("{n} runs"),
    };
    let mut parts = Vec::new();
    let proxied: Vec<Stats> = given
        .iter()
        .filter_map(|r| r.axes_detail.get("proxy"))
        .filter_map(|v| serde_json::from_value::<Stats>(v.clone()).ok())
        .collect();
    if cell.proxy != "none" && !proxied.is_empty() {
        let mut total = Stats::default();
        for s in &proxied {
            total.add(s);
        }
        let what = match cell.proxy.parse::<crate::proxy::Mode>() {
            Ok(crate::proxy::Mode::Slow { ms }) => {
                format!(" (adds {ms} ms ±10% to every response)")
            }
            Ok(crate::proxy::Mode::Flaky { p }) => {
                format!(" (resets {:.0}% of connections)", p * 100.0)
            }
            _ => String::new(),
        };
        parts.push(format!(
            "proxy {}{what}, {}: {}",
            cell.proxy,
            runs(proxied.len()),
            total.summary()
        ));
    }
    let faulted: Vec<crate::netfault::Stats> = given
        .iter()
        .filter_map(|r| r.axes_detail.get("net_fault"))
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    if let (false, Ok(toxic)) = (
        faulted.is_empty(),
        cell.net_fault.parse::<crate::netfault::Toxic>(),
    ) {
        let mut total = crate::netfault::Stats::default();
        for s in &faulted {
            total.add(s);
        }
        parts.push(format!(
            "net fault {toxic} ({}), {}: {}",
            toxic.describe(),
            runs(faulted.len()),
            total.summary()
        ));
    }
    let timings: Vec<&Value> = given
        .iter()
        .filter_map(|r| r.axes_detail.get("timing"))
        .collect();
    match cell.timing {
        _ if timings.is_empty() => {}
        Timing::Slow | Timing::Jitter => {
            let stops: u64 = timings.iter().filter_map(|t| t["stops"].as_u64()).sum();
            let duty: f64 = timings
                .iter()
                .filter_map(|t| t["duty"].as_f64())
                .sum::<f64>();
            #[allow(clippy::cast_precision_loss)]
            let mean = duty / timings.len() as f64;
            parts.push(format!(
                "{}: stopped {:.0}% of the time ({stops} stops over {})",
                cell.timing,
                mean * 100.0,
                runs(timings.len())
            ));
        }
        Timing::Load => {
            if let Some(n) = timings.iter().find_map(|t| t["busy_threads"].as_u64()) {
                parts.push(format!(
                    "load: {n} busy threads, one pinned to each CPU, during each of {}",
                    runs(timings.len())
                ));
            }
        }
        Timing::Cpu1 => {
            if let Some(cpu) = timings.iter().find_map(|t| t["cpu"].as_u64()) {
                parts.push(format!("cpu1: every process pinned to CPU {cpu}"));
            }
        }
        Timing::Trace => {
            let lines: u64 = timings
                .iter()
                .filter_map(|t| t["strace_lines"].as_u64())
                .sum();
            parts.push(format!(
                "trace: run step under strace -f ({lines} syscall lines)"
            ));
        }
        Timing::Chaos => {
            let sum = |key: &str| timings.iter().filter_map(|t| t[key].as_u64()).sum::<u64>();
            parts.push(format!(
                "chaos: {} moves of threads between CPU sets, {} starvation windows over {}",
                sum("moves"),
                sum("starved"),
                runs(timings.len())
            ));
        }
        Timing::Noise => {
            let threads: u64 = timings.iter().filter_map(|t| t["threads"].as_u64()).sum();
            parts.push(format!(
                "noise: {threads} stress threads (CPU, memory, fsync) over {}",
                runs(timings.len())
            ));
        }
        Timing::Quota(pct) => {
            let sum = |key: &str| timings.iter().filter_map(|t| t[key].as_u64()).sum::<u64>();
            parts.push(format!(
                "quota: {pct}% of one CPU; throttled in {} of {} periods ({} ms) over {}",
                sum("throttled"),
                sum("periods"),
                sum("throttled_ms"),
                runs(timings.len())
            ));
        }
        Timing::None => {}
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
