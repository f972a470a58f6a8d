//! The `delay` timing: a small shared library (`delay_shim.c`, built by
//! `build.rs`) loaded with `LD_PRELOAD` into the run step's processes. It
//! sleeps for short random times where threads meet (thread start, mutex
//! lock and unlock, condition variables, semaphores, join) and can hold new
//! threads until their siblings are all created, so that they start
//! together. Those are the microsecond windows the outside perturbations
//! (`chaos`, `noise`, `load`) act too coarsely to open.
//!
//! Each run draws one of the [`PROFILES`] from its seed. A statically
//! linked program (Go's, by default) never loads the library; the run's
//! detail lists the programs that did, and the cell's note says when no
//! call was intercepted.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde_json::{Value, json};

use super::timing::SplitMix;

/// The library, as built for this bugpack.
const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bugpack-delay.so"));

/// How one run is perturbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Profile {
    pub(super) name: &'static str,
    /// One intercepted call in this many sleeps (`u64::MAX`: none does).
    pub(super) one_in: u64,
    /// A sleep lasts 1 to this many microseconds.
    pub(super) max_us: u64,
    /// A new thread waits until no thread has been created for this long
    /// (0: it does not wait).
    pub(super) align_us: u64,
}

/// The profiles a run draws from: siblings started together (the race
/// between two fresh threads, the commonest here, so half the runs); together
/// and with short sleeps (an interleaving inside their work); and longer
/// sleeps alone (a thread that arrives late, or holds a lock long).
const TOGETHER: Profile = Profile {
    name: "together",
    one_in: u64::MAX,
    max_us: 1,
    align_us: 300,
};
pub(super) const PROFILES: [Profile; 4] = [
    TOGETHER,
    TOGETHER,
    Profile {
        name: "together+sleeps",
        one_in: 4,
        max_us: 1_000,
        align_us: 300,
    },
    Profile {
        name: "sleeps",
        one_in: 4,
        max_us: 5_000,
        align_us: 0,
    },
];

/// The profile of the run with this seed.
pub(super) fn profile(seed: u64) -> Profile {
    let i = SplitMix(seed ^ 0xde1a_0000).below(PROFILES.len() as u64);
    PROFILES[usize::try_from(i).unwrap_or(0)]
}

/// Writes the library into `dir` and returns the run step's variables:
/// `LD_PRELOAD` (before any the scenario sets), the profile, and where each
/// process writes its counters when it exits (`stats`).
pub(super) fn install(
    dir: &Path,
    stats: &Path,
    seed: u64,
    scenario_preload: Option<&str>,
) -> io::Result<BTreeMap<String, String>> {
    let library = dir.join("bugpack-delay.so");
    std::fs::write(&library, LIBRARY)?;
    let p = profile(seed);
    let mut preload = library.display().to_string();
    if let Some(theirs) = scenario_preload.filter(|s| !s.is_empty()) {
        preload = format!("{preload} {theirs}");
    }
    let mut env = BTreeMap::new();
    env.insert("LD_PRELOAD".to_owned(), preload);
    env.insert(
        "BUGPACK_DELAY".to_owned(),
        format!("{seed} {} {} {}", p.one_in, p.max_us, p.align_us),
    );
    env.insert(
        "BUGPACK_DELAY_STATS".to_owned(),
        stats.display().to_string(),
    );
    Ok(env)
}

/// A run's `axes_detail.timing`: its profile, the programs that loaded the
/// library, and the counters they wrote when they exited (a process killed
/// at a hang writes none).
pub(super) fn detail(stats: &Path, seed: u64) -> Value {
    let text = std::fs::read_to_string(stats).unwrap_or_default();
    let mut programs: Vec<&str> = Vec::new();
    let (mut exited, mut calls, mut delays, mut delayed_us, mut aligned) = (0u64, 0, 0, 0, 0);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let rest: Vec<&str> = words.collect();
        if rest == ["loaded"] {
            if !programs.contains(&name) {
                programs.push(name);
            }
            continue;
        }
        let numbers: Vec<u64> = rest.iter().filter_map(|w| w.parse().ok()).collect();
        if let [c, d, us, a] = numbers[..] {
            exited += 1;
            calls += c;
            delays += d;
            delayed_us += us;
            aligned += a;
        }
    }
    json!({
        "profile": profile(seed).name,
        "programs": programs,
        "exited": exited,
        "calls": calls,
        "delays": delays,
        "delayed_ms": delayed_us / 1000,
        "aligned_threads": aligned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_spread_over_every_profile() {
        // Each entry a quarter of the time, give or take.
        let drawn: Vec<&str> = (0..400).map(|s| profile(s).name).collect();
        for p in PROFILES {
            let n = drawn.iter().filter(|&&n| n == p.name).count();
            assert!(n >= 60, "{} drawn {n} times in 400", p.name);
        }
        assert_eq!(profile(7), profile(7));
    }

    #[test]
    fn counters_are_summed_over_processes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = dir.path().join("stats");
        let lines = "sh loaded\nprog loaded\nsh loaded\nsh 0 0 0 0\nprog 10 3 1500 2\nbad line\n";
        std::fs::write(&stats, lines).expect("write");
        let d = detail(&stats, 1);
        assert_eq!(d["programs"], json!(["sh", "prog"]));
        assert_eq!(d["exited"], 2);
        assert_eq!(d["calls"], 10);
        assert_eq!(d["delays"], 3);
        assert_eq!(d["delayed_ms"], 1);
        assert_eq!(d["aligned_threads"], 2);
    }
}
