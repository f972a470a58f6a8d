//! The variation axes: each value, with a scenario that fails only under it
//! and passes under `none`; warm and cold caches; a value this machine
//! cannot give becomes an error for its cell.

use std::fs;

use crate::support::reports::{JCell, JReport, replay_json, scenario};
// Timing conditions act on the whole machine (busy threads, stop/continue
// cycles); their tests take turns with every test that loads it.
use crate::support::{MACHINE as TIMING, Sandbox};

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
    let s = polling(
        &sb,
        "lastmod",
        "self.send_header('Last-Modified', 'Thu, 20 Nov 2025 10:00:00 GMT')",
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
    assert_eq!(cell(&r, "cpu1", "none", "cold").reproduced, 2);
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

#[test]
fn load_keeps_every_cpu_busy_during_the_run() {
    let _turn = TIMING.lock();
    let sb = Sandbox::new();
    // Samples how many tasks are runnable: under `load` there is a busy
    // thread per CPU besides the sampler itself.
    let probe = "import os, sys, time\n\
                 cpus = os.cpu_count()\n\
                 seen = []\n\
                 for _ in range(40):\n    \
                 seen.append(int(open('/proc/loadavg').read().split()[3].split('/')[0]))\n    \
                 time.sleep(0.01)\n\
                 seen.sort()\n\
                 sys.exit(1 if seen[len(seen) // 2] > cpus else 0)\n";
    let s = scenario(
        &sb,
        "busy",
        "name: busy\nrun: python3 probe.py\nexpect: {exit: 1}\n",
        &[("probe.py", probe)],
    );
    let r = replay_json(
        &sb,
        &s,
        &["--runs", "2", "--jobs", "1", "--timing", "none,load"],
        0,
    );
    assert_eq!(cell(&r, "none", "none", "cold").reproduced, 0);
    assert_eq!(cell(&r, "load", "none", "cold").reproduced, 2);
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
