//! Raw bytes from a client into bugpack's proxy, in each of the modes that
//! route requests differently (`pass`, `cache`, `rfc`).
//!
//! hyper parses HTTP; what is bugpack's own is everything after: absolute-form
//! and CONNECT targets, the port check, Host rewriting, hop-by-hop stripping,
//! loop detection through `Via`, cache keys, storing, revalidation and the
//! merging of a 304's headers. So the proxies run as they do in a replay, on
//! loopback, in front of an origin whose responses the input chooses:
//! `GET http://127.0.0.1:8080/raw/<percent-encoded response>` makes the
//! origin answer with exactly those bytes.
//!
//! The target moves itself into a network namespace of its own first (as
//! root, or through a user namespace): requests for any other host fail
//! at once instead of reaching the network, and the fixed ports are free.
//!
//! Input: byte 0 picks the proxy, the rest is what the client sends.
//! Oracles: no panic anywhere in the proxy (libFuzzer aborts on any thread's
//! panic), the proxy keeps accepting connections, and whatever it sends back
//! is an HTTP/1.x response.

#![no_main]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use bugpack::proxy::{Config, Mode, Proxy};
use bugpack_fuzz::proxy::{ORIGIN, PROXIES};
use libfuzzer_sys::fuzz_target;

/// The modes, in the order of [`PROXIES`].
const MODES: [Mode; 3] = [Mode::Pass, Mode::Cache, Mode::Rfc];

/// What the origin answers to anything but `/raw/...`: cacheable, with
/// validators, so that the cache modes store and revalidate.
const DEFAULT_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 6\r\n\r\norigin";
const NOT_MODIFIED: &[u8] =
    b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=120\r\n\r\n";

fn setup() {
    isolate_network();
    // libFuzzer's main is not Rust's: SIGPIPE still kills by default.
    // SAFETY: installs SIG_IGN, no handler code runs.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        )
    }
    .expect("ignore SIGPIPE");
    let origin = TcpListener::bind(ORIGIN).expect("bind the origin");
    thread::spawn(move || {
        for stream in origin.incoming().flatten() {
            thread::spawn(move || serve_origin(stream));
        }
    });
    for (mode, addr) in MODES.into_iter().zip(PROXIES) {
        let addr: SocketAddr = addr.parse().expect("address");
        let proxy = Proxy::start(Config::new(mode), addr).expect("start the proxy");
        // Runs for the life of the process.
        std::mem::forget(proxy);
    }
}

/// A network namespace with only `lo`, up.
fn isolate_network() {
    use nix::sched::{CloneFlags, unshare};
    if unshare(CloneFlags::CLONE_NEWNET).is_err() {
        let uid = nix::unistd::Uid::effective();
        let gid = nix::unistd::Gid::effective();
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).expect(
            "the proxy target needs a network namespace: run it as root or allow user namespaces",
        );
        std::fs::write("/proc/self/setgroups", "deny").expect("setgroups");
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).expect("uid_map");
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).expect("gid_map");
    }
    loopback_up();
}

fn loopback_up() {
    use nix::libc;
    // SAFETY: socket(2), two ioctls on a zeroed, NUL-terminated `ifreq`
    // that they read and write only through, then close(2).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        assert!(
            libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) >= 0,
            "SIOCGIFFLAGS: {}",
            std::io::Error::last_os_error()
        );
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert!(
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) >= 0,
            "SIOCSIFFLAGS: {}",
            std::io::Error::last_os_error()
        );
        libc::close(fd);
    }
}

/// Reads a request head, answers, closes.
fn serve_origin(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let target = head
        .split(|&b| b == b' ')
        .nth(1)
        .unwrap_or_default()
        .to_vec();
    let path = match target.strip_prefix(b"http://") {
        Some(rest) => rest
            .iter()
            .position(|&b| b == b'/')
            .map_or(&b""[..], |at| &rest[at..]),
        None => &target[..],
    };
    let lower = head.to_ascii_lowercase();
    let response = if let Some(raw) = path.strip_prefix(b"/raw/") {
        percent_decode(raw)
    } else if lower.windows(14).any(|w| w == b"if-none-match:")
        || lower.windows(18).any(|w| w == b"if-modified-since:")
    {
        NOT_MODIFIED.to_vec()
    } else {
        DEFAULT_RESPONSE.to_vec()
    };
    let _ = stream.write_all(&response);
    let _ = stream.shutdown(Shutdown::Both);
}

fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(init: setup(), |data: &[u8]| {
    let [pick, request @ ..] = data else {
        return;
    };
    let addr: SocketAddr = PROXIES[usize::from(*pick) % PROXIES.len()]
        .parse()
        .expect("address");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("the proxy stopped accepting connections");
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut response = Vec::new();
    let _ = (&mut stream).take(1 << 20).read_to_end(&mut response);
    assert!(
        response.is_empty() || response.starts_with(b"HTTP/1."),
        "not an HTTP response: {:?}",
        String::from_utf8_lossy(&response[..response.len().min(200)])
    );
});
