//! The five bug classes of `examples/`: each reproduces under its condition
//! and only there, and each `fixed/` variant nowhere, through the real
//! binary and its JSON report.

use std::fs;
use std::path::Path;
use std::sync::{MutexGuard, PoisonError};

use crate::support::reports::{JCell, JReport, JRun};
use crate::support::{MACHINE, Sandbox};

/// The examples depend on timing (a saturated pool, a deadline) and keep
/// both CPUs busy for seconds: they take turns with each other and with the
/// timing axis's tests.
fn turn() -> MutexGuard<'static, ()> {
    MACHINE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The path of `examples/<name>` in this repository.
fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Replays `source` with `--yes --json -`, checks the exit code, returns the report.
fn replay(sb: &Sandbox, source: &str, args: &[&str], code: i32) -> JReport {
    let out = sb
        .bugpack()
        .args(["replay", source, "--yes", "--json", "-"])
        .args(args)
        .run()
        .code(code);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\n--- stdout\n{}--- stderr\n{}", out.stdout, out.stderr))
}

/// The cell with these timing and proxy values (cache cold).
fn cell<'a>(r: &'a JReport, timing: &str, proxy: &str) -> &'a JCell {
    r.cells
        .iter()
        .find(|c| {
            c.axes["timing"] == timing && c.axes["proxy"] == proxy && c.axes["cache"] == "cold"
        })
        .unwrap_or_else(|| panic!("no cell {timing}/{proxy}/cold in {r:#?}"))
}

/// No run of the cell errored, and every run that did not reproduce really
/// worked (exit 0): a crash must not pass for "not reproduced".
fn clean(c: &JCell) -> &JCell {
    assert_eq!(c.errors, 0, "{c:#?}");
    for run in c.results.iter().filter(|r| r.outcome == "passed") {
        assert_eq!(run.exit_code, Some(0), "a passed run failed: {run:#?}");
    }
    c
}

/// The cell reproduced in exactly `n` of its runs, for `reason`.
fn reproduced(c: &JCell, n: u32, reason: &str) {
    clean(c);
    assert_eq!(c.reproduced, n, "{c:#?}");
    for run in c.results.iter().filter(|r| r.outcome == "reproduced") {
        assert_eq!(run.reason, reason, "{run:#?}");
    }
}

/// A copy of example `name` in the sandbox, with `from` replaced by `to` in
/// its scenario.yaml and its fixed variant's: the same code under another
/// condition.
fn variant(sb: &Sandbox, name: &str, from: &str, to: &str) -> String {
    let dir = sb.path(name);
    copy_dir(Path::new(&example(name)), &dir);
    for yaml in [dir.join("scenario.yaml"), dir.join("fixed/scenario.yaml")] {
        let text = fs::read_to_string(&yaml).unwrap();
        assert!(text.contains(from), "{} lacks {from:?}", yaml.display());
        fs::write(&yaml, text.replace(from, to)).unwrap();
    }
    dir.display().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn pool_deadlock_hangs_once_the_workflows_fill_the_pool() {
    let _turn = turn();
    let sb = Sandbox::new();
    // Two workflows; the pool has two threads per CPU: four here, two on one CPU.
    let r = replay(
        &sb,
        &example("pool-deadlock"),
        &["--runs", "2", "--timing", "none,cpu1"],
        0,
    );
    reproduced(cell(&r, "none", "none"), 0, "");
    let one_cpu = cell(&r, "cpu1", "none");
    reproduced(one_cpu, 2, "hang");
    // Every dispatcher thread waits, on a future that never completes.
    let run = &one_cpu.results[0];
    let engine = diagnostics(run)
        .into_iter()
        .find(|p| p["command"] == "python3 engine.py")
        .unwrap_or_else(|| panic!("no engine in {run:#?}"));
    let waiting = engine["waiting_on"].as_str().unwrap_or_default();
    assert!(waiting.contains("futex"), "{engine:#}");
    let blocked: u64 = engine["threads_waiting"].as_object().map_or(0, |w| {
        w.values().filter_map(serde_json::Value::as_u64).sum()
    });
    assert!(
        blocked >= 3,
        "the main thread and both dispatcher threads wait: {engine:#}"
    );

    let fixed = replay(
        &sb,
        &example("pool-deadlock/fixed"),
        &["--runs", "2", "--timing", "none,cpu1", "--expect-fixed"],
        0,
    );
    reproduced(cell(&fixed, "none", "none"), 0, "");
    reproduced(cell(&fixed, "cpu1", "none"), 0, "");
}

/// A hung run's process reports.
fn diagnostics(run: &JRun) -> Vec<serde_json::Value> {
    run.diagnostics
        .clone()
        .unwrap_or_else(|| panic!("no diagnostics in {run:#?}"))
}

#[test]
fn pipe_deadlock_shows_the_docs_builder_blocked_writing_its_pipe() {
    let _turn = turn();
    let sb = Sandbox::new();
    let r = replay(&sb, &example("pipe-deadlock"), &["--runs", "2"], 0);
    let hung = cell(&r, "none", "none");
    reproduced(hung, 2, "hang");
    for run in &hung.results {
        let procs = diagnostics(run);
        let driver = procs
            .iter()
            .find(|p| p["command"] == "python3 build.py")
            .unwrap_or_else(|| panic!("no build driver in {procs:#?}"));
        let docs = procs
            .iter()
            .find(|p| p["command"] == "sh docs.sh")
            .unwrap_or_else(|| panic!("no docs builder in {procs:#?}"));
        // The driver waits for its child...
        assert_eq!(
            driver["waiting_on"], "waiting for a child process (wait)",
            "{driver:#}"
        );
        // ...which is blocked writing a pipe whose other end is the driver's.
        let waiting = docs["waiting_on"].as_str().unwrap_or_default();
        assert!(waiting.starts_with("writing pipe:["), "{docs:#}");
        let reader = driver["ns_pid"]
            .as_i64()
            .or(driver["pid"].as_i64())
            .unwrap();
        assert!(
            waiting.contains(&format!("also open in pid {reader} fd")),
            "the driver holds the pipe's read end: {docs:#}"
        );
        // Python's own dump names the line that waits.
        let stderr = run.stderr_tail.as_deref().unwrap_or_default();
        assert!(
            stderr.contains("in wait") && stderr.contains("build.py"),
            "{stderr}"
        );
    }

    // The same build with a log that fits in the pipe buffer passes.
    let small = variant(
        &sb,
        "pipe-deadlock",
        "DOC_PAGES: \"2000\"",
        "DOC_PAGES: \"500\"",
    );
    let r = replay(&sb, &small, &["--runs", "2"], 1);
    reproduced(cell(&r, "none", "none"), 0, "");

    let fixed = replay(
        &sb,
        &example("pipe-deadlock/fixed"),
        &["--runs", "2", "--expect-fixed"],
        0,
    );
    reproduced(cell(&fixed, "none", "none"), 0, "");
}

#[test]
fn cached_ajax_hangs_only_behind_a_caching_proxy() {
    let _turn = turn();
    let sb = Sandbox::new();
    let proxies = ["--runs", "2", "--proxy", "none,pass,cache,rfc"];
    let r = replay(&sb, &example("cached-ajax"), &proxies, 0);
    for proxy in ["none", "pass", "rfc"] {
        reproduced(cell(&r, "none", proxy), 0, "");
    }
    let cached = cell(&r, "none", "cache");
    reproduced(cached, 2, "hang");
    for run in &cached.results {
        let proxy = &run.axes_detail["proxy"];
        assert!(proxy["hits"].as_u64().unwrap_or(0) >= 3, "{proxy}");
        let out = run.stdout_tail.as_deref().unwrap_or_default();
        assert!(
            out.contains("is PENDING") && !out.contains("SUCCESS"),
            "{out}"
        );
    }

    let fixed = replay(
        &sb,
        &example("cached-ajax/fixed"),
        &[&proxies[..], &["--expect-fixed"]].concat(),
        0,
    );
    for proxy in ["none", "pass", "cache", "rfc"] {
        reproduced(cell(&fixed, "none", proxy), 0, "");
    }
}

#[test]
fn cached_ajax_with_last_modified_hangs_behind_an_rfc_cache_too() {
    let _turn = turn();
    let sb = Sandbox::new();
    let dir = variant(
        &sb,
        "cached-ajax",
        "LAST_MODIFIED: \"\"",
        "LAST_MODIFIED: \"Mon, 01 Jan 2024 00:00:00 GMT\"",
    );
    let r = replay(&sb, &dir, &["--runs", "1", "--proxy", "none,rfc,cache"], 0);
    reproduced(cell(&r, "none", "none"), 0, "");
    reproduced(cell(&r, "none", "rfc"), 1, "hang");
    reproduced(cell(&r, "none", "cache"), 1, "hang");

    let fixed = replay(
        &sb,
        &format!("{dir}/fixed"),
        &["--runs", "1", "--proxy", "rfc,cache", "--expect-fixed"],
        0,
    );
    reproduced(cell(&fixed, "none", "rfc"), 0, "");
    reproduced(cell(&fixed, "none", "cache"), 0, "");
}

#[test]
fn ack_race_drops_jobs_at_full_speed_and_less_under_a_tracer_or_slowed() {
    let _turn = turn();
    let sb = Sandbox::new();
    let timings = ["--runs", "3", "--timing", "none,trace,slow"];
    let r = replay(&sb, &example("ack-race"), &timings, 0);
    let fast = clean(cell(&r, "none", "none"));
    assert!(fast.reproduced >= 1, "{fast:#?}");
    for run in fast.results.iter().filter(|r| r.outcome == "reproduced") {
        // The oracle: jobs acknowledged and never done.
        let matched = run.matched.as_deref().unwrap_or_default();
        assert!(matched.contains("dropped"), "{run:#?}");
    }
    // The observer effect: a tracer, or being stopped half the time, slows
    // the consumer below the pool's pace.
    for timing in ["trace", "slow"] {
        let observed = clean(cell(&r, timing, "none"));
        assert!(
            observed.reproduced < fast.reproduced,
            "{timing} should hide the race: {observed:#?}"
        );
    }

    let fixed = replay(
        &sb,
        &example("ack-race/fixed"),
        &[
            "--runs",
            "2",
            "--timing",
            "none,trace,slow",
            "--expect-fixed",
        ],
        0,
    );
    for timing in ["none", "trace", "slow"] {
        reproduced(cell(&fixed, timing, "none"), 0, "");
    }
}

#[test]
fn blocked_pool_sometimes_misses_its_deadline() {
    let _turn = turn();
    let sb = Sandbox::new();
    let r = replay(
        &sb,
        &example("blocked-pool"),
        &["--runs", "6", "--seed", "1"],
        0,
    );
    let c = clean(cell(&r, "none", "none"));
    // Sometimes: some requests make it, late or not, and some hit the deadline.
    assert!(c.reproduced >= 1 && c.passed >= 1, "{c:#?}");
    for run in c.results.iter().filter(|r| r.outcome == "reproduced") {
        assert_eq!(run.exit_code, Some(1), "{run:#?}");
        assert!(
            run.matched
                .as_deref()
                .unwrap_or_default()
                .contains("deadline"),
            "{run:#?}"
        );
    }

    let fixed = replay(
        &sb,
        &example("blocked-pool/fixed"),
        &["--runs", "4", "--seed", "1", "--expect-fixed"],
        0,
    );
    reproduced(cell(&fixed, "none", "none"), 0, "");
}

#[test]
fn a_captured_example_replays_to_the_same_matrix() {
    let _turn = turn();
    let sb = Sandbox::new();
    sb.bugpack()
        .args([
            "capture",
            "--scenario",
            &example("cached-ajax"),
            "-o",
            "ajax.zip",
        ])
        .args(["--title", "the UI polls forever"])
        .run()
        .success();
    let r = replay(
        &sb,
        "ajax.zip",
        &["--runs", "1", "--proxy", "none,cache"],
        0,
    );
    assert_eq!(r.scenario, "cached-ajax");
    assert!(r.bundle_sha256.is_some(), "{r:#?}");
    reproduced(cell(&r, "none", "none"), 0, "");
    reproduced(cell(&r, "none", "cache"), 1, "hang");
}
