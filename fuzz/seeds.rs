//! Writes the seed corpora, one directory per target, so that no opaque
//! input is checked in: `seeds DIR` fills `DIR/<target>/`.
//!
//! Bundles come from bugpack's own writer (plain, with a scenario and
//! executable script, signed); manifests are theirs; scenarios, profiles,
//! texts with secrets and HTTP requests are written out here.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use bugpack::bundle::BundleWriter;
use bugpack::sign::SigningKey;
use bugpack_fuzz::redact::SHAPES;

const CREATED: &str = "2026-11-22T10:00:00Z";

const SCENARIO: &str = r#"name: cached-ajax
description: polling UI hangs behind a caching proxy
env: {POLL_INTERVAL: "0.2"}
setup: ["python3 make_fixture.py"]
services:
  - name: app
    run: python3 server.py
    ready: {http: /health}
    ready_timeout: 10s
  - name: worker
    run: python3 worker.py
    ready: {log: "^ready"}
  - name: db
    run: python3 db.py
    ready: {tcp: true}
run: python3 client.py
timeout: 10s
expect:
  hang: true
  exit: nonzero
  output: "PENDING forever"
"#;

const SCENARIOS: &[&str] = &[
    SCENARIO,
    "name: x\nrun: 'true'\n",
    "name: demo\nrun: sh run.sh\ntimeout: 5s\nexpect: {exit: 3}\n",
    "name: pipe\nrun: \"python3 -c 'print(1)'\"\ntimeout: 1h 30m\nexpect: {output: '^(a|b)+$', hang: false}\n",
    "---\nname: doc\nrun: |\n  set -e\n  make test\nenv:\n  A: '1'\n  B: \"two words\"\n",
];

const PROFILES: &[&str] = &[
    "",
    "config: [conf/app.ini]\nlogs: ['logs/*.log']\nlog_bytes: 64KiB\nversions: {python: python3 --version}\nenv_deny: ['AWS_*']\nredact: ['corp-[0-9]+', {name: ticket, regex: 'TCK-[0-9]+'}]\nscenario: repro\ntimeout: 30s\n",
    "title: '[myapp]'\nprobe: ['http://127.0.0.1:8080/health', 'https://example.com/']\ninclude: [fixtures]\n",
    "logs: []\nredact: [{name: a.b-c, regex: '(?i)secret=(\\w+)'}]\ntimeout: 1m 30s\n",
];

/// Lines that meet the secret shapes: partial key blocks, placeholders,
/// credentials and assignments, for the text around the secret.
const AROUND: &[&str] = &[
    "",
    "-----BEGIN PRIVATE KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow",
    "log line 1\nAuthorization: Basic",
    "[REDACTED:password:1] then password=hunter2hunter2",
    "url=https://user:pass@example.com/ and token: abc",
    "{\"api_key\": \"",
    "Cookie: a=b; Set-Cookie: c=d\r\n",
    "export DEPLOY_TOKEN=",
    "ghp_",
];

const MATERIAL: &[u8] = b"aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE1fG3hI5jK7lM9nO1pQ3rS5tU7";

fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "seeds".into()));
    let scratch = tempfile::tempdir()?;
    let bundles = bundles(scratch.path())?;
    for (name, bytes) in &bundles {
        put(&out, "bundle_open", name, bytes)?;
    }
    for (name, bytes) in manifests(scratch.path(), &bundles)? {
        put(&out, "manifest", &name, &bytes)?;
    }
    for (i, text) in SCENARIOS.iter().enumerate() {
        put(&out, "scenario", &format!("scenario-{i}"), text.as_bytes())?;
    }
    for (i, text) in PROFILES.iter().enumerate() {
        put(&out, "profile", &format!("profile-{i}"), text.as_bytes())?;
    }
    for (pick, shape) in SHAPES.iter().enumerate() {
        for (i, around) in AROUND.iter().enumerate() {
            let mut input = vec![u8::try_from(pick)?, u8::try_from(i * 7)?];
            input.extend_from_slice(&MATERIAL[..shape.len.1.min(MATERIAL.len())]);
            input.extend_from_slice(around.as_bytes());
            input.push(0);
            input.extend_from_slice(b"after the secret\n");
            put(&out, "redact", &format!("{}-{i}", shape.rule), &input)?;
        }
    }
    for (i, request) in requests().iter().enumerate() {
        for pick in 0..3u8 {
            let mut input = vec![pick];
            input.extend_from_slice(request);
            put(&out, "proxy", &format!("request-{i}-{pick}"), &input)?;
        }
    }
    println!("seed corpora written under {}", out.display());
    Ok(())
}

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = out.join(target);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::write(dir.join(name), bytes).with_context(|| format!("cannot write {name}"))
}

/// Bundles as `capture` writes them.
fn bundles(scratch: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut made = Vec::new();

    let mut plain = BundleWriter::new("a plain report", CREATED);
    plain.add_bytes("ISSUE.md", "# a plain report\n")?;
    plain.add_bytes("steps.md", "1. run it\n2. it fails\n")?;
    made.push(("plain", plain, false));

    let script = scratch.join("run.sh");
    fs::write(&script, "#!/bin/sh\necho boom\nexit 3\n")?;
    let mut full = BundleWriter::new("cached ajax polling hangs", CREATED);
    full.set_scenario("cached-ajax");
    full.set_redactions([("github-token".to_owned(), 2)].into());
    full.add_bytes("ISSUE.md", "# cached ajax\n\nIt hangs.\n")?;
    full.add_bytes("steps.md", "1. open the page\n")?;
    full.add_bytes("env/system.yaml", "os: linux\nkernel: 6.1.0\ncpus: 2\n")?;
    full.add_bytes(
        "env/vars.yaml",
        "PATH: /usr/bin\nGH_TOKEN: '[REDACTED:env:1]'\n",
    )?;
    full.add_bytes(
        "config/app/settings.ini",
        "[db]\npassword = [REDACTED:password:1]\n",
    )?;
    full.add_bytes("logs/app.log", "poll 1 PENDING\n".repeat(40))?;
    full.add_bytes("scenario/scenario.yaml", SCENARIO)?;
    full.add_file("scenario/run.sh", &script, true)?;
    made.push(("scenario", full.clone(), false));
    made.push(("signed", full, true));

    let key = SigningKey::generate("seed@bugpack")?;
    let mut out = Vec::new();
    for (name, writer, signed) in made {
        let path = scratch.join(format!("{name}.zip"));
        let sign = |bytes: &[u8]| -> Result<Vec<u8>> { Ok(key.sign(bytes)?) };
        writer.write(&path, signed.then_some(&sign as _))?;
        out.push((name.to_owned(), fs::read(&path)?));
    }
    Ok(out)
}

/// The bundles' manifests, and a few hand-written variants.
fn manifests(scratch: &Path, bundles: &[(String, Vec<u8>)]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (name, _) in bundles {
        let bundle = bugpack::bundle::Bundle::open(
            &scratch.join(format!("{name}.zip")),
            &bugpack::bundle::Limits::default(),
        )?;
        out.push((format!("{name}.yaml"), bundle.manifest_bytes().to_vec()));
    }
    out.push((
        "flow.yaml".to_owned(),
        b"{format: bugpack/v1, id: 0123456789abcdef0123456789abcdef, created: '2026-11-22T10:00:00Z', title: t, bugpack_version: 0.1.0, scenario: null, redactions: {}, files: []}\n".to_vec(),
    ));
    out.push((
        "future.yaml".to_owned(),
        b"format: bugpack/v2\nid: x\n".to_vec(),
    ));
    Ok(out)
}

/// Requests a client sends a proxy: absolute-form, CONNECT, conditional,
/// pipelined, with bodies, and the kinds the proxy must refuse.
fn requests() -> Vec<Vec<u8>> {
    let origin = bugpack_fuzz::proxy::ORIGIN;
    let raw = |response: &str| {
        let mut encoded = String::new();
        for b in response.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        format!("GET http://{origin}/raw/{encoded} HTTP/1.1\r\nHost: {origin}\r\n\r\n")
    };
    let get = format!("GET http://{origin}/page HTTP/1.1\r\nHost: {origin}\r\n\r\n");
    [
        get.clone(),
        format!("{get}{get}"),
        format!("GET http://{origin}/page HTTP/1.1\r\nHost: {origin}\r\nIf-None-Match: \"v1\"\r\nCache-Control: max-age=0\r\n\r\n"),
        format!("HEAD http://{origin}/page HTTP/1.0\r\n\r\n"),
        format!("POST http://{origin}/page HTTP/1.1\r\nHost: {origin}\r\nContent-Length: 5\r\n\r\nhello{get}"),
        format!("PUT http://{origin}/page HTTP/1.1\r\nHost: {origin}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        format!("CONNECT {origin} HTTP/1.1\r\nHost: {origin}\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "CONNECT example.com HTTP/1.1\r\n\r\n".to_owned(),
        "GET /relative HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_owned(),
        "GET https://127.0.0.1:8080/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_owned(),
        "GET http://127.0.0.1:99999/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_owned(),
        "GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n".to_owned(),
        format!("GET http://user:pw@{origin}/ HTTP/1.1\r\nHost: {origin}\r\n\r\n"),
        format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\nVia: 1.1 bugpack\r\n\r\n"),
        format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nProxy-Authorization: Basic eDp5\r\n\r\n"),
        format!("GET http://{origin}/ HTTP/1.1\r\n\r\n"),
        raw("HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok"),
        raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVary: Accept\r\nAge: 30\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        raw("HTTP/1.1 200 OK\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nSet-Cookie: s=1\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\nbody until close"),
        raw("HTTP/1.1 304 Not Modified\r\nETag: \"v2\"\r\n\r\n"),
        raw("HTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\n!"),
        raw("not http at all"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}
