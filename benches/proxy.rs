//! Latency and throughput of GETs through bugpack's proxy, on loopback.
//!
//! Compares a small local origin reached directly, through bugpack's proxy
//! in `pass` mode (and `cache` mode serving hits), and, where squid is
//! installed, through squid as a plain forward proxy with caching off: the
//! baseline of the proxy issue. Targets: bugpack `pass` adds under 0.3 ms
//! at p50 over direct, and serves at least squid's requests per second.
//!
//! Two loads per target, both keep-alive: one connection sending requests
//! back to back (latency: p50, p99, and what a proxy adds to them over
//! direct), then several connections at once (throughput). Every request is
//! the same absolute-form GET, which the origin accepts too. Rounds are
//! interleaved across targets and each figure is the median over rounds; a
//! proxy's added latency is taken per round against that round's direct
//! figure. `BUGPACK_BENCH_SECS` sets each load's total duration per target
//! (default 3).
//!
//! squid: Debian's `/usr/sbin/squid` (`apt-get install -y squid`), started
//! here with a config in a temporary directory, on a loopback port, with no
//! cache at all, in the foreground, and killed at the end; it may be run as
//! root (squid then drops to its own user). The Debian service need not run.
//!
//! Run: `cargo bench --bench proxy`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark's report is its output"
)]

use std::convert::Infallible;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bugpack::proxy::{Config, Mode, Proxy};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Where the proxies listen: any free loopback port.
const LOOPBACK: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
/// Connections in the throughput load: enough to keep every hop busy on two cores.
const CONNECTIONS: usize = 8;
/// Requests sent before each measured span, to warm connections and caches.
const WARMUP: usize = 200;
/// squid's row.
const SQUID: &str = "squid (no cache)";
/// Measured spans per target and load, interleaved across targets.
const ROUNDS: u32 = 6;
/// The origin's response body: a small JSON status, as a polling UI gets.
const BODY: &[u8] = br#"{"task": 42, "state": "PENDING", "progress": 0.5}"#;

fn main() -> io::Result<()> {
    let secs = std::env::var("BUGPACK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let duration = Duration::from_secs_f64(secs);
    let slice = duration / ROUNDS;
    let origin = start_origin()?;
    let url = format!("http://{origin}/status");
    let request = request_bytes(&url);

    let pass_proxy = Proxy::start(Config::new(Mode::Pass), LOOPBACK)?;
    let cache = Proxy::start(Config::new(Mode::Cache), LOOPBACK)?;
    let squid = match Squid::start() {
        Ok(Some(squid)) => Some(squid),
        Ok(None) => {
            println!("squid: not installed, skipped (apt-get install -y squid)");
            None
        }
        Err(err) => {
            println!("squid: could not start ({err}), skipped");
            None
        }
    };
    let mut targets = vec![
        Target::new("direct", origin),
        Target::new("bugpack pass", pass_proxy.addr()),
        Target::new("bugpack cache (hits)", cache.addr()),
    ];
    if let Some(squid) = &squid {
        targets.push(Target::new(SQUID, squid.addr));
    }

    // Interleaved rounds: on a shared machine, wake-up latency drifts by
    // several times over seconds; alternating targets lets every target see
    // the same drift instead of one target getting a quiet spell.
    for _ in 0..ROUNDS {
        for target in &mut targets {
            let mut one = load(target.addr, &request, 1, slice)?;
            one.sort_by(f64::total_cmp);
            target.p50.push(percentile(&one, 0.5));
            target.p99.push(percentile(&one, 0.99));
        }
    }
    for _ in 0..ROUNDS {
        for target in &mut targets {
            let many = load(target.addr, &request, CONNECTIONS, slice)?;
            target.rps.push(rate(many.len(), slice));
        }
    }

    println!(
        "GET {url} ({} byte body), keep-alive; each figure the median of {ROUNDS} interleaved rounds of {:.2} s",
        BODY.len(),
        slice.as_secs_f64()
    );
    println!(
        "req/s: {CONNECTIONS} connections at once; latency: 1 connection, requests back to back; \
         added: minus direct's in the same round"
    );
    println!();
    println!(
        "{:<22} {:>9} {:>8} {:>8} {:>10} {:>10}",
        "target", "req/s", "p50 ms", "p99 ms", "p50 added", "p99 added"
    );
    let summaries: Vec<Summary> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| Summary::of(t, (i > 0).then_some(&targets[0])))
        .collect();
    for (target, sum) in targets.iter().zip(&summaries) {
        let added = |a: Option<f64>| a.map_or_else(|| "-".to_owned(), |a| format!("{a:+.3}"));
        println!(
            "{:<22} {:>9.0} {:>8.3} {:>8.3} {:>10} {:>10}",
            target.name,
            sum.rps,
            sum.p50,
            sum.p99,
            added(sum.p50_added),
            added(sum.p99_added),
        );
    }

    println!();
    println!("targets:");
    let pass = &summaries[1];
    let p50_added = pass.p50_added.unwrap_or(f64::NAN);
    println!(
        "  bugpack pass adds {p50_added:.3} ms at p50 over direct (target < 0.300 ms): {}",
        verdict(p50_added < 0.3)
    );
    match targets
        .iter()
        .position(|t| t.name == SQUID)
        .map(|i| &summaries[i])
    {
        Some(squid) => println!(
            "  bugpack pass {:.0} req/s, squid {:.0} req/s ({:.2}x, target >= 1): {}",
            pass.rps,
            squid.rps,
            pass.rps / squid.rps,
            verdict(pass.rps >= squid.rps)
        ),
        None => println!(
            "  bugpack pass {:.0} req/s; against squid: not checked, squid did not run",
            pass.rps
        ),
    }
    drop(squid);
    pass_proxy.shutdown();
    cache.shutdown();
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// One target's figures: medians over rounds.
struct Summary {
    rps: f64,
    p50: f64,
    p99: f64,
    /// Over direct, round by round; `None` for direct itself.
    p50_added: Option<f64>,
    p99_added: Option<f64>,
}

impl Summary {
    fn of(target: &Target, direct: Option<&Target>) -> Self {
        let added = |mine: &[f64], theirs: &[f64]| {
            median(mine.iter().zip(theirs).map(|(m, t)| m - t).collect())
        };
        Self {
            rps: median(target.rps.clone()),
            p50: median(target.p50.clone()),
            p99: median(target.p99.clone()),
            p50_added: direct.map(|d| added(&target.p50, &d.p50)),
            p99_added: direct.map(|d| added(&target.p99, &d.p99)),
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

/// One target's figures, one per round: latencies in ms, rates in req/s.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    p50: Vec<f64>,
    p99: Vec<f64>,
    rps: Vec<f64>,
}

impl Target {
    fn new(name: &'static str, addr: SocketAddr) -> Self {
        Self {
            name,
            addr,
            p50: Vec::new(),
            p99: Vec::new(),
            rps: Vec::new(),
        }
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "request counts are far below 2^52"
)]
fn rate(requests: usize, duration: Duration) -> f64 {
    requests as f64 / duration.as_secs_f64()
}

fn request_bytes(url: &str) -> Vec<u8> {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bugpack-bench\r\n\r\n").into_bytes()
}

/// `connections` threads, each sending `request` back to back on one
/// keep-alive connection through `via` for `duration`: every latency, in ms.
fn load(
    via: SocketAddr,
    request: &[u8],
    connections: usize,
    duration: Duration,
) -> io::Result<Vec<f64>> {
    // Everyone connects and warms up first, then all measure the same span.
    let ready = Arc::new(Barrier::new(connections));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let request = request.to_vec();
            let ready = Arc::clone(&ready);
            thread::spawn(move || -> io::Result<Vec<f64>> {
                let conn = Client::connect(via).and_then(|mut conn| {
                    for _ in 0..WARMUP / connections {
                        conn.roundtrip(&request)?;
                    }
                    Ok(conn)
                });
                // Wait even on failure, or the others would wait forever.
                ready.wait();
                let mut conn = conn?;
                let end = Instant::now() + duration;
                let mut latencies = Vec::with_capacity(100_000);
                while Instant::now() < end {
                    let sent = Instant::now();
                    conn.roundtrip(&request)?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        let mine = worker
            .join()
            .map_err(|_| io::Error::other("load thread panicked"))??;
        latencies.extend(mine);
    }
    Ok(latencies)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a slice of at most millions"
    )]
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// A minimal keep-alive HTTP/1.1 client: just enough to read one
/// `Content-Length` response after another without allocating per request.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    fn roundtrip(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request)?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let (head_end, body_len) = loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(io::Error::other)?;
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(io::Error::other(format!("unexpected response: {head}")));
                }
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .ok_or_else(|| io::Error::other("no Content-Length"))?;
                break (end + 4, len);
            }
        };
        while self.buf.len() < head_end + body_len {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A hyper origin on its own thread answering every request with [`BODY`].
fn start_origin() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(BODY)))
                                .expect("static response"),
                        )
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

/// squid as a plain forward proxy on a loopback port, caching off.
struct Squid {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Squid {
    fn start() -> io::Result<Option<Self>> {
        let Some(binary) = ["squid", "/usr/sbin/squid"].into_iter().find(|b| {
            Command::new(b)
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success())
        }) else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let d = dir.path().display();
        let conf = format!(
            "http_port 127.0.0.1:{port}\n\
             http_access allow all\n\
             cache deny all\n\
             cache_mem 0 MB\n\
             access_log none\n\
             cache_store_log none\n\
             cache_log {d}/cache.log\n\
             pid_filename none\n\
             coredump_dir {d}\n\
             shutdown_lifetime 0 seconds\n\
             workers 1\n"
        );
        let conf_path = dir.path().join("squid.conf");
        std::fs::write(&conf_path, conf)?;
        // squid drops to its own user when started as root: let it write its log.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )?;
        let child = Command::new(binary)
            .arg("-N")
            .arg("-f")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let squid = Self {
            addr,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::other("squid did not start listening in 15 s"));
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(Some(squid))
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
