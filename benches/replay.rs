//! Replay's overhead and parallelism, against a bare spawn in the same run.
//!
//! - per-run overhead: `bugpack replay` of `run: "true"` (sandbox with user,
//!   PID and network namespaces, supervisor, fresh directory, judging,
//!   clean-up) against spawning `sh -c true` directly, and against
//!   `bwrap --unshare-user --unshare-pid --unshare-net` running the same
//!   `sh -c true`, each in the same shell loop. Targets: under 10 ms per run
//!   with isolation on, and at most half of bwrap's overhead (issue 17).
//! - what a checkout costs (issue 16): the same no-op command captured in a
//!   500-file git repository with a local change and an untracked file,
//!   replayed with `--repo` (a checkout at the bundle's commit, the patch
//!   applied, a copy-on-write overlay per run) against `--no-repo` (the
//!   scenario alone): the time added per run and once per replay.
//! - parallel efficiency of `--jobs 2` on a ~100 ms CPU-bound scenario:
//!   T(jobs 1) / (2 × T(jobs 2)). Target: at least 85%.
//!
//! Each figure is the median of several samples, taken in rounds (baseline
//! and replay, or `--jobs 1` and `--jobs 2`, side by side) so that a burst
//! of load from elsewhere hits both sides of a comparison alike. Every
//! figure is printed next to its target. Run with `cargo bench --bench
//! replay` on a quiet machine: on a shared one the figures say little.

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
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{bugpack, measure, ms};

/// Samples per figure.
const SAMPLES: usize = 5;
/// Runs per overhead sample.
const NOOP_RUNS: u32 = 300;
/// Runs per parallelism sample.
const BUSY_RUNS: u32 = 20;
/// Samples of the (longer) parallelism comparison.
const BUSY_SAMPLES: usize = 3;

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
    println!("isolation: {}", isolation(&bin, root));
    // `cargo bench --bench replay -- overhead` runs only that part.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let parts: [(&str, Part); 3] = [
        ("overhead", overhead),
        ("checkout", checkout),
        ("efficiency", efficiency),
    ];
    for (name, part) in parts {
        if only.as_deref().is_none_or(|o| name.contains(o)) {
            part(&bin, root);
        }
    }
}

/// One part of this benchmark, given the binary and a scratch directory.
type Part = fn(&str, &Path);

/// What `bugpack replay` says about its isolation on this machine.
fn isolation(bin: &str, root: &Path) -> String {
    fs::create_dir_all(root.join("probe")).unwrap();
    fs::write(
        root.join("probe/scenario.yaml"),
        "name: probe\nrun: 'true'\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .args(["replay", "probe", "--yes", "--runs", "1", "--json", "-"])
        .current_dir(root)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let iso = &report["isolation"];
    format!(
        "namespaces={} net={} run_as={}",
        iso["namespaces"],
        iso["net"].as_str().unwrap_or("?"),
        iso["run_as"].as_str().unwrap_or("-")
    )
}

/// The sandbox the overhead is compared with, as the issue names it.
const BWRAP: &str = "bwrap --unshare-user --unshare-pid --unshare-net --bind / /";

fn overhead(bin: &str, root: &Path) {
    fs::create_dir_all(root.join("noop")).unwrap();
    fs::write(
        root.join("noop/scenario.yaml"),
        "name: noop\nrun: 'true'\nexpect: {exit: nonzero}\n",
    )
    .unwrap();
    // `replay` exits 1 (not reproduced) for this scenario: run through sh.
    let replay_cmd = format!(
        "{bin} replay noop --yes --runs {NOOP_RUNS} --jobs 1 --seed 1 >/dev/null; test $? -eq 1"
    );
    // The same loop around both, so that the shell's own cost cancels.
    let looped =
        |cmd: &str| format!("i=0; while [ $i -lt {NOOP_RUNS} ]; do {cmd}; i=$((i+1)); done");
    let bare_cmd = looped("sh -c true");
    let bwrap_cmd = looped(&format!("{BWRAP} sh -c true"));
    let bwrap = Command::new("sh")
        .args(["-c", &format!("{BWRAP} true")])
        .output()
        .is_ok_and(|o| o.status.success());
    let per_run = |m: support::Measured| (m.wall / NOOP_RUNS, m.cpu / NOOP_RUNS);
    let (mut bare, mut replays, mut wraps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        bare.push(per_run(measure(root, &["sh", "-c", &bare_cmd])));
        replays.push(per_run(measure(root, &["sh", "-c", &replay_cmd])));
        if bwrap {
            wraps.push(per_run(measure(root, &["sh", "-c", &bwrap_cmd])));
        }
    }
    let walls = |v: &[(Duration, Duration)]| v.iter().map(|m| m.0).collect::<Vec<_>>();
    let cpus = |v: &[(Duration, Duration)]| v.iter().map(|m| m.1).collect::<Vec<_>>();
    let over = |v: &[(Duration, Duration)]| {
        v.iter()
            .zip(&bare)
            .map(|(m, b)| m.0.saturating_sub(b.0))
            .collect::<Vec<_>>()
    };
    println!(
        "per-run overhead (median of {SAMPLES} samples of {NOOP_RUNS} runs, --jobs 1, isolation on; \
         overhead = wall per run minus the bare spawn's, sample by sample)"
    );
    let line = |name: &str, v: &[(Duration, Duration)]| {
        println!(
            "  {name:<32} {:>9} per run, {:>9} CPU",
            ms(median(&walls(v))),
            ms(median(&cpus(v)))
        );
    };
    line("baseline: sh -c true", &bare);
    line("bugpack replay, run: true", &replays);
    let ours = median(&over(&replays));
    println!(
        "  bugpack's overhead               {:>9} per run   target < 10 ms: {}",
        ms(ours),
        verdict(ours < Duration::from_millis(10))
    );
    if bwrap {
        line(&format!("{BWRAP} sh -c true"), &wraps);
        let theirs = median(&over(&wraps));
        println!(
            "  bwrap's overhead                 {:>9} per run",
            ms(theirs)
        );
        println!(
            "  bugpack / bwrap                  {:>9.2}        target <= 0.50: {}",
            ours.as_secs_f64() / theirs.as_secs_f64(),
            verdict(ours * 2 <= theirs)
        );
    } else {
        println!("  bwrap: not installed (apt-get install bubblewrap), no comparison");
    }
    println!(
        "  bugpack's overhead per sample    {}",
        over(&replays)
            .iter()
            .map(|d| ms(*d))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// Runs per checkout sample.
const CHECKOUT_RUNS: u32 = 50;

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn checkout(bin: &str, root: &Path) {
    let repo = root.join("project");
    for i in 0..500 {
        let path = repo.join(format!("src/mod{:02}/file{i}.py", i % 20));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("# module {i}\n{}", "x = 1\n".repeat(200))).unwrap();
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "project"]);
    fs::write(repo.join("src/mod00/file0.py"), "# changed\n").unwrap();
    fs::write(repo.join("src/new.py"), "y = 2\n").unwrap();
    let st = Command::new(bin)
        .args([
            "capture",
            "-o",
            "../project.zip",
            "--title",
            "bench",
            "--no-run",
        ])
        .args(["--expect-exit", "3", "--", "true"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let clone = root.join("clone");
    git(root, &["clone", "-q", "project", "clone"]);
    // Not reproduced (`true` exits 0): replay exits 1.
    let replay = |runs: u32, repo_flag: &str| {
        let cmd = format!(
            "{bin} replay project.zip --yes --runs {runs} --jobs 1 --seed 1 {repo_flag} >/dev/null; test $? -eq 1"
        );
        measure(root, &["sh", "-c", &cmd]).wall
    };
    let with = format!("--repo {}", clone.display());
    let out = Command::new(bin)
        .args([
            "replay",
            "project.zip",
            "--yes",
            "--runs",
            "1",
            "--json",
            "-",
            "--repo",
        ])
        .arg(&clone)
        .current_dir(root)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!(
        "checkout view: {}",
        report["checkout"]["view"].as_str().unwrap_or("?")
    );
    let (mut per_run, mut once, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        let (repo_n, bare_n) = (
            replay(CHECKOUT_RUNS, &with),
            replay(CHECKOUT_RUNS, "--no-repo"),
        );
        let (repo_1, bare_1) = (replay(1, &with), replay(1, "--no-repo"));
        let span = CHECKOUT_RUNS - 1;
        let repo_each = repo_n.saturating_sub(repo_1) / span;
        let bare_each = bare_n.saturating_sub(bare_1) / span;
        plain.push(bare_each);
        per_run.push(repo_each.saturating_sub(bare_each));
        once.push(repo_1.saturating_sub(bare_1));
    }
    println!(
        "checkout (--repo, 500-file repository, median of {SAMPLES} samples of {CHECKOUT_RUNS} runs, --jobs 1)"
    );
    println!(
        "  --no-repo, run: true             {:>10} per run",
        ms(median(&plain))
    );
    println!(
        "  --repo adds                      {:>10} per run (a copy-on-write view each)",
        ms(median(&per_run))
    );
    println!(
        "  --repo adds                      {:>10} once (checkout, patch, untracked files)",
        ms(median(&once))
    );
}

fn efficiency(bin: &str, root: &Path) {
    let (n, took) = calibrate_busy_loop();
    fs::create_dir_all(root.join("busy")).unwrap();
    fs::write(
        root.join("busy/scenario.yaml"),
        format!("name: busy\nrun: 'i=0; while [ $i -lt {n} ]; do i=$((i+1)); done'\nexpect: {{exit: nonzero}}\n"),
    )
    .unwrap();
    let jobs = |j: u32| {
        let cmd = format!(
            "{bin} replay busy --yes --runs {BUSY_RUNS} --jobs {j} >/dev/null; test $? -eq 1"
        );
        measure(root, &["sh", "-c", &cmd]).wall
    };
    let mut t1s = Vec::new();
    let mut t2s = Vec::new();
    let mut efficiencies = Vec::new();
    for _ in 0..BUSY_SAMPLES {
        let t1 = jobs(1);
        let t2 = jobs(2);
        t1s.push(t1);
        t2s.push(t2);
        efficiencies.push(t1.as_secs_f64() / (2.0 * t2.as_secs_f64()));
    }
    efficiencies.sort_by(f64::total_cmp);
    let efficiency = efficiencies[efficiencies.len() / 2];
    println!(
        "parallel efficiency (median of {BUSY_SAMPLES} samples of {BUSY_RUNS} runs of a {} CPU-bound scenario)",
        ms(took)
    );
    println!(
        "  --jobs 1                         {:>10}",
        ms(median(&t1s))
    );
    println!(
        "  --jobs 2                         {:>10}",
        ms(median(&t2s))
    );
    println!(
        "  efficiency T1 / (2 x T2)         {:>9.1}%   target >= 85%: {}",
        efficiency * 100.0,
        verdict(efficiency >= 0.85)
    );
    println!(
        "  efficiency per sample            {}",
        efficiencies
            .iter()
            .map(|e| format!("{:.1}%", e * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// A loop count for `sh` that takes about 100 ms on this machine, and how
/// long the last try took.
fn calibrate_busy_loop() -> (u64, Duration) {
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
    (n, took)
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
