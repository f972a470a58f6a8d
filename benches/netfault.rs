//! Throughput and round-trip latency through the TCP fault proxy of
//! `--net-fault`, against a direct loopback connection (issue 20).
//!
//! - bulk: a server sends 512 MiB and closes; the client reads to EOF.
//! - round trip: 64 bytes there and back, 20,000 times on one connection.
//!
//! Each runs direct, through `slow-close:0` (the fault proxy's plain
//! forwarding: it adds nothing but a zero wait before passing the close on)
//! and through `latency:0` (the queue that latency's chunks go through,
//! with no delay). Rounds are interleaved across targets; each figure is the
//! median of 5. Run: `cargo bench --bench netfault`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark's report is its output"
)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bugpack::netfault::{FaultProxy, Toxic};

const BULK: usize = 512 << 20;
const ROUND_TRIPS: usize = 20_000;
const ROUNDS: usize = 5;

/// A server that answers `b` with BULK bytes then a close, and echoes
/// 64-byte messages after `e`.
fn server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let mut what = [0; 1];
                if conn.read_exact(&mut what).is_err() {
                    return;
                }
                if what[0] == b'b' {
                    let chunk = vec![7u8; 1 << 20];
                    for _ in 0..BULK / chunk.len() {
                        if conn.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                } else {
                    let mut msg = [0; 64];
                    while conn.read_exact(&mut msg).is_ok() {
                        if conn.write_all(&msg).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn bulk(to: SocketAddr) -> Duration {
    let mut conn = TcpStream::connect(to).unwrap();
    let started = Instant::now();
    conn.write_all(b"b").unwrap();
    let mut buf = vec![0; 1 << 20];
    let mut got = 0;
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    assert_eq!(got, BULK, "the whole stream arrived");
    started.elapsed()
}

fn round_trips(to: SocketAddr) -> Duration {
    let mut conn = TcpStream::connect(to).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.write_all(b"e").unwrap();
    let mut msg = [1u8; 64];
    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        conn.write_all(&msg).unwrap();
        conn.read_exact(&mut msg).unwrap();
    }
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let origin = server();
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let plain = FaultProxy::start(any, origin, Toxic::SlowClose { ms: 0 }, 1).unwrap();
    let queued = FaultProxy::start(any, origin, Toxic::Latency { ms: 0, jitter: 0 }, 1).unwrap();
    let targets = [
        ("direct", origin),
        ("fault proxy, slow-close:0", plain.addr()),
        ("fault proxy, latency:0", queued.addr()),
    ];
    let mut bulks = vec![Vec::new(); targets.len()];
    let mut trips = vec![Vec::new(); targets.len()];
    for _ in 0..ROUNDS {
        for (i, (_, addr)) in targets.iter().enumerate() {
            bulks[i].push(bulk(*addr));
            trips[i].push(round_trips(*addr));
        }
    }
    println!(
        "{:<28} {:>12} {:>10} {:>16}",
        "target", "512 MiB", "MiB/s", "round trip (µs)"
    );
    let direct_trip = median(trips[0].clone());
    for (i, (name, _)) in targets.iter().enumerate() {
        let b = median(bulks[i].clone());
        let t = median(trips[i].clone());
        let per = t.as_secs_f64() * 1e6 / ROUND_TRIPS as f64;
        let added = (t.as_secs_f64() - direct_trip.as_secs_f64()) * 1e6 / ROUND_TRIPS as f64;
        println!(
            "{name:<28} {:>10.0} ms {:>10.0} {:>9.1} ({:+.1})",
            b.as_secs_f64() * 1e3,
            (BULK >> 20) as f64 / b.as_secs_f64(),
            per,
            added
        );
    }
}
