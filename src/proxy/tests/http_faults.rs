//! The HTTP faults: `status`, `truncate`, `drop-header`, `stale`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use super::support::{Conn, Origin, get, get_request, proxy, proxy_seeded};
use crate::proxy::Mode;

#[test]
fn status_answers_in_place_of_the_origin_for_a_seeded_share() {
    let origin = Origin::start();
    let url = origin.url("/maxage");
    let all = proxy(Mode::Status { code: 503, p: 1.0 });
    let reply = get(&all, &url);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("x-cache"), Some("FAULT"));
    assert_eq!(origin.count("/maxage"), 0, "the origin was never asked");
    assert_eq!(all.stats().faulted, 1);
    let run = |seed| {
        let half = proxy_seeded(Mode::Status { code: 502, p: 0.5 }, seed);
        (0..40).map(|_| get(&half, &url).status).collect::<Vec<_>>()
    };
    let statuses = run(3);
    assert!(
        statuses.contains(&502) && statuses.contains(&200),
        "{statuses:?}"
    );
    assert_eq!(statuses, run(3), "the same seed, the same answers");
}

/// The raw bytes of a reply read to the end of the connection.
fn raw_reply(proxy: &crate::proxy::Proxy, url: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(get_request(url, "Connection: close\r\n").as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    // A cut body ends in a close (or a reset) before its Content-Length.
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    (head, raw[split..].to_vec())
}

#[test]
fn truncate_ends_the_body_early_and_keeps_its_length() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Truncate { bytes: 100 });
    let (head, body) = raw_reply(&proxy, &origin.url("/big"));
    assert!(
        head.contains(&format!("content-length: {}", super::support::BIG)),
        "{head}"
    );
    assert_eq!(body.len(), 100);
    assert_eq!(proxy.stats().faulted, 1);
    // A body shorter than the cut passes whole.
    let (_, body) = raw_reply(&proxy, &origin.url("/maxage"));
    assert_eq!(body, b"maxage n=1");
    assert_eq!(proxy.stats().faulted, 1);
}

#[test]
fn drop_header_removes_it_and_a_dropped_length_goes_chunked() {
    let origin = Origin::start();
    let tagless = proxy(Mode::DropHeader {
        name: "etag".into(),
    });
    let reply = get(&tagless, &origin.url("/tagged"));
    assert_eq!(reply.header("etag"), None);
    assert_eq!(reply.header("cache-control"), Some("max-age=60"));
    let lengthless = proxy(Mode::DropHeader {
        name: "content-length".into(),
    });
    let reply = Conn::open(lengthless.addr()).get(&origin.url("/maxage"));
    assert_eq!(reply.header("content-length"), None);
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.text(), "maxage n=1", "the whole body, chunked");
    assert_eq!(lengthless.stats().faulted, 1);
}

#[test]
fn stale_serves_a_stored_copy_until_it_is_secs_old() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Stale { secs: 1 });
    // no-store: only a cache that ignores headers stores it.
    let url = origin.url("/nostore");
    assert_eq!(get(&proxy, &url).header("x-cache"), Some("MISS"));
    let hit = get(&proxy, &url);
    assert_eq!(
        (hit.header("x-cache"), hit.text().as_str()),
        (Some("HIT"), "nostore n=1")
    );
    std::thread::sleep(Duration::from_millis(1100));
    let again = get(&proxy, &url);
    assert_eq!(
        again.header("x-cache"),
        Some("MISS"),
        "older than 1 s: fetched again"
    );
    assert_eq!(again.text(), "nostore n=2");
}
