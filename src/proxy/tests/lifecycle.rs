//! Starting, stopping, per-run accounting, and the separate-process entry
//! point with its stats file and persisted cache.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::support::{Conn, Origin, get, loopback, proxy};
use crate::proxy::{Config, Mode, Proxy, Stats, serve_blocking, serve_until};

#[test]
fn take_stats_reports_and_restarts_the_count() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Cache);
    get(&proxy, &origin.url("/nostore"));
    get(&proxy, &origin.url("/nostore"));
    let taken = proxy.take_stats();
    assert_eq!(
        (
            taken.connections,
            taken.requests,
            taken.gets,
            taken.hits,
            taken.misses
        ),
        (2, 2, 2, 1, 1)
    );
    assert_eq!(proxy.stats(), Stats::default());
    get(&proxy, &origin.url("/nostore"));
    let stats = proxy.stats();
    assert_eq!((stats.requests, stats.hits, stats.misses), (1, 1, 0));
}

#[test]
fn shutdown_closes_open_connections_and_the_port() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Pass);
    let addr = proxy.addr();
    let mut idle = Conn::open(addr);
    assert_eq!(idle.get(&origin.url("/echo")).status, 200);
    let start = Instant::now();
    proxy.shutdown();
    assert!(
        idle.read_reply().is_err(),
        "the kept-alive connection is closed"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens any more"
    );

    let dropped = super::support::proxy(Mode::Pass);
    let addr = dropped.addr();
    drop(dropped);
    assert!(TcpStream::connect(addr).is_err(), "Drop shuts down too");
}

#[test]
fn proxies_sharing_a_cache_dir_share_hits() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start();
    let url = origin.url("/maxage");
    for expect in ["MISS", "HIT"] {
        let config = Config {
            mode: Mode::Rfc,
            seed: 0,
            cache_dir: Some(dir.path().join("cache")),
            tls: None,
        };
        let proxy = Proxy::start(config, loopback()).unwrap();
        assert_eq!(get(&proxy, &url).header("x-cache"), Some(expect));
    }
    assert_eq!(origin.count("/maxage"), 1);
}

fn read_stats(path: &Path) -> Option<Stats> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[test]
fn serve_until_persists_the_cache_and_writes_stats() {
    for (mode, path) in [(Mode::Cache, "/nostore"), (Mode::Rfc, "/maxage")] {
        let dir = tempfile::tempdir().unwrap();
        let origin = Origin::start();
        let stats_path = dir.path().join("stats.json");
        for expect in ["MISS", "HIT"] {
            let listener = TcpListener::bind(loopback()).unwrap();
            let addr = listener.local_addr().unwrap();
            let config = Config {
                mode: mode.clone(),
                seed: 0,
                cache_dir: Some(dir.path().join("cache")),
                tls: None,
            };
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = thread::spawn({
                let stats_path = stats_path.clone();
                move || {
                    serve_until(listener, config, Some(&stats_path), async {
                        let _ = stopped.await;
                    })
                }
            });
            let reply = Conn::open(addr).get(&origin.url(path));
            assert_eq!(reply.header("x-cache"), Some(expect), "{mode}");
            stop.send(()).unwrap();
            server.join().unwrap().unwrap();
            let stats = read_stats(&stats_path).expect("a stats file");
            assert_eq!((stats.requests, stats.gets), (1, 1), "{mode}");
            let (hits, stored) = if expect == "HIT" { (1, 0) } else { (0, 1) };
            assert_eq!((stats.hits, stats.stored), (hits, stored), "{mode}");
        }
        assert_eq!(origin.count(path), 1, "{mode}: the second process was warm");
    }
}

/// Set for the copy of this test binary that plays the proxy process.
const CHILD_ENV: &str = "BUGPACK_PROXY_TEST_CHILD_DIR";

/// Not a test on its own: the proxy process for the test below, which runs
/// this test binary again with [`CHILD_ENV`] set. Without it, does nothing.
#[test]
fn serve_blocking_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    std::fs::write(dir.join("addr.tmp"), addr.to_string()).unwrap();
    std::fs::rename(dir.join("addr.tmp"), dir.join("addr")).unwrap();
    let config = Config {
        mode: Mode::Cache,
        seed: 0,
        cache_dir: Some(dir.join("cache")),
        tls: None,
    };
    serve_blocking(listener, config, Some(&dir.join("stats.json"))).unwrap();
}

/// Polls `f` every 20 ms for up to 10 s.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_blocking_stops_on_sigterm_and_a_second_process_starts_warm() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start();
    let url = origin.url("/nostore");
    for expect in ["MISS", "HIT"] {
        let _ = std::fs::remove_file(dir.path().join("addr"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "proxy::tests::lifecycle::serve_blocking_child",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = wait_for("the proxy process's address", || {
            std::fs::read_to_string(dir.path().join("addr")).ok()
        });
        let reply = Conn::open(addr.parse().unwrap()).get(&url);
        assert_eq!(reply.header("x-cache"), Some(expect));
        // Written after the request, while the process still runs.
        let stats = wait_for("the stats file to count the request", || {
            read_stats(&dir.path().join("stats.json")).filter(|s| s.requests == 1)
        });
        assert_eq!(stats.gets, 1);
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = wait_for("the proxy process to exit", || child.try_wait().unwrap());
        assert!(exit.success(), "SIGTERM is a clean stop: {exit}");
    }
    assert_eq!(origin.count("/nostore"), 1);
}
