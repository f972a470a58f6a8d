//! Load: many runs of a scenario with a service and the `cache` proxy, as
//! many at a time as there are CPUs. Every run is accounted for, and
//! bugpack's own open files, threads and child processes are back where
//! they started once the runs are done: a leak of one per run would show
//! a thousandfold.
//!
//! 50 runs by default; `BUGPACK_LOAD_TEST=1` (set by `.ci/run`) makes it
//! 1,000.
//!
//! The end is sampled deterministically, with no hook in bugpack: the
//! report goes to stdout (`--json -`) through a pipe shrunk to one page,
//! which bugpack writes only after every run has finished and been cleaned
//! up. Once its first byte arrives, bugpack is blocked writing the rest for
//! as long as the test does not read it, and the test looks at it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::reports::{JReport, scenario};
use crate::support::{KillOnDrop, MACHINE, Sandbox, processes_holding};

/// The pipe bugpack writes its report into holds this much (one page).
const PIPE: usize = 4096;

/// What bugpack holds at one moment.
#[derive(Debug)]
struct Held {
    /// Open descriptors and what each points at.
    fds: BTreeMap<u32, String>,
    threads: usize,
    /// Processes whose parent is bugpack, zombies included.
    children: Vec<String>,
}

fn held(pid: u32) -> Held {
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect();
    let threads = fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
    let children = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then(|| format!("{head})"))
        })
        .collect();
    Held {
        fds,
        threads,
        children,
    }
}

/// Each run starts a service that counts GETs and fetches it twice through
/// the `cache` proxy: the proxy serves the second from its cache, so both
/// answers are the same and the run "reproduces". A run that missed its
/// proxy, or its service, says so.
fn cached_counter(sb: &Sandbox, marker: &str) -> String {
    let app = "import http.server, itertools, os\n\
               n = itertools.count()\n\
               class H(http.server.BaseHTTPRequestHandler):\n    \
               def do_GET(self):\n        \
               body = str(next(n)).encode()\n        \
               self.send_response(200); self.send_header('Content-Length', str(len(body)))\n        \
               self.end_headers(); self.wfile.write(body)\n    \
               def log_message(self, *a): pass\n\
               http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    let run = "a=$(curl -sf \"$BUGPACK_SERVICE_APP_URL/n\") || exit 1\n\
               b=$(curl -sf \"$BUGPACK_SERVICE_APP_URL/n\") || exit 1\n\
               [ \"$a\" = \"$b\" ] && echo \"same $a\"\n";
    scenario(
        sb,
        "load",
        &format!(
            "name: load\nenv: {{MARK: '{marker}'}}\n\
             services: [{{name: app, run: python3 app.py, ready: {{http: /health}}, ready_timeout: 60s}}]\n\
             run: sh run.sh\ntimeout: 60s\nexpect: {{output: same}}\n"
        ),
        &[("app.py", app), ("run.sh", run)],
    )
}

#[test]
fn a_long_replay_accounts_for_every_run_and_leaks_no_fd_thread_or_child() {
    let _machine = MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let runs: u32 = if std::env::var_os("BUGPACK_LOAD_TEST").is_some_and(|v| v == "1") {
        1000
    } else {
        50
    };
    let jobs = std::thread::available_parallelism().map_or(2, usize::from);
    let sb = Sandbox::new();
    let marker = &crate::support::marker("86602.5403");
    let _reap = KillOnDrop(marker);
    let s = cached_counter(&sb, marker);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bugpack"))
        .args(["replay", &s, "--yes", "--json", "-", "--proxy", "cache"])
        .args(["--runs", &runs.to_string(), "--jobs", &jobs.to_string()])
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .env("HOME", sb.home())
        .env("BUGPACK_TEST_MARK", marker)
        .env_remove("BUGPACK_SANDBOX")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let pipe = nix::fcntl::fcntl(
        &stdout,
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(i32::try_from(PIPE).unwrap()),
    )
    .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // The first run is under way once its service is up.
    let deadline = Instant::now() + Duration::from_mins(2);
    while !processes_holding(marker)
        .iter()
        .any(|p| p.contains("python3 app.py"))
    {
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = held(pid);

    // The report's first byte: every run has finished and been cleaned up.
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    let end = held(pid);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let elapsed = started.elapsed();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        rest.len() >= usize::try_from(pipe).unwrap(),
        "the report fits the pipe, so bugpack may have moved on while sampled"
    );

    let mut text = first.to_vec();
    text.extend(rest);
    let r: JReport = serde_json::from_slice(&text).unwrap();
    assert!(!r.interrupted);
    assert_eq!(r.cells.len(), 1);
    let cell = &r.cells[0];
    assert_eq!(
        (cell.runs, cell.reproduced, cell.passed, cell.errors),
        (runs, runs, 0, 0),
        "{:?}",
        cell.results
            .iter()
            .filter(|x| x.outcome != "reproduced")
            .collect::<Vec<_>>()
    );
    let indices: BTreeSet<u32> = cell.results.iter().map(|x| x.index).collect();
    assert_eq!(cell.results.len(), runs as usize);
    assert_eq!(indices, (0..runs).collect(), "each index exactly once");
    for x in &cell.results {
        let proxy = &x.axes_detail["proxy"];
        assert_eq!(
            (proxy["gets"].as_u64(), proxy["hits"].as_u64()),
            (Some(2), Some(1)),
            "run {} went through its own cold cache: {proxy}",
            x.index
        );
    }

    eprintln!(
        "{runs} runs, {jobs} at a time, in {:.1} s; bugpack held {} fds, {} threads, {} children \
         during the first run and {} fds, {} threads, {} children at the end",
        elapsed.as_secs_f64(),
        start.fds.len(),
        start.threads,
        start.children.len(),
        end.fds.len(),
        end.threads,
        end.children.len(),
    );
    assert!(
        !start.children.is_empty() && start.threads > 1,
        "the first sample saw no run at work: {start:?}"
    );
    assert!(end.children.is_empty(), "children left: {:?}", end.children);
    assert_eq!(end.threads, 1, "threads left besides main");
    let new: Vec<_> = end
        .fds
        .iter()
        .filter(|(fd, target)| start.fds.get(fd) != Some(target))
        .collect();
    assert!(
        new.is_empty() && end.fds.len() <= start.fds.len(),
        "descriptors opened during the replay and never closed: {new:?}\nat the start: {:?}",
        start.fds
    );
    let left = processes_holding(marker);
    assert!(left.is_empty(), "left running: {left:#?}");
    let tmp: Vec<_> = fs::read_dir(sb.tmp())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(tmp.is_empty(), "left in TMPDIR: {tmp:?}");
}
