//! The line under a cell that says what its conditions did over its runs,
//! from what each run recorded in its `axes_detail`: "proxy cache, 3 runs:
//! 12 of 14 GETs served from cache". A run that errored before its
//! condition was given adds nothing, and a cell none of whose runs got its
//! condition has no note at all. Replay writes it; `report merge` writes
//! it again over the merged runs.

use serde_json::Value;

use crate::matrix::{Cell, Timing};
use crate::proxy::Stats;
use crate::run::{Outcome, RunResult};

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
    // What most notes sum over the runs, and how many runs that is.
    let sum = |key: &str| timings.iter().filter_map(|t| t[key].as_u64()).sum::<u64>();
    let over = runs(timings.len());
    match cell.timing {
        _ if timings.is_empty() => {}
        Timing::Slow | Timing::Jitter => {
            let duty: f64 = timings
                .iter()
                .filter_map(|t| t["duty"].as_f64())
                .sum::<f64>();
            #[allow(clippy::cast_precision_loss)]
            let mean = duty / timings.len() as f64;
            parts.push(format!(
                "{}: stopped {:.0}% of the time ({} stops over {over})",
                cell.timing,
                mean * 100.0,
                sum("stops")
            ));
        }
        Timing::Load => {
            if let Some(n) = timings.iter().find_map(|t| t["busy_threads"].as_u64()) {
                parts.push(format!(
                    "load: {n} busy threads, one pinned to each CPU, during each of {over}"
                ));
            }
        }
        Timing::Cpu1 => {
            if let Some(cpu) = timings.iter().find_map(|t| t["cpu"].as_u64()) {
                parts.push(format!("cpu1: every process pinned to CPU {cpu}"));
            }
        }
        Timing::Trace => {
            parts.push(format!(
                "trace: run step under strace -f ({} syscall lines)",
                sum("strace_lines")
            ));
        }
        Timing::Chaos => {
            parts.push(format!(
                "chaos: {} moves of threads between CPU sets, {} starvation windows over {over}",
                sum("moves"),
                sum("starved"),
            ));
        }
        Timing::Noise => {
            parts.push(format!(
                "noise: {} stress threads (CPU, memory, fsync) over {over}",
                sum("threads")
            ));
        }
        Timing::Quota(pct) => {
            parts.push(format!(
                "quota: {pct}% of one CPU; throttled in {} of {} periods ({} ms) over {over}",
                sum("throttled"),
                sum("periods"),
                sum("throttled_ms"),
            ));
        }
        Timing::Delay => {
            let mut programs: Vec<&str> = Vec::new();
            for p in timings
                .iter()
                .filter_map(|t| t["programs"].as_array())
                .flatten()
            {
                if let Some(p) = p.as_str().filter(|p| !programs.contains(p)) {
                    programs.push(p);
                }
            }
            if sum("calls") == 0 && sum("aligned_threads") == 0 {
                // The library counts only in processes that load it, so a
                // statically linked program is invisible here: name both
                // ways a cell can end up unperturbed.
                parts.push(if programs.is_empty() {
                    format!(
                        "delay: no program loaded the library over {over}: a statically linked \
                         program (as Go builds are) never does, so this cell ran as none"
                    )
                } else {
                    format!(
                        "delay: loaded by {}, which made no thread, lock or semaphore call over \
                         {over}, so this cell ran as none (a program without threads, or a \
                         statically linked one, as Go builds are, that never loads the library)",
                        programs.join(", ")
                    )
                });
            } else {
                parts.push(format!(
                    "delay: loaded by {}; {} of {} thread, lock and semaphore calls slept \
                     ({} ms), {} threads started together, over {over}",
                    programs.join(", "),
                    sum("delays"),
                    sum("calls"),
                    sum("delayed_ms"),
                    sum("aligned_threads"),
                ));
            }
        }
        Timing::None => {}
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
