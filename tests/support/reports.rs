//! The replay report as DESIGN.md documents it, for tests to read JSON into
//! (unknown fields fail), and helpers to write scenarios and replay them.

use std::collections::BTreeMap;
use std::fs;

use serde::Deserialize;

use super::Sandbox;

/// The JSON report, as DESIGN.md documents it; unknown fields fail the test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JReport {
    pub bugpack: String,
    pub source: String,
    pub scenario: String,
    pub verdict: String,
    #[serde(default)]
    pub bundle_sha256: Option<String>,
    pub seed: u64,
    #[serde(default)]
    pub scenario_sha256: Option<String>,
    #[serde(default)]
    pub matrix: Option<JMatrix>,
    #[serde(default)]
    pub shard: Option<JShard>,
    #[serde(default)]
    pub merged: Option<JMerged>,
    pub isolation: JIsolation,
    pub interrupted: bool,
    pub duration_ms: u64,
    #[serde(default)]
    pub first_reproduction: Option<JFirst>,
    #[serde(default)]
    pub observed: Option<JObserved>,
    #[serde(default)]
    pub checkout: Option<JCheckout>,
    #[serde(default)]
    pub runtime: Vec<JDifference>,
    #[serde(default)]
    pub budget: Option<JBudget>,
    pub cells: Vec<JCell>,
}

/// How a `--budget` was spent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JBudget {
    pub limit: String,
    pub runs: u64,
    pub allocation: String,
    pub warm_up: u32,
    pub kept_in_full: u32,
    #[serde(default)]
    pub rate_below: Option<f64>,
    #[serde(default)]
    pub fix_runs: Option<u64>,
}

/// What the user saw, from the bundle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JObserved {
    pub outcome: String,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<String>,
    pub duration_ms: u64,
    #[serde(default)]
    pub stderr_tail: Option<String>,
}

/// The checkout `--repo` ran the command in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JCheckout {
    pub repo: String,
    pub found: bool,
    pub commit: String,
    pub patched: u32,
    pub untracked: u32,
    pub cwd: String,
    pub view: String,
    #[serde(default)]
    pub why_copy: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One way the runtime differs from the user's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JDifference {
    pub key: String,
    pub user: Option<String>,
    pub here: Option<String>,
}

/// The matrix a replay was asked for (every shard of one replay shares it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JMatrix {
    pub cells: u32,
    pub runs: u32,
    pub total_runs: u64,
    pub timeout_ms: u64,
}

/// `--shard INDEX/COUNT`, INDEX counting from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JShard {
    pub index: u32,
    pub count: u32,
}

/// A merged report's shards.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JMerged {
    pub count: u32,
    pub present: Vec<u32>,
    pub missing: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JFirst {
    pub axes: BTreeMap<String, String>,
    pub index: u32,
    pub runs: u32,
    pub elapsed_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JIsolation {
    pub namespaces: bool,
    pub net: String,
    #[serde(default)]
    pub run_as: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JCell {
    pub axes: BTreeMap<String, String>,
    pub runs: u32,
    pub reproduced: u32,
    pub passed: u32,
    pub errors: u32,
    pub rate: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    #[serde(default)]
    pub median_ms: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub unlike_observed: Option<String>,
    pub results: Vec<JRun>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JRun {
    pub index: u32,
    pub outcome: String,
    pub reason: String,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<String>,
    pub duration_ms: u64,
    pub seed: u64,
    #[serde(default)]
    pub matched: Option<String>,
    #[serde(default)]
    pub diagnostics: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub diagnostics_omitted: Option<u32>,
    #[serde(default)]
    pub diagnostics_cut_short: bool,
    #[serde(default)]
    pub stderr_tail: Option<String>,
    #[serde(default)]
    pub stdout_tail: Option<String>,
    #[serde(default)]
    pub axes_detail: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
}

/// The longest run's duration: the whole replay cannot be shorter.
pub fn cell_min_duration(r: &JReport) -> u64 {
    r.cells
        .iter()
        .flat_map(|c| &c.results)
        .map(|x| x.duration_ms)
        .max()
        .unwrap_or(0)
}

/// Writes scenario `name` with `yaml` and extra files.
pub fn scenario(sb: &Sandbox, name: &str, yaml: &str, files: &[(&str, &str)]) -> String {
    sb.write(&format!("{name}/scenario.yaml"), yaml);
    for (path, text) in files {
        sb.write(&format!("{name}/{path}"), text);
    }
    name.to_owned()
}

/// Replays `source` with `--yes --json`, checks the exit code, returns the report.
pub fn replay_json(sb: &Sandbox, source: &str, args: &[&str], code: i32) -> JReport {
    replay_json_under(sb, &[], source, args, code)
}

/// [`replay_json`], with `bugpack` run under `wrapper` (see [`super::Run::under`]).
pub fn replay_json_under(
    sb: &Sandbox,
    wrapper: &[&str],
    source: &str,
    args: &[&str],
    code: i32,
) -> JReport {
    let json = sb.path("report.json");
    let _ = fs::remove_file(&json);
    let out = sb
        .bugpack()
        .under(wrapper)
        .args(["replay", source, "--yes", "--json", "report.json"])
        .args(args)
        .run()
        .code(code);
    let text = fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no report.json ({e})\n{}", out.stderr));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}
