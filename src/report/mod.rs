//! A replay's result as a value, and its renderers: table, JSON, Markdown.
//!
//! The engine computes a [`Report`]; renderers only format it. The JSON
//! shape is the contract of DESIGN.md ("Replay"); fields are added, never
//! renamed. Statistics live in [`stats`].

pub mod markdown;
pub mod merge;
pub mod stats;
pub mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::replay::outcome::Outcome;
use crate::replay::procfs::ProcessReport;

/// A whole replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The bugpack version that ran it.
    pub bugpack: String,
    /// The bundle or directory replayed, as given.
    pub source: String,
    pub scenario: String,
    pub verdict: Verdict,
    /// The bundle file's SHA-256, when the source is a bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_sha256: Option<String>,
    pub seed: u64,
    /// The SHA-256 of a scenario directory's files, when the source is one
    /// ([`crate::shard::tree_sha256`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_sha256: Option<String>,
    /// The matrix asked for, which every shard of one replay shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<crate::shard::MatrixInfo>,
    /// The part of a split replay this report holds (`--shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// A merged report's shards, present and missing (`bugpack report merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<merge::MergeInfo>,
    pub isolation: IsolationInfo,
    /// True when Ctrl-C or SIGTERM stopped the replay early.
    pub interrupted: bool,
    pub duration_ms: u64,
    /// The first run that reproduced, in the order runs finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reproduction: Option<FirstReproduction>,
    pub cells: Vec<CellReport>,
}

/// When the bug first showed: which run, after how many, how long in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstReproduction {
    /// The cell of the run.
    pub axes: Axes,
    /// The run's index in its cell.
    pub index: u32,
    /// How many runs had finished, this one included.
    pub runs: u32,
    /// From the start of the replay to the end of this run.
    pub elapsed_ms: u64,
}

/// `reproduced`, `not-reproduced` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reproduced => "reproduced",
            Self::NotReproduced => "not-reproduced",
            Self::Error => "error",
        }
    }
}

/// How runs were isolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationInfo {
    pub namespaces: bool,
    pub net: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

/// The axis values of a cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Axes {
    pub timing: String,
    pub proxy: String,
    pub cache: String,
}

/// One cell of the matrix and its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    pub axes: Axes,
    pub runs: u32,
    pub reproduced: u32,
    pub passed: u32,
    pub errors: u32,
    /// Reproduced over runs that did not error; `null` when all errored.
    pub rate: Option<f64>,
    /// 95% Wilson interval of `rate`.
    pub ci95: Option<[f64; 2]>,
    /// The median duration of the runs that ran to a judged ending
    /// (reproduced or passed); absent when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_ms: Option<u64>,
    /// The commonest reason among the cell's reproductions, or among all
    /// its runs when none reproduced ([`CellReport::reason_runs`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the cell's axes did (proxy hits, throttling), one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub results: Vec<RunResult>,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub index: u32,
    pub outcome: Outcome,
    /// `hang`, `exit`, `output`, `passed`, or for errors a short cause.
    pub reason: String,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    pub duration_ms: u64,
    pub seed: u64,
    /// The output line that matched `expect.output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// At a hang: the run's processes and what they waited on (at most
    /// [`crate::replay::procfs::MAX_PROCESSES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<ProcessReport>>,
    /// How many more processes there were than `diagnostics` lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics_omitted: Option<u32>,
    /// An interrupt cut the hang's diagnostics short: `diagnostics` holds
    /// what was gathered by then (stacks from debuggers may be missing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diagnostics_cut_short: bool,
    /// The end of the run step's stderr (reproduced and errored runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// The end of the run step's stdout (reproduced and errored runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_tail: Option<String>,
    /// What the axes did in this run (proxy counters...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub axes_detail: BTreeMap<String, serde_json::Value>,
    /// The run's directory, with `--keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

impl RunResult {
    /// A run that ended in an error before it could be judged.
    pub fn error(index: u32, seed: u64, reason: String) -> Self {
        Self {
            index,
            outcome: Outcome::Error,
            reason,
            exit_code: None,
            signal: None,
            duration_ms: 0,
            seed,
            matched: None,
            diagnostics: None,
            diagnostics_omitted: None,
            diagnostics_cut_short: false,
            stderr_tail: None,
            stdout_tail: None,
            axes_detail: BTreeMap::new(),
            dir: None,
        }
    }
}

impl CellReport {
    /// Counts, rate, interval, median and commonest reason from `results`.
    pub fn from_results(axes: Axes, mut results: Vec<RunResult>, note: Option<String>) -> Self {
        results.sort_by_key(|r| r.index);
        let count = |o| {
            u32::try_from(results.iter().filter(|r| r.outcome == o).count()).unwrap_or(u32::MAX)
        };
        let reproduced = count(Outcome::Reproduced);
        let passed = count(Outcome::Passed);
        let errors = count(Outcome::Error);
        let valid = reproduced + passed;
        let (rate, ci95) = if valid == 0 {
            (None, None)
        } else {
            let (lo, hi) = stats::wilson(reproduced, valid);
            (
                Some(stats::round4(f64::from(reproduced) / f64::from(valid))),
                Some([stats::round4(lo), stats::round4(hi)]),
            )
        };
        // An errored run never ran to its end (many never started): its
        // duration says nothing about the scenario's.
        let durations: Vec<u64> = results
            .iter()
            .filter(|r| r.outcome != Outcome::Error)
            .map(|r| r.duration_ms)
            .collect();
        let reason = stats::commonest(Self::reason_runs(&results).map(|r| r.reason.as_str()));
        Self {
            axes,
            runs: u32::try_from(results.len()).unwrap_or(u32::MAX),
            reproduced,
            passed,
            errors,
            rate,
            ci95,
            median_ms: stats::median(&durations),
            reason,
            note,
            results,
        }
    }

    /// The runs a cell's reason is taken from, in order: its reproductions
    /// when it has any, since the reason column says how the bug showed
    /// (a hang, an exit code, a matched line) and not how often it did not;
    /// every run otherwise. One rule for the JSON and every renderer.
    pub fn reason_runs(results: &[RunResult]) -> impl Iterator<Item = &RunResult> {
        let reproduced = results.iter().any(|r| r.outcome == Outcome::Reproduced);
        results
            .iter()
            .filter(move |r| !reproduced || r.outcome == Outcome::Reproduced)
    }
}

impl Report {
    /// `reproduced` if any run reproduced; `error` if every run errored (or none ran);
    /// `not-reproduced` otherwise.
    pub fn verdict_of(cells: &[CellReport]) -> Verdict {
        let reproduced: u32 = cells.iter().map(|c| c.reproduced).sum();
        let valid: u32 = cells.iter().map(|c| c.reproduced + c.passed).sum();
        if reproduced > 0 {
            Verdict::Reproduced
        } else if valid == 0 {
            Verdict::Error
        } else {
            Verdict::NotReproduced
        }
    }

    /// Runs that errored, over all cells.
    pub fn errors(&self) -> u32 {
        self.cells.iter().map(|c| c.errors).sum()
    }

    /// Runs done, over all cells.
    pub fn runs(&self) -> u32 {
        self.cells.iter().map(|c| c.runs).sum()
    }
}
