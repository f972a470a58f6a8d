//! Splitting one replay into shards that separate machines run, and what a
//! report carries so that the shards can be merged back into one.
//!
//! A replay's work is a list of units in the engine's order: one per run of
//! a cold cell, and one per warm cell (a warm cell's runs share a home and a
//! proxy cache and run in sequence after an uncounted warm-up, so a warm cell
//! is never split). [`Shard::units`] gives each unit to exactly one of N
//! shards by a pure function of (warm flags, runs per cell, N): every shard
//! computes the same split on its own, and the shards together run exactly
//! the runs of the unsharded replay, each with the seed it has there
//! ([`crate::replay::run_seed`] depends only on the seed, the cell and the
//! run's index). Nothing here reads the clock, the disk or anything random,
//! except [`tree_sha256`], which reads the directory it is given.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// One shard of a split: `index` counts from 1 to `count`, as Jest,
/// Playwright, Vitest and nextest count their `--shard 1/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A unit of work: one run of a cold cell, or a whole warm cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Run { cell: usize, index: u32 },
    Warm { cell: usize },
}

impl Unit {
    /// Runs the unit does, warm-up included: what the split balances.
    fn weight(self, runs: u32) -> u64 {
        match self {
            Self::Run { .. } => 1,
            Self::Warm { .. } => u64::from(runs) + 1,
        }
    }
}

/// The units of a replay, in the engine's order, for cells whose cache
/// condition is `warm[i]` and `runs` runs per cell.
pub fn units(warm: &[bool], runs: u32) -> Vec<Unit> {
    let mut out = Vec::new();
    for (cell, &is_warm) in warm.iter().enumerate() {
        if is_warm {
            out.push(Unit::Warm { cell });
        } else {
            out.extend((0..runs).map(|index| Unit::Run { cell, index }));
        }
    }
    out
}

impl Shard {
    /// Parses `INDEX/COUNT`, with `INDEX` counting from 1.
    pub fn parse(text: &str) -> Result<Self, String> {
        let form = "give INDEX/COUNT with INDEX counting from 1, e.g. 1/4 \
                    (as Jest, Playwright and nextest count their shards)";
        let Some((index, count)) = text.trim().split_once('/') else {
            return Err(format!("--shard {text:?}: {form}"));
        };
        let (Ok(index), Ok(count)) = (index.trim().parse::<u32>(), count.trim().parse::<u32>())
        else {
            return Err(format!("--shard {text:?}: {form}"));
        };
        if count == 0 {
            return Err(format!(
                "--shard {text:?}: COUNT must be at least 1; {form}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "--shard {text:?}: INDEX counts from 1, so the shards of {count} are 1/{count} to {count}/{count}"
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard that runs each unit of `all` (the engine's list), in order,
    /// counting from 0.
    ///
    /// Longest processing time first: units by decreasing weight (a warm
    /// cell weighs its runs plus the warm-up), each to the least-loaded
    /// shard, ties to the lowest index. With cold cells only this deals the
    /// runs round-robin, so consecutive runs of one cell land on different
    /// machines.
    pub fn assignment(all: &[Unit], runs: u32, count: u32) -> Vec<u32> {
        let mut order: Vec<usize> = (0..all.len()).collect();
        // Stable: equal weights keep the engine's order.
        order.sort_by_key(|&i| Reverse(all[i].weight(runs)));
        // Shards past the number of units never get one: no need to track them.
        let tracked = u32::try_from(all.len()).unwrap_or(u32::MAX).min(count);
        let mut loads: BinaryHeap<Reverse<(u64, u32)>> =
            (0..tracked).map(|s| Reverse((0, s))).collect();
        let mut out = vec![0; all.len()];
        for i in order {
            let Some(Reverse((load, shard))) = loads.pop() else {
                break;
            };
            out[i] = shard;
            loads.push(Reverse((load + all[i].weight(runs), shard)));
        }
        out
    }

    /// The units of `all` this shard runs, in the engine's order.
    pub fn units(self, all: &[Unit], runs: u32) -> Vec<Unit> {
        Self::assignment(all, runs, self.count)
            .into_iter()
            .zip(all)
            .filter(|&(s, _)| s + 1 == self.index)
            .map(|(_, &u)| u)
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a replay was asked to do, beyond its cells: enough for shards of
/// one replay to be checked against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixInfo {
    /// Cells in the matrix (each listed in the report's `cells`).
    pub cells: u32,
    /// Runs per cell (`--runs`).
    pub runs: u32,
    /// Counted runs of the whole, unsharded replay.
    pub total_runs: u64,
    /// The run step's time limit.
    pub timeout_ms: u64,
}

/// The SHA-256 that names a scenario directory: over every regular file's
/// path, executable bit and contents, and every directory's path, sorted,
/// which is what replay copies into a run. Symlinks are skipped, as replay
/// skips them.
pub fn tree_sha256(dir: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut stack = vec![String::new()];
    let mut entries: Vec<(String, bool)> = Vec::new();
    while let Some(rel) = stack.pop() {
        let here = if rel.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(&rel)
        };
        for entry in fs::read_dir(&here)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                entries.push((path.clone(), true));
                stack.push(path);
            } else if kind.is_file() {
                entries.push((path, false));
            }
        }
    }
    entries.sort();
    for (path, is_dir) in entries {
        if is_dir {
            hasher.update(format!("d {path}\0").as_bytes());
            continue;
        }
        let full = dir.join(&path);
        let exec = fs::metadata(&full)?.permissions().mode() & 0o111 != 0;
        let bytes = fs::read(&full)?;
        hasher.update(format!("f {path}\0{}\0{}\0", u8::from(exec), bytes.len()).as_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_counts_from_one() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(Shard::parse(" 4/4 ").map(|s| s.index), Ok(4));
        for bad in ["0/4", "5/4", "1/0", "0/0", "x/2", "2", "-1/3", "1/2/3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let why = Shard::parse("0/3").unwrap_err();
        assert!(why.contains("1/3 to 3/3"), "{why}");
    }

    fn covered_once(warm: &[bool], runs: u32, count: u32) {
        let all = units(warm, runs);
        let mut seen: Vec<Unit> = Vec::new();
        for index in 1..=count {
            seen.extend(Shard { index, count }.units(&all, runs));
        }
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want, "warm {warm:?} runs {runs} count {count}");
    }

    #[test]
    fn every_unit_goes_to_exactly_one_shard() {
        for warm in [
            &[false][..],
            &[true],
            &[false, true, false, true],
            &[true, true, false],
        ] {
            for runs in [1, 2, 5] {
                for count in [1, 2, 3, 7, 50] {
                    covered_once(warm, runs, count);
                }
            }
        }
    }

    #[test]
    fn a_warm_cell_stays_whole_and_the_load_balances() {
        let all = units(&[true, false], 10);
        assert_eq!(all.len(), 11);
        let shards: Vec<Vec<Unit>> = (1..=2)
            .map(|index| Shard { index, count: 2 }.units(&all, 10))
            .collect();
        // The warm cell (11 runs with its warm-up) on one shard, the cold
        // cell's 10 runs on the other.
        assert_eq!(shards[0], vec![Unit::Warm { cell: 0 }]);
        assert_eq!(shards[1].len(), 10);
    }

    #[test]
    fn cold_runs_are_dealt_round_robin() {
        let all = units(&[false], 6);
        let a = Shard::assignment(&all, 6, 4);
        assert_eq!(a, [0, 1, 2, 3, 0, 1]);
        // More shards than units: the extra shards are empty.
        let a = Shard::assignment(&all, 6, u32::MAX);
        assert_eq!(a, [0, 1, 2, 3, 4, 5]);
        assert!(
            Shard {
                index: 7,
                count: u32::MAX
            }
            .units(&all, 6)
            .is_empty()
        );
    }

    #[test]
    fn the_tree_digest_follows_contents_names_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("scenario.yaml"), "name: x\nrun: 'true'\n").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a.sh"), "echo").unwrap();
        let first = tree_sha256(dir.path()).unwrap();
        assert_eq!(first, tree_sha256(dir.path()).unwrap());
        fs::set_permissions(
            dir.path().join("sub/a.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let exec = tree_sha256(dir.path()).unwrap();
        assert_ne!(first, exec);
        fs::write(dir.path().join("sub/a.sh"), "echo!").unwrap();
        assert_ne!(exec, tree_sha256(dir.path()).unwrap());
    }
}
