//! The variation axes: each value, with a scenario that fails only under it
//! and passes under `none`; warm and cold caches; a value this machine
//! cannot give becomes an error for its cell.

use std::fs;
use std::time::{Duration, SystemTime};

use crate::support::reports::{JCell, JReport, replay_json, replay_json_under, scenario};
// Timing conditions act on the whole machine (busy threads, stop/continue
// cycles); their tests take turns with every test that loads it, and with
// the tests whose `none` cell must answer within a deadline.
use crate::support::{MACHINE as TIMING, Sandbox};

/// Runs bugpack in a session of its own whose scheduling group, and every
/// process in it, has the highest priority (as root; elsewhere the command
/// still runs, unprioritised). A CPU-share probe in the run then competes
/// only with bugpack's own busy threads, never with the rest of a shared
/// machine: what it measures is this replay's effect.
const PRIORITISED: &[&str] = &[
    "setsid",
    "-w",
    "sh",
    "-c",
    "echo -20 > /proc/self/autogroup 2>/dev/null; exec nice -n -20 \"$@\"",
    "sh",
];

/// The outcome counts of the cell with these axes.
fn cell<'a>(r: &'a JReport, timing: &str, proxy: &str, cache: &str) -> &'a JCell {
    r.cells
        .iter()
        .find(|c| {
            c.axes["timing"] == timing && c.axes["proxy"] == proxy && c.axes["cache"] == cache
        })
        .unwrap_or_else(|| panic!("no cell {timing}/{proxy}/{cache}"))
}

/// A service answering /status with PENDING for its first second, then
/// SUCCESS, with the headers given; and a client that polls until SUCCESS.
fn polling(sb: &Sandbox, name: &str, headers: &str) -> String {
    let app = format!(
        "import http.server, os, time\n\
         START = time.time()\n\
         class H(http.server.BaseHTTPRequestHandler):\n    \
         def do_GET(self):\n        \
         body = b'SUCCESS' if time.time() - START > 1.0 else b'PENDING'\n        \
         self.send_response(200)\n        \
         {headers}\n        \
         self.send_header('Content-Length', str(len(body)))\n        \
         self.end_headers(); self.wfile.write(body)\n    \
         def log_message(self, *a): pass\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
    );
    let poll = "import os, time, urllib.request\n\
                url = os.environ['BUGPACK_SERVICE_APP_URL'] + '/status'\n\
                while urllib.request.urlopen(url).read() != b'SUCCESS':\n    time.sleep(0.1)\n\
                print('done')\n";
    scenario(
        sb,
        name,
        "name: poll\nservices: [{name: app, run: python3 app.py, ready: {http: /health}}]\n\
         run: python3 poll.py\ntimeout: 4s\nexpect: {hang: true}\n",
        &[("app.py", &app), ("poll.py", poll)],
    )
}

#[test]
fn a_caching_proxy_serves_the_first_pending_forever() {
    let sb = Sandbox::new();
    let s = polling(&sb, "ajax", "self.send_header('Cache-Control', 'no-store')");
    let r = replay_json(
        &sb,
        &s,
        &["--runs", "2", "--proxy", "none,pass,cache,rfc"],
        0,
    );
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    assert_eq!(cell(&r, "none", "pass", "cold").reproduced, 0);
    assert_eq!(
        cell(&r, "none", "rfc", "cold").reproduced,
        0,
        "rfc must not cache no-store"
    );
    let cached = cell(&r, "none", "cache", "cold");
    assert_eq!(cached.reproduced, 2);
    let note = cached.note.as_deref().unwrap_or_default();
    assert!(note.contains("GETs served from cache"), "{note}");
    let proxy = &cached.results[0].axes_detail["proxy"];
    assert!(proxy["hits"].as_u64().unwrap() > 3, "{proxy}");
    assert!(cell(&r, "none", "none", "cold").note.is_none());
}

#[test]
fn heuristic_freshness_caches_under_both_rfc_and_cache() {
    let sb = Sandbox::new();
    let two_days_ago = httpdate::fmt_http_date(SystemTime::now() - Duration::from_hours(48));
    let s = polling(
        &sb,
        "lastmod",
        &format!("self.send_header('Last-Modified', '{two_days_ago}')"),
    );
    let r = replay_json(&sb, &s, &["--runs", "1", "--proxy", "none,rfc,cache"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    assert_eq!(
        cell(&r, "none", "rfc", "cold").reproduced,
        1,
        "a two-day-old Last-Modified is fresh for hours"
    );
    assert_eq!(cell(&r, "none", "cache", "cold").reproduced, 1);
}

/// A client with a 150 ms deadline for one GET through whatever proxy it is given.
fn deadline(sb: &Sandbox) -> String {
    scenario(
        sb,
        "deadline",
        "name: deadline\n\
         services: [{name: app, run: python3 -m http.server $PORT --bind 127.0.0.1, ready: {http: /}}]\n\
         run: curl -sf --max-time 0.15 -o /dev/null $BUGPACK_SERVICE_APP_URL/\n\
         expect: {exit: nonzero}\n",
        &[],
    )
}

#[test]
fn a_slow_proxy_breaks_a_150ms_deadline() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    let s = deadline(&sb);
    let r = replay_json(&sb, &s, &["--runs", "2", "--proxy", "none,slow"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let slow = cell(&r, "none", "slow", "cold");
    assert_eq!(slow.reproduced, 2);
    assert!(
        slow.note
            .as_deref()
            .unwrap_or_default()
            .contains("adds 300 ms"),
        "{:?}",
        slow.note
    );
}

#[test]
fn a_flaky_proxy_resets_connections() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    let s = deadline(&sb);
    let r = replay_json(&sb, &s, &["--runs", "2", "--proxy", "none,flaky:1"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let flaky = cell(&r, "none", "flaky:1", "cold");
    assert_eq!(flaky.reproduced, 2);
    assert!(
        flaky.note.as_deref().unwrap_or_default().contains("reset"),
        "{:?}",
        flaky.note
    );
}

#[test]
fn trace_runs_the_step_under_strace() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "tracer",
        "name: tracer\nrun: grep -q 'TracerPid:[[:space:]]*0$' /proc/self/status\nexpect: {exit: nonzero}\n",
        &[],
    );
    let r = replay_json(&sb, &s, &["--runs", "2", "--timing", "none,trace"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let traced = cell(&r, "trace", "none", "cold");
    assert_eq!(traced.reproduced, 2);
    assert!(
        traced
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("strace"),
        "{:?}",
        traced.note
    );
}

#[test]
fn trace_without_strace_is_an_error_for_its_cell() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "t", "name: t\nrun: exit 1\n", &[]);
    let out = sb
        .bugpack()
        .env("PATH", "/nonexistent")
        .args([
            "replay",
            &s,
            "--yes",
            "--runs",
            "1",
            "--timing",
            "none,trace",
            "--json",
            "r.json",
        ])
        .run()
        .success();
    let r: JReport = serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 1);
    let traced = cell(&r, "trace", "none", "cold");
    assert_eq!(traced.errors, 1);
    assert!(
        traced.results[0].reason.contains("needs strace"),
        "{}",
        traced.results[0].reason
    );
    assert!(out.stdout.contains("needs strace"), "{}", out.stdout);
}

#[test]
fn cpu1_pins_the_run_to_one_cpu() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "cpus",
        "name: cpus\nrun: python3 -c 'import os, sys; sys.exit(1 if len(os.sched_getaffinity(0)) == 1 else 0)'\n\
         expect: {exit: 1}\n",
        &[],
    );
    let r = replay_json(&sb, &s, &["--runs", "2", "--timing", "none,cpu1"], 0);
    assert_eq!(
        cell(&r, "none", "none", "cold").reproduced,
        0,
        "this machine has more than one CPU"
    );
    let pinned = cell(&r, "cpu1", "none", "cold");
    assert_eq!(pinned.reproduced, 2);
    let note = pinned.note.as_deref().unwrap_or_default();
    assert!(note.contains("pinned to CPU"), "{note}");
}

#[test]
fn cpu1_on_a_single_cpu_is_an_error_with_no_note() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "one", "name: one\nrun: exit 1\n", &[]);
    let r = replay_json_under(
        &sb,
        &["taskset", "-c", "0"],
        &s,
        &["--runs", "1", "--timing", "cpu1"],
        4,
    );
    assert_eq!(r.verdict, "error");
    let c = cell(&r, "cpu1", "none", "cold");
    assert_eq!(c.errors, 1);
    assert!(
        c.results[0].reason.contains("more than one CPU"),
        "{}",
        c.results[0].reason
    );
    assert_eq!(c.note, None, "nothing was pinned: no note may say so");
}

/// A step that counts how often it is continued after being stopped.
const STOPPED: &str = "import signal, sys, time\n\
                       n = 0\n\
                       def on_cont(*_):\n    global n\n    n += 1\n\
                       signal.signal(signal.SIGCONT, on_cont)\n\
                       end = time.time() + 0.8\n\
                       while time.time() < end:\n    time.sleep(0.002)\n\
                       print(n)\n\
                       sys.exit(1 if n >= 3 else 0)\n";

#[test]
fn slow_and_jitter_stop_and_continue_the_run() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "stops",
        "name: stops\nrun: python3 stops.py\nexpect: {exit: 1}\n",
        &[("stops.py", STOPPED)],
    );
    let r = replay_json(
        &sb,
        &s,
        &["--runs", "2", "--timing", "none,slow,jitter", "--seed", "3"],
        0,
    );
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let slow = cell(&r, "slow", "none", "cold");
    assert_eq!(slow.reproduced, 2);
    let duty = slow.results[0].axes_detail["timing"]["duty"]
        .as_f64()
        .unwrap();
    assert!(
        (0.3..0.7).contains(&duty),
        "slow is a 50% duty cycle, measured {duty}"
    );
    assert_eq!(cell(&r, "jitter", "none", "cold").reproduced, 2);
    assert!(
        slow.note.as_deref().unwrap_or_default().contains("stopped"),
        "{:?}",
        slow.note
    );
}

/// The pauses `jitter` gave run 0 of a `--seed` replay of [`STOPPED`].
fn jitter_pauses(sb: &Sandbox, s: &str, seed: &str) -> Vec<u64> {
    let r = replay_json(
        sb,
        s,
        &["--runs", "1", "--timing", "jitter", "--seed", seed],
        0,
    );
    let jitter = cell(&r, "jitter", "none", "cold");
    assert_eq!(jitter.reproduced, 1);
    let note = jitter.note.as_deref().unwrap_or_default();
    assert!(note.starts_with("jitter: stopped"), "{note}");
    let detail = &jitter.results[0].axes_detail["timing"];
    let stops = detail["stops"].as_u64().unwrap();
    let pauses: Vec<u64> = detail["pauses_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(
        pauses.len() >= 3 && pauses.len() as u64 <= stops,
        "{detail}"
    );
    assert!(pauses.iter().all(|p| (1..=20).contains(p)), "{detail}");
    pauses
}

#[test]
fn jitter_pauses_follow_the_seed() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "stops",
        "name: stops\nrun: python3 stops.py\nexpect: {exit: 1}\n",
        &[("stops.py", STOPPED)],
    );
    let first = jitter_pauses(&sb, &s, "3");
    let again = jitter_pauses(&sb, &s, "3");
    let other = jitter_pauses(&sb, &s, "4");
    // How many pauses fit in a run depends on how fast this machine is; the
    // pauses themselves, in order, depend only on the seed.
    let n = first.len().min(again.len());
    assert_eq!(first[..n], again[..n], "same --seed, same pauses");
    let m = first.len().min(other.len());
    assert_ne!(first[..m], other[..m], "another --seed, other pauses");
}

#[test]
fn load_keeps_every_cpu_busy_during_the_run() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    // Pins itself to one of its CPUs and measures the share of that CPU a
    // busy loop gets: all of it alone, half of it beside a busy thread.
    let probe = "import os, sys, time\n\
                 cpus = sorted(os.sched_getaffinity(0))\n\
                 os.sched_setaffinity(0, {cpus[0]})\n\
                 time.sleep(0.05)\n\
                 def share(span):\n    \
                 wall, cpu = time.monotonic(), time.thread_time()\n    \
                 while time.monotonic() - wall < span:\n        pass\n    \
                 return (time.thread_time() - cpu) / (time.monotonic() - wall)\n\
                 shares = sorted(share(0.1) for _ in range(5))\n\
                 print(f'cpus {len(cpus)} share {shares[2]:.2f}')\n\
                 sys.exit(1 if shares[2] < 0.75 else 0)\n";
    let s = scenario(
        &sb,
        "busy",
        "name: busy\nrun: python3 probe.py\nexpect: {exit: 1}\n",
        &[("probe.py", probe)],
    );
    // `load` first, one run at a time: the `none` run after it shows the
    // busy threads stopped with the run step.
    let r = replay_json_under(
        &sb,
        PRIORITISED,
        &s,
        &["--runs", "1", "--jobs", "1", "--timing", "load,none"],
        0,
    );
    let loaded = cell(&r, "load", "none", "cold");
    assert_eq!(loaded.reproduced, 1, "{:?}", loaded.results[0].stdout_tail);
    assert_eq!(
        cell(&r, "none", "none", "cold").reproduced,
        0,
        "the busy threads outlived the load run"
    );
    let said = loaded.results[0].stdout_tail.as_deref().unwrap_or_default();
    let cpus: u64 = said
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    let detail = &loaded.results[0].axes_detail["timing"];
    assert_eq!(detail["busy_threads"].as_u64(), Some(cpus), "{detail}");
    assert_eq!(
        detail["cpus"].as_array().map(Vec::len),
        Some(usize::try_from(cpus).unwrap())
    );
    let note = loaded.note.as_deref().unwrap_or_default();
    assert!(note.contains(&format!("{cpus} busy threads")), "{note}");
}

#[test]
fn a_warm_cell_keeps_its_home_across_runs_after_a_warm_up() {
    let sb = Sandbox::new();
    // Reproduces when the home already holds what an earlier run left there.
    let s = scenario(
        &sb,
        "warm",
        "name: warm\nrun: 'test -e $XDG_CACHE_HOME/seen && exit 1; mkdir -p $XDG_CACHE_HOME && touch $XDG_CACHE_HOME/seen'\n",
        &[],
    );
    let r = replay_json(&sb, &s, &["--runs", "3", "--cache", "cold,warm"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let warm = cell(&r, "none", "none", "warm");
    assert_eq!(
        (warm.runs, warm.reproduced),
        (3, 3),
        "the uncounted warm-up run filled the cache"
    );
}

#[test]
fn bad_axis_values_are_usage_errors() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\n", &[]);
    for args in [
        &["--proxy", "bogus"][..],
        &["--proxy", "flaky:2"],
        &["--proxy", "slow:fast"],
        &["--timing", "sluggish"],
    ] {
        sb.bugpack()
            .args(["replay", &s, "--yes"])
            .args(args)
            .run()
            .code(2)
            .one_line_error();
    }
}

#[test]
fn an_app_that_refuses_proxied_requests_fails_only_behind_pass() {
    let sb = Sandbox::new();
    // Like a server behind an allow-list that rejects anything a proxy
    // forwarded: it answers 403 when the request carries `Via`.
    let app = "import http.server, os\n\
               class H(http.server.BaseHTTPRequestHandler):\n    \
               def do_GET(self):\n        \
               code = 403 if self.headers.get('Via') else 200\n        \
               self.send_response(code); self.send_header('Content-Length', '0'); self.end_headers()\n    \
               def log_message(self, *a): pass\n\
               http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    let s = scenario(
        &sb,
        "via",
        "name: via\nservices: [{name: app, run: python3 app.py, ready: {tcp: true}}]\n\
         run: curl -sf -o /dev/null $BUGPACK_SERVICE_APP_URL/\nexpect: {exit: nonzero}\n",
        &[("app.py", app)],
    );
    let r = replay_json(&sb, &s, &["--runs", "2", "--proxy", "none,pass"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let pass = cell(&r, "none", "pass", "cold");
    assert_eq!(pass.reproduced, 2);
    let proxy = &pass.results[0].axes_detail["proxy"];
    assert_eq!(proxy["requests"].as_u64(), Some(1), "{proxy}");
    assert_eq!(
        proxy["hits"].as_u64(),
        Some(0),
        "pass never caches: {proxy}"
    );
}

#[test]
fn a_warm_cell_keeps_its_proxy_cache_across_runs() {
    let sb = Sandbox::new();
    // Each run's service serves a token it also writes beside the run; a
    // response cached by an earlier run carries that run's token instead.
    let app = "import http.server, os\n\
               TOKEN = os.urandom(8).hex().encode()\n\
               open('token.txt', 'wb').write(TOKEN)\n\
               class H(http.server.BaseHTTPRequestHandler):\n    \
               def do_GET(self):\n        \
               self.send_response(200); self.send_header('Content-Length', str(len(TOKEN))); self.end_headers()\n        \
               self.wfile.write(TOKEN)\n    \
               def log_message(self, *a): pass\n\
               http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    let s = scenario(
        &sb,
        "stale",
        "name: stale\nservices: [{name: app, run: python3 app.py, ready: {tcp: true}}]\n\
         run: test \"$(curl -sf $BUGPACK_SERVICE_APP_URL/token)\" = \"$(cat token.txt)\"\n\
         expect: {exit: 1}\n",
        &[("app.py", app)],
    );
    let r = replay_json(
        &sb,
        &s,
        &["--runs", "2", "--proxy", "cache", "--cache", "cold,warm"],
        0,
    );
    assert_eq!(
        cell(&r, "none", "cache", "cold").reproduced,
        0,
        "a cold cache starts empty in every run"
    );
    let warm = cell(&r, "none", "cache", "warm");
    assert_eq!((warm.runs, warm.reproduced), (2, 2));
    for run in &warm.results {
        // Every run's counters arrive, however fast its last response was.
        let proxy = &run.axes_detail["proxy"];
        assert_eq!(proxy["hits"].as_u64(), Some(1), "{proxy}");
    }
}

#[test]
fn setup_and_run_get_the_proxy_and_services_do_not() {
    let sb = Sandbox::new();
    // Reproduces when `setup` and `run` saw the proxy and the service did not.
    let check = "import os, sys\n\
                 def env(path):\n    \
                 return dict(l.split('=', 1) for l in open(path).read().splitlines() if '=' in l)\n\
                 def proxied(e):\n    \
                 return e.get('http_proxy', '').startswith('http://127.0.0.1:') and e.get('HTTP_PROXY') == e['http_proxy']\n\
                 service = env('service.env')\n\
                 leaked = [k for k in service if k.lower() == 'http_proxy']\n\
                 print('setup', proxied(env('setup.env')), 'run', proxied(os.environ), 'service', leaked)\n\
                 sys.exit(1 if proxied(env('setup.env')) and proxied(os.environ) and not leaked else 0)\n";
    let s = scenario(
        &sb,
        "proxyenv",
        "name: proxyenv\nsetup: ['env > setup.env']\n\
         services: [{name: app, run: 'env > service.env; exec python3 -m http.server $PORT --bind 127.0.0.1', ready: {tcp: true}}]\n\
         run: python3 check.py\nexpect: {exit: 1}\n",
        &[("check.py", check)],
    );
    let r = replay_json(&sb, &s, &["--runs", "1", "--proxy", "none,pass"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let pass = cell(&r, "none", "pass", "cold");
    assert_eq!(
        pass.reproduced, 1,
        "{:?} {:?}",
        pass.results[0].stdout_tail, pass.results[0].stderr_tail
    );
}

#[test]
fn the_table_and_markdown_say_what_each_condition_did() {
    let sb = Sandbox::new();
    let app = "import http.server, os\n\
               class H(http.server.BaseHTTPRequestHandler):\n    \
               def do_GET(self):\n        \
               self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')\n    \
               def log_message(self, *a): pass\n\
               http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    let s = scenario(
        &sb,
        "twice",
        "name: twice\nservices: [{name: app, run: python3 app.py, ready: {tcp: true}}]\n\
         run: 'curl -sf $BUGPACK_SERVICE_APP_URL/x && curl -sf $BUGPACK_SERVICE_APP_URL/x'\n",
        &[("app.py", app)],
    );
    let out = sb
        .bugpack()
        .args([
            "replay",
            &s,
            "--yes",
            "--runs",
            "1",
            "--proxy",
            "none,cache",
            "--markdown",
            "r.md",
        ])
        .run()
        .code(1);
    let note = "proxy cache, 1 run: 2 requests; 1 of 2 GETs served from cache";
    let lines: Vec<&str> = out.stdout.lines().collect();
    let row = |proxy: &str| {
        lines
            .iter()
            .position(|l| l.split_whitespace().take(3).eq(["none", proxy, "cold"]))
            .unwrap_or_else(|| panic!("no {proxy} row\n{}", out.stdout))
    };
    assert_eq!(
        lines[row("cache") + 1],
        format!("    {note}"),
        "{}",
        out.stdout
    );
    assert!(
        !lines[row("none") + 1].starts_with("    "),
        "no proxy, no note\n{}",
        out.stdout
    );
    let md = fs::read_to_string(sb.path("r.md")).unwrap();
    assert!(
        md.contains(&format!("- `none/cache/cold`: {note}\n")),
        "{md}"
    );
    assert!(!md.contains("`none/none/cold`"), "{md}");
}

#[test]
fn jobs_run_cells_side_by_side() {
    let sb = Sandbox::new();
    // Each run leaves its mark in a directory all runs can reach, then waits
    // (20 s at most) for another run's mark: two cells of one run each meet
    // only if they run at the same time.
    let meet = tempfile::Builder::new()
        .prefix("bugpack-meet-")
        .tempdir()
        .unwrap();
    fs::set_permissions(
        meet.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let script = "import os, sys, time\n\
                  d = sys.argv[1]\n\
                  open(os.path.join(d, os.environ['BUGPACK_SEED']), 'w').close()\n\
                  end = time.time() + 20\n\
                  while len(os.listdir(d)) < 2 and time.time() < end:\n    time.sleep(0.02)\n\
                  sys.exit(1 if len(os.listdir(d)) >= 2 else 0)\n";
    let s = scenario(
        &sb,
        "meet",
        &format!(
            "name: meet\nrun: python3 meet.py {}\ntimeout: 30s\nexpect: {{exit: 1}}\n",
            meet.path().display()
        ),
        &[("meet.py", script)],
    );
    let r = replay_json(
        &sb,
        &s,
        &["--runs", "1", "--jobs", "2", "--proxy", "none,pass"],
        0,
    );
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 1);
    assert_eq!(cell(&r, "none", "pass", "cold").reproduced, 1);
    assert_eq!(fs::read_dir(meet.path()).unwrap().count(), 2);
}

/// A client that times one GET through whatever proxy it is given and
/// fails when it took longer than `deadline` seconds.
fn timed_get(sb: &Sandbox, deadline: f64) -> String {
    let client = format!(
        "import os, sys, time, urllib.request\n\
         t = time.monotonic()\n\
         urllib.request.urlopen(os.environ['BUGPACK_SERVICE_APP_URL'] + '/').read()\n\
         took = time.monotonic() - t\n\
         print(f'took {{took:.3f}} s')\n\
         sys.exit(1 if took > {deadline} else 0)\n"
    );
    scenario(
        sb,
        "timed",
        "name: timed\n\
         services: [{name: app, run: python3 -m http.server $PORT --bind 127.0.0.1, ready: {http: /}}]\n\
         run: python3 client.py\nexpect: {exit: 1}\n",
        &[("client.py", &client)],
    )
}

#[test]
fn slow_takes_its_delay_from_the_value() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    let s = timed_get(&sb, 0.6);
    let r = replay_json(&sb, &s, &["--runs", "1", "--proxy", "none,slow:1000"], 0);
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let slow = cell(&r, "none", "slow:1000", "cold");
    assert_eq!(slow.reproduced, 1);
    let proxy = &slow.results[0].axes_detail["proxy"];
    assert_eq!(proxy["requests"].as_u64(), Some(1), "{proxy}");
    let added = proxy["added_delay_ms"].as_u64().unwrap();
    assert!((900..=1100).contains(&added), "1000 ms ±10%: {proxy}");
    let note = slow.note.as_deref().unwrap_or_default();
    assert!(note.contains("adds 1000 ms"), "{note}");
}

#[test]
fn flaky_resets_the_share_of_connections_it_is_given() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    // 40 GETs, each on a connection of its own; fails if any of them failed.
    let client = "import os, sys, urllib.request\n\
                  url = os.environ['BUGPACK_SERVICE_APP_URL'] + '/'\n\
                  failed = 0\n\
                  for _ in range(40):\n    \
                  try:\n        urllib.request.urlopen(url, timeout=10).read()\n    \
                  except Exception:\n        failed += 1\n\
                  print(f'{failed} of 40 failed')\n\
                  sys.exit(1 if failed else 0)\n";
    let s = scenario(
        &sb,
        "many",
        "name: many\n\
         services: [{name: app, run: python3 -m http.server $PORT --bind 127.0.0.1, ready: {http: /}}]\n\
         run: python3 client.py\ntimeout: 30s\nexpect: {exit: 1}\n",
        &[("client.py", client)],
    );
    let r = replay_json(
        &sb,
        &s,
        &["--runs", "1", "--proxy", "none,flaky:0,flaky:0.5"],
        0,
    );
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    let never = cell(&r, "none", "flaky:0", "cold");
    assert_eq!(never.reproduced, 0);
    assert_eq!(
        never.results[0].axes_detail["proxy"]["resets"].as_u64(),
        Some(0)
    );
    let half = cell(&r, "none", "flaky:0.5", "cold");
    assert_eq!(half.reproduced, 1);
    let proxy = &half.results[0].axes_detail["proxy"];
    assert_eq!(proxy["connections"].as_u64(), Some(40), "{proxy}");
    let resets = proxy["resets"].as_u64().unwrap();
    assert!((8..=32).contains(&resets), "about half of 40: {proxy}");
    let said = half.results[0].stdout_tail.as_deref().unwrap_or_default();
    assert!(
        said.starts_with(&format!("{resets} of 40 failed")),
        "{said}"
    );
    let note = half.note.as_deref().unwrap_or_default();
    assert!(note.contains("resets 50% of connections"), "{note}");
}
