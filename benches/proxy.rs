//! Latency and throughput of GETs through bugpack's proxy, on loopback.
//!
//! Compares a small local origin reached directly, through bugpack's proxy
//! in `pass` mode (and `cache` mode serving hits), and, where squid is
//! installed, through squid as a plain forward proxy with caching off: the
//! baseline of the proxy issue (p50 added latency under 0.3 ms against
//! direct; throughput at least squid's).
//!
//! Two loads per target, both keep-alive: one connection sending requests
//! back to back (latency), then several connections at once (throughput).
//! Every request is the same absolute-form GET, which the origin accepts
//! too. `BUGPACK_BENCH_SECS` sets each load's duration (default 3).
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

    let pass = Proxy::start(Config::new(Mode::Pass), LOOPBACK)?;
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
        Target::new("bugpack pass", pass.addr()),
        Target::new("bugpack cache (hits)", cache.addr()),
    ];
    if let Some(squid) = &squid {
        targets.push(Target::new("squid (no cache)", squid.addr));
    }

    // Interleaved rounds: on a shared machine, wake-up latency drifts by
    // several times over seconds; alternating targets lets every target see
    // the same drift instead of one target getting a quiet spell.
    for _ in 0..ROUNDS {
        for target in &mut targets {
            let mut one = load(target.addr, &request, 1, slice)?;
            one.sort_by(f64::total_cmp);
            target.round_p50.push(percentile(&one, 0.5));
            target.one.extend(one);
        }
    }
    for _ in 0..ROUNDS {
        for target in &mut targets {
            target
                .many
                .extend(load(target.addr, &request, CONNECTIONS, slice)?);
        }
    }

    println!(
        "GET {url} ({} byte body), keep-alive, {ROUNDS} interleaved rounds; \
         latency: 1 connection, throughput: {CONNECTIONS} connections; {secs} s of each per target",
        BODY.len()
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>10} {:>10} {:>9}",
        "target", "p50 ms", "p99 ms", "req/s", "N p50 ms", "N p99 ms", "N req/s"
    );
    for target in &mut targets {
        target.one.sort_by(f64::total_cmp);
        target.many.sort_by(f64::total_cmp);
        println!(
            "{:<22} {:>8.3} {:>8.3} {:>8.0} {:>10.3} {:>10.3} {:>9.0}",
            target.name,
            percentile(&target.one, 0.5),
            percentile(&target.one, 0.99),
            rate(target.one.len(), duration),
            percentile(&target.many, 0.5),
            percentile(&target.many, 0.99),
            rate(target.many.len(), duration),
        );
    }

    println!();
    let direct = &targets[0];
    let through_pass = &targets[1];
    let mut added: Vec<f64> = through_pass
        .round_p50
        .iter()
        .zip(&direct.round_p50)
        .map(|(p, d)| p - d)
        .collect();
    let rounds_text = added
        .iter()
        .map(|a| format!("{a:.3}"))
        .collect::<Vec<_>>()
        .join(" ");
    added.sort_by(f64::total_cmp);
    println!(
        "bugpack pass adds {:.3} ms at p50 over direct (median of rounds; rounds: {rounds_text}; target < 0.300)",
        percentile(&added, 0.5)
    );
    if let Some(squid) = targets.get(3) {
        let pass_rps = rate(through_pass.many.len(), duration);
        let squid_rps = rate(squid.many.len(), duration);
        println!(
            "squid adds {:.3} ms at p50 over direct (pooled)",
            percentile(&squid.one, 0.5) - percentile(&direct.one, 0.5)
        );
        println!(
            "throughput, {CONNECTIONS} connections: bugpack pass {pass_rps:.0} req/s, squid {squid_rps:.0} req/s ({:.2}x, target >= 1)",
            pass_rps / squid_rps
        );
    }
    drop(squid);
    pass.shutdown();
    cache.shutdown();
    Ok(())
}

/// One target's samples, in milliseconds.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    one: Vec<f64>,
    many: Vec<f64>,
    /// The single-connection p50 of each round.
    round_p50: Vec<f64>,
}

impl Target {
    fn new(name: &'static str, addr: SocketAddr) -> Self {
        Self {
            name,
            addr,
            one: Vec::new(),
            many: Vec::new(),
            round_p50: Vec::new(),
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
