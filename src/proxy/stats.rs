//! What the proxy did, counted: the numbers a replay report shows beside a
//! proxy cell ("12 of 14 GETs served from cache").
//!
//! Counters are lock-free atomics bumped on the serving path; they must
//! never block or allocate there. A snapshot is a plain [`Stats`] value.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Counters of what the proxy did since it started or since the last
/// [`Proxy::take_stats`](super::Proxy::take_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Client connections accepted.
    pub connections: u64,
    /// Requests received, of any method, CONNECT included.
    pub requests: u64,
    /// GET requests received.
    pub gets: u64,
    /// GETs answered with a body from the cache (fresh, or confirmed by a 304).
    pub hits: u64,
    /// GETs a cache mode had to answer from the origin.
    pub misses: u64,
    /// Responses written into the cache.
    pub stored: u64,
    /// Hits that needed a conditional request to the origin (answered 304).
    pub revalidated: u64,
    /// CONNECT tunnels requested.
    pub connects: u64,
    /// Client connections reset on purpose (`flaky`).
    pub resets: u64,
    /// Requests the origin could not be reached for (answered 502).
    pub upstream_errors: u64,
    /// Latency added by `slow`, summed over all responses, in milliseconds.
    pub added_delay_ms: u64,
    /// Responses an HTTP fault changed: a status answered in place of the
    /// origin, a body cut short, a header removed.
    pub faulted: u64,
}

impl Stats {
    /// One line for a human: what the proxy did that matters to the bug,
    /// e.g. `14 requests; 12 of 14 GETs served from cache`.
    pub fn summary(&self) -> String {
        if self.requests == 0 && self.connections == 0 {
            return "no requests".to_owned();
        }
        let mut parts = vec![plural(self.requests, "request")];
        if self.hits + self.misses > 0 {
            let mut part = format!("{} of {} GETs served from cache", self.hits, self.gets);
            if self.revalidated > 0 {
                let _ = write!(part, " ({} after revalidation)", self.revalidated);
            }
            parts.push(part);
        }
        if self.connects > 0 {
            parts.push(plural(self.connects, "CONNECT tunnel"));
        }
        if self.resets > 0 {
            parts.push(format!(
                "{} of {} connections reset",
                self.resets, self.connections
            ));
        }
        if self.added_delay_ms > 0 {
            let per = self.added_delay_ms / self.requests.max(1);
            parts.push(format!("+{per} ms per response"));
        }
        if self.faulted > 0 {
            parts.push(format!(
                "{} of {} responses faulted",
                self.faulted, self.requests
            ));
        }
        if self.upstream_errors > 0 {
            parts.push(plural(self.upstream_errors, "upstream error"));
        }
        parts.join("; ")
    }

    /// Adds another snapshot's counts to these (a cell's runs, summed).
    pub fn add(&mut self, s: &Self) {
        self.connections += s.connections;
        self.requests += s.requests;
        self.gets += s.gets;
        self.hits += s.hits;
        self.misses += s.misses;
        self.stored += s.stored;
        self.revalidated += s.revalidated;
        self.connects += s.connects;
        self.resets += s.resets;
        self.upstream_errors += s.upstream_errors;
        self.added_delay_ms += s.added_delay_ms;
        self.faulted += s.faulted;
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// One counter of [`Stats`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Connections,
    Requests,
    Gets,
    Hits,
    Misses,
    Stored,
    Revalidated,
    Connects,
    Resets,
    UpstreamErrors,
    AddedDelayMs,
    Faulted,
}

/// The live counters, shared by every connection of one proxy.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    values: [AtomicU64; 12],
    /// Woken on every change, so a stats file can follow the counters.
    changed: Notify,
}

impl Counters {
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        self.values[counter as usize].fetch_add(n, Ordering::Relaxed);
        self.changed.notify_one();
    }

    pub(crate) fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }

    /// Resolves after the next change (or at once if one happened since the
    /// last call): changes are coalesced, none is lost.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.collect(|v| v.load(Ordering::Relaxed))
    }

    /// A snapshot, with every counter reset to zero in the same pass.
    pub(crate) fn take(&self) -> Stats {
        let stats = self.collect(|v| v.swap(0, Ordering::Relaxed));
        self.changed.notify_one();
        stats
    }

    fn collect(&self, read: impl Fn(&AtomicU64) -> u64) -> Stats {
        let get = |c: Counter| read(&self.values[c as usize]);
        Stats {
            connections: get(Counter::Connections),
            requests: get(Counter::Requests),
            gets: get(Counter::Gets),
            hits: get(Counter::Hits),
            misses: get(Counter::Misses),
            stored: get(Counter::Stored),
            revalidated: get(Counter::Revalidated),
            connects: get(Counter::Connects),
            resets: get(Counter::Resets),
            upstream_errors: get(Counter::UpstreamErrors),
            added_delay_ms: get(Counter::AddedDelayMs),
            faulted: get(Counter::Faulted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_what_mattered() {
        assert_eq!(Stats::default().summary(), "no requests");
        let cache = Stats {
            connections: 3,
            requests: 14,
            gets: 14,
            hits: 12,
            misses: 2,
            stored: 2,
            ..Stats::default()
        };
        assert_eq!(
            cache.summary(),
            "14 requests; 12 of 14 GETs served from cache"
        );
        let flaky = Stats {
            connections: 40,
            requests: 37,
            resets: 3,
            ..Stats::default()
        };
        assert_eq!(flaky.summary(), "37 requests; 3 of 40 connections reset");
        let slow = Stats {
            connections: 1,
            requests: 2,
            added_delay_ms: 600,
            ..Stats::default()
        };
        assert_eq!(slow.summary(), "2 requests; +300 ms per response");
    }

    #[test]
    fn take_resets_every_counter() {
        let counters = Counters::default();
        for c in [Counter::Requests, Counter::Gets, Counter::AddedDelayMs] {
            counters.add(c, 5);
        }
        let taken = counters.take();
        assert_eq!(
            (taken.requests, taken.gets, taken.added_delay_ms),
            (5, 5, 5)
        );
        assert_eq!(counters.snapshot(), Stats::default());
    }

    #[test]
    fn stats_json_round_trips() {
        let stats = Stats {
            hits: 2,
            resets: 1,
            ..Stats::default()
        };
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<Stats>(&json).unwrap(), stats);
    }
}
