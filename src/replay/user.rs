//! What a bundle says about the user's side: the command as it ran, the
//! repository it ran in, its runtime, and what the user saw. Replay reads
//! it to run the command in a checkout, to tell a run that could not start
//! the command from one that ran it ([`super::start`]), and to set the
//! report beside the user's run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::bundle::Bundle;
use crate::capture::command::CommandRecord;
use crate::capture::git::RepoInfo;
use crate::capture::observe::{Ending, Observed};
use crate::capture::runtime::{self, Difference, Runtime};
use crate::report::ObservedRun;

use super::Files;
use super::start::Known;

/// The most bytes of `git/files.txt` read.
const MAX_FILES_LIST: u64 = 64 << 20;
/// The most bytes of the user's stderr read back.
const MAX_STDERR: u64 = 8 << 20;
/// How many lines of the user's stderr the report shows.
const STDERR_LINES: usize = 5;

/// The user's side, as the bundle records it.
#[derive(Debug, Clone, Default)]
pub struct UserSide {
    /// `env/command.yaml`: present when the scenario is a captured command.
    pub command: Option<CommandRecord>,
    /// `git/repo.yaml`, when the capture ran in a repository.
    pub repo: Option<RepoInfo>,
    /// `env/runtime.yaml`.
    pub runtime: Option<Runtime>,
    /// `observed/result.yaml` and the end of `observed/stderr.log`.
    pub observed: Option<ObservedRun>,
    /// The end of the user's stderr, whole.
    observed_stderr: String,
    /// The repository's files: `git/files.txt` and `git/untracked/`.
    pub project: BTreeSet<String>,
}

impl UserSide {
    /// Reads a checked bundle's record of the user's side. An entry that
    /// is not safe YAML of its shape rejects the bundle.
    pub fn read(bundle: &mut Bundle) -> anyhow::Result<Self> {
        let command = bundle.read_typed::<CommandRecord>("env/command.yaml")?;
        let repo = bundle.read_typed::<RepoInfo>("git/repo.yaml")?;
        let runtime = bundle.read_typed::<Runtime>("env/runtime.yaml")?;
        let observed = bundle.read_typed::<Observed>("observed/result.yaml")?;
        let observed_stderr = match bundle.manifest().file("observed/stderr.log") {
            Some(_) => String::from_utf8_lossy(&bundle.read("observed/stderr.log", MAX_STDERR)?)
                .into_owned(),
            None => String::new(),
        };
        let mut project = BTreeSet::new();
        if bundle.manifest().file("git/files.txt").is_some() {
            let list = bundle.read("git/files.txt", MAX_FILES_LIST)?;
            project.extend(
                String::from_utf8_lossy(&list)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
        }
        project.extend(
            bundle
                .manifest()
                .files
                .iter()
                .filter_map(|f| f.path.strip_prefix("git/untracked/"))
                .map(str::to_owned),
        );
        let observed = observed.map(|o| {
            let tail: Vec<&str> = observed_stderr
                .lines()
                .rev()
                .filter(|l| !l.trim().is_empty())
                .take(STDERR_LINES)
                .collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            ObservedRun {
                outcome: match o.ending {
                    Ending::Hang => "hang",
                    Ending::Exited => "exit",
                    Ending::Signaled => "signal",
                }
                .to_owned(),
                exit_code: o.exit_code,
                signal: o.signal,
                duration_ms: if o.ending == Ending::Hang {
                    o.timeout_ms
                } else {
                    o.duration_ms
                },
                stderr_tail: (!tail.is_empty()).then(|| tail.join("\n")),
            }
        });
        Ok(Self {
            command,
            repo,
            runtime,
            observed,
            observed_stderr,
            project,
        })
    }

    /// The user's HEAD commit, when the capture ran in a repository that had one.
    pub fn head(&self) -> Option<&str> {
        self.repo.as_ref().and_then(|r| r.head.as_deref())
    }

    /// What [`super::start::check`] needs, for runs in a checkout or not.
    pub fn known(&self, in_checkout: bool) -> Known {
        let program = self
            .command
            .as_ref()
            .and_then(|c| c.argv.first().cloned())
            .unwrap_or_default();
        let runtime = self.runtime.as_ref().and_then(|rt| {
            rt.version.as_ref().map(|v| match &rt.path {
                Some(p) => format!("{} {v} at {p}", rt.kind),
                None => format!("{} {v}", rt.kind),
            })
        });
        let mut packages = BTreeMap::new();
        for p in self.runtime.iter().flat_map(|rt| &rt.packages) {
            for module in p.import_names() {
                packages
                    .entry(module)
                    .or_insert_with(|| format!("{} {}", p.name, p.version));
            }
        }
        Known {
            program,
            runtime,
            project: self.project.clone(),
            repo: self.repo.is_some(),
            cwd: self
                .command
                .as_ref()
                .and_then(|c| c.cwd.clone())
                .unwrap_or_else(|| ".".to_owned()),
            in_checkout,
            observed_stderr: self.observed_stderr.clone(),
            packages,
        }
    }

    /// How the runtime the runs get (the interpreter their `PATH` finds,
    /// its packages; in a checkout, its lockfiles) differs from the user's.
    /// An interpreter inside the bundle's files, or one another user could
    /// have put there, is not run to ask its version.
    pub fn runtime_differences(&self, files: &Files, bundle_dir: &Path) -> Vec<Difference> {
        let (Some(theirs), Some(command)) = (&self.runtime, &self.command) else {
            return Vec::new();
        };
        let (cwd, root) = match files {
            Files::Checkout { tree, cwd, .. } => (tree.join(cwd), Some(tree.clone())),
            Files::Scenario(dir) => (dir.clone(), None),
        };
        let Some(mut here) = runtime::here(
            &command.argv,
            super::BASE_PATH,
            &cwd,
            root.as_deref(),
            bundle_dir,
            Some(bundle_dir),
        ) else {
            return Vec::new();
        };
        let mut theirs = theirs.clone();
        if root.is_none() {
            // The scenario's files are no checkout: its lockfiles say nothing.
            theirs.lockfiles.clear();
            here.lockfiles.clear();
        }
        runtime::differences(&theirs, &here)
    }
}
