//! `bugpack replay` through the binary, on small scenarios written here:
//! outcomes, isolation, services, hang diagnostics, clean-up, interruption,
//! consent and the report formats.

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Sandbox;
use crate::support::reports::{JReport, cell_min_duration, scenario};
use crate::support::zipper::{BundleSpec, Entry};

/// Replays with `--yes --json`, checks the exit code, returns the report.
fn replay(
    sb: &Sandbox,
    source: &str,
    args: &[&str],
    code: i32,
) -> (JReport, crate::support::Outcome) {
    let json = sb.path("report.json");
    let _ = fs::remove_file(&json);
    let out = sb
        .bugpack()
        .args(["replay", source, "--yes", "--json", "report.json"])
        .args(args)
        .run()
        .code(code);
    let text = fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no report.json ({e})\n{}", out.stderr));
    let report: JReport = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (report, out)
}

/// Host pids whose command line contains `marker`.
fn running(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        if let Ok(cmd) = fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if cmd.contains(marker) && !stat.contains(") Z ") {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

/// Nothing from the replay is left in its TMPDIR.
fn nothing_left(sb: &Sandbox) {
    let left: Vec<_> = fs::read_dir(sb.tmp())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

#[test]
fn an_exit_code_reproduces_and_the_report_has_the_design_shape() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "exit3",
        "name: exit3\nrun: echo boom; exit 3\ntimeout: 10s\nexpect: {exit: 3}\n",
        &[],
    );
    let (r, out) = replay(&sb, &s, &["--runs", "3", "--seed", "7"], 0);
    assert_eq!(r.verdict, "reproduced");
    assert_eq!(r.scenario, "exit3");
    assert_eq!(r.seed, 7);
    assert!(!r.interrupted);
    assert_eq!(r.bugpack, env!("CARGO_PKG_VERSION"));
    assert_eq!(r.source, "exit3");
    assert!(r.duration_ms >= cell_min_duration(&r));
    assert_eq!(
        r.isolation.run_as.as_deref(),
        Some("65534:65534"),
        "runs take nobody's uid under root"
    );
    let cell = &r.cells[0];
    assert_eq!(
        cell.axes,
        BTreeMap::from([
            ("cache".into(), "cold".into()),
            ("proxy".into(), "none".into()),
            ("timing".into(), "none".into())
        ])
    );
    assert_eq!(
        (cell.runs, cell.reproduced, cell.passed, cell.errors),
        (3, 3, 0, 0)
    );
    assert_eq!(cell.rate, Some(1.0));
    let [lo, hi] = cell.ci95.unwrap();
    assert!(
        (lo - 0.4385).abs() < 1e-3 && (hi - 1.0).abs() < 1e-9,
        "{lo} {hi}"
    );
    assert_eq!(cell.reason.as_deref(), Some("exit"));
    assert!(cell.median_ms.is_some());
    assert_eq!(cell.note, None, "no axis, nothing to note");
    assert!(cell.results.iter().all(|x| x.axes_detail.is_empty()));
    let indexes: Vec<u32> = cell.results.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 1, 2]);
    assert!(
        cell.results
            .iter()
            .all(|r| r.outcome == "reproduced" && r.exit_code == Some(3))
    );
    assert_eq!(cell.results[0].stdout_tail.as_deref(), Some("boom\n"));
    // Per-run seeds differ and depend only on --seed.
    let (again, _) = replay(&sb, &s, &["--runs", "3", "--seed", "7"], 0);
    let seeds = |r: &JReport| {
        r.cells[0]
            .results
            .iter()
            .map(|x| x.seed)
            .collect::<Vec<_>>()
    };
    assert_eq!(seeds(&r), seeds(&again));
    assert_ne!(seeds(&r)[0], seeds(&r)[1]);
    assert!(
        out.stdout.contains("timing  proxy  cache  reproduced"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("reproduced in 1 of 1 cells (3 of 3 runs)"),
        "{}",
        out.stdout
    );
    nothing_left(&sb);
}

#[test]
fn a_pass_is_not_reproduced_and_expect_fixed_inverts_the_exit_code() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "fine",
        "name: fine\nrun: 'true'\nexpect: {exit: nonzero}\n",
        &[],
    );
    let (r, _) = replay(&sb, &s, &["--runs", "2"], 1);
    assert_eq!(r.verdict, "not-reproduced");
    assert_eq!(r.cells[0].passed, 2);
    assert_eq!(r.cells[0].rate, Some(0.0));
    replay(&sb, &s, &["--runs", "2", "--expect-fixed"], 0);
    let b = scenario(&sb, "broken", "name: broken\nrun: 'false'\n", &[]);
    replay(&sb, &b, &["--runs", "1", "--expect-fixed"], 1);
}

#[test]
fn an_output_match_reproduces_and_names_the_line() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "out",
        "name: out\nrun: echo 'poll 1 PENDING'; echo 'poll 2 PENDING forever' >&2\nexpect: {output: 'PENDING forever'}\n",
        &[],
    );
    let (r, _) = replay(&sb, &s, &["--runs", "1"], 0);
    let run = &r.cells[0].results[0];
    assert_eq!(
        (run.outcome.as_str(), run.reason.as_str()),
        ("reproduced", "output")
    );
    assert_eq!(run.matched.as_deref(), Some("poll 2 PENDING forever"));
}

#[test]
fn a_hang_is_diagnosed_and_its_whole_tree_stopped() {
    let sb = Sandbox::new();
    let marker = "31337.4242";
    let yaml = format!(
        "name: hang\nrun: 'setsid sleep {marker} & python3 writer.py'\ntimeout: 1s\nexpect: {{hang: true}}\n"
    );
    let s = scenario(
        &sb,
        "hang",
        &yaml,
        &[(
            "writer.py",
            "import subprocess\np = subprocess.Popen(['sh', '-c', 'head -c 500000 /dev/zero'], stdout=subprocess.PIPE)\np.wait()\n",
        )],
    );
    let (r, out) = replay(&sb, &s, &["--runs", "1"], 0);
    let run = &r.cells[0].results[0];
    assert_eq!(
        (run.outcome.as_str(), run.reason.as_str()),
        ("reproduced", "hang")
    );
    assert_eq!(run.exit_code, None);
    let diags = run.diagnostics.as_ref().expect("hang diagnostics");
    let head = diags
        .iter()
        .find(|d| d["command"].as_str().is_some_and(|c| c.starts_with("head")))
        .unwrap_or_else(|| panic!("no head process in {diags:#?}"));
    assert!(
        head["waiting_on"]
            .as_str()
            .unwrap()
            .starts_with("writing pipe:["),
        "{head:#}"
    );
    assert!(head["state"].as_str().unwrap().starts_with('S'));
    for key in ["pid", "ppid", "state", "command", "elapsed_ms", "threads"] {
        assert!(head.get(key).is_some(), "diagnostics lack {key}: {head:#}");
    }
    assert!(
        out.stdout.contains("head (pid"),
        "the table shows the short form\n{}",
        out.stdout
    );
    // Python's faulthandler answered the SIGABRT sent before the kill.
    let stderr = run.stderr_tail.as_deref().unwrap_or_default();
    assert!(
        stderr.contains("Fatal Python error: Aborted") || stderr.contains("Current thread"),
        "{stderr}"
    );
    assert!(
        running(marker).is_empty(),
        "the setsid'd sleep survived: {:?}",
        running(marker)
    );
    nothing_left(&sb);
}

#[test]
fn a_run_sees_only_loopback_its_own_home_and_a_clean_environment() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "env",
        "name: env\nenv: {GREETING: hello}\nrun: sh probe.sh\nexpect: {exit: 9}\n",
        &[(
            "probe.sh",
            "set -e\n\
             awk -F: 'NR > 2 {gsub(/ /, \"\", $1); print $1}' /proc/net/dev\n\
             case \"$HOME\" in \"$BUGPACK_RUN_DIR\"/*) echo home-inside;; esac\n\
             case \"$TMPDIR\" in \"$BUGPACK_RUN_DIR\"/*) echo tmp-inside;; esac\n\
             echo \"secret=${CALLER_SECRET:-unset}\"\n\
             echo \"greeting=$GREETING index=$BUGPACK_RUN_INDEX seed=$BUGPACK_SEED fault=$PYTHONFAULTHANDLER\"\n\
             touch \"$HOME/made-here\" && echo wrote-home\n\
             exit 9\n",
        )],
    );
    let out = sb
        .bugpack()
        .env("CALLER_SECRET", "do-not-leak")
        .args([
            "replay", &s, "--yes", "--runs", "1", "--seed", "5", "--json", "r.json",
        ])
        .run()
        .success();
    let r: JReport = serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    let stdout = r.cells[0].results[0]
        .stdout_tail
        .clone()
        .unwrap_or_default();
    assert!(r.isolation.namespaces, "this machine makes namespaces");
    assert_eq!(r.isolation.net, "loopback");
    assert_eq!(
        stdout.lines().next(),
        Some("lo"),
        "only lo is visible:\n{stdout}"
    );
    for want in [
        "home-inside",
        "tmp-inside",
        "secret=unset",
        "greeting=hello index=0",
        "fault=1",
        "wrote-home",
    ] {
        assert!(
            stdout.contains(want),
            "{want} missing:\n{stdout}\n{}",
            out.stderr
        );
    }
    let seed = r.cells[0].results[0].seed;
    assert!(stdout.contains(&format!("seed={seed}")), "{stdout}");
}

#[test]
fn services_are_ready_by_http_tcp_and_log() {
    let sb = Sandbox::new();
    let server = "import http.server, os, sys\n\
                  class H(http.server.BaseHTTPRequestHandler):\n    \
                  def do_GET(self):\n        \
                  self.send_response(200); self.end_headers(); self.wfile.write(b'pong')\n    \
                  def log_message(self, *a): pass\n\
                  print('listening', flush=True)\n\
                  http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    let yaml = "name: svc\n\
                services:\n\
                - {name: web, run: python3 server.py, ready: {http: /health}, ready_timeout: 10s}\n\
                - {name: raw, run: python3 server.py, ready: {tcp: true}}\n\
                - {name: chatty, run: python3 server.py, ready: {log: '^listening'}}\n\
                run: for u in $BUGPACK_SERVICE_WEB_URL $BUGPACK_SERVICE_RAW_URL $BUGPACK_SERVICE_CHATTY_URL; do curl -sf $u/x; echo; done; exit 4\n\
                expect: {exit: 4}\n";
    let s = scenario(&sb, "svc", yaml, &[("server.py", server)]);
    let (r, _) = replay(&sb, &s, &["--runs", "1"], 0);
    let run = &r.cells[0].results[0];
    assert_eq!(run.outcome, "reproduced", "{run:?}");
    assert_eq!(run.stdout_tail.as_deref(), Some("pong\npong\npong\n"));
}

#[test]
fn services_that_fail_are_errors_with_a_reason() {
    let sb = Sandbox::new();
    let quits = scenario(
        &sb,
        "quits",
        "name: quits\nservices: [{name: app, run: 'echo bye >&2; exit 1'}]\nrun: 'true'\n",
        &[],
    );
    let (r, out) = replay(&sb, &quits, &["--runs", "1"], 4);
    assert_eq!(r.verdict, "error");
    let run = &r.cells[0].results[0];
    assert_eq!(run.outcome, "error");
    assert!(
        run.reason
            .contains("service app exited with code 1 before it was ready"),
        "{}",
        run.reason
    );
    assert_eq!(run.stderr_tail.as_deref(), Some("bye\n"));
    assert!(out.stderr.contains("every run errored"), "{}", out.stderr);
    let slow = scenario(
        &sb,
        "slow",
        "name: slow\nservices: [{name: app, run: sleep 30, ready: {http: /health}, ready_timeout: 1s}]\nrun: 'true'\n",
        &[],
    );
    let (r, _) = replay(&sb, &slow, &["--runs", "1"], 4);
    assert!(
        r.cells[0].results[0].reason.contains("not ready within 1s"),
        "{}",
        r.cells[0].results[0].reason
    );
    let setup = scenario(
        &sb,
        "setup",
        "name: setup\nsetup: ['exit 5']\nrun: 'true'\n",
        &[],
    );
    let (r, _) = replay(&sb, &setup, &["--runs", "1"], 4);
    assert_eq!(r.cells[0].results[0].reason, "setup[0] exited with code 5");
    nothing_left(&sb);
}

#[test]
fn a_missing_run_command_is_an_error_not_a_reproduction() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "missing",
        "name: missing\nrun: no-such-command-bugpack\n",
        &[],
    );
    let (r, _) = replay(&sb, &s, &["--runs", "1"], 4);
    assert!(
        r.cells[0].results[0].reason.contains("not found"),
        "{:?}",
        r.cells[0].results[0]
    );
}

#[test]
fn hostile_scenarios_end_cleanly() {
    let sb = Sandbox::new();
    // A thousand processes, SIGTERM ignored, a disk filler, a flood of output.
    let forks = scenario(
        &sb,
        "forks",
        "name: forks\nrun: 'for i in $(seq 1000); do sleep 27182.818 & done; wait'\ntimeout: 3s\nexpect: {hang: true}\n",
        &[],
    );
    let (r, _) = replay(&sb, &forks, &["--runs", "1"], 0);
    assert_eq!(r.cells[0].results[0].reason, "hang");
    assert!(running("27182.818").is_empty(), "forked processes survived");
    let stubborn = scenario(
        &sb,
        "stubborn",
        "name: stubborn\nrun: trap '' TERM INT ABRT; sleep 16180.339\ntimeout: 1s\nexpect: {hang: true}\n",
        &[],
    );
    replay(&sb, &stubborn, &["--runs", "1"], 0);
    assert!(
        running("16180.339").is_empty(),
        "a process ignoring SIGTERM survived"
    );
    let filler = scenario(
        &sb,
        "filler",
        "name: filler\nrun: dd if=/dev/zero of=big bs=1M count=500 2>/dev/null; echo $?\nexpect: {output: '^0$'}\n",
        &[],
    );
    let (r, _) = replay(
        &sb,
        &filler,
        &["--runs", "1", "--limit-file-size", "8MiB"],
        1,
    );
    assert_eq!(
        r.cells[0].results[0].outcome, "passed",
        "dd was stopped at the file-size limit"
    );
    let flood = scenario(
        &sb,
        "flood",
        "name: flood\nrun: exec yes flood\nexpect: {exit: nonzero}\n",
        &[],
    );
    let (r, _) = replay(
        &sb,
        &flood,
        &["--runs", "1", "--limit-file-size", "4MiB"],
        0,
    );
    let run = &r.cells[0].results[0];
    assert_eq!(
        run.signal.as_deref(),
        Some("SIGXFSZ"),
        "the flood met the file-size limit: {run:?}"
    );
    nothing_left(&sb);
}

#[test]
fn jobs_run_in_parallel_and_results_stay_in_order() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "par", "name: par\nrun: sleep 0.5; exit 1\n", &[]);
    let started = Instant::now();
    let (r, _) = replay(&sb, &s, &["--runs", "4", "--jobs", "4"], 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    let idx: Vec<u32> = r.cells[0].results.iter().map(|x| x.index).collect();
    assert_eq!(idx, [0, 1, 2, 3]);
}

#[test]
fn until_repro_stops_at_the_first_reproduction() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "first", "name: first\nrun: exit 1\n", &[]);
    let (r, _) = replay(
        &sb,
        &s,
        &["--runs", "20", "--jobs", "1", "--until-repro"],
        0,
    );
    assert_eq!(r.cells[0].runs, 1);
}

#[test]
fn keep_leaves_the_run_directories_and_says_where() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "keep",
        "name: keep\nrun: echo kept > made.txt; exit 1\n",
        &[],
    );
    let (r, out) = replay(&sb, &s, &["--runs", "1", "--keep"], 0);
    let dir = r.cells[0].results[0].dir.clone().expect("a kept directory");
    assert!(out.stdout.contains(&dir), "{}", out.stdout);
    assert_eq!(
        fs::read_to_string(format!("{dir}/work/made.txt")).unwrap(),
        "kept\n"
    );
    assert!(std::path::Path::new(&format!("{dir}/logs/run.out")).exists());
}

#[test]
fn without_a_terminal_replay_needs_yes() {
    let sb = Sandbox::new();
    let marker = sb.path("ran");
    let s = scenario(
        &sb,
        "ask",
        &format!("name: ask\nrun: touch {}\n", marker.display()),
        &[],
    );
    sb.bugpack()
        .args(["replay", &s])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("--yes");
    assert!(!marker.exists());
    nothing_left(&sb);
}

#[test]
fn bad_scenarios_and_flags_are_usage_errors() {
    let sb = Sandbox::new();
    let cases: &[(&str, &str)] = &[
        ("name: x\n", "schema"),
        ("name: x\nrun: y\nretries: 2\n", "retries"),
        ("name: x\nrun: y\ntimeout: forever\n", "/timeout"),
    ];
    for (i, (yaml, needle)) in cases.iter().enumerate() {
        let s = scenario(&sb, &format!("bad{i}"), yaml, &[]);
        sb.bugpack()
            .args(["replay", &s, "--yes"])
            .run()
            .code(2)
            .one_line_error()
            .stderr_has(needle);
    }
    let ok = scenario(&sb, "ok", "name: ok\nrun: 'true'\n", &[]);
    for args in [
        &["--runs", "0"][..],
        &["--timing", "warp"],
        &["--timeout", "soon"],
        &["--cache", "hot"],
    ] {
        sb.bugpack()
            .args(["replay", &ok, "--yes"])
            .args(args)
            .run()
            .code(2)
            .one_line_error();
    }
    sb.bugpack()
        .args(["replay", "nowhere", "--yes"])
        .run()
        .code(2)
        .one_line_error();
    nothing_left(&sb);
}

#[test]
fn a_bundle_is_verified_before_anything_runs() {
    let sb = Sandbox::new();
    let marker = sb.path("ran");
    let scenario_yaml = format!(
        "name: demo\nrun: touch {}; exit 3\nexpect: {{exit: 3}}\n",
        marker.display()
    );
    let spec = BundleSpec::valid().with_file("scenario/scenario.yaml", scenario_yaml);
    let mut bad = spec.zip();
    bad.entries
        .push(Entry::new("scenario/extra.sh", "touch pwned"));
    sb.write("bad.zip", bad.bytes());
    sb.bugpack()
        .args(["replay", "bad.zip", "--yes"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("not listed");
    assert!(!marker.exists(), "a rejected bundle ran");
    nothing_left(&sb);
    sb.write("good.zip", spec.zip().bytes());
    let (r, out) = replay(&sb, "good.zip", &["--runs", "1", "--markdown", "r.md"], 0);
    let sha = crate::support::zipper::sha256(&fs::read(sb.path("good.zip")).unwrap());
    assert_eq!(r.bundle_sha256.as_deref(), Some(sha.as_str()));
    let md = fs::read_to_string(sb.path("r.md")).unwrap();
    assert!(
        md.contains("| timing | proxy | cache | reproduced |"),
        "{md}"
    );
    assert!(
        md.trim_end()
            .ends_with(&format!("bundle SHA-256 `{sha}`</sub>")),
        "{md}"
    );
    let _ = out;
    nothing_left(&sb);
}

#[test]
fn ctrl_c_stops_every_run_and_prints_the_partial_report() {
    let sb = Sandbox::new();
    let marker = "14142.1356";
    let s = scenario(
        &sb,
        "long",
        &format!(
            "name: long\nrun: 'setsid sleep {marker} & sleep {marker}'\ntimeout: 60s\nexpect: {{hang: true}}\n"
        ),
        &[],
    );
    let child = Command::new(env!("CARGO_BIN_EXE_bugpack"))
        .args(["replay", &s, "--yes", "--runs", "6", "--jobs", "2"])
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(marker).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(running(marker).len() >= 2, "the runs never started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted, partial results"), "{stdout}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        running(marker).is_empty(),
        "runs survived Ctrl-C: {:?}",
        running(marker)
    );
    nothing_left(&sb);
}

#[test]
fn without_namespaces_a_setsid_orphan_is_still_stopped() {
    let sb = Sandbox::new();
    let marker = "17320.508";
    let s = scenario(
        &sb,
        "fallback",
        &format!("name: fallback\nrun: 'setsid sleep {marker} & exit 6'\nexpect: {{exit: 6}}\n"),
        &[],
    );
    let json = sb.path("r.json");
    let out = sb
        .bugpack()
        .env("BUGPACK_SANDBOX", "process")
        .args(["replay", &s, "--yes", "--runs", "2", "--json"])
        .arg(&json)
        .run()
        .success()
        .stderr_has("not in their own namespaces");
    let r: JReport = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert!(!r.isolation.namespaces);
    assert_eq!(r.isolation.net, "host");
    assert_eq!(r.cells[0].reproduced, 2, "{}", out.stdout);
    assert!(
        running(marker).is_empty(),
        "the orphan survived: {:?}",
        running(marker)
    );
    nothing_left(&sb);
}
