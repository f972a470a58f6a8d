//! `bugpack replay` through the binary, on small scenarios written here:
//! outcomes, isolation, services, hang diagnostics, clean-up, interruption,
//! consent and the report formats.
//!
//! What depends on the machine (running as root, namespaces, gdb, readable
//! kernel stacks) is probed here independently of bugpack, and where it is
//! missing the test asserts the fallback instead of skipping silently.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::reports::{JReport, cell_min_duration, scenario};
use crate::support::zipper::{BundleSpec, Entry};
use crate::support::{Sandbox, marker, rendered_tags};

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
    (read_report(&json, &out.stderr), out)
}

fn read_report(path: &std::path::Path, context: &str) -> JReport {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no {} ({e})\n{context}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
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

/// `base` made unique to this test process, as a number `sleep` takes:
/// `running` looks at every process on the host, and another checkout's
/// tests may be running the same scenarios on this machine at the same time.
/// Waits (up to a minute, however loaded the machine) until `ready` holds.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// Whether the tests run as root (bugpack then runs scenarios as nobody).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        .unwrap()
}

/// Whether this machine lets the user runs take (nobody under root) make
/// user, PID and network namespaces: asked of util-linux, not of bugpack.
fn namespaces_available() -> bool {
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
        ]);
        c
    } else {
        Command::new("unshare")
    };
    cmd.args([
        "--user",
        "--pid",
        "--net",
        "--fork",
        "--map-current-user",
        "true",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .is_ok_and(|s| s.success())
}

/// A directory every run can write to (runs may take nobody's uid), for
/// runs to leave evidence in and wait on each other.
fn shared_dir(sb: &Sandbox) -> PathBuf {
    let shared = sb.path("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    // The sandbox's own directories, down to `shared`, must be traversable.
    let root = sb.dir().parent().unwrap().to_path_buf();
    for d in [root, sb.dir()] {
        let mode = fs::metadata(&d).unwrap().permissions().mode();
        fs::set_permissions(&d, fs::Permissions::from_mode(mode | 0o011)).unwrap();
    }
    shared
}

/// A program on PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Whether gdb is installed and may attach to processes like the runs'
/// (nobody's under root, the caller's otherwise): tried on a `sleep`, since
/// containers and Yama can forbid it.
fn gdb_can_attach() -> bool {
    let Some(gdb) = which("gdb") else {
        return false;
    };
    let mut target = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "60",
        ]);
        c
    } else {
        let mut c = Command::new("sleep");
        c.arg("60");
        c
    };
    let Ok(mut target) = target.stdout(Stdio::null()).spawn() else {
        return false;
    };
    // setpriv execs sleep: wait until it has, so gdb sees the target itself.
    wait_until("the gdb probe to start", || {
        fs::read_to_string(format!("/proc/{}/comm", target.id())).is_ok_and(|c| c.trim() == "sleep")
    });
    let out = Command::new(gdb)
        .args(["-batch", "-nx", "-p", &target.id().to_string(), "-ex", "bt"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let _ = target.kill();
    let _ = target.wait();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("#0 "))
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
    if is_root() {
        assert_eq!(
            r.isolation.run_as.as_deref(),
            Some("65534:65534"),
            "runs take nobody's uid under root"
        );
    } else {
        assert_eq!(
            r.isolation.run_as, None,
            "not root: runs keep the caller's uid"
        );
    }
    let first = r.first_reproduction.as_ref().expect("first_reproduction");
    assert_eq!(first.runs, 1, "the first run to finish reproduced");
    assert!(first.index < 3);
    assert!(first.elapsed_ms <= r.duration_ms);
    let cell = &r.cells[0];
    assert_eq!(
        cell.axes,
        BTreeMap::from([
            ("cache".into(), "cold".into()),
            ("net_fault".into(), "none".into()),
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
    let marker = marker("31337.4242");
    let yaml = format!(
        "name: hang\nrun: 'setsid sleep {marker} & python3 writer.py'\ntimeout: 1s\nexpect: {{hang: true}}\n"
    );
    let s = scenario(
        &sb,
        "hang",
        &yaml,
        &[(
            "writer.py",
            "import os, subprocess\n\
             z = subprocess.Popen(['true'])\n\
             os.waitid(os.P_PID, z.pid, os.WEXITED | os.WNOWAIT)  # ended, never reaped: a zombie\n\
             p = subprocess.Popen(['sh', '-c', 'head -c 500000 /dev/zero'], stdout=subprocess.PIPE)\n\
             p.wait()\n",
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
    // The zombie is in the JSON, not in the table's short form.
    let zombie = diags
        .iter()
        .find(|d| d["state"].as_str().is_some_and(|s| s.starts_with('Z')))
        .unwrap_or_else(|| panic!("no zombie in {diags:#?}"));
    assert_eq!(zombie["command"], "[true]", "{zombie:#}");
    assert!(!out.stdout.contains("[true]"), "{}", out.stdout);
    assert!(!out.stdout.contains(") Z"), "{}", out.stdout);
    // Kernel stacks, of every thread, where this machine lets us read them.
    let with_kernel_stacks: Vec<_> = diags
        .iter()
        .filter(|d| d.get("kernel_stacks").is_some())
        .collect();
    if fs::read_to_string("/proc/self/stack").is_ok() {
        let stacks = head["kernel_stacks"]
            .as_object()
            .unwrap_or_else(|| panic!("no kernel stacks: {head:#}"));
        assert!(
            stacks
                .values()
                .any(|s| s.as_str().unwrap().contains("pipe_write")),
            "{head:#}"
        );
    } else {
        assert!(
            with_kernel_stacks.is_empty(),
            "kernel stacks are root-only: {diags:#?}"
        );
    }
    // Debugger stacks where gdb is installed and may attach.
    let with_stacks = diags.iter().filter(|d| d.get("stacks").is_some()).count();
    if gdb_can_attach() {
        assert!(
            diags
                .iter()
                .any(|d| d["stacks"].as_str().is_some_and(|s| s.contains("#0 "))),
            "gdb is here but no stacks: {diags:#?}"
        );
    } else if which("gdb").is_none() {
        assert_eq!(with_stacks, 0, "no gdb, no py-spy, no stacks: {diags:#?}");
    }
    // Python's faulthandler answered the SIGABRT sent before the kill.
    let stderr = run.stderr_tail.as_deref().unwrap_or_default();
    assert!(
        stderr.contains("Fatal Python error: Aborted") || stderr.contains("Current thread"),
        "{stderr}"
    );
    assert!(
        running(&marker).is_empty(),
        "the setsid'd sleep survived: {:?}",
        running(&marker)
    );
    nothing_left(&sb);
}

/// What a run's network looks like from inside: its interfaces, whether
/// `lo` is up, whether a loopback connection works, its namespace.
const NET_PROBE: &str = "import fcntl, os, socket, struct\n\
names = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]\n\
print('ifaces=' + ','.join(sorted(names)))\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
try:\n    \
    req = fcntl.ioctl(s.fileno(), 0x8913, struct.pack('16sH22x', b'lo', 0))\n    \
    print('lo=' + ('up' if struct.unpack('16sH22x', req)[1] & 1 else 'down'))\n\
except OSError:\n    \
    print('lo=missing')\n\
try:\n    \
    srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n    \
    socket.create_connection(srv.getsockname(), timeout=10).close()\n    \
    print('tcp=ok')\n\
except OSError as e:\n    \
    print('tcp=failed')\n\
print('netns=' + os.readlink('/proc/self/ns/net'))\n";

/// The probe's `key=value` lines from a run's stdout.
fn probe_lines(r: &JReport) -> BTreeMap<String, String> {
    let run = &r.cells[0].results[0];
    assert_eq!(run.outcome, "reproduced", "{run:?}");
    run.stdout_tail
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_network_is_what_net_asks_for() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "net",
        "name: net\nrun: python3 probe.py; exit 9\nexpect: {exit: 9}\n",
        &[("probe.py", NET_PROBE)],
    );
    let host_ns = fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    let mut host_ifaces: Vec<String> = fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_owned())
        .collect();
    host_ifaces.sort();
    if !namespaces_available() {
        // The fallback: the host's network, said so, and a refusal for
        // what cannot be given.
        let (r, out) = replay(&sb, &s, &["--runs", "1"], 0);
        assert!(!r.isolation.namespaces);
        assert_eq!(r.isolation.net, "host");
        assert!(
            out.stderr.contains("not in their own namespaces"),
            "{}",
            out.stderr
        );
        sb.bugpack()
            .args(["replay", &s, "--yes", "--net", "loopback"])
            .run()
            .code(4)
            .one_line_error()
            .stderr_has("--net host");
        return;
    }
    // The default is loopback: only `lo`, up, working, in a namespace of its own.
    let (r, _) = replay(&sb, &s, &["--runs", "1"], 0);
    assert!(r.isolation.namespaces);
    assert_eq!(r.isolation.net, "loopback");
    let seen = probe_lines(&r);
    assert_eq!(seen["ifaces"], "lo", "{seen:?}");
    assert_eq!(seen["lo"], "up", "{seen:?}");
    assert_eq!(seen["tcp"], "ok", "{seen:?}");
    assert_ne!(seen["netns"], host_ns);
    // none: `lo` exists but is down, so not even loopback works.
    let (r, _) = replay(&sb, &s, &["--runs", "1", "--net", "none"], 0);
    assert_eq!(r.isolation.net, "none");
    let seen = probe_lines(&r);
    assert_eq!(seen["ifaces"], "lo", "{seen:?}");
    assert_eq!(seen["lo"], "down", "{seen:?}");
    assert_eq!(seen["tcp"], "failed", "{seen:?}");
    assert_ne!(seen["netns"], host_ns);
    // host: the host's own namespace and every interface in it.
    let (r, _) = replay(&sb, &s, &["--runs", "1", "--net", "host"], 0);
    assert_eq!(r.isolation.net, "host");
    let seen = probe_lines(&r);
    assert_eq!(seen["netns"], host_ns);
    assert_eq!(seen["ifaces"], host_ifaces.join(","), "{seen:?}");
    assert_eq!(seen["tcp"], "ok", "{seen:?}");
    nothing_left(&sb);
}

#[test]
fn a_run_has_its_own_home_tmp_and_xdg_dirs_and_a_clean_environment() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "env",
        "name: env\nenv: {GREETING: hello}\nrun: sh probe.sh\nexpect: {exit: 9}\n",
        &[(
            "probe.sh",
            "set -e\n\
             for v in HOME TMPDIR XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME XDG_STATE_HOME XDG_RUNTIME_DIR; do\n\
               eval \"val=\\${$v:-}\"\n\
               case \"$val\" in \"$BUGPACK_RUN_DIR\"/*) echo \"$v=inside\";; *) echo \"$v=outside:$val\";; esac\n\
             done\n\
             echo \"names=$(env | cut -d= -f1 | sort | tr '\\n' ' ')\"\n\
             echo \"secret=${CALLER_SECRET:-unset}\"\n\
             echo \"greeting=$GREETING index=$BUGPACK_RUN_INDEX seed=$BUGPACK_SEED fault=$PYTHONFAULTHANDLER path=$PATH\"\n\
             touch \"$HOME/made-here\" && echo wrote-home\n\
             exit 9\n",
        )],
    );
    let out = sb
        .bugpack()
        .env("CALLER_SECRET", "do-not-leak")
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm-test")
        .args([
            "replay", &s, "--yes", "--runs", "1", "--seed", "5", "--json", "r.json",
        ])
        .run()
        .success();
    let r = read_report(&sb.path("r.json"), &out.stderr);
    let stdout = r.cells[0].results[0]
        .stdout_tail
        .clone()
        .unwrap_or_default();
    for var in [
        "HOME",
        "TMPDIR",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "XDG_RUNTIME_DIR",
    ] {
        assert!(
            stdout.contains(&format!("{var}=inside\n")),
            "{var} is not inside the run's directory:\n{stdout}"
        );
    }
    // Exactly the base, the scenario's env and bugpack's own: nothing of the caller's.
    let names = stdout
        .lines()
        .find_map(|l| l.strip_prefix("names="))
        .unwrap_or_else(|| panic!("no names line:\n{stdout}"));
    let expected = "BUGPACK_RUN_DIR BUGPACK_RUN_INDEX BUGPACK_SEED GREETING HOME LANG PATH PWD \
                    PYTHONFAULTHANDLER TERM TMPDIR XDG_CACHE_HOME XDG_CONFIG_HOME XDG_DATA_HOME \
                    XDG_RUNTIME_DIR XDG_STATE_HOME";
    assert_eq!(names.trim(), expected, "{stdout}");
    for want in [
        "secret=unset",
        "greeting=hello index=0",
        "fault=1",
        "path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
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
    assert!(
        !fs::read_to_string(sb.path("r.json"))
            .unwrap()
            .contains("do-not-leak")
    );
    nothing_left(&sb);
}

/// An HTTP server on `PORT`: `/port` answers its own `PORT`, anything else
/// `pong` (or 503 when `SICK` is set); it says `listening` once bound.
const SERVER: &str = "import http.server, os\n\
class H(http.server.BaseHTTPRequestHandler):\n    \
    def do_GET(self):\n        \
        body = os.environ['PORT'].encode() if self.path == '/port' else b'pong'\n        \
        self.send_response(503 if os.environ.get('SICK') else 200); self.end_headers(); self.wfile.write(body)\n    \
    def log_message(self, *a): pass\n\
s = http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H)\n\
print('listening', flush=True)\n\
s.serve_forever()\n";

#[test]
fn services_are_ready_by_http_tcp_and_log_and_named_in_the_environment() {
    let sb = Sandbox::new();
    let yaml = "name: svc\n\
                services:\n\
                - {name: web, run: python3 server.py, ready: {http: /health}, ready_timeout: 60s}\n\
                - {name: raw, run: python3 server.py, ready: {tcp: true}, ready_timeout: 60s}\n\
                - {name: chatty, run: python3 server.py, ready: {log: '^listening'}, ready_timeout: 60s}\n\
                run: sh client.sh\n\
                expect: {exit: 4}\n";
    let client = "for s in WEB RAW CHATTY; do\n\
                    eval \"port=\\$BUGPACK_SERVICE_${s}_PORT url=\\$BUGPACK_SERVICE_${s}_URL\"\n\
                    echo \"$s port=$port url=$url answer=$(curl -sf $url/port) $(curl -sf $url/x)\"\n\
                  done\n\
                  exit 4\n";
    let s = scenario(
        &sb,
        "svc",
        yaml,
        &[("server.py", SERVER), ("client.sh", client)],
    );
    let (r, _) = replay(&sb, &s, &["--runs", "1"], 0);
    let run = &r.cells[0].results[0];
    assert_eq!(run.outcome, "reproduced", "{run:?}");
    let stdout = run.stdout_tail.as_deref().unwrap_or_default();
    let mut ports = Vec::new();
    for name in ["WEB", "RAW", "CHATTY"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line:\n{stdout}"));
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .unwrap_or_default()
                .to_owned()
        };
        let port = field("port");
        assert!(port.parse::<u16>().is_ok(), "{line}");
        assert_eq!(field("url"), format!("http://127.0.0.1:{port}"), "{line}");
        assert_eq!(field("answer"), port, "the service got PORT={port}: {line}");
        assert!(line.ends_with(" pong"), "{line}");
        ports.push(port);
    }
    ports.dedup();
    assert_eq!(
        ports.len(),
        3,
        "each service has a port of its own: {stdout}"
    );
}

#[test]
fn readiness_kinds_are_told_apart() {
    let sb = Sandbox::new();
    // An HTTP service that answers 503 is up for tcp but not ready for http.
    let sick = scenario(
        &sb,
        "sick",
        "name: sick\nenv: {SICK: '1'}\n\
         services: [{name: app, run: python3 server.py, ready: {http: /health}, ready_timeout: 2s}]\n\
         run: 'true'\n",
        &[("server.py", SERVER)],
    );
    let (r, _) = replay(&sb, &sick, &["--runs", "1"], 4);
    assert_eq!(
        r.cells[0].results[0].reason, "service app not ready within 2s",
        "a 503 is not ready"
    );
    let up = scenario(
        &sb,
        "up",
        "name: up\nenv: {SICK: '1'}\n\
         services: [{name: app, run: python3 server.py, ready: {tcp: true}, ready_timeout: 60s}]\n\
         run: exit 3\nexpect: {exit: 3}\n",
        &[("server.py", SERVER)],
    );
    let (r, _) = replay(&sb, &up, &["--runs", "1"], 0);
    assert_eq!(
        r.cells[0].results[0].outcome, "reproduced",
        "tcp takes the same service as up"
    );
    // A service that only logs is ready by log, never by tcp.
    let quiet_marker = marker("29979.2458");
    let quiet = format!("echo started; exec sleep {quiet_marker}");
    let by_log = scenario(
        &sb,
        "bylog",
        &format!(
            "name: bylog\nservices: [{{name: app, run: '{quiet}', ready: {{log: '^started'}}, ready_timeout: 60s}}]\n\
             run: exit 3\nexpect: {{exit: 3}}\n"
        ),
        &[],
    );
    let (r, _) = replay(&sb, &by_log, &["--runs", "1"], 0);
    assert_eq!(
        r.cells[0].results[0].outcome, "reproduced",
        "a log-ready service need not bind PORT: {:?}",
        r.cells[0].results[0]
    );
    let by_tcp = scenario(
        &sb,
        "bytcp",
        &format!(
            "name: bytcp\nservices: [{{name: app, run: '{quiet}', ready: {{tcp: true}}, ready_timeout: 2s}}]\n\
             run: 'true'\n"
        ),
        &[],
    );
    let (r, _) = replay(&sb, &by_tcp, &["--runs", "1"], 4);
    assert_eq!(
        r.cells[0].results[0].reason,
        "service app not ready within 2s"
    );
    // A TCP listener that does not speak HTTP is up for tcp, not for http.
    let mute = "import os, socket\n\
                s = socket.socket(); s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen(8)\n\
                while True:\n    s.accept()[0].close()\n";
    let by_http = scenario(
        &sb,
        "byhttp",
        "name: byhttp\nservices: [{name: app, run: python3 mute.py, ready: {http: /}, ready_timeout: 2s}]\n\
         run: 'true'\n",
        &[("mute.py", mute)],
    );
    let (r, _) = replay(&sb, &by_http, &["--runs", "1"], 4);
    assert_eq!(
        r.cells[0].results[0].reason,
        "service app not ready within 2s"
    );
    assert!(
        running(&quiet_marker).is_empty(),
        "a service outlived its run: {:?}",
        running(&quiet_marker)
    );
    nothing_left(&sb);
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
    let forked = marker("27182.818");
    let forks = scenario(
        &sb,
        "forks",
        &format!(
            "name: forks\nrun: 'for i in $(seq 1000); do sleep {forked} & done; wait'\ntimeout: 5s\nexpect: {{hang: true}}\n"
        ),
        &[],
    );
    let (r, out) = replay(&sb, &forks, &["--runs", "1"], 0);
    let run = &r.cells[0].results[0];
    assert_eq!(run.reason, "hang");
    assert!(running(&forked).is_empty(), "forked processes survived");
    // The report lists a bounded number of them and counts the rest.
    let listed = run.diagnostics.as_ref().map_or(0, Vec::len);
    let omitted = run.diagnostics_omitted.unwrap_or(0);
    assert_eq!(listed, 100, "the process list is capped");
    assert!(omitted > 0, "the rest are counted");
    assert!(
        out.stdout
            .contains(&format!("... and {} more (see --json)", omitted + 92)),
        "{}",
        out.stdout
    );
    let unmoved = marker("16180.339");
    let stubborn = scenario(
        &sb,
        "stubborn",
        &format!(
            "name: stubborn\nrun: trap '' TERM INT ABRT; sleep {unmoved}\ntimeout: 1s\nexpect: {{hang: true}}\n"
        ),
        &[],
    );
    replay(&sb, &stubborn, &["--runs", "1"], 0);
    assert!(
        running(&unmoved).is_empty(),
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
    let shared = shared_dir(&sb);
    // Each run waits until all four have started (so they must overlap),
    // then run i ends only after run i+1 has: they finish in reverse order.
    let yaml = format!(
        "name: par\nenv: {{SHARED: '{}'}}\n\
         run: sh par.sh\ntimeout: 300s\nexpect: {{exit: 7}}\n",
        shared.display()
    );
    let script = "i=$BUGPACK_RUN_INDEX\n\
                  touch \"$SHARED/start-$i\"\n\
                  n=0\n\
                  until [ -e \"$SHARED/start-0\" ] && [ -e \"$SHARED/start-1\" ] && [ -e \"$SHARED/start-2\" ] && [ -e \"$SHARED/start-3\" ]; do\n\
                    n=$((n+1)); if [ $n -gt 1200 ]; then echo alone; exit 1; fi; sleep 0.05\n\
                  done\n\
                  if [ $i -lt 3 ]; then\n\
                    until [ -e \"$SHARED/end-$((i+1))\" ]; do sleep 0.05; done\n\
                  fi\n\
                  touch \"$SHARED/end-$i\"\n\
                  exit 7\n";
    let s = scenario(&sb, "par", &yaml, &[("par.sh", script)]);
    let (r, _) = replay(&sb, &s, &["--runs", "4", "--jobs", "4"], 0);
    let cell = &r.cells[0];
    assert_eq!(
        cell.reproduced, 4,
        "every run met the other three while running: {:?}",
        cell.results
    );
    let idx: Vec<u32> = cell.results.iter().map(|x| x.index).collect();
    assert_eq!(
        idx,
        [0, 1, 2, 3],
        "results in run order, not in finishing order"
    );
    // --jobs 1: one at a time, so a run never sees another one active.
    let one = scenario(
        &sb,
        "one",
        &format!(
            "name: one\nenv: {{SHARED: '{}'}}\n\
             run: 'ls \"$SHARED\" | grep -q active && exit 1; touch \"$SHARED/active\"; sleep 0.2; rm \"$SHARED/active\"; exit 7'\n\
             expect: {{exit: 7}}\n",
            shared.display()
        ),
        &[],
    );
    let (r, _) = replay(&sb, &one, &["--runs", "3", "--jobs", "1"], 0);
    assert_eq!(r.cells[0].reproduced, 3, "{:?}", r.cells[0].results);
    nothing_left(&sb);
}

#[test]
fn until_repro_reports_which_run_reproduced_first_and_when() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "third",
        "name: third\nrun: '[ \"$BUGPACK_RUN_INDEX\" -ge 2 ] && exit 1; exit 0'\n",
        &[],
    );
    let (r, out) = replay(
        &sb,
        &s,
        &["--runs", "20", "--jobs", "1", "--until-repro"],
        0,
    );
    let cell = &r.cells[0];
    assert_eq!(
        (cell.runs, cell.passed, cell.reproduced),
        (3, 2, 1),
        "stopped at the first reproduction"
    );
    let first = r.first_reproduction.as_ref().expect("first_reproduction");
    assert_eq!((first.index, first.runs), (2, 3));
    assert_eq!(first.axes["timing"], "none");
    let run_time: u64 = cell.results.iter().map(|x| x.duration_ms).sum();
    assert!(
        first.elapsed_ms >= run_time && first.elapsed_ms <= r.duration_ms,
        "{first:?} vs runs {run_time} ms, replay {} ms",
        r.duration_ms
    );
    assert!(
        out.stdout
            .contains("first reproduced by run 2 of none/none/cold, after 3 runs and "),
        "{}",
        out.stdout
    );
    // Without a reproduction there is no first one.
    let never = scenario(&sb, "never", "name: never\nrun: exit 0\n", &[]);
    let (r, out) = replay(&sb, &never, &["--runs", "2", "--until-repro"], 1);
    assert!(r.first_reproduction.is_none());
    assert_eq!(r.cells[0].runs, 2);
    assert!(!out.stdout.contains("first reproduced"), "{}", out.stdout);
}

#[test]
fn a_run_that_cannot_be_prepared_is_an_error_and_the_replay_goes_on() {
    let sb = Sandbox::new();
    // bugpack may not write files past 1 MiB (as on a full disk), and the
    // scenario carries 2 MiB: no run's directory can be filled.
    let s = scenario(
        &sb,
        "big",
        "name: big\nrun: exit 3\nexpect: {exit: 3}\n",
        &[],
    );
    sb.write("big/blob", vec![0u8; 2 << 20]);
    let out = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_bugpack"),
            "replay",
            &s,
            "--yes",
            "--runs",
            "3",
            "--json",
            "r.json",
        ])
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .env("HOME", sb.home())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("every run errored"), "{stderr}");
    let r = read_report(&sb.path("r.json"), &stderr);
    let cell = &r.cells[0];
    assert_eq!(
        (cell.runs, cell.errors),
        (3, 3),
        "every run was tried: {:?}",
        cell.results
    );
    for run in &cell.results {
        assert_eq!(run.outcome, "error");
        assert!(
            run.reason
                .starts_with("cannot prepare the run: cannot copy")
                && run.reason.contains("File too large"),
            "{}",
            run.reason
        );
    }
    nothing_left(&sb);
}

#[test]
fn procfs_tells_different_waits_apart_per_thread() {
    let sb = Sandbox::new();
    let marker = marker("31415.92");
    // Three threads: one waits for a child, one for a file lock another
    // process holds, the main one on a futex (joining them).
    let threads = format!(
        "import fcntl, subprocess, threading\n\
         holder = subprocess.Popen(['flock', 'lockfile', 'sh', '-c', 'echo locked; exec sleep {marker}'], stdout=subprocess.PIPE)\n\
         holder.stdout.readline()\n\
         lock = open('lockfile', 'w')\n\
         child = threading.Thread(target=lambda: subprocess.Popen(['sleep', '{marker}']).wait())\n\
         locker = threading.Thread(target=lambda: fcntl.flock(lock, fcntl.LOCK_EX))\n\
         child.start(); locker.start()\n\
         child.join(); locker.join()\n"
    );
    let s = scenario(
        &sb,
        "waits",
        "name: waits\nrun: exec python3 threads.py\ntimeout: 3s\nexpect: {hang: true}\n",
        &[("threads.py", &threads)],
    );
    let (r, _) = replay(&sb, &s, &["--runs", "1"], 0);
    let diags = r.cells[0].results[0]
        .diagnostics
        .clone()
        .unwrap_or_default();
    let python = diags
        .iter()
        .find(|d| d["command"] == "python3 threads.py")
        .unwrap_or_else(|| panic!("no python process in {diags:#?}"));
    assert_eq!(python["threads"], 3, "{python:#}");
    let waiting: BTreeMap<String, u64> =
        serde_json::from_value(python["threads_waiting"].clone()).unwrap();
    assert_eq!(
        waiting,
        BTreeMap::from([
            ("waiting for a child process".to_owned(), 1),
            ("waiting for a file lock".to_owned(), 1),
            ("waiting on a futex (a lock or condition)".to_owned(), 1),
        ]),
        "{python:#}"
    );
    // Every thread's kernel stack, where this machine lets us read them.
    let kernel_stacks = python["kernel_stacks"]
        .as_object()
        .map_or(0, serde_json::Map::len);
    if fs::read_to_string("/proc/self/stack").is_ok() {
        assert_eq!(kernel_stacks, 3, "{python:#}");
    } else {
        assert_eq!(kernel_stacks, 0, "kernel stacks are root-only: {python:#}");
    }
    assert!(running(&marker).is_empty(), "{:?}", running(&marker));
}

/// A scenario whose four runs end four ways: output match, output match,
/// exit 3, and a missing command (an error).
fn four_ways(sb: &Sandbox) -> String {
    scenario(
        sb,
        "mixed",
        "name: mixed\nrun: sh mixed.sh\nexpect: {exit: 3, output: 'PENDING forever'}\n",
        &[(
            "mixed.sh",
            "case $BUGPACK_RUN_INDEX in\n\
               0|1) echo 'poll 2 PENDING forever, said the server';;\n\
               2) exit 3;;\n\
               3) no-such-command-bugpack;;\n\
             esac\n",
        )],
    )
}

/// Filters for what changes from one replay to the next: durations and
/// bugpack's version.
fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // A duration padded to its column keeps the column's width.
    settings.add_filter(r"\b\d+(?:\.\d+)? m?s {2,}", "[duration]  ");
    settings.add_filter(r"\b\d+(?:\.\d+)? m?s\b", "[duration]");
    settings.add_filter(r"bugpack \d+\.\d+\.\d+", "bugpack [version]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn the_table_shows_counts_intervals_and_the_commonest_reason_in_detail() {
    let sb = Sandbox::new();
    let s = four_ways(&sb);
    let out = sb
        .bugpack()
        .args([
            "replay", &s, "--yes", "--runs", "4", "--jobs", "1", "--seed", "42",
        ])
        .run()
        .success();
    snapshot_settings().bind(|| insta::assert_snapshot!("replay_table", out.stdout));
    // The exit code shows where it is the commonest reason.
    let exits = scenario(
        &sb,
        "exits",
        "name: exits\nrun: exit 3\nexpect: {exit: 3}\n",
        &[],
    );
    let out = sb
        .bugpack()
        .args(["replay", &exits, "--yes", "--runs", "2"])
        .run()
        .success();
    let row = out.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.ends_with("  exit 3"), "{}", out.stdout);
}

/// The columns of the table's `n`th cell row.
fn table_row(stdout: &str, n: usize) -> Vec<String> {
    let line = stdout.lines().nth(n + 1).unwrap_or_default();
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_cells_median_and_reason_come_from_the_runs_that_ran_to_an_end() {
    let sb = Sandbox::new();
    // Run 0 passes, run 1 reproduces (exit 3), both after a pause; later
    // runs fail their setup: errors that last 0 ms.
    let s = scenario(
        &sb,
        "ends",
        "name: ends\nsetup: ['[ $BUGPACK_RUN_INDEX -lt 2 ]']\n\
         run: 'sleep 0.2; [ $BUGPACK_RUN_INDEX = 1 ] && exit 3; exit 0'\nexpect: {exit: 3}\n",
        &[],
    );
    let judged = |r: &JReport| -> Vec<u64> {
        r.cells[0]
            .results
            .iter()
            .filter(|x| x.outcome != "error")
            .map(|x| x.duration_ms)
            .collect()
    };
    // A tie between a pass and a reproduction: the reason is how the bug
    // showed, not `passed`.
    let (r, out) = replay(&sb, &s, &["--runs", "2"], 0);
    let cell = &r.cells[0];
    assert_eq!((cell.reproduced, cell.passed), (1, 1), "{:?}", cell.results);
    assert_eq!(cell.reason.as_deref(), Some("exit"));
    assert_eq!(table_row(&out.stdout, 0)[7], "exit 3", "{}", out.stdout);
    // Errors neither pull the median down nor name the reason, though
    // they outnumber the rest.
    let (r, out) = replay(&sb, &s, &["--runs", "5"], 0);
    let cell = &r.cells[0];
    assert_eq!((cell.reproduced, cell.passed, cell.errors), (1, 1, 3));
    assert!(
        cell.results
            .iter()
            .filter(|x| x.outcome == "error")
            .all(|x| x.duration_ms == 0),
        "{:?}",
        cell.results
    );
    let lower = judged(&r).into_iter().min();
    assert_eq!(cell.median_ms, lower, "{:?}", cell.results);
    assert!(cell.median_ms >= Some(200), "{:?}", cell.median_ms);
    assert_eq!(cell.reason.as_deref(), Some("exit"));
    assert_eq!(table_row(&out.stdout, 0)[7], "exit 3", "{}", out.stdout);
    // `report merge` of the same runs split in two computes them the same way.
    for shard in ["1/2", "2/2"] {
        let json = format!("s{}.json", &shard[..1]);
        sb.bugpack()
            .args([
                "replay", &s, "--yes", "--runs", "5", "--seed", "7", "--shard", shard, "--json",
                &json,
            ])
            .run();
    }
    let out = sb
        .bugpack()
        .args([
            "report",
            "merge",
            "s1.json",
            "s2.json",
            "--json",
            "merged.json",
        ])
        .run()
        .success();
    let merged = read_report(&sb.path("merged.json"), &out.stderr);
    let cell = &merged.cells[0];
    assert_eq!((cell.reproduced, cell.passed, cell.errors), (1, 1, 3));
    assert_eq!(cell.median_ms, judged(&merged).into_iter().min());
    assert!(cell.median_ms >= Some(200), "{:?}", cell.median_ms);
    assert_eq!(cell.reason.as_deref(), Some("exit"));
    assert_eq!(table_row(&out.stdout, 0)[7], "exit 3", "{}", out.stdout);
    // No run ran to an end: no median at all.
    let broken = scenario(
        &sb,
        "broken",
        "name: broken\nsetup: ['exit 1']\nrun: 'true'\n",
        &[],
    );
    let (r, out) = replay(&sb, &broken, &["--runs", "2"], 4);
    assert_eq!(r.cells[0].median_ms, None);
    assert_eq!(
        r.cells[0].reason.as_deref(),
        Some("setup[0] exited with code 1")
    );
    assert_eq!(table_row(&out.stdout, 0)[6], "-", "{}", out.stdout);
    nothing_left(&sb);
}

#[test]
fn markdown_and_json_can_go_to_stdout() {
    let sb = Sandbox::new();
    let s = four_ways(&sb);
    let args = [
        "replay", &s, "--yes", "--runs", "4", "--jobs", "1", "--seed", "42",
    ];
    let out = sb
        .bugpack()
        .args(args)
        .args(["--markdown", "-"])
        .run()
        .success();
    assert!(
        !out.stdout.contains("timing  proxy"),
        "no table beside the Markdown"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("replay_markdown", out.stdout));
    let out = sb
        .bugpack()
        .args(args)
        .args(["--json", "-"])
        .run()
        .success();
    let r: JReport = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON report alone ({e}):\n{}", out.stdout));
    let outcomes: Vec<(&str, &str)> = r.cells[0]
        .results
        .iter()
        .map(|x| (x.outcome.as_str(), x.reason.as_str()))
        .collect();
    assert_eq!(
        outcomes[..3],
        [
            ("reproduced", "output"),
            ("reproduced", "output"),
            ("reproduced", "exit")
        ]
    );
    assert_eq!(outcomes[3].0, "error");
    assert_eq!(r.seed, 42);
    // Both cannot have stdout.
    sb.bugpack()
        .args(args)
        .args(["--json", "-", "--markdown", "-"])
        .run()
        .code(2)
        .one_line_error();
    nothing_left(&sb);
}

/// `bugpack replay ... --json FILE | head` whose reader is gone before the
/// table comes: the files asked for are written all the same, and the exit
/// code is the replay's answer (here 1, not reproduced), not a pipe's.
#[test]
fn a_closed_stdout_loses_neither_the_report_files_nor_the_verdict() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "fine",
        "name: fine\nrun: 'true'\nexpect: {exit: nonzero}\n",
        &[],
    );
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_bugpack"))
        .args([
            "replay",
            &s,
            "--yes",
            "--runs",
            "1",
            "--json",
            "r.json",
            "--markdown",
            "r.md",
        ])
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .env("HOME", sb.home())
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, "", "a closed pipe is not an error");
    let r = read_report(&sb.path("r.json"), &stderr);
    assert_eq!(r.verdict, "not-reproduced");
    let md = fs::read_to_string(sb.path("r.md")).unwrap();
    assert!(md.contains("**not reproduced"), "{md}");
    nothing_left(&sb);
}

#[test]
fn hostile_run_text_stays_text_in_the_markdown() {
    let sb = Sandbox::new();
    // Lines a run prints, each trying something: raw HTML, emphasis, code,
    // a link, strikethrough, an entity, breaking out of the table row.
    let output = |name: &str, line: &str| {
        scenario(
            &sb,
            name,
            "name: hostile\nrun: cat line.txt\nexpect: {output: 'x'}\n",
            &[("line.txt", &format!("{line}\n"))],
        )
    };
    let html = output("html", "<img src=x onerror=alert(1)>|x");
    let inline = output("inline", "**b**`c`[l](http://x)~~s~~&amp;");
    // An error's cause names the command the run's stderr says is missing.
    let cause = scenario(
        &sb,
        "cause",
        "name: hostile\nrun: 'printf \"sh: 1: %s: not found\\\\n\" \"$(cat line.txt)\" >&2; exit 127'\n",
        &[("line.txt", "<td>|<b>x\n")],
    );
    // A path as the user typed it, with backticks in it.
    let odd = "odd`dir``<b>";
    fs::rename(sb.path(&html), sb.path(odd)).unwrap();
    let mut all = String::new();
    for (source, code) in [(odd, 0), (&inline, 0), (&cause, 4)] {
        let out = sb
            .bugpack()
            .args(["replay", source, "--yes", "--runs", "1", "--seed", "1"])
            .args(["--markdown", "-"])
            .run()
            .code(code);
        let (html, tags) = rendered_tags(&out.stdout);
        // Only the tags of bugpack's own layout, and one row of eight cells.
        let allowed = [
            "code", "p", "strong", "sub", "table", "tbody", "td", "th", "thead", "tr",
        ];
        assert!(
            tags.keys().all(|t| allowed.contains(&t.as_str())),
            "{tags:?}\n{}\n{html}",
            out.stdout
        );
        assert_eq!(tags.get("td"), Some(&8), "{}\n{html}", out.stdout);
        all.push_str(&out.stdout);
        all.push('\n');
    }
    // What was written is shown as written.
    assert!(
        all.contains("&lt;img src=x onerror=alert(1)&gt;\\|x"),
        "{all}"
    );
    assert!(
        all.contains("&lt;td&gt;\\|&lt;b&gt;x is not installed"),
        "{all}"
    );
    assert!(all.contains("```odd`dir``<b>```"), "{all}");
    snapshot_settings().bind(|| insta::assert_snapshot!("replay_markdown_hostile", all));
    nothing_left(&sb);
}

#[test]
fn rlimits_have_defaults_and_flags_change_them() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "limits",
        "name: limits\nrun: cat /proc/self/limits; exit 5\nexpect: {exit: 5}\n",
        &[],
    );
    // The soft limits a run's process sees, by /proc/self/limits' names.
    let limits = |args: &[&str]| -> BTreeMap<String, String> {
        let (r, _) = replay(&sb, &s, &[&["--runs", "1"], args].concat(), 0);
        let text = r.cells[0].results[0]
            .stdout_tail
            .clone()
            .unwrap_or_default();
        text.lines()
            .filter(|l| l.len() > 26)
            .map(|l| {
                let (name, rest) = l.split_at(26);
                let soft = rest.split_whitespace().next().unwrap_or_default();
                (name.trim().to_owned(), soft.to_owned())
            })
            .collect()
    };
    let mem_total: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let half_ram = (mem_total * 1024 / 2).max(4 << 30);
    let got = limits(&[]);
    assert_eq!(
        got["Max address space"],
        half_ram.to_string(),
        "default: half the RAM, at least 4 GiB"
    );
    assert_eq!(got["Max open files"], "4096");
    assert_eq!(got["Max processes"], "4096");
    assert_eq!(got["Max file size"], (1u64 << 30).to_string());
    let got = limits(&[
        "--limit-memory",
        "3GiB",
        "--limit-files",
        "123",
        "--limit-procs",
        "456",
        "--limit-file-size",
        "5MiB",
    ]);
    assert_eq!(got["Max address space"], (3u64 << 30).to_string());
    assert_eq!(got["Max open files"], "123");
    assert_eq!(got["Max processes"], "456");
    assert_eq!(got["Max file size"], (5u64 << 20).to_string());
    // `none` leaves the address space as bugpack's own.
    let own = fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .map(|l| l[26..].split_whitespace().next().unwrap().to_owned())
        .unwrap();
    assert_eq!(
        limits(&["--limit-memory", "none"])["Max address space"],
        own
    );
    for bad in ["lots", "0"] {
        sb.bugpack()
            .args(["replay", &s, "--yes", "--limit-memory", bad])
            .run()
            .code(2)
            .one_line_error()
            .stderr_has("--limit-memory");
    }
    nothing_left(&sb);
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

/// Runs bugpack with stdin, stdout and stderr on a new pseudo-terminal,
/// types `answer` once the consent prompt shows, and returns its exit code
/// and everything the terminal showed.
pub(crate) fn on_a_terminal(sb: &Sandbox, args: &[&str], answer: &str) -> (Option<i32>, String) {
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let mut child = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bugpack"));
        cmd.args(args)
            .current_dir(sb.dir())
            .env("TMPDIR", sb.tmp())
            .env("HOME", sb.home())
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave));
        cmd.spawn().unwrap()
        // `cmd`, and with it this side's copies of the terminal, ends here:
        // reads on the master fail once bugpack has closed its side.
    };
    let mut master = fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let pump = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let deadline = Instant::now() + Duration::from_mins(1);
    while !String::from_utf8_lossy(&shown).contains("[y/N]") {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => shown.extend(chunk),
            Err(e) => panic!("no prompt ({e}):\n{}", String::from_utf8_lossy(&shown)),
        }
    }
    master.write_all(answer.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_mins(1)) {
        shown.extend(chunk);
    }
    pump.join().unwrap();
    (status.code(), String::from_utf8_lossy(&shown).into_owned())
}

#[test]
fn on_a_terminal_replay_shows_the_commands_and_asks() {
    let sb = Sandbox::new();
    let marker = shared_dir(&sb).join("ran");
    let s = scenario(
        &sb,
        "ask",
        &format!(
            "name: ask\nsetup: ['echo preparing']\n\
             services: [{{name: web, run: 'echo up; exec sleep 600', ready: {{log: up}}}}]\n\
             run: sleep 1; touch {} && exit 3\nexpect: {{exit: 3}}\n",
            marker.display()
        ),
        &[],
    );
    let (code, shown) = on_a_terminal(&sb, &["replay", &s, "--runs", "1"], "n\n");
    assert_eq!(code, Some(2), "{shown}");
    for line in [
        "bugpack replay will run scenario \"ask\" (a local directory, not a signed bundle):",
        "  setup    echo preparing",
        "  service  web: echo up; exec sleep 600 (ready: log /up/)",
        &format!("  run      sleep 1; touch {} && exit 3", marker.display()),
        "Run it in a sandbox? [y/N]",
        "not run: the replay was declined",
    ] {
        assert!(shown.contains(line), "{line:?} not shown:\n{shown}");
    }
    assert!(!marker.exists(), "a declined scenario ran");
    nothing_left(&sb);
    let (code, shown) = on_a_terminal(&sb, &["replay", &s, "--runs", "1"], "y\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        marker.exists(),
        "an accepted scenario did not run:\n{shown}"
    );
    for part in ["1/1 runs", "1 reproduced (100%)", "/s, ETA "] {
        assert!(
            shown.contains(part),
            "a progress bar with runs, reproductions, rate and ETA on a terminal: no {part:?}\n{shown}"
        );
    }
    assert!(
        shown.contains("reproduced in 1 of 1 cells (1 of 1 run)"),
        "{shown}"
    );
    nothing_left(&sb);
}

#[test]
fn the_consent_prompt_shows_a_bundles_commands_without_letting_them_act() {
    use crate::support::zipper::{HOSTILE_SCENARIO, HOSTILE_TITLE};
    let sb = Sandbox::new();
    let mut spec = BundleSpec::valid().with_file("scenario/scenario.yaml", HOSTILE_SCENARIO);
    spec.title = HOSTILE_TITLE.into();
    sb.write("t.zip", spec.zip().bytes());
    let (code, shown) = on_a_terminal(&sb, &["replay", "t.zip", "--runs", "1"], "n\n");
    assert_eq!(code, Some(2), "{shown:?}");
    for raw in ["\x1b]0;pwned", "\x07", "\x1b[2J"] {
        assert!(
            !shown.contains(raw),
            "{raw:?} reached the terminal: {shown:?}"
        );
    }
    // The terminal ends lines with CR LF.
    let lines: Vec<&str> = shown.lines().map(|l| l.trim_end_matches('\r')).collect();
    for want in [
        "  run      printf '\\u{1b}]0;pwned\\u{7}'",
        "           echo '\\u{1b}[2J'",
        "           sh run.sh",
    ] {
        assert!(lines.contains(&want), "{want:?} not shown:\n{shown}");
    }
    nothing_left(&sb);
}

#[test]
fn without_a_terminal_there_is_no_progress_bar() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "quiet",
        "name: quiet\nrun: sleep 1; exit 3\nexpect: {exit: 3}\n",
        &[],
    );
    let out = sb
        .bugpack()
        .args(["replay", &s, "--yes", "--runs", "2"])
        .run()
        .success();
    // stderr may carry a warning (no namespaces here), never a bar.
    for (name, text) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        assert!(
            !text.contains("runs,") && !text.contains('\r') && !text.contains('\x1b'),
            "a progress bar on {name} without a terminal: {text:?}"
        );
    }
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
fn without_namespaces_a_setsid_orphan_is_still_stopped() {
    let sb = Sandbox::new();
    let marker = marker("17320.508");
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
        running(&marker).is_empty(),
        "the orphan survived: {:?}",
        running(&marker)
    );
    nothing_left(&sb);
}

/// A process that outlives everything but SIGKILL and dies slowly: it
/// ignores the signals a hang sends, holds an exclusive lock on its first
/// argument (released only when its exit is complete), and touches a few
/// hundred MiB that its exit must give back first. It prints `ready` and
/// leaves `<lock>.ready` once it holds the lock.
const HOLDER: &str = "import fcntl, signal, sys, time\n\
for s in (signal.SIGABRT, signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):\n    \
    signal.signal(s, signal.SIG_IGN)\n\
lock = open(sys.argv[1], 'w')\n\
fcntl.flock(lock, fcntl.LOCK_EX)\n\
ballast = bytearray(256 << 20)\n\
for i in range(0, len(ballast), 4096):\n    \
    ballast[i] = 1\n\
open(sys.argv[1] + '.ready', 'w').close()\n\
print('ready', flush=True)\n\
while True:\n    \
    time.sleep(1)\n";

/// Whether some process still holds the lock on `path`.
fn locked(path: &std::path::Path) -> bool {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match file.try_lock() {
        Ok(()) => false,
        Err(fs::TryLockError::WouldBlock) => true,
        Err(fs::TryLockError::Error(e)) => panic!("{}: {e}", path.display()),
    }
}

#[test]
fn no_process_of_a_run_outlives_replay_however_the_run_ends() {
    let sb = Sandbox::new();
    let shared = shared_dir(&sb);
    let marker = marker("57721.5664");
    let holder = format!("setsid python3 hold.py $SHARED/$LOCK {marker}");
    let service = format!(
        "services:\n  - name: holder\n    run: {holder}\n    \
         ready: {{log: '(?m)^ready$'}}\n    ready_timeout: 60s\n"
    );
    // How each run ends: by itself (the run step exits), at its time limit
    // (a hang, diagnosed first), and by a failed setup step.
    let endings = [
        (
            "exits",
            format!("{service}run: exit 6\nexpect: {{exit: 6}}\n"),
            0,
        ),
        (
            "hangs",
            format!("{service}run: sleep 600\ntimeout: 1s\nexpect: {{hang: true}}\n"),
            0,
        ),
        (
            "setup-fails",
            format!(
                "setup: ['{holder} & until [ -e $SHARED/$LOCK.ready ]; do sleep 0.05; done; exit 1']\n\
                 run: 'true'\ntimeout: 60s\nexpect: {{exit: 0}}\n"
            ),
            4,
        ),
    ];
    let mut modes = vec!["process"];
    if namespaces_available() {
        modes.push("namespaces");
    }
    for mode in modes {
        for (ending, body, code) in &endings {
            let lock = format!("{mode}-{ending}");
            let yaml = format!(
                "name: {ending}\nenv: {{SHARED: '{}', LOCK: {lock}}}\n{body}",
                shared.display()
            );
            let s = scenario(&sb, &lock, &yaml, &[("hold.py", HOLDER)]);
            let mut run = sb.bugpack().args(["replay", &s, "--yes", "--runs", "1"]);
            if mode == "process" {
                run = run.env("BUGPACK_SANDBOX", "process");
            }
            let out = run.run();
            let left = running(&marker);
            let held = shared.join(&lock).exists() && locked(&shared.join(&lock));
            for line in &left {
                // Leave nothing behind even when the test fails.
                if let Some(pid) = line.split(':').next().and_then(|p| p.parse().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            assert_eq!(
                out.code,
                Some(*code),
                "{mode}/{ending}\n{}\n{}",
                out.stdout,
                out.stderr
            );
            // The holder did start and take its lock, in every case.
            assert!(
                shared.join(format!("{lock}.ready")).exists(),
                "{mode}/{ending}: the holder never got going\n{}",
                out.stdout
            );
            assert!(left.is_empty(), "{mode}/{ending}: survived: {left:?}");
            assert!(
                !held,
                "{mode}/{ending}: a process of the run still held its lock after replay returned"
            );
            nothing_left(&sb);
        }
    }
}
