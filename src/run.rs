//! What one run of a scenario came to: the result the replay engine
//! produces and the report layer shows. Both depend on this module and on
//! nothing of each other's internals for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The verdict of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Reproduced,
    Passed,
    Error,
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
    /// `MAX_PROCESSES` in `replay::procfs`).
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
    /// For an error: what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
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
            hint: None,
        }
    }
}

/// What a hung process was doing, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// The pid as the host sees it.
    pub pid: i32,
    /// The pid inside the run's PID namespace, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<i32>,
    pub ppid: i32,
    /// `S (sleeping)`, `R (running)`, `D (disk sleep)`...
    pub state: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    pub elapsed_ms: u64,
    pub threads: u64,
    /// What the main thread is blocked in, where `/proc` tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<String>,
    /// How many threads wait on what kind of thing (`reading pipe`,
    /// `waiting on a futex`...), for multi-threaded processes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub threads_waiting: BTreeMap<String, u64>,
    /// The kernel stack of each thread (by host thread id), when readable
    /// (root only); at most `MAX_THREAD_STACKS` in `replay::procfs` threads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kernel_stacks: BTreeMap<i32, String>,
    /// Thread stacks from py-spy or gdb, when installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<String>,
}

impl ProcessReport {
    /// One line for the table: `python3 (pid 7) S pipe_write: writing pipe:[123] (fd 1)`.
    pub fn short(&self) -> String {
        let pid = self.ns_pid.unwrap_or(self.pid);
        let mut line = format!(
            "{} (pid {pid}) {}",
            self.command
                .split_whitespace()
                .next()
                .unwrap_or(&self.command),
            self.state.chars().next().unwrap_or('?')
        );
        if let Some(w) = &self.wchan {
            line.push(' ');
            line.push_str(w);
        }
        if let Some(w) = &self.waiting_on {
            line.push_str(": ");
            line.push_str(w);
        }
        line
    }
}
