//! What a broken or hostile client can do: get an error or a closed
//! connection, never a panic, and never stop the proxy serving others.

use super::support::{Conn, Origin, get, proxy};
use crate::proxy::Mode;

/// Sends `raw` on a connection of its own: the status, or `None` if the
/// proxy closed the connection without one.
fn status_of(proxy: &crate::proxy::Proxy, raw: &[u8]) -> Option<u16> {
    let mut conn = Conn::open(proxy.addr());
    // The proxy may close before a long request is written: that is an answer too.
    let _ = conn.write(raw);
    conn.read_reply().ok().map(|r| r.status)
}

#[test]
fn malformed_requests_get_an_error_or_a_close_and_the_proxy_keeps_serving() {
    let origin = Origin::start();
    let echo = origin.url("/echo");
    let host = origin.addr;
    for mode in [Mode::Pass, Mode::Rfc] {
        let proxy = proxy(mode.clone());
        let long_line = format!(
            "GET http://{host}/{} HTTP/1.1\r\nHost: {host}\r\n\r\n",
            "a".repeat(1 << 20)
        );
        let many_headers = format!(
            "GET {echo} HTTP/1.1\r\nHost: {host}\r\n{}\r\n",
            "X-A: b\r\n".repeat(500)
        );
        let cases: [(&str, Vec<u8>, Option<u16>); 13] = [
            ("garbage", b"\x00\x01\x02 garbage \xff\r\n\r\n".to_vec(), None),
            ("1 MB request line", long_line.into_bytes(), None),
            ("500 headers", many_headers.into_bytes(), None),
            ("missing Host", format!("GET {echo} HTTP/1.1\r\n\r\n").into(), Some(400)),
            ("origin form", format!("GET /echo HTTP/1.1\r\nHost: {host}\r\n\r\n").into(), Some(400)),
            ("https URL", b"GET https://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Some(400)),
            ("bad port", b"GET http://127.0.0.1:99999/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Some(400)),
            ("port 0", b"GET http://127.0.0.1:0/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Some(400)),
            ("header without colon", format!("GET {echo} HTTP/1.1\r\nHost: {host}\r\nnocolon\r\n\r\n").into(), None),
            ("bad length", format!("POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: abc\r\n\r\n").into(), None),
            ("two lengths", format!("POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").into(), None),
            ("CONNECT without port", b"CONNECT nohost HTTP/1.1\r\nHost: nohost\r\n\r\n".to_vec(), Some(400)),
            ("loop", format!("GET {echo} HTTP/1.1\r\nHost: {host}\r\nVia: 1.1 bugpack\r\n\r\n").into(), Some(508)),
        ];
        for (what, raw, expected) in cases {
            let status = status_of(&proxy, &raw);
            match expected {
                Some(code) => assert_eq!(status, Some(code), "{mode}: {what}"),
                None => assert!(
                    status.is_none_or(|s| (400..500).contains(&s)),
                    "{mode}: {what}: {status:?}"
                ),
            }
            assert_eq!(
                get(&proxy, &echo).status,
                200,
                "{mode}: serving after {what}"
            );
        }
        assert_eq!(
            origin.seen().iter().filter(|s| s.path != "/echo").count(),
            0
        );
    }
}

#[test]
fn an_http_1_0_request_may_omit_host() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Pass);
    let reply = Conn::open(proxy.addr())
        .send(format!("GET {} HTTP/1.0\r\n\r\n", origin.url("/echo")).as_bytes())
        .unwrap();
    assert_eq!(reply.status, 200);
    let seen = origin.last_seen();
    assert_eq!(seen.headers["host"], origin.addr.to_string().as_str());
    assert_eq!(seen.headers["via"], "1.0 bugpack");
}
