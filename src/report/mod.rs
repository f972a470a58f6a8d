//! A replay's result as a value, and its renderers: table, JSON, Markdown.
//!
//! The engine computes a [`Report`]; renderers only format it. The JSON
//! shape is the contract of DESIGN.md ("Replay"); fields are added, never
//! renamed. Statistics live in [`stats`].

pub mod markdown;
pub mod merge;
pub mod notes;
pub mod stats;
pub mod table;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::run::Outcome;
pub use crate::run::RunResult;

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
    /// What the user saw, from the bundle's `observed/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedRun>,
    /// The checkout the runs ran in (`--repo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<CheckoutInfo>,
    /// How the runtime the runs got differs from the user's
    /// (`env/runtime.yaml`): interpreter version, packages, lockfiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime: Vec<crate::capture::runtime::Difference>,
    /// How a `--budget` was spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetReport>,
    pub cells: Vec<CellReport>,
}

/// How a `--budget` replay spent its budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// The budget asked for: `500 runs` or `10m`.
    pub limit: String,
    /// Runs that finished.
    pub runs: u64,
    /// How the runs were spread: `thompson` (adaptive, after `warm_up` runs per cell).
    pub allocation: String,
    pub warm_up: u32,
    /// Reproducing runs that kept their output and diagnostics; later ones
    /// keep their outcome and reason.
    pub kept_in_full: u32,
    /// With no reproduction: the highest failure rate the runs leave
    /// plausible at 95 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_below: Option<f64>,
    /// With reproductions: the runs without one, in the cell that
    /// reproduced most often, that would show a fix makes the bug at least
    /// 10× rarer there (95 %): the budget for `--expect-fixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_runs: Option<u64>,
}

/// The user's run, as the bundle recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRun {
    /// `hang`, `exit` or `signal`.
    pub outcome: String,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    pub duration_ms: u64,
    /// The last lines of its stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

impl ObservedRun {
    /// `hang after 60.0 s`, `exit 2 in 20 ms`, `killed by SIGSEGV after 1.2 s`.
    pub fn words(&self) -> String {
        let d = table::duration(self.duration_ms);
        match (self.outcome.as_str(), self.exit_code, &self.signal) {
            ("hang", _, _) => format!("hang after {d}"),
            (_, Some(code), _) => format!("exit {code} in {d}"),
            (_, None, Some(sig)) => format!("killed by {sig} after {d}"),
            _ => format!("ended after {d}"),
        }
    }

    /// When none of a cell's runs ended the way the user's did (no hang
    /// where the user's hung, never the user's exit code or signal), what
    /// the two looked like, for the report. `None` when a run matched, or
    /// the user's run exited 0 (nothing to compare with).
    pub fn unlike(&self, results: &[RunResult]) -> Option<String> {
        if results.is_empty() || (self.outcome == "exit" && self.exit_code == Some(0)) {
            return None;
        }
        let alike = |r: &RunResult| match self.outcome.as_str() {
            "hang" => r.reason == "hang" || r.reason.starts_with("timeout"),
            _ => {
                r.outcome != Outcome::Error
                    && r.reason != "hang"
                    && r.exit_code == self.exit_code
                    && r.signal == self.signal
            }
        };
        if results.iter().any(alike) {
            return None;
        }
        let shown = results
            .iter()
            .find(|r| r.outcome != Outcome::Error)
            .or_else(|| results.first())?;
        let here = match (
            shown.outcome,
            shown.reason.as_str(),
            shown.exit_code,
            &shown.signal,
        ) {
            (Outcome::Error, reason, _, _) => format!("error: {reason}"),
            (_, "hang", _, _) => format!("hang after {}", table::duration(shown.duration_ms)),
            (_, _, Some(code), _) => {
                format!("exit {code} in {}", table::duration(shown.duration_ms))
            }
            (_, _, None, Some(sig)) => format!(
                "killed by {sig} after {}",
                table::duration(shown.duration_ms)
            ),
            _ => format!("ended after {}", table::duration(shown.duration_ms)),
        };
        Some(format!(
            "unlike the user's run: observed {}; here {here}",
            self.words()
        ))
    }
}

/// Where `--repo` ran the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutInfo {
    /// The repository, as given (or found around the current directory).
    pub repo: String,
    /// True when it was found around the current directory, not named.
    pub found: bool,
    /// The bundle's HEAD commit, checked out.
    pub commit: String,
    /// Files the user's uncommitted changes (`git/diff.patch`) touched.
    pub patched: u32,
    /// Untracked files added from the bundle.
    pub untracked: u32,
    /// The command's directory from the root.
    pub cwd: String,
    /// `overlay` (a copy-on-write view per run) or `copy` (a copy per run).
    pub view: String,
    /// Why the runs got copies rather than overlays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_copy: Option<String>,
    /// What the checkout left out (binary changes without their content).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
    /// Reports written before the axis existed read as `none`.
    #[serde(default = "no_net_fault")]
    pub net_fault: String,
}

fn no_net_fault() -> String {
    "none".to_owned()
}

impl fmt::Display for Axes {
    /// `none/cache/cold`, and `/reset:4096` after it when the cell has a
    /// network fault: the axes a table or a line names a cell by.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.timing, self.proxy, self.cache)?;
        if self.net_fault != "none" {
            write!(f, "/{}", self.net_fault)?;
        }
        Ok(())
    }
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
    /// When no run ended the way the user's did: the two, side by side
    /// ([`ObservedRun::unlike`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlike_observed: Option<String>,
    pub results: Vec<RunResult>,
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
            unlike_observed: None,
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

    /// Flags the cells none of whose runs looks like the user's.
    pub fn compare_with_observed(&mut self) {
        for cell in &mut self.cells {
            cell.unlike_observed = self.observed.as_ref().and_then(|o| o.unlike(&cell.results));
        }
    }

    /// The cause and what to do, when every run errored and one said what
    /// to do (a run that could not start the command): one line.
    pub fn cannot_run(&self) -> Option<String> {
        if self.verdict != Verdict::Error {
            return None;
        }
        self.cells
            .iter()
            .flat_map(|c| &c.results)
            .find_map(|r| r.hint.as_ref().map(|h| format!("{}: {h}", r.reason)))
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
