//! Merging the reports of a sharded replay (`replay --shard`) into the
//! report the whole replay would have made.
//!
//! Reports merge only when they are parts of one replay: the same bugpack
//! version, scenario, bundle SHA-256 (or scenario directory digest), seed,
//! matrix and cells, each shard at most once, and each run where the split
//! ([`crate::shard`]) puts it. Counts, rates, intervals, medians, reasons,
//! notes and the verdict are computed again from the merged runs, exactly as
//! the engine computes them. Missing shards are allowed: the merged report
//! names them and the caller gets a warning. Pure: nothing here reads files
//! or prints.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::notes;
use super::{CellReport, IsolationInfo, Report, RunResult};
use crate::matrix::{Cache, Cell, Timing};
use crate::shard::{Shard, Unit, units};

/// A merged report's shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeInfo {
    /// Shards in the split.
    pub count: u32,
    /// Shards merged, in order.
    pub present: Vec<u32>,
    /// Shards not given to the merge, in order.
    pub missing: Vec<u32>,
}

/// One report to merge and the name it goes by in messages (its file).
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub report: Report,
}

/// Why reports cannot be merged. Each message names the files at fault.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no reports to merge")]
    Nothing,
    #[error("{other} is not part of the same replay as {first}: {what} {b} there, {a} in {first}")]
    Mixed {
        what: &'static str,
        first: String,
        other: String,
        a: String,
        b: String,
    },
    #[error("{first} and {other} both hold {part}: give each shard once")]
    Overlap {
        part: String,
        first: String,
        other: String,
    },
    #[error("{name}: {why}")]
    Foreign { name: String, why: String },
}

/// Which shards an input holds: its `shard`, a merged report's `present`,
/// or the whole replay.
fn coverage(r: &Report) -> (u32, Vec<u32>) {
    match (&r.shard, &r.merged) {
        (Some(s), _) => (s.count, vec![s.index]),
        (None, Some(m)) => (m.count, m.present.clone()),
        (None, None) => (1, vec![1]),
    }
}

fn identity(r: &Report) -> Option<(&'static str, &str)> {
    match (&r.bundle_sha256, &r.scenario_sha256) {
        (Some(sha), _) => Some(("bundle SHA-256", sha.as_str())),
        (None, Some(sha)) => Some(("scenario directory SHA-256", sha.as_str())),
        (None, None) => None,
    }
}

fn part_name(count: u32, index: u32) -> String {
    if count == 1 {
        "the whole replay".to_owned()
    } else {
        format!("shard {index}/{count}")
    }
}

/// Merges `inputs`; also returns warnings worth a line each (missing
/// shards, interrupted shards, differing isolation).
pub fn merge(inputs: &[Input]) -> Result<(Report, Vec<String>), MergeError> {
    let first = inputs.first().ok_or(MergeError::Nothing)?;
    let base = &first.report;
    let Some(matrix) = base.matrix else {
        return Err(MergeError::Foreign {
            name: first.name.clone(),
            why: "the report has no `matrix`: it was made by a bugpack that cannot shard; replay again".into(),
        });
    };
    let Some(base_identity) = identity(base) else {
        return Err(MergeError::Foreign {
            name: first.name.clone(),
            why: "the report names neither a bundle SHA-256 nor a scenario digest; replay again"
                .into(),
        });
    };
    let axes_of = |r: &Report| r.cells.iter().map(|c| c.axes.clone()).collect::<Vec<_>>();
    let base_axes = axes_of(base);
    if u32::try_from(base_axes.len()).ok() != Some(matrix.cells) {
        return Err(MergeError::Foreign {
            name: first.name.clone(),
            why: format!(
                "lists {} cells but its matrix has {}",
                base_axes.len(),
                matrix.cells
            ),
        });
    }
    let (count, _) = coverage(base);
    let mixed = |input: &Input, what: &'static str, a: String, b: String| MergeError::Mixed {
        what,
        first: first.name.clone(),
        other: input.name.clone(),
        a,
        b,
    };
    for input in &inputs[1..] {
        let r = &input.report;
        let same = |what: &'static str, a: String, b: String| {
            if a == b {
                Ok(())
            } else {
                Err(mixed(input, what, a, b))
            }
        };
        same("bugpack", base.bugpack.clone(), r.bugpack.clone())?;
        same("scenario", base.scenario.clone(), r.scenario.clone())?;
        match identity(r) {
            Some(id) if id == base_identity => {}
            Some((kind, sha)) => {
                return Err(mixed(
                    input,
                    kind,
                    format!("{} {}", base_identity.0, base_identity.1),
                    sha.to_owned(),
                ));
            }
            None => {
                return Err(mixed(
                    input,
                    "source",
                    format!("{} {}", base_identity.0, base_identity.1),
                    "unnamed".into(),
                ));
            }
        }
        same("seed", base.seed.to_string(), r.seed.to_string())?;
        if r.matrix != Some(matrix) {
            let show = |m: Option<crate::shard::MatrixInfo>| {
                m.map_or_else(
                    || "none".to_owned(),
                    |m| {
                        format!(
                            "{} cells x {} runs, timeout {} ms",
                            m.cells, m.runs, m.timeout_ms
                        )
                    },
                )
            };
            return Err(mixed(input, "matrix", show(Some(matrix)), show(r.matrix)));
        }
        let theirs = axes_of(r);
        if theirs != base_axes {
            let show = |axes: &[super::Axes]| {
                axes.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(mixed(input, "cells", show(&base_axes), show(&theirs)));
        }
        same("shard count", count.to_string(), coverage(r).0.to_string())?;
    }

    // Each shard once, and each run where the split puts it.
    let cells = base
        .cells
        .iter()
        .map(|c| cell_of(&c.axes).ok_or_else(|| c.axes.clone()))
        .collect::<Result<Vec<Cell>, _>>()
        .map_err(|axes| MergeError::Foreign {
            name: first.name.clone(),
            why: format!("unknown axis values {axes}"),
        })?;
    let warm: Vec<bool> = cells.iter().map(|c| c.cache == Cache::Warm).collect();
    let all = units(&warm, matrix.runs);
    let owner: BTreeMap<Unit, u32> = all
        .iter()
        .copied()
        .zip(
            Shard::assignment(&all, matrix.runs, count)
                .into_iter()
                .map(|s| s + 1),
        )
        .collect();
    let mut held: BTreeMap<u32, &str> = BTreeMap::new();
    let mut runs: BTreeMap<(usize, u32), &str> = BTreeMap::new();
    let mut merged: Vec<Vec<RunResult>> = vec![Vec::new(); cells.len()];
    for input in inputs {
        let (_, parts) = coverage(&input.report);
        for &p in &parts {
            if p == 0 || p > count {
                return Err(MergeError::Foreign {
                    name: input.name.clone(),
                    why: format!("claims shard {p} of {count}"),
                });
            }
            if let Some(prev) = held.insert(p, &input.name) {
                return Err(MergeError::Overlap {
                    part: part_name(count, p),
                    first: prev.to_owned(),
                    other: input.name.clone(),
                });
            }
        }
        for (c, cell) in input.report.cells.iter().enumerate() {
            for run in &cell.results {
                let unit = if warm[c] {
                    Unit::Warm { cell: c }
                } else {
                    Unit::Run {
                        cell: c,
                        index: run.index,
                    }
                };
                let label = format!("run {} of cell {}", run.index, cell.axes);
                match owner.get(&unit) {
                    Some(s) if run.index < matrix.runs && parts.contains(s) => {}
                    Some(s) if run.index < matrix.runs => {
                        return Err(MergeError::Foreign {
                            name: input.name.clone(),
                            why: format!(
                                "holds {label}, which {} runs, not {}",
                                part_name(count, *s),
                                parts
                                    .iter()
                                    .map(|&p| part_name(count, p))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        });
                    }
                    _ => {
                        return Err(MergeError::Foreign {
                            name: input.name.clone(),
                            why: format!("holds {label}, past the {} runs per cell", matrix.runs),
                        });
                    }
                }
                if let Some(prev) = runs.insert((c, run.index), &input.name) {
                    return Err(MergeError::Overlap {
                        part: label,
                        first: prev.to_owned(),
                        other: input.name.clone(),
                    });
                }
                merged[c].push(run.clone());
            }
        }
    }

    let mut warnings = Vec::new();
    let present: Vec<u32> = held.keys().copied().collect();
    let missing: Vec<u32> = (1..=count).filter(|s| !held.contains_key(s)).collect();
    if !missing.is_empty() {
        warnings.push(format!(
            "{} of {count} shards missing ({}): the merged report covers only the shards given",
            missing.len(),
            list(&missing)
        ));
    }
    let interrupted: Vec<&str> = inputs
        .iter()
        .filter(|i| i.report.interrupted)
        .map(|i| i.name.as_str())
        .collect();
    if !interrupted.is_empty() {
        warnings.push(format!(
            "interrupted before it finished, partial results: {}",
            interrupted.join(", ")
        ));
    }
    let isolation = isolation(inputs, &mut warnings);
    let cells: Vec<CellReport> = base
        .cells
        .iter()
        .zip(&cells)
        .zip(merged)
        .map(|((report, cell), results)| {
            let note = notes::cell_note(cell, &results);
            CellReport::from_results(report.axes.clone(), results, note)
        })
        .collect();
    let report = Report {
        budget: None,
        bugpack: base.bugpack.clone(),
        source: base.source.clone(),
        scenario: base.scenario.clone(),
        verdict: Report::verdict_of(&cells),
        bundle_sha256: base.bundle_sha256.clone(),
        seed: base.seed,
        scenario_sha256: base.scenario_sha256.clone(),
        matrix: Some(matrix),
        shard: None,
        // Shards run side by side and never with --until-repro: no run is
        // "first" across them.
        first_reproduction: None,
        merged: Some(MergeInfo {
            count,
            present,
            missing,
        }),
        isolation,
        interrupted: !interrupted.is_empty(),
        // The shards ran side by side: the merged replay took as long as the slowest.
        duration_ms: inputs
            .iter()
            .map(|i| i.report.duration_ms)
            .max()
            .unwrap_or(0),
        // One bundle, so one observed run, checkout and runtime: the first
        // shard's (a shard that ran elsewhere may have had another runtime).
        observed: base.observed.clone(),
        checkout: base.checkout.clone(),
        runtime: base.runtime.clone(),
        cells,
    };
    let mut report = report;
    report.compare_with_observed();
    Ok((report, warnings))
}

/// The isolation every shard had; where they differ, the weakest, and a warning.
fn isolation(inputs: &[Input], warnings: &mut Vec<String>) -> IsolationInfo {
    let all: BTreeSet<String> = inputs
        .iter()
        .map(|i| {
            let x = &i.report.isolation;
            format!(
                "namespaces {}, net {}{}",
                x.namespaces,
                x.net,
                x.run_as
                    .as_deref()
                    .map(|u| format!(", as {u}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let first = inputs[0].report.isolation.clone();
    if all.len() == 1 {
        return first;
    }
    warnings.push(format!(
        "the shards ran with different isolation: {}",
        all.into_iter().collect::<Vec<_>>().join("; ")
    ));
    let nets: BTreeSet<&str> = inputs
        .iter()
        .map(|i| i.report.isolation.net.as_str())
        .collect();
    IsolationInfo {
        namespaces: inputs.iter().all(|i| i.report.isolation.namespaces),
        net: nets.into_iter().collect::<Vec<_>>().join(","),
        run_as: inputs
            .iter()
            .all(|i| i.report.isolation.run_as == first.run_as)
            .then_some(first.run_as)
            .flatten(),
    }
}

fn cell_of(axes: &super::Axes) -> Option<Cell> {
    let proxy_ok = axes.proxy == "none" || axes.proxy.parse::<crate::proxy::Mode>().is_ok();
    let fault_ok =
        axes.net_fault == "none" || axes.net_fault.parse::<crate::netfault::Toxic>().is_ok();
    Some(Cell {
        timing: Timing::parse(&axes.timing)?,
        proxy: proxy_ok.then(|| axes.proxy.clone())?,
        cache: Cache::parse(&axes.cache)?,
        net_fault: fault_ok.then(|| axes.net_fault.clone())?,
    })
}

/// `1, 3, 4`.
pub fn list(shards: &[u32]) -> String {
    shards
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Axes, Verdict};
    use crate::run::Outcome;
    use crate::shard::MatrixInfo;

    fn run(index: u32, outcome: Outcome, ms: u64) -> RunResult {
        let reason = match outcome {
            Outcome::Reproduced => "exit",
            Outcome::Passed => "passed",
            Outcome::Error => "setup[0] exited 1",
        };
        RunResult {
            outcome,
            exit_code: Some(1),
            duration_ms: ms,
            ..RunResult::error(index, u64::from(index) * 7, reason.into())
        }
    }

    fn axes(cache: &str) -> Axes {
        Axes {
            timing: "none".into(),
            proxy: "none".into(),
            cache: cache.into(),
            net_fault: "none".into(),
        }
    }

    /// The whole replay: a cold cell of 5 runs, a warm cell of 5.
    fn whole() -> Report {
        let outcomes = [
            Outcome::Reproduced,
            Outcome::Passed,
            Outcome::Passed,
            Outcome::Error,
            Outcome::Reproduced,
        ];
        let cold: Vec<RunResult> = (0..5)
            .map(|i| run(i, outcomes[i as usize], 100 + u64::from(i) * 10))
            .collect();
        let warm: Vec<RunResult> = (0..5).map(|i| run(i, Outcome::Passed, 50)).collect();
        let cells = vec![
            CellReport::from_results(axes("cold"), cold, None),
            CellReport::from_results(axes("warm"), warm, None),
        ];
        Report {
            budget: None,
            bugpack: "0.1.0".into(),
            source: "bug.zip".into(),
            scenario: "demo".into(),
            verdict: Report::verdict_of(&cells),
            bundle_sha256: Some("ab".repeat(32)),
            seed: 9,
            scenario_sha256: None,
            matrix: Some(MatrixInfo {
                cells: 2,
                runs: 5,
                total_runs: 10,
                timeout_ms: 1000,
            }),
            shard: None,
            first_reproduction: None,
            merged: None,
            isolation: IsolationInfo {
                namespaces: true,
                net: "loopback".into(),
                run_as: None,
            },
            interrupted: false,
            duration_ms: 900,
            observed: None,
            checkout: None,
            runtime: Vec::new(),
            cells,
        }
    }

    /// `whole` cut as shard `index` of `count` would have run it.
    fn shard_of(whole: &Report, index: u32, count: u32) -> Input {
        let shard = Shard { index, count };
        let mine = shard.units(&units(&[false, true], 5), 5);
        let mut r = whole.clone();
        r.shard = Some(shard);
        r.cells = whole
            .cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let results = cell
                    .results
                    .iter()
                    .filter(|x| {
                        mine.contains(&Unit::Run {
                            cell: c,
                            index: x.index,
                        }) || mine.contains(&Unit::Warm { cell: c })
                    })
                    .cloned()
                    .collect();
                CellReport::from_results(cell.axes.clone(), results, None)
            })
            .collect();
        r.verdict = Report::verdict_of(&r.cells);
        Input {
            name: format!("s{index}.json"),
            report: r,
        }
    }

    #[test]
    fn shards_merge_into_the_whole() {
        let whole = whole();
        for count in [1, 2, 3, 4, 9] {
            let inputs: Vec<Input> = (1..=count).map(|i| shard_of(&whole, i, count)).collect();
            let (merged, warnings) = merge(&inputs).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(merged.cells, whole.cells, "count {count}");
            assert_eq!(merged.verdict, Verdict::Reproduced);
            assert_eq!(
                merged.merged.as_ref().unwrap().present.len(),
                count as usize
            );
            // A merged report merges again, with nothing new.
            let again = merge(&[Input {
                name: "m.json".into(),
                report: merged.clone(),
            }])
            .unwrap()
            .0;
            assert_eq!(again.cells, whole.cells);
        }
    }

    #[test]
    fn halves_of_merges_merge() {
        let whole = whole();
        let a = merge(&[shard_of(&whole, 1, 4), shard_of(&whole, 3, 4)])
            .unwrap()
            .0;
        let b = merge(&[shard_of(&whole, 4, 4), shard_of(&whole, 2, 4)])
            .unwrap()
            .0;
        let (both, w) = merge(&[
            Input {
                name: "a".into(),
                report: a,
            },
            Input {
                name: "b".into(),
                report: b,
            },
        ])
        .unwrap();
        assert!(w.is_empty());
        assert_eq!(both.cells, whole.cells);
    }

    #[test]
    fn a_missing_shard_is_named() {
        let whole = whole();
        let (merged, warnings) = merge(&[shard_of(&whole, 1, 3), shard_of(&whole, 3, 3)]).unwrap();
        let info = merged.merged.clone().unwrap();
        assert_eq!((info.present, info.missing), (vec![1, 3], vec![2]));
        assert!(
            warnings[0].contains("1 of 3 shards missing (2)"),
            "{warnings:?}"
        );
        assert!(merged.runs() < whole.runs());
    }

    #[test]
    fn mixed_inputs_and_overlaps_are_refused() {
        let whole = whole();
        let a = shard_of(&whole, 1, 2);
        let err = |inputs: &[Input]| merge(inputs).unwrap_err().to_string();

        let mut b = shard_of(&whole, 2, 2);
        b.report.bundle_sha256 = Some("cd".repeat(32));
        assert!(err(&[a.clone(), b]).contains("bundle SHA-256"));

        let mut b = shard_of(&whole, 2, 2);
        b.report.seed = 10;
        assert!(err(&[a.clone(), b]).contains("seed 10 there, 9 in s1.json"));

        let mut b = shard_of(&whole, 2, 2);
        b.report.matrix.as_mut().unwrap().runs = 6;
        assert!(err(&[a.clone(), b]).contains("matrix"));

        let b = shard_of(&whole, 2, 3);
        assert!(err(&[a.clone(), b]).contains("shard count"));

        let mut b = shard_of(&whole, 2, 2);
        b.name = "again.json".into();
        b.report = a.report.clone();
        let e = err(&[a.clone(), b]);
        assert!(
            e.contains("s1.json and again.json both hold shard 1/2"),
            "{e}"
        );

        // A run placed in the wrong shard.
        let mut b = shard_of(&whole, 2, 2);
        b.report.cells = shard_of(&whole, 1, 2).report.cells;
        let e = err(&[b]);
        assert!(e.contains("which shard 1/2 runs, not shard 2/2"), "{e}");

        let mut b = shard_of(&whole, 2, 2);
        b.report.matrix = None;
        assert!(err(&[b]).contains("cannot shard"));
    }
}
