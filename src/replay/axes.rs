//! What a cell's axes need from the machine, and what they did.
//!
//! `prepare` checks that a condition can be given here (strace for `trace`,
//! two CPUs for `cpu1`) and says why not; a cell that cannot be given is an
//! error for every one of its runs, never quietly run as `none`.
//! `run_detail` gathers what the proxy, the fault proxy and the timing
//! driver recorded for a run's `axes_detail`, from which the report layer
//! writes the cell's note ([`crate::report::notes`]), so the report says
//! "12 of 14 GETs served from cache" rather than only which condition was
//! asked for.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::matrix::{Cell, Timing};

/// What the sandbox must set up for a cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Setup {
    /// Run the `run` step under `strace -f`.
    pub strace: bool,
    /// Pin the run to this CPU.
    pub cpu: Option<usize>,
    /// Load the `delay` library into the run's processes.
    pub delay: bool,
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
        Timing::Delay => setup.delay = true,
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
