//! Replay's overhead and parallelism, against a bare spawn in the same run.
//!
//! - per-run overhead: `bugpack replay` of `run: "true"` (sandbox with user,
//!   PID and network namespaces, supervisor, fresh directory, judging,
//!   clean-up) against spawning `sh -c true` directly. Target: under 10 ms
//!   per run with isolation on.
//! - parallel efficiency of `--jobs 2` on a ~100 ms CPU-bound scenario:
//!   T(jobs 1) / (2 × T(jobs 2)). Target: at least 85%.
//!
//! Run with `cargo bench --bench replay`.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

#[path = "support.rs"]
mod support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{bugpack, measure, ms};

fn main() {
    if support::measure_child() {
        return;
    }
    let bin = bugpack();
    let dir = tempfile::Builder::new()
        .prefix("bugpack-bench-")
        .tempdir()
        .unwrap();
    let root = dir.path();

    let runs: u32 = 200;
    fs::create_dir(root.join("noop")).unwrap();
    fs::write(
        root.join("noop/scenario.yaml"),
        "name: noop\nrun: 'true'\nexpect: {exit: nonzero}\n",
    )
    .unwrap();
    let started = Instant::now();
    for _ in 0..runs {
        assert!(
            Command::new("sh")
                .args(["-c", "true"])
                .status()
                .unwrap()
                .success()
        );
    }
    let spawn = started.elapsed() / runs;
    // `replay` exits 1 (not reproduced) for these scenarios: run through sh.
    let noop_total = measure(
        root,
        &[
            "sh",
            "-c",
            &format!(
                "{bin} replay noop --yes --runs {runs} --jobs 1 --seed 1 >/dev/null; test $? -eq 1"
            ),
        ],
    )
    .wall;
    let per_run = noop_total / runs;
    println!("per-run overhead ({runs} runs, --jobs 1, isolation on)");
    println!(
        "  bugpack replay, run: true        {:>10} per run",
        ms(per_run)
    );
    println!(
        "  baseline: spawn sh -c true       {:>10} per run",
        ms(spawn)
    );
    println!(
        "  overhead                         {:>10} per run",
        ms(per_run.saturating_sub(spawn))
    );

    // A CPU-bound scenario of about 100 ms, calibrated on this machine.
    let mut n = 20_000u64;
    let mut took = Duration::ZERO;
    for _ in 0..12 {
        let t = Instant::now();
        let script = format!("i=0; while [ $i -lt {n} ]; do i=$((i+1)); done");
        assert!(
            Command::new("sh")
                .args(["-c", &script])
                .status()
                .unwrap()
                .success()
        );
        took = t.elapsed();
        if took > Duration::from_millis(90) && took < Duration::from_millis(115) {
            break;
        }
        n = (n as f64 * 100.0 / took.as_secs_f64() / 1000.0).max(1000.0) as u64;
    }
    fs::create_dir(root.join("busy")).unwrap();
    fs::write(
        root.join("busy/scenario.yaml"),
        format!("name: busy\nrun: 'i=0; while [ $i -lt {n} ]; do i=$((i+1)); done'\nexpect: {{exit: nonzero}}\n"),
    )
    .unwrap();
    let total = 40;
    let t1 = measure(
        root,
        &[
            "sh",
            "-c",
            &format!("{bin} replay busy --yes --runs {total} --jobs 1 >/dev/null; test $? -eq 1"),
        ],
    )
    .wall;
    let t2 = measure(
        root,
        &[
            "sh",
            "-c",
            &format!("{bin} replay busy --yes --runs {total} --jobs 2 >/dev/null; test $? -eq 1"),
        ],
    )
    .wall;
    let efficiency = t1.as_secs_f64() / (2.0 * t2.as_secs_f64());
    println!(
        "parallel efficiency ({total} runs of a {} CPU-bound scenario)",
        ms(took)
    );
    println!("  --jobs 1                         {:>10}", ms(t1));
    println!("  --jobs 2                         {:>10}", ms(t2));
    println!(
        "  efficiency T1 / (2 x T2)         {:>9.1}%",
        efficiency * 100.0
    );
}
