//! Bundles by URL (issue 19): `replay`, `inspect`, `verify` and `diff` take
//! a URL, download the bundle from a local HTTP server (loopback `http://`
//! is allowed for this), cache it by SHA-256, honour `--sha256` and
//! `--max-size`, and refuse plain `http://` elsewhere.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use sha2::{Digest as _, Sha256};

use crate::support::Sandbox;
use crate::support::zipper::BundleSpec;

/// A loopback HTTP server answering `/bug.zip` with `body` and anything
/// else with 404; counts the requests it served.
struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn start(body: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                }
                let found = request_line.starts_with("GET /bug.zip ");
                let (status, payload) = if found {
                    ("200 OK", body.as_slice())
                } else {
                    ("404 Not Found", b"no such attachment".as_slice())
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn served(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
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
