//! `pass`: forwarding, keep-alive, bodies, headers, CONNECT.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;

use super::support::{Conn, Origin, echo_server, get, get_request, host_of, proxy};
use crate::proxy::Mode;

#[test]
fn pass_forwards_bodies_on_one_keep_alive_connection_and_strips_hop_by_hop() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Pass);
    let mut conn = Conn::open(proxy.addr());
    let echo = origin.url("/echo");
    let host = host_of(&echo);

    // Hop-by-hop request headers, one of them named by Connection.
    let reply = conn
        .send(
            get_request(
                &echo,
                "Connection: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\n\
                 Proxy-Connection: keep-alive\r\nKeep-Alive: 300\r\n\
                 Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\n\
                 Upgrade: websocket\r\nX-End-To-End: kept\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("via"), Some("1.1 bugpack"));
    assert_eq!(reply.header("x-cache"), None, "pass mode has no cache");
    let seen = origin.last_seen();
    for hop in [
        "connection",
        "x-drop-me",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "te",
        "upgrade",
    ] {
        assert!(!seen.headers.contains_key(hop), "{hop} reached the origin");
    }
    assert_eq!(seen.headers["x-end-to-end"], "kept");
    assert_eq!(seen.headers["via"], "1.1 bugpack");
    assert_eq!(seen.headers["host"], host);

    // POST with a length.
    let post =
        format!("POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 11\r\n\r\nhello proxy");
    let reply = conn.send(post.as_bytes()).unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello proxy"));
    let seen = origin.last_seen();
    assert_eq!(
        (seen.method.as_str(), &seen.body[..]),
        ("POST", &b"hello proxy"[..])
    );

    // POST with a chunked body.
    let chunked = format!(
        "POST {echo} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    let reply = conn.send(chunked.as_bytes()).unwrap();
    assert_eq!(reply.text(), "hello world");
    assert_eq!(&origin.last_seen().body[..], b"hello world");

    // A chunked response.
    let reply = conn.get(&origin.url("/chunked"));
    assert_eq!(reply.text(), "first,second,third");
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));

    // Hop-by-hop response headers.
    let reply = conn.get(&origin.url("/hop"));
    assert_eq!(reply.status, 200);
    for hop in ["x-private-hop", "keep-alive", "proxy-authenticate"] {
        assert_eq!(reply.header(hop), None, "{hop} reached the client");
    }
    assert_eq!(reply.header("x-end-to-end"), Some("kept"));
    assert_eq!(reply.header("via"), Some("1.1 bugpack"));

    let stats = proxy.stats();
    assert_eq!(stats.connections, 1, "five requests, one client connection");
    assert_eq!((stats.requests, stats.gets), (5, 3));
    assert_eq!((stats.hits, stats.misses, stats.stored), (0, 0, 0));
    assert_eq!(origin.connections(), 1, "upstream connection kept alive");
}

#[test]
fn curl_goes_through_with_a_chunked_upload() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl not installed: skipping");
        return;
    }
    let origin = Origin::start();
    let proxy = proxy(Mode::Pass);
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "-x"])
        .arg(format!("http://{}", proxy.addr()))
        .args([
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "from curl",
        ])
        .arg(origin.url("/echo"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("\r\nvia: 1.1 bugpack\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nfrom curl"), "{text}");
    assert_eq!(&origin.last_seen().body[..], b"from curl");
}

#[test]
fn connect_tunnels_bytes_to_a_tcp_server() {
    let echo = echo_server();
    let proxy = proxy(Mode::Pass);
    let mut conn = Conn::open(proxy.addr());
    let reply = conn.connect(echo).unwrap();
    assert_eq!(reply.status, 200);
    let mut stream = conn.into_stream();
    for message in [&b"ping\n"[..], &[0u8, 255, 13, 10, 1][..]] {
        stream.write_all(message).unwrap();
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, message);
    }
    drop(stream);
    let stats = proxy.stats();
    assert_eq!(
        (stats.connects, stats.requests, stats.upstream_errors),
        (1, 1, 0)
    );
}

#[test]
fn unreachable_upstreams_get_502() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = proxy(Mode::Pass);
    let reply = get(&proxy, &format!("http://{closed}/x"));
    assert_eq!(reply.status, 502);
    assert!(
        reply.text().contains(&closed.to_string()),
        "{}",
        reply.text()
    );
    let mut conn = Conn::open(proxy.addr());
    let reply = conn.connect(closed).unwrap();
    assert_eq!(reply.status, 502);
    assert_eq!(proxy.stats().upstream_errors, 2);
}
