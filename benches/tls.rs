//! What HTTPS interception costs (issue 20): request latency through the
//! proxy axis with a `CONNECT` tunnel passed untouched (TLS end to end, as
//! `pass` did before interception) against an intercepted one (the proxy
//! answers TLS with a certificate from the run's CA and makes its own TLS
//! connection to the origin), and direct to the origin.
//!
//! The origin is a small keep-alive HTTP server behind bugpack's TLS
//! terminator, on loopback. Each session opens one connection, times the
//! `CONNECT` and TLS handshake, then 2,000 GETs one after another; the
//! figures are medians over 5 interleaved sessions per target.
//! Run: `cargo bench --bench tls`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark's report is its output"
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bugpack::proxy::tls::{Authority, Terminator};
use bugpack::proxy::{Config, Mode, Proxy};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

const REQUESTS: usize = 2_000;
const SESSIONS: usize = 5;

/// Answers every request on a connection with `200 ok`.
fn origin() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let conn = conn.unwrap();
            thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let mut writer = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n"
                        && writer
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Reads one response (headers, then a 2-byte body).
fn read_response(stream: &mut impl std::io::Read) {
    let mut got = Vec::with_capacity(256);
    let mut byte = [0; 1];
    while !got.ends_with(b"\r\n\r\nok") {
        stream.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
}

struct Session {
    setup: Duration,
    per_request: Duration,
}

fn session(
    config: &Arc<rustls::ClientConfig>,
    via: Option<SocketAddr>,
    origin: SocketAddr,
) -> Session {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(via.unwrap_or(origin)).unwrap();
    tcp.set_nodelay(true).unwrap();
    if via.is_some() {
        write!(tcp, "CONNECT {origin} HTTP/1.1\r\nHost: {origin}\r\n\r\n").unwrap();
        let mut head = Vec::new();
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
    }
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    let setup = started.elapsed();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let started = Instant::now();
    for _ in 0..REQUESTS {
        tls.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        read_response(&mut tls);
    }
    Session {
        setup,
        per_request: started.elapsed() / u32::try_from(REQUESTS).unwrap(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let authority = Arc::new(Authority::new().unwrap());
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let tls_origin = Terminator::start(any, origin(), &authority).unwrap();
    let tunnel = Proxy::start(Config::new(Mode::Pass), any).unwrap();
    let intercepting = Proxy::start(
        Config {
            tls: Some(Arc::clone(&authority)),
            ..Config::new(Mode::Pass)
        },
        any,
    )
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(authority.ca_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let targets = [
        ("direct to the TLS origin", None),
        ("pass, CONNECT tunnelled", Some(tunnel.addr())),
        ("pass, CONNECT intercepted", Some(intercepting.addr())),
    ];
    let mut setups = vec![Vec::new(); targets.len()];
    let mut requests = vec![Vec::new(); targets.len()];
    for _ in 0..SESSIONS {
        for (i, (_, via)) in targets.iter().enumerate() {
            let s = session(&config, *via, tls_origin.addr());
            setups[i].push(s.setup);
            requests[i].push(s.per_request);
        }
    }
    println!(
        "{:<28} {:>22} {:>20}",
        "target", "CONNECT + handshake", "per request (µs)"
    );
    let tunnelled = median(requests[1].clone());
    for (i, (name, _)) in targets.iter().enumerate() {
        let per = median(requests[i].clone());
        println!(
            "{name:<28} {:>19.2} ms {:>12.1} ({:+.1} vs tunnelled)",
            median(setups[i].clone()).as_secs_f64() * 1e3,
            per.as_secs_f64() * 1e6,
            (per.as_secs_f64() - tunnelled.as_secs_f64()) * 1e6
        );
    }
    tunnel.shutdown();
    intercepting.shutdown();
}
