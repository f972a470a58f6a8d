//! `cache` (the misconfigured one) and `rfc` (RFC 9111).

use super::support::{BIG, Conn, Origin, get, get_request, proxy};
use crate::proxy::Mode;

/// Two GETs of `path` through a fresh proxy in `mode`: the two replies.
fn twice(mode: Mode, path: &str) -> (Origin, crate::proxy::Proxy, [super::support::Reply; 2]) {
    let origin = Origin::start();
    let proxy = proxy(mode);
    let url = origin.url(path);
    let first = get(&proxy, &url);
    let second = get(&proxy, &url);
    (origin, proxy, [first, second])
}

#[test]
fn cache_serves_a_no_store_response_again() {
    let (origin, proxy, [first, second]) = twice(Mode::Cache, "/nostore");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(first.header("age"), None);
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert!(
        second
            .header("age")
            .is_some_and(|a| a.parse::<u64>().is_ok())
    );
    assert_eq!(
        second.text(),
        "nostore n=1",
        "the origin's first answer, again"
    );
    assert_eq!(
        second.header("cache-control"),
        first.header("cache-control")
    );
    assert_eq!(origin.count("/nostore"), 1);
    let stats = proxy.stats();
    assert_eq!(
        (stats.gets, stats.hits, stats.misses, stats.stored),
        (2, 1, 1, 1)
    );
    assert_eq!(stats.summary(), "2 requests; 1 of 2 GETs served from cache");
}

#[test]
fn cache_stores_neither_404s_nor_posts_nor_oversized_bodies() {
    let (origin, proxy, [first, second]) = twice(Mode::Cache, "/notfound");
    assert_eq!((first.status, second.status), (404, 404));
    assert_eq!(second.header("x-cache"), Some("MISS"));
    assert_eq!(origin.count("/notfound"), 2);

    let mut conn = Conn::open(proxy.addr());
    let echo = origin.url("/echo");
    for body in ["one", "two"] {
        let post = format!(
            "POST {echo} HTTP/1.1\r\nHost: {}\r\nContent-Length: 3\r\n\r\n{body}",
            origin.addr
        );
        let reply = conn.send(post.as_bytes()).unwrap();
        assert_eq!(reply.text(), body, "each POST reaches the origin");
        assert_eq!(reply.header("x-cache"), None);
    }
    assert_eq!(origin.count("/echo"), 2);

    for path in ["/big", "/bigchunked"] {
        for _ in 0..2 {
            let reply = conn.get(&origin.url(path));
            assert_eq!(reply.body.len(), BIG, "{path} streamed whole");
            assert_eq!(reply.header("x-cache"), Some("MISS"));
        }
        assert_eq!(
            origin.count(path),
            2,
            "{path} over the limit is never stored"
        );
    }
    assert_eq!(proxy.stats().stored, 0);
}

#[test]
fn clear_cache_gives_a_cold_cache() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Cache);
    let url = origin.url("/nostore");
    get(&proxy, &url);
    assert_eq!(get(&proxy, &url).header("x-cache"), Some("HIT"));
    proxy.clear_cache();
    let reply = get(&proxy, &url);
    assert_eq!(reply.header("x-cache"), Some("MISS"));
    assert_eq!(reply.text(), "nostore n=2");
}

#[test]
fn rfc_does_not_store_no_store_or_private() {
    for path in ["/nostore", "/private"] {
        let (origin, proxy, [_, second]) = twice(Mode::Rfc, path);
        assert_eq!(second.header("x-cache"), Some("MISS"), "{path}");
        assert_eq!(origin.count(path), 2, "{path}");
        assert_eq!(proxy.stats().stored, 0, "{path}");
    }
}

#[test]
fn rfc_serves_max_age_from_cache() {
    let (origin, proxy, [first, second]) = twice(Mode::Rfc, "/maxage");
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert!(second.header("age").is_some());
    assert_eq!(second.text(), "maxage n=1");
    assert_eq!(origin.count("/maxage"), 1);
    let stats = proxy.stats();
    assert_eq!((stats.hits, stats.misses, stats.stored), (1, 1, 1));
}

#[test]
fn both_caches_use_heuristic_freshness_from_last_modified() {
    for mode in [Mode::Cache, Mode::Rfc] {
        let (origin, _proxy, [_, second]) = twice(mode.clone(), "/lastmod");
        assert_eq!(second.header("x-cache"), Some("HIT"), "{mode}");
        assert_eq!(second.text(), "lastmod n=1", "{mode}");
        assert_eq!(origin.count("/lastmod"), 1, "{mode}");
    }
}

#[test]
fn rfc_revalidates_with_the_etag_and_serves_the_cached_body() {
    let (origin, proxy, [first, second]) = twice(Mode::Rfc, "/etag");
    assert_eq!((first.status, first.text().as_str()), (200, "etag n=1"));
    assert_eq!(
        origin.count("/etag"),
        2,
        "no-cache: every use is revalidated"
    );
    let revalidation = origin.last_seen();
    assert_eq!(revalidation.headers["if-none-match"], "\"v1\"");
    assert_eq!(
        second.status, 200,
        "the origin's 304 is the proxy's business"
    );
    assert_eq!(second.text(), "etag n=1");
    assert_eq!(second.header("x-cache"), Some("HIT"));
    let stats = proxy.stats();
    assert_eq!((stats.hits, stats.revalidated, stats.misses), (1, 1, 1));
    assert_eq!(
        stats.summary(),
        "2 requests; 1 of 2 GETs served from cache (1 after revalidation)"
    );
}

#[test]
fn rfc_lets_the_client_force_a_revalidation_and_unsafe_methods_invalidate() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Rfc);
    let url = origin.url("/maxage");
    get(&proxy, &url);
    // The client's own `no-cache` beats the stored max-age.
    let reply = Conn::open(proxy.addr())
        .send(get_request(&url, "Cache-Control: no-cache\r\n").as_bytes())
        .unwrap();
    assert_eq!(reply.text(), "maxage n=2");
    assert_eq!(get(&proxy, &url).header("x-cache"), Some("HIT"));
    let post = format!(
        "POST {url} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        origin.addr
    );
    Conn::open(proxy.addr()).send(post.as_bytes()).unwrap();
    let reply = get(&proxy, &url);
    assert_eq!(reply.header("x-cache"), Some("MISS"), "POST invalidated it");
    assert_eq!(origin.count("/maxage"), 4);
}

#[test]
fn rfc_serves_its_body_when_a_304_lacks_the_stored_validator() {
    let (origin, _proxy, [_, second]) = twice(Mode::Rfc, "/etag-lost");
    assert_eq!(origin.count("/etag-lost"), 2, "revalidated");
    assert_eq!(
        second.status, 200,
        "a 304 never reaches an unconditional client"
    );
    assert_eq!(second.text(), "etag-lost n=1");
}

#[test]
fn rfc_reads_a_float_age_as_its_seconds() {
    let (origin, _proxy, [_, second]) = twice(Mode::Rfc, "/old-age");
    assert_eq!(
        second.header("x-cache"),
        Some("MISS"),
        "Age 7200.0 > max-age 3600"
    );
    assert_eq!(origin.count("/old-age"), 2);
}

#[test]
fn rfc_answers_a_clients_conditional_get_from_a_fresh_entry() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Rfc);
    let url = origin.url("/tagged");
    get(&proxy, &url);
    let reply = Conn::open(proxy.addr())
        .send(get_request(&url, "If-None-Match: \"t1\"\r\n").as_bytes())
        .unwrap();
    assert_eq!(reply.status, 304);
    assert_eq!(reply.header("etag"), Some("\"t1\""));
    assert_eq!(reply.header("x-cache"), Some("HIT"));
    let other = Conn::open(proxy.addr())
        .send(get_request(&url, "If-None-Match: \"t0\"\r\n").as_bytes())
        .unwrap();
    assert_eq!((other.status, other.text().as_str()), (200, "tagged n=1"));
    assert_eq!(origin.count("/tagged"), 1, "both answered from the cache");
}

#[test]
fn rfc_invalidates_the_url_a_post_response_names() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Rfc);
    let url = origin.url("/tagged");
    get(&proxy, &url);
    assert_eq!(get(&proxy, &url).header("x-cache"), Some("HIT"));
    let post = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        origin.url("/items"),
        origin.addr
    );
    Conn::open(proxy.addr()).send(post.as_bytes()).unwrap();
    assert_eq!(
        get(&proxy, &url).header("x-cache"),
        Some("MISS"),
        "Location: /tagged was invalidated"
    );
}

#[test]
fn rfc_keeps_each_variant_of_a_url_that_varies() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Rfc);
    let url = origin.url("/vary");
    let with_foo = |value: &str| {
        Conn::open(proxy.addr())
            .send(get_request(&url, &format!("Foo: {value}\r\n")).as_bytes())
            .unwrap()
    };
    assert_eq!(with_foo("1").text(), "vary n=1");
    assert_eq!(with_foo("2").text(), "vary n=2");
    let again = with_foo("1");
    assert_eq!(
        (again.header("x-cache"), again.text().as_str()),
        (Some("HIT"), "vary n=1")
    );
    // The same list, spelled another way, is the same variant.
    assert_eq!(with_foo("3, 4").text(), "vary n=3");
    let spaced = with_foo("3,4");
    assert_eq!(
        (spaced.header("x-cache"), spaced.text().as_str()),
        (Some("HIT"), "vary n=3")
    );
    assert_eq!(origin.count("/vary"), 3);
}

#[test]
fn rfc_stores_a_response_that_sets_a_cookie_as_rfc_9111_allows() {
    let (origin, _proxy, [_, second]) = twice(Mode::Rfc, "/cookie");
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert_eq!(origin.count("/cookie"), 1);
}

#[test]
fn rfc_answers_a_range_from_a_stored_body() {
    let origin = Origin::start();
    let proxy = proxy(Mode::Rfc);
    let url = origin.url("/tagged");
    get(&proxy, &url);
    let ranged = |range: &str| {
        Conn::open(proxy.addr())
            .send(get_request(&url, &format!("Range: {range}\r\n")).as_bytes())
            .unwrap()
    };
    // The stored body is "tagged n=1", 10 bytes.
    let part = ranged("bytes=0-5");
    assert_eq!((part.status, part.text().as_str()), (206, "tagged"));
    assert_eq!(part.header("content-range"), Some("bytes 0-5/10"));
    let tail = ranged("bytes=-3");
    assert_eq!((tail.status, tail.text().as_str()), (206, "n=1"));
    assert_eq!(ranged("bytes=50-").status, 416);
    assert_eq!(
        ranged("bytes=0-1,3-4").status,
        200,
        "several ranges: the whole body"
    );
    assert_eq!(origin.count("/tagged"), 1);
}

#[test]
fn rfc_reads_cache_control_directives_in_any_case() {
    let (origin, _proxy, [_, second]) = twice(Mode::Rfc, "/shouty");
    assert_eq!(
        second.header("x-cache"),
        Some("MISS"),
        "NO-CACHE is no-cache"
    );
    assert_eq!(origin.count("/shouty"), 2);
}
