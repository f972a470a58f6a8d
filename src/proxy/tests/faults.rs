//! `slow` and `flaky`: the faults, and that a seed replays them.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use super::support::{Conn, Origin, proxy_seeded};
use crate::proxy::Mode;

#[test]
fn slow_holds_every_response_and_its_jitter_follows_the_seed() {
    let origin = Origin::start();
    let url = origin.url("/echo");
    let ms = 120;
    let run = |seed| {
        let proxy = proxy_seeded(Mode::Slow { ms }, seed);
        let mut conn = Conn::open(proxy.addr());
        for _ in 0..4 {
            let start = Instant::now();
            assert_eq!(conn.get(&url).status, 200);
            // Jitter is ±10%: never less than 90% of the mean.
            assert!(start.elapsed() >= Duration::from_millis(ms * 9 / 10));
        }
        proxy.stats().added_delay_ms
    };
    let first = run(5);
    assert!(first >= 4 * ms * 9 / 10, "{first}");
    assert_eq!(first, run(5), "the same seed gives the same delays");
    assert_ne!(first, run(6), "another seed, other delays");
}

/// Opens `n` connections one after another, each sending a GET: whether each was reset.
fn resets(proxy: &crate::proxy::Proxy, url: &str, n: usize) -> Vec<bool> {
    (0..n)
        .map(|_| {
            match Conn::open(proxy.addr()).send(super::support::get_request(url, "").as_bytes()) {
                Ok(reply) => {
                    assert_eq!(reply.status, 200);
                    false
                }
                Err(err) => {
                    assert!(
                        matches!(
                            err.kind(),
                            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                        ),
                        "{err}"
                    );
                    true
                }
            }
        })
        .collect()
}

#[test]
fn flaky_resets_all_none_or_a_seeded_share() {
    let origin = Origin::start();
    let url = origin.url("/echo");

    let all = proxy_seeded(Mode::Flaky { p: 1.0 }, 1);
    assert_eq!(resets(&all, &url, 5), vec![true; 5]);
    let stats = all.stats();
    assert_eq!((stats.connections, stats.resets, stats.requests), (5, 5, 0));
    assert_eq!(stats.summary(), "0 requests; 5 of 5 connections reset");

    let none = proxy_seeded(Mode::Flaky { p: 0.0 }, 1);
    assert_eq!(resets(&none, &url, 5), vec![false; 5]);
    assert_eq!(none.stats().resets, 0);

    let half = |seed| resets(&proxy_seeded(Mode::Flaky { p: 0.5 }, seed), &url, 16);
    let first = half(42);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    assert_eq!(first, half(42), "the same seed resets the same connections");
}

#[test]
fn a_reset_is_a_tcp_reset_not_a_clean_close() {
    let origin = Origin::start();
    let proxy = proxy_seeded(Mode::Flaky { p: 1.0 }, 1);
    let mut conn = Conn::open(proxy.addr());
    let err = conn
        .send(super::support::get_request(&origin.url("/echo"), "").as_bytes())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}
