//! Capture's cost on big inputs, against baselines in the same run.
//!
//! - a 2 GB log: `bugpack capture --log` (reads the last 1 MiB from the
//!   end) against `tail -c 1M | zip`, the shell way to the same result;
//! - a 20,000-file git repository with changes: `bugpack capture` (git2
//!   status and diff) against `git status --porcelain` plus `git diff HEAD`.
//!
//! Targets (issue 3): peak RSS under 64 MB, the log case under 1 s.
//! Run with `cargo bench --bench capture` (needs `zip` and `git`).

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
use std::io::Write as _;
use std::process::Command;

use support::{bugpack, measure, median_of, row};

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

    // A real 2 GB log of ordinary lines (not sparse): 2 GiB of writes, once.
    let log = root.join("app.log");
    {
        let mut f = std::io::BufWriter::with_capacity(8 << 20, fs::File::create(&log).unwrap());
        let mut i = 0u64;
        let mut written = 0u64;
        while written < 2 << 30 {
            let line = format!(
                "2026-11-22T10:00:00.{:06}Z INFO worker-{} handled request id={} in 3 ms\n",
                i % 1_000_000,
                i % 16,
                i
            );
            f.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
            i += 1;
        }
        f.flush().unwrap();
    }
    println!(
        "{:<52} {:>12} {:>14}",
        "case", "wall (median of 5)", "peak RSS"
    );
    let cap = median_of(5, || {
        measure(
            root,
            &[
                &bin,
                "capture",
                "-o",
                "bench.zip",
                "--log",
                "app.log",
                "--title",
                "bench",
            ],
        )
    });
    row("bugpack capture --log app.log (2 GB)", cap);
    let base = median_of(5, || {
        measure(
            root,
            &[
                "sh",
                "-c",
                "tail -c 1048576 app.log > tail.log && rm -f t.zip && zip -q t.zip tail.log",
            ],
        )
    });
    row("baseline: tail -c 1M | zip", base);
    let sha = median_of(5, || measure(root, &["sha256sum", "bench.zip"]));
    row("baseline: sha256sum of the bundle", sha);
    fs::remove_file(&log).unwrap();

    // A 20,000-file repository with 200 modified and 200 untracked files.
    let repo = root.join("repo");
    fs::create_dir(&repo).unwrap();
    for i in 0..20_000 {
        let sub = repo.join(format!("src/m{:03}", i / 100));
        fs::create_dir_all(&sub).unwrap();
        fs::write(
            sub.join(format!("f{i}.txt")),
            format!("line one of {i}\nline two\n"),
        )
        .unwrap();
    }
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "b")
            .env("GIT_AUTHOR_EMAIL", "b@example.com")
            .env("GIT_COMMITTER_NAME", "b")
            .env("GIT_COMMITTER_EMAIL", "b@example.com")
            .output()
            .unwrap();
        assert!(ok.status.success());
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "bench"]);
    for i in (0..20_000).step_by(100) {
        fs::write(
            repo.join(format!("src/m{:03}/f{i}.txt", i / 100)),
            "changed\n",
        )
        .unwrap();
        fs::write(
            repo.join(format!("src/m{:03}/new{i}.txt", i / 100)),
            "new\n",
        )
        .unwrap();
    }
    git(&["status", "-s"]); // warm the index, as a user's repository would be
    let cap = median_of(5, || {
        measure(
            &repo,
            &[&bin, "capture", "-o", "../repo.zip", "--title", "bench"],
        )
    });
    row("bugpack capture in a 20,000-file repository", cap);
    let base = median_of(5, || {
        measure(
            &repo,
            &[
                "sh",
                "-c",
                "git status --porcelain >/dev/null && git diff HEAD >/dev/null",
            ],
        )
    });
    row("baseline: git status --porcelain + git diff HEAD", base);
}
