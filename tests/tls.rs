//! HTTPS through the proxy axis and services behind TLS: the replay's own
//! CA signs the proxy's certificates and the services', every step gets a
//! bundle with it, an HTTPS poll is cached under `cache` like a plain one,
//! and nothing of the CA is left once the replay is over.

use serde_json::Value;

use crate::support::Sandbox;
use crate::support::reports::{JReport, replay_json, scenario};

/// A service (over TLS) that answers PENDING for its first second, then
/// SUCCESS, with `Cache-Control: no-store`; and `poll`, which polls it.
fn https_poll(sb: &Sandbox, name: &str, poll: &str) -> String {
    let app = "import http.server, os, time\n\
               START = time.time()\n\
               class H(http.server.BaseHTTPRequestHandler):\n    \
               def do_GET(self):\n        \
               body = b'SUCCESS' if time.time() - START > 1.0 else b'PENDING'\n        \
               self.send_response(200)\n        \
               self.send_header('Cache-Control', 'no-store')\n        \
               self.send_header('Content-Length', str(len(body)))\n        \
               self.end_headers(); self.wfile.write(body)\n    \
               def log_message(self, *a): pass\n\
               http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    scenario(
        sb,
        name,
        "name: poll\nservices: [{name: app, run: python3 app.py, ready: {http: /health}, tls: true}]\n\
         run: sh poll.sh\ntimeout: 4s\nexpect: {hang: true}\n",
        &[("app.py", app), ("poll.sh", poll)],
    )
}

fn by_proxy<'a>(r: &'a JReport, proxy: &str) -> &'a crate::support::reports::JCell {
    r.cells
        .iter()
        .find(|c| c.axes["proxy"] == proxy)
        .unwrap_or_else(|| panic!("no cell {proxy}"))
}

fn check_poll(sb: &Sandbox, name: &str, poll: &str) {
    let s = https_poll(sb, name, poll);
    let r = replay_json(sb, &s, &["--runs", "1", "--proxy", "none,cache"], 0);
    let plain = by_proxy(&r, "none");
    assert_eq!(
        (plain.passed, plain.reproduced),
        (1, 0),
        "{name}: straight to the TLS service it sees SUCCESS: {:?}",
        plain.results[0].stderr_tail
    );
    let cached = by_proxy(&r, "cache");
    assert_eq!(cached.reproduced, 1, "{name}: {:?}", cached.results[0]);
    let stats = &cached.results[0].axes_detail["proxy"];
    assert!(stats["connects"].as_u64() >= Some(1), "{name}: {stats}");
    assert!(
        stats["hits"].as_u64() >= Some(3),
        "{name}: the HTTPS polls were served from the cache: {stats}"
    );
}

#[test]
fn an_https_poll_from_python_is_cached_under_cache_and_passes_under_none() {
    let sb = Sandbox::new();
    let poll = "exec python3 -c \"\n\
                import os, time, urllib.request\n\
                url = os.environ['BUGPACK_SERVICE_APP_URL'] + '/status'\n\
                assert url.startswith('https://'), url\n\
                while urllib.request.urlopen(url).read() != b'SUCCESS':\n    time.sleep(0.1)\n\
                \"\n";
    check_poll(&sb, "py", poll);
}

#[test]
fn an_https_poll_from_curl_is_cached_under_cache_and_passes_under_none() {
    let sb = Sandbox::new();
    let poll = "case $BUGPACK_SERVICE_APP_URL in https://*) ;; *) exit 3;; esac\n\
                until [ \"$(curl -sSf \"$BUGPACK_SERVICE_APP_URL/status\")\" = SUCCESS ]; do sleep 0.1; done\n";
    check_poll(&sb, "curl", poll);
}

#[test]
fn every_step_gets_a_bundle_with_the_runs_ca_and_it_is_gone_afterwards() {
    let sb = Sandbox::new();
    // Prints what it found, then fails so that the report keeps it.
    let probe = "import json, os, subprocess, sys\n\
                 names = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'GIT_SSL_CAINFO']\n\
                 paths = {os.environ.get(n) for n in names}\n\
                 path = paths.pop() if len(paths) == 1 else None\n\
                 text = open(path).read() if path else ''\n\
                 url = os.environ['BUGPACK_SERVICE_APP_URL'] + '/x'\n\
                 trusted = subprocess.run(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', url], capture_output=True, text=True)\n\
                 system_only = subprocess.run(['curl', '-sS', '-o', '/dev/null', '--cacert', '/etc/ssl/certs/ca-certificates.crt', url], capture_output=True)\n\
                 print(json.dumps({'path': path, 'certs': text.count('BEGIN CERTIFICATE'),\n    \
                 'ours': 'bugpack replay CA' in text, 'key': 'PRIVATE KEY' in text, 'url': url,\n    \
                 'trusted': trusted.stdout, 'system_only': system_only.returncode}))\n\
                 sys.exit(1)\n";
    let app = "import http.server, os\n\
               class H(http.server.BaseHTTPRequestHandler):\n    \
               def do_GET(self):\n        \
               self.send_response(204); self.end_headers()\n    \
               def log_message(self, *a): pass\n\
               http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    let s = scenario(
        &sb,
        "ca",
        "name: ca\nservices: [{name: app, run: python3 app.py, tls: true}]\n\
         run: python3 probe.py\nexpect: {exit: 1}\n",
        &[("app.py", app), ("probe.py", probe)],
    );
    // Straight to the service, and through the intercepting proxy.
    let r = replay_json(&sb, &s, &["--runs", "1", "--proxy", "none,pass"], 0);
    for cell in &r.cells {
        let out = cell.results[0].stdout_tail.as_deref().unwrap_or_default();
        let seen: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        check_bundle(&seen, &sb);
    }
    let through = r.cells.iter().find(|c| c.axes["proxy"] == "pass").unwrap();
    let stats = &through.results[0].axes_detail["proxy"];
    assert!(stats["connects"].as_u64() >= Some(1), "{stats}");
}

/// What the probe found: one bundle in every variable, with the system's
/// CAs and the run's, no key, a service that answers through it and not
/// without it; and the bundle gone after the replay.
fn check_bundle(seen: &Value, sb: &Sandbox) {
    assert!(
        seen["path"].is_string(),
        "one path in every variable: {seen}"
    );
    assert_eq!(seen["ours"], true, "{seen}");
    assert_eq!(
        seen["key"], false,
        "the CA's key never reaches the disk: {seen}"
    );
    assert!(
        seen["certs"].as_u64() > Some(1),
        "the system's CAs too: {seen}"
    );
    assert!(
        seen["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert_eq!(seen["trusted"], "204", "{seen}");
    assert_eq!(
        seen["system_only"], 60,
        "the service's certificate is the replay CA's, which the system does not trust: {seen}"
    );
    let path = seen["path"].as_str().unwrap();
    assert!(
        !std::path::Path::new(path).exists(),
        "{path} outlived the replay"
    );
    let left: Vec<String> = sb
        .listing()
        .into_iter()
        .filter(|p| p.contains("ca-bundle"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
