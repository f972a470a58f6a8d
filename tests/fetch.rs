//! Bundles by URL (issue 19): `replay`, `inspect`, `verify` and `diff` take
//! a URL, download the bundle from a local HTTP server (loopback `http://`
//! is allowed for this), cache it by SHA-256, honour `--sha256` and
//! `--max-size`, and refuse plain `http://` elsewhere. An issue's URL
//! replays the bundle it links to, read through a stand-in GitHub API.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use sha2::{Digest as _, Sha256};

use crate::support::Sandbox;
use crate::support::zipper::BundleSpec;

/// A loopback HTTP server answering each route's path (the query ignored)
/// with its body and anything else with 404; keeps every request's head.
pub(crate) struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(body: Vec<u8>) -> Self {
        Self::routes(vec![("/bug.zip".to_owned(), body)])
    }

    pub(crate) fn routes(routes: Vec<(String, Vec<u8>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().unwrap().push(head);
                let (status, payload) = match routes.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => ("200 OK", body.as_slice()),
                    None => ("404 Not Found", b"no such attachment".as_slice()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = stream.write_all(payload);
            }
        });
        Self { base, requests }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn served(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn a_bundle_by_url_is_downloaded_cached_and_replayed() {
    let sb = Sandbox::new();
    let bytes = BundleSpec::valid().zip().bytes();
    let digest = sha256(&bytes);
    let server = Server::start(bytes.clone());
    let url = server.url("/bug.zip");
    let cache = sb.path("cache");
    let run = || sb.bugpack().env("XDG_CACHE_HOME", &cache);

    run()
        .args(["verify", &url])
        .run()
        .success()
        .stdout_has("intact")
        .stderr_has(&format!("downloaded {url}"))
        .stderr_has(&digest);
    let cached = cache.join("bugpack/bundles").join(format!("{digest}.zip"));
    assert_eq!(std::fs::read(&cached).unwrap(), bytes);
    assert_eq!(server.served(), 1);

    // Pinned: the cached copy is used, with no request.
    run()
        .args(["inspect", &url, "--sha256", &digest.to_uppercase()])
        .run()
        .success()
        .stdout_has("demo bug")
        .stderr_has(&format!("cached {url}"));
    assert_eq!(server.served(), 1);

    // The demo scenario exits 3, as it expects: reproduced, exit 0.
    run()
        .args(["replay", &url, "--yes", "--runs", "2"])
        .run()
        .success()
        .stdout_has("2/2");
    assert_eq!(server.served(), 2);

    run().args(["diff", &url, &url]).run().success();

    // Nothing but the cached bundle is left in the cache directory.
    let left: Vec<_> = std::fs::read_dir(cache.join("bugpack/bundles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, [format!("{digest}.zip")]);
}

#[test]
fn a_wrong_hash_too_large_a_download_or_a_bad_url_is_refused() {
    let sb = Sandbox::new();
    let bytes = BundleSpec::valid().zip().bytes();
    let server = Server::start(bytes.clone());
    let url = server.url("/bug.zip");
    let cache = sb.path("cache");
    let run = || sb.bugpack().env("XDG_CACHE_HOME", &cache);
    let wrong = "ab".repeat(32);
    run()
        .args(["replay", &url, "--yes", "--sha256", &wrong])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("not the abab");
    run()
        .args(["verify", &url, "--max-size", "1KB"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("over the 1000-byte limit");
    let bundles = cache.join("bugpack/bundles");
    assert_eq!(
        std::fs::read_dir(&bundles).unwrap().count(),
        0,
        "a refused download stayed in the cache"
    );
    run()
        .args(["verify", &server.url("/missing.zip")])
        .run()
        .code(4)
        .one_line_error()
        .stderr_has("404");
    run()
        .args(["verify", "http://example.com/bug.zip"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("https://");
    run()
        .args(["verify", &url, "--sha256", "12345"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("64 hex digits");
    // --sha256 pins a local file too.
    sb.write("local.zip", &bytes);
    run()
        .args(["verify", "local.zip", "--sha256", &wrong])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("local.zip rejected");
    run()
        .args(["verify", "local.zip", "--sha256", &sha256(&bytes)])
        .run()
        .success();
}

#[test]
fn an_issue_url_replays_the_bundle_it_links_to() {
    let sb = Sandbox::new();
    let bytes = BundleSpec::valid().zip().bytes();
    // One server plays GitHub's API, another its attachment storage.
    let attachments = Server::start(bytes);
    let link = attachments.url("/bug.zip");
    let issue = serde_json::json!({"number": 7, "body": format!("It hangs: [bug.zip]({link})")});
    let comments = serde_json::json!([{"body": format!("same here, {link}")}]);
    let api = Server::routes(vec![
        (
            "/repos/o/r/issues/7".to_owned(),
            issue.to_string().into_bytes(),
        ),
        (
            "/repos/o/r/issues/7/comments".to_owned(),
            comments.to_string().into_bytes(),
        ),
    ]);
    // A logged-in `gh`, whose token is used when no variable holds one.
    let gh = sb.write(
        "fake-bin/gh",
        "#!/bin/sh\n[ \"$*\" = \"auth token --hostname github.com\" ] && echo gho_fr0mghcli\n",
    );
    std::fs::set_permissions(
        &gh,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        sb.path("fake-bin").display(),
        std::env::var("PATH").unwrap()
    );
    let run = || {
        sb.bugpack()
            .env("XDG_CACHE_HOME", sb.path("cache"))
            .env("BUGPACK_GITHUB_API_URL", &api.base)
            .env("GH_TOKEN", "ghp_s3cr3tvalue")
            .env("PATH", &path)
    };
    let out = run()
        .args([
            "replay",
            "https://github.com/o/r/issues/7",
            "--yes",
            "--runs",
            "1",
        ])
        .run()
        .success()
        .stderr_has(&format!("o/r#7 links one bundle: {link}"))
        .stdout_has("1/1");
    assert!(!out.stdout.contains("s3cr3t") && !out.stderr.contains("s3cr3t"));
    let heads = api.requests.lock().unwrap().clone();
    assert!(
        heads.iter().all(|h| h.contains("Bearer ghp_s3cr3tvalue")),
        "the token goes to the API: {heads:?}"
    );
    assert!(
        attachments
            .requests
            .lock()
            .unwrap()
            .iter()
            .all(|h| !h.contains("s3cr3t")),
        "the token went to the attachment's host"
    );

    // Two bundles without a terminal: a usage error that lists them.
    let other = attachments.url("/other.zip");
    let api2 = Server::routes(vec![
        (
            "/repos/o/r/issues/8".to_owned(),
            serde_json::json!({"body": format!("{link} and {other}")})
                .to_string()
                .into_bytes(),
        ),
        ("/repos/o/r/issues/8/comments".to_owned(), b"[]".to_vec()),
        (
            "/repos/o/r/issues/9".to_owned(),
            serde_json::json!({"body": "no bundle here"})
                .to_string()
                .into_bytes(),
        ),
        ("/repos/o/r/issues/9/comments".to_owned(), b"[]".to_vec()),
    ]);
    let run2 = || {
        sb.bugpack()
            .env("XDG_CACHE_HOME", sb.path("cache"))
            .env("BUGPACK_GITHUB_API_URL", &api2.base)
            .env_remove("GH_TOKEN")
            .env_remove("GITHUB_TOKEN")
    };
    let out = run2()
        .env("PATH", &path)
        .args(["replay", "https://github.com/o/r/issues/8", "--yes"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("o/r#8 links 2 bundles")
        .stderr_has(&other);
    assert!(!out.stderr.contains("fr0m"), "{}", out.stderr);
    let heads = api2.requests.lock().unwrap().clone();
    assert!(
        !heads.is_empty() && heads.iter().all(|h| h.contains("Bearer gho_fr0mghcli")),
        "gh's token goes to the API: {heads:?}"
    );
    api2.requests.lock().unwrap().clear();
    run2()
        .args(["inspect", "https://github.com/o/r/issues/9"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("links no bundle");
    run2()
        .args(["verify", "https://github.com/o/r/issues/10"])
        .run()
        .code(4)
        .one_line_error()
        .stderr_has("404");
}

/// On a terminal the download shows a progress bar of bytes, rate and ETA,
/// and is then said in one line; what replay asks comes after it.
#[test]
fn on_a_terminal_a_download_shows_its_progress() {
    let sb = Sandbox::new();
    let server = Server::start(BundleSpec::valid().zip().bytes());
    let url = server.url("/bug.zip");
    let (code, shown) = crate::replay::on_a_terminal(&sb, &["replay", &url, "--runs", "1"], "n\n");
    assert_eq!(code, Some(2), "{shown}");
    // The unit of the sizes and rate depends on the bundle's size and the
    // machine's speed (B, KiB, MiB), so only their shape is asserted.
    for part in [
        "\u{2588}",
        "B/s, ETA ",
        &format!("downloaded {url}"),
        "[y/N]",
    ] {
        assert!(
            shown.contains(part),
            "no {part:?} on the terminal:\n{shown}"
        );
    }
    assert!(
        sb.home().join(".cache/bugpack/bundles").is_dir(),
        "the download is cached under the (sandbox's) home"
    );
}
