//! Interrupting bugpack at its worst moments: SIGINT and SIGTERM to
//! `replay` in the middle of a matrix (services up, a proxy serving, runs
//! hanging, daemons that left their session), SIGKILL to `capture` while it
//! writes. Whatever the moment, no process survives, no temporary directory
//! is left, and what finished is reported.
//!
//! Every process a scenario starts carries a marker in its environment
//! (bugpack's own sandbox processes inherit it from bugpack, the steps get
//! it from the scenario's `env`), so a scan of `/proc` after bugpack has
//! exited finds anything that survived, whichever session or PID namespace
//! it ended up in.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::reports::{JReport, scenario};
use crate::support::{KillOnDrop, Sandbox, processes_holding};

/// Waits (up to two minutes, however loaded the machine) until `ready` holds.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(2);
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(child: &Child, signal: Signal) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        signal,
    )
    .unwrap();
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Starts `bugpack` in the sandbox without waiting, with `env` added, for
/// tests that signal it while it works.
fn spawn(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bugpack"));
    cmd.args(args)
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .env("HOME", sb.home())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("BUGPACK_SANDBOX")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// A web service that answers every GET with 200 and `ok`.
const APP: &str = "import http.server, os\n\
class H(http.server.BaseHTTPRequestHandler):\n    \
def do_GET(self):\n        \
self.send_response(200); self.send_header('Content-Length', '2')\n        \
self.end_headers(); self.wfile.write(b'ok')\n    \
def log_message(self, *a): pass\n\
http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

/// A scenario with a service (ready by HTTP) whose run 0 reproduces at
/// once, and whose later runs, after a request through the cell's proxy,
/// start a daemon that leaves the session and ignores polite signals, then
/// hang far past any test's patience.
fn matrix_scenario(sb: &Sandbox, marker: &str) -> String {
    let run = format!(
        "curl -sf \"$BUGPACK_SERVICE_APP_URL/ping\" > /dev/null || exit 1\n\
         [ \"$BUGPACK_RUN_INDEX\" = 0 ] && exit 3\n\
         (setsid sh -c 'trap \"\" INT TERM HUP; sleep {marker}' &)\n\
         sleep {marker}\n"
    );
    scenario(
        sb,
        "mid",
        &format!(
            "name: mid\nenv: {{MARK: '{marker}'}}\n\
             services: [{{name: app, run: python3 app.py, ready: {{http: /health}}}}]\n\
             run: sh run.sh\ntimeout: 300s\nexpect: {{exit: 3}}\n"
        ),
        &[("app.py", APP), ("run.sh", &run)],
    )
}

/// The live `sleep` processes of the hanging runs.
fn hanging_sleeps(marker: &str) -> usize {
    processes_holding(marker)
        .iter()
        .filter(|p| p.contains(&format!(": sleep {marker}")))
        .count()
}

/// Replays `source` (two cells, `cache` then `none`, two runs each, two at
/// a time), waits until run 0 of both cells has finished and run 1 of both
/// hangs with its daemon, sends `signal`, and checks what bugpack leaves:
/// the partial report, and no process and no temporary file.
fn interrupt_mid_matrix(
    sb: &Sandbox,
    source: &str,
    marker: &str,
    signal: Signal,
    env: &[(&str, &str)],
) {
    let _reap = KillOnDrop(marker);
    let mut env = env.to_vec();
    env.push(("BUGPACK_TEST_MARK", marker));
    let child = spawn(
        sb,
        &[
            "replay",
            source,
            "--yes",
            "--json",
            "r.json",
            "--proxy",
            "cache,none",
            "--runs",
            "2",
            "--jobs",
            "2",
        ],
        &env,
    );
    // Work is taken in order (cache run 0, cache run 1, none run 0, none
    // run 1) by two workers; only run 1 hangs, so once both runs 1 hang
    // (two sleeps each), both runs 0 have finished.
    wait_until("run 1 of both cells to hang", || {
        hanging_sleeps(marker) >= 4
    });
    assert!(
        processes_holding(marker)
            .iter()
            .any(|p| p.contains("python3 app.py")),
        "the services are up"
    );
    send(&child, signal);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    assert_eq!(out.status.code(), Some(4), "{context}");
    // The table: both cells, each with its one finished run.
    assert!(
        stdout.contains(
            "mid: reproduced in 2 of 2 cells (2 of 2 runs); interrupted, partial results"
        ),
        "{context}"
    );
    for proxy in ["cache", "none"] {
        assert!(
            stdout.lines().any(|l| l
                .split_whitespace()
                .take(4)
                .eq(["none", proxy, "cold", "1/1"])),
            "no row for the {proxy} cell\n{context}"
        );
    }
    assert!(
        stderr.contains("error: interrupted after 2 runs; the report holds what finished"),
        "{context}"
    );
    assert!(!stderr.contains("panicked"), "{context}");
    let text = fs::read_to_string(sb.path("r.json")).expect("the partial JSON report");
    let r: JReport = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(r.interrupted);
    assert_eq!(r.verdict, "reproduced");
    assert_eq!(r.cells.len(), 2);
    for cell in &r.cells {
        assert_eq!((cell.runs, cell.reproduced), (1, 1), "{:?}", cell.results);
        assert_eq!(cell.results.len(), 1);
        assert_eq!(cell.results[0].index, 0);
    }
    let cached = r.cells.iter().find(|c| c.axes["proxy"] == "cache").unwrap();
    let proxy = &cached.results[0].axes_detail["proxy"];
    assert_eq!(
        proxy["requests"], 1,
        "run 0 went through the proxy: {proxy}"
    );
    let left = processes_holding(marker);
    assert!(left.is_empty(), "survived {signal}: {left:#?}");
    let tmp = names_in(&sb.tmp());
    assert!(tmp.is_empty(), "left in TMPDIR: {tmp:?}");
}

#[test]
fn sigint_mid_matrix_stops_services_proxies_hangs_and_daemons_and_keeps_finished_runs() {
    let sb = Sandbox::new();
    let marker = &crate::support::marker("57721.5664");
    let s = matrix_scenario(&sb, marker);
    interrupt_mid_matrix(&sb, &s, marker, Signal::SIGINT, &[]);
}

#[test]
fn sigterm_mid_matrix_of_a_bundle_leaves_neither_processes_nor_the_extracted_bundle() {
    let sb = Sandbox::new();
    let marker = &crate::support::marker("69314.7180");
    let s = matrix_scenario(&sb, marker);
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--title",
            "mid",
            "--scenario",
            &s,
        ])
        .run()
        .success();
    interrupt_mid_matrix(&sb, "bug.zip", marker, Signal::SIGTERM, &[]);
}

#[test]
fn sigint_mid_matrix_without_namespaces_still_finds_every_process() {
    let sb = Sandbox::new();
    let marker = &crate::support::marker("12020.5690");
    let s = matrix_scenario(&sb, marker);
    interrupt_mid_matrix(
        &sb,
        &s,
        marker,
        Signal::SIGINT,
        &[("BUGPACK_SANDBOX", "process")],
    );
}

/// Whether a file named `name` exists anywhere under `dir`.
fn exists_under(dir: &Path, name: &str) -> bool {
    fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let path = e.path();
        e.file_name() == name || (path.is_dir() && !path.is_symlink() && exists_under(&path, name))
    })
}

#[test]
fn sigint_while_a_hang_is_diagnosed_keeps_the_diagnosed_run_and_leaves_nothing() {
    let sb = Sandbox::new();
    let marker = &crate::support::marker("88388.3476");
    let _reap = KillOnDrop(marker);
    // At the timeout bugpack sends SIGABRT to every process of the run and
    // waits for them to print their stacks: this one survives it, leaves a
    // mark in its run directory (inside TMPDIR), and hangs on.
    let s = scenario(
        &sb,
        "diag",
        &format!(
            "name: diag\nenv: {{MARK: '{marker}'}}\n\
             run: \"trap 'touch abrt' ABRT; sleep {marker}; sleep {marker}\"\n\
             timeout: 2s\nexpect: {{hang: true}}\n"
        ),
        &[],
    );
    let child = spawn(
        &sb,
        &["replay", &s, "--yes", "--json", "r.json", "--runs", "1"],
        &[("BUGPACK_TEST_MARK", marker)],
    );
    wait_until("the hang's diagnostics to begin", || {
        exists_under(&sb.tmp(), "abrt")
    });
    send(&child, Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted after 1 run;"),
        "the diagnosed run finished: {stderr}"
    );
    let r: JReport = serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    assert!(r.interrupted);
    let run = &r.cells[0].results[0];
    assert_eq!(
        (run.outcome.as_str(), run.reason.as_str()),
        ("reproduced", "hang")
    );
    assert!(
        run.diagnostics.as_ref().is_some_and(|d| !d.is_empty()),
        "{run:?}"
    );
    let left = processes_holding(marker);
    assert!(left.is_empty(), "survived: {left:#?}");
    assert!(names_in(&sb.tmp()).is_empty());
}

#[test]
fn sighup_mid_matrix_without_namespaces_stops_every_run_too() {
    // A closed terminal: without this, bugpack died at once and the runs,
    // which no PID namespace takes down with it, ran on.
    let sb = Sandbox::new();
    let marker = &crate::support::marker("95105.4000");
    let s = matrix_scenario(&sb, marker);
    interrupt_mid_matrix(
        &sb,
        &s,
        marker,
        Signal::SIGHUP,
        &[("BUGPACK_SANDBOX", "process")],
    );
}

#[test]
fn sigterm_before_any_run_finished_says_so_and_leaves_nothing() {
    let sb = Sandbox::new();
    let marker = &crate::support::marker("27320.5081");
    let _reap = KillOnDrop(marker);
    let s = scenario(
        &sb,
        "stuck",
        &format!(
            "name: stuck\nenv: {{MARK: '{marker}'}}\n\
             run: '(setsid sleep {marker} &); sleep {marker}'\n\
             timeout: 300s\nexpect: {{hang: true}}\n"
        ),
        &[],
    );
    let child = spawn(
        &sb,
        &[
            "replay", &s, "--yes", "--json", "r.json", "--runs", "4", "--jobs", "2",
        ],
        &[("BUGPACK_TEST_MARK", marker)],
    );
    wait_until("runs 0 and 1 to hang", || hanging_sleeps(marker) >= 4);
    send(&child, Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("stuck: interrupted before any run finished"),
        "{stdout}"
    );
    assert!(!stdout.contains("errored"), "{stdout}");
    assert_eq!(
        stderr.trim(),
        "error: interrupted before any run finished; nothing to report"
    );
    let r: JReport = serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    assert!(r.interrupted);
    assert_eq!(r.cells[0].runs, 0);
    let left = processes_holding(marker);
    assert!(left.is_empty(), "survived SIGTERM: {left:#?}");
    assert!(names_in(&sb.tmp()).is_empty());
}

#[test]
fn ctrl_c_at_the_consent_question_leaves_no_extracted_bundle() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "ask",
        "name: ask\nrun: exit 3\nexpect: {exit: 3}\n",
        &[],
    );
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--title",
            "ask",
            "--scenario",
            &s,
        ])
        .run()
        .success();
    let out = sb.bugpack_on_pty(&["replay", "bug.zip"], &[], &[("[y/N]", "\x03")]);
    assert_eq!(out.code, -2, "ended by its SIGINT\n{}", out.output);
    let tmp = names_in(&sb.tmp());
    assert!(tmp.is_empty(), "left in TMPDIR: {tmp:?}");
}

/// The temporary names a capture may leave after SIGKILL: beside the
/// output, and in TMPDIR.
fn is_partial_of(name: &str, output: &str) -> bool {
    name.strip_prefix(&format!(".{output}.bugpack-partial-"))
        .is_some_and(|rest| !rest.is_empty())
}

fn is_staging(name: &str) -> bool {
    name.strip_prefix("bugpack-capture-partial-")
        .is_some_and(|rest| !rest.is_empty())
}

/// A directory named as a capture's partial output, held by a live process
/// (this test) through the lock a capture holds on its own: no sweep may
/// remove it.
fn held_partial(path: PathBuf) -> (PathBuf, fs::File) {
    fs::create_dir(&path).unwrap();
    fs::write(path.join("bug.zip"), "in progress").unwrap();
    let dir = fs::File::open(&path).unwrap();
    dir.try_lock().unwrap();
    (path, dir)
}

#[test]
fn sigkill_while_capture_writes_leaves_nothing_at_the_output_and_the_next_capture_sweeps_it() {
    let sb = Sandbox::new();
    let mut random = vec![0u8; 40 << 20];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    sb.write("a.bin", &random);
    random.reverse();
    sb.write("b.bin", &random);
    drop(random);
    let before = names_in(&sb.dir());
    let child = spawn(
        &sb,
        &[
            "capture",
            "-o",
            "bug.zip",
            "--include",
            "a.bin",
            "--include",
            "b.bin",
        ],
        &[],
    );
    wait_until("the writer to start", || {
        names_in(&sb.dir())
            .iter()
            .any(|n| is_partial_of(n, "bug.zip"))
    });
    send(&child, Signal::SIGKILL);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "killed");
    // Nothing at the output path; what is left is named for what it is.
    let after = names_in(&sb.dir());
    assert!(!sb.path("bug.zip").exists() && !sb.path("bug.zip.md").exists());
    let new: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(new.len(), 1, "{after:?}");
    assert!(is_partial_of(new[0], "bug.zip"), "{new:?}");
    let killed = sb.path(new[0]);
    let staged = names_in(&sb.tmp());
    assert!(
        staged.iter().all(|n| is_staging(n)) && staged.len() == 1,
        "TMPDIR after SIGKILL: {staged:?}"
    );
    let killed_staging = sb.tmp().join(&staged[0]);

    // Leftovers of a capture still running are not the next one's to take.
    let (live, live_lock) = held_partial(sb.path(".bug.zip.bugpack-partial-live00"));
    let (live_tmp, live_tmp_lock) = held_partial(sb.tmp().join("bugpack-capture-partial-live00"));
    // Nor are names that are not a capture's own.
    let other = sb.path(".bug.zip.partial-not-ours");
    fs::create_dir(&other).unwrap();
    let other_output = sb.path(".other.zip.bugpack-partial-abc123");
    fs::create_dir(&other_output).unwrap();

    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--title", "again"])
        .run()
        .success();
    assert!(sb.path("bug.zip").is_file() && sb.path("bug.zip.md").is_file());
    assert!(
        !killed.exists(),
        "the killed capture's partial output is still there"
    );
    assert!(
        !killed_staging.exists(),
        "the killed capture's staging is still there"
    );
    for kept in [&live, &live_tmp, &other, &other_output] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert_eq!(names_in(&sb.tmp()), ["bugpack-capture-partial-live00"]);
    drop((live_lock, live_tmp_lock));
}

#[test]
fn sigkill_while_sign_rewrites_leaves_the_bundle_whole_and_the_next_sign_sweeps_it() {
    use crate::support::zipper::BundleSpec;
    let sb = Sandbox::new();
    sb.bugpack().arg("keygen").run().success();
    // Random bytes do not compress: rewriting them takes long enough to
    // be caught in the middle.
    let mut random = vec![0u8; 48 << 20];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    let mut zip = BundleSpec::valid().with_file("logs/big.log", random).zip();
    for e in &mut zip.entries {
        e.deflate = false;
    }
    let original = zip.bytes();
    drop(zip);
    sb.write("b.zip", &original);
    let before = names_in(&sb.dir());
    let child = spawn(&sb, &["sign", "b.zip"], &[]);
    wait_until("the writer to start", || {
        names_in(&sb.dir())
            .iter()
            .any(|n| is_partial_of(n, "b.zip"))
    });
    send(&child, Signal::SIGKILL);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "killed");
    // The bundle is as it was; what is left beside it is named for what it is.
    assert!(
        fs::read(sb.path("b.zip")).unwrap() == original,
        "b.zip changed"
    );
    let after = names_in(&sb.dir());
    let new: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(new.len(), 1, "{after:?}");
    assert!(is_partial_of(new[0], "b.zip"), "{new:?}");
    let killed = sb.path(new[0]);
    assert!(killed.is_dir());

    // What a live writer of b.zip holds, and names not its own, stay.
    let (live, live_lock) = held_partial(sb.path(".b.zip.bugpack-partial-live00"));
    let other = sb.path(".c.zip.bugpack-partial-abc123");
    fs::create_dir(&other).unwrap();
    sb.bugpack().args(["sign", "b.zip"]).run().success();
    assert!(
        !killed.exists(),
        "the killed sign's partial output is still there"
    );
    assert!(live.exists() && other.exists());
    sb.bugpack()
        .args(["verify", "b.zip", "--key"])
        .arg(sb.home().join(".config/bugpack/id_ed25519.pub"))
        .run()
        .success();
    drop(live_lock);
}

#[test]
fn sigkill_mid_replay_leaves_named_dirs_that_the_next_replay_sweeps_and_spares_live_ones() {
    use std::os::unix::fs::MetadataExt as _;
    let sb = Sandbox::new();
    let marker = &crate::support::marker("61027.2291");
    let _reap = KillOnDrop(marker);
    let hang = scenario(
        &sb,
        "hang",
        &format!(
            "name: hang\nenv: {{MARK: '{marker}'}}\n\
             run: 'echo started > $BUGPACK_RUN_DIR/started; sleep {marker}'\n\
             timeout: 300s\nexpect: {{hang: true}}\n"
        ),
        &[],
    );
    let quick = scenario(
        &sb,
        "quick",
        "name: quick\nrun: exit 3\nexpect: {exit: 3}\n",
        &[],
    );
    for (out, dir) in [("hang.zip", &hang), ("quick.zip", &quick)] {
        sb.bugpack()
            .args(["capture", "-o", out, "--title", "t", "--scenario", dir])
            .run()
            .success();
    }
    let child = spawn(
        &sb,
        &["replay", "hang.zip", "--yes", "--runs", "1"],
        &[("BUGPACK_TEST_MARK", marker)],
    );
    wait_until("the run to start", || exists_under(&sb.tmp(), "started"));
    send(&child, Signal::SIGKILL);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "killed");
    // The run itself is not this test's concern: stop it, so that only
    // what is on disk is left.
    drop(KillOnDrop(marker));
    wait_until("the killed replay's processes to end", || {
        processes_holding(marker).is_empty()
    });

    // What is left is named for what it is: the runs and the extracted bundle.
    let left = names_in(&sb.tmp());
    assert_eq!(left.len(), 2, "{left:?}");
    let runs = sb.tmp().join(
        left.iter()
            .find(|n| n.starts_with("bugpack-replay-partial-"))
            .unwrap_or_else(|| panic!("no runs' directory in {left:?}")),
    );
    let bundle = sb.tmp().join(
        left.iter()
            .find(|n| n.starts_with("bugpack-bundle-partial-"))
            .unwrap_or_else(|| panic!("no extracted bundle in {left:?}")),
    );
    assert!(bundle.join("scenario/scenario.yaml").is_file());
    let run_dir = runs.join("cell0-run0");
    assert!(run_dir.join("started").is_file(), "{:?}", names_in(&runs));
    if nix::unistd::Uid::effective().is_root() {
        // The sandbox user's files: root removes them all the same.
        assert_eq!(fs::metadata(run_dir.join("started")).unwrap().uid(), 65534);
    }
    // A link a run left inside points out of the directory: removing the
    // directory removes the link, not what it points to.
    let outside = sb.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("precious"), "keep").unwrap();
    std::os::unix::fs::symlink(&outside, run_dir.join("link")).unwrap();

    // Another replay's directories, still held; a symlink and a file
    // with the prefix; none of them is the next replay's to remove.
    let (live_runs, live_runs_lock) = held_partial(sb.tmp().join("bugpack-replay-partial-live00"));
    let (live_bundle, live_bundle_lock) =
        held_partial(sb.tmp().join("bugpack-bundle-partial-live00"));
    let link = sb.tmp().join("bugpack-replay-partial-link00");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let file = sb.tmp().join("bugpack-bundle-partial-file00");
    fs::write(&file, "").unwrap();
    let mut spared = vec![live_runs.clone(), live_bundle.clone(), file.clone()];
    if nix::unistd::Uid::effective().is_root() {
        let theirs = sb.tmp().join("bugpack-replay-partial-other0");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        spared.push(theirs);
    }

    sb.bugpack()
        .args(["replay", "quick.zip", "--yes", "--runs", "1"])
        .run()
        .success();
    assert!(!runs.exists(), "the killed replay's runs are still there");
    assert!(
        !bundle.exists(),
        "the killed replay's bundle is still there"
    );
    assert_eq!(
        fs::read_to_string(outside.join("precious")).unwrap(),
        "keep"
    );
    for kept in &spared {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    drop((live_runs_lock, live_bundle_lock));
}

#[test]
fn sigint_while_a_debugger_takes_a_hang_s_stacks_cuts_the_diagnostics_short() {
    let sb = Sandbox::new();
    let marker = &crate::support::marker("40961.7713");
    let _reap = KillOnDrop(marker);
    // A debugger as slow as gdb attaching on a loaded machine: it says
    // where it runs, then never finishes (bugpack gives gdb 8 s). It
    // inherits bugpack's environment, marker included.
    let started = sb.path("debugger-started");
    sb.write(
        "bin/gdb",
        format!(
            "#!/bin/sh\nset -- $(cat /proc/$$/stat)\necho \"$1 $5\" > {}\nexec sleep {marker}\n",
            started.display()
        ),
    );
    fs::set_permissions(
        sb.path("bin/gdb"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        sb.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let s = scenario(
        &sb,
        "diag",
        &format!(
            "name: diag\nenv: {{MARK: '{marker}'}}\n\
             run: 'sleep {marker}'\ntimeout: 1s\nexpect: {{hang: true}}\n"
        ),
        &[],
    );
    let child = spawn(
        &sb,
        &["replay", &s, "--yes", "--json", "r.json", "--runs", "1"],
        &[("BUGPACK_TEST_MARK", marker), ("PATH", &path)],
    );
    wait_until("the debugger to start", || started.exists());
    send(&child, Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted after 1 run;"), "{stderr}");
    // The debugger had a process group of its own: a Ctrl-C at the
    // terminal reaches bugpack, not it.
    let ids = fs::read_to_string(&started).unwrap();
    let (pid, pgid) = ids.trim().split_once(' ').unwrap();
    assert_eq!(pid, pgid, "the debugger leads its own group");
    // The run is reported with what was gathered, marked as cut short.
    let r: JReport = serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    let run = &r.cells[0].results[0];
    assert_eq!(
        (run.outcome.as_str(), run.reason.as_str()),
        ("reproduced", "hang")
    );
    assert!(
        run.diagnostics.as_ref().is_some_and(|d| !d.is_empty()),
        "{run:?}"
    );
    assert!(run.diagnostics_cut_short, "{run:?}");
    assert!(
        stdout.contains("hung; its processes (diagnostics cut short by the interrupt):"),
        "{stdout}"
    );
    // Neither the debugger nor the run outlived bugpack.
    let left = processes_holding(marker);
    assert!(left.is_empty(), "survived: {left:#?}");
    assert!(names_in(&sb.tmp()).is_empty());
}

#[test]
fn sigint_during_a_budget_writes_the_report_of_what_ran() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "long",
        "name: long\nrun: sleep 0.05\nexpect: {exit: 1}\n",
        &[],
    );
    let child = spawn(
        &sb,
        &[
            "replay", &s, "--yes", "--json", "r.json", "--budget", "1h", "--jobs", "1", "--timing",
            "none",
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(1500));
    send(&child, Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(stdout.contains("interrupted, partial results"), "{stdout}");
    assert!(stdout.contains("budget 1h: "), "{stdout}");
    let text = fs::read_to_string(sb.path("r.json")).expect("the partial JSON report");
    let r: JReport = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(r.interrupted);
    let budget = r.budget.expect("budget");
    assert!(budget.runs >= 3, "{budget:?}");
    assert_eq!(budget.runs, u64::from(r.cells[0].runs));
    assert!(names_in(&sb.tmp()).is_empty(), "left in TMPDIR");
}
