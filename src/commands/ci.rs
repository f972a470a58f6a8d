//! `bugpack ci github` and `bugpack ci k8s`: check the bundle, then write
//! the configuration that runs its replay in shards ([`bugpack::ci`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use bugpack::bundle::Bundle;
use bugpack::ci::{self, Spec};
use bugpack::error::usage;

use super::Status;
use crate::settings::{CiGithub, CiK8s, CiReplay, Sink};
use crate::terminal::{Ui, printable};

/// Where `ci github` writes by default, from the repository root.
const WORKFLOW_PATH: &str = ".github/workflows/bugpack-replay.yml";

/// The bundle, checked as replay checks it, and what the spec needs of it.
struct Checked {
    scenario: String,
    sha256: String,
}

fn check_bundle(settings: &CiReplay) -> Result<Checked> {
    let path = &settings.bundle;
    let bundle = Bundle::open(path, &settings.limits)?;
    let Some(scenario) = bundle.scenario() else {
        return Err(usage(format!(
            "{} holds no scenario to replay; capture with -- COMMAND or --scenario DIR",
            path.display()
        )));
    };
    Ok(Checked {
        scenario: scenario.name.clone(),
        sha256: bundle.file_sha256()?,
    })
}

fn spec(settings: &CiReplay, checked: &Checked, seed: Option<u64>) -> Spec {
    if u64::from(settings.shards) > settings.units {
        tracing::warn!(
            "{} shards for {} units of work (a warm cell is one): {} shards will have nothing to run",
            settings.shards,
            settings.units,
            u64::from(settings.shards) - settings.units
        );
    }
    Spec {
        scenario: checked.scenario.clone(),
        shards: settings.shards,
        replay_args: settings.replay_args.clone(),
        seed,
        bundle_sha256: checked.sha256.clone(),
        bundle_url: settings.bundle_url.clone(),
        source: settings.source.clone(),
        rev: settings.rev.clone(),
    }
}

/// Where `ci github --on-issue` writes by default, from the repository root.
const ISSUE_WORKFLOW_PATH: &str = ".github/workflows/bugpack-issues.yml";

pub(crate) fn github(settings: &CiGithub, ui: &Ui) -> Result<Status> {
    if settings.on_issue {
        return github_on_issue(settings, ui);
    }
    let replay = &settings.replay;
    let checked = check_bundle(replay)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let repo = git2::Repository::discover(&cwd).ok();
    let root = repo
        .as_ref()
        .and_then(git2::Repository::workdir)
        .map(Path::to_path_buf);
    let repo_path = match (&replay.bundle_url, &root) {
        (Some(_), _) => None,
        (None, None) => {
            return Err(usage(
                "not inside a git repository: commit the bundle to the repository the workflow runs in, or pass --bundle-url URL",
            ));
        }
        (None, Some(root)) => Some(path_in_repo(&replay.bundle, root)?),
    };
    if let (Some(repo), Some(rel)) = (&repo, &repo_path)
        && let Ok(status) = repo.status_file(Path::new(rel))
        && status.intersects(git2::Status::WT_NEW | git2::Status::IGNORED)
    {
        tracing::warn!(
            "{} is not committed: commit it, or the workflow will not find it",
            printable(rel)
        );
    }
    let text = ci::github(
        &spec(replay, &checked, replay.seed),
        &ci::Github {
            repo_path,
            runs_on: settings.runs_on.clone(),
            expect_fixed: settings.expect_fixed,
            strace: replay.strace,
        },
    )
    .map_err(|e| usage(e.to_string()))?;
    let output = settings
        .output
        .clone()
        .unwrap_or_else(|| Sink::File(root.unwrap_or(cwd).join(WORKFLOW_PATH)));
    write(&output, text.as_bytes(), replay.force)?;
    if let Sink::File(path) = &output {
        let mut out = ui.report();
        writeln!(
            out,
            "wrote {}: {} shards of {} (scenario {:?})",
            path.display(),
            replay.shards,
            replay.bundle.display(),
            printable(&checked.scenario)
        )?;
        writeln!(
            out,
            "commit it, then run it from the Actions tab or with `gh workflow run {}`",
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        )?;
    }
    Ok(Status::Success)
}

fn github_on_issue(settings: &CiGithub, ui: &Ui) -> Result<Status> {
    let replay = &settings.replay;
    let checked = Checked {
        scenario: String::new(),
        sha256: String::new(),
    };
    let text = ci::github_on_issue(
        &spec(replay, &checked, None),
        &ci::Github {
            repo_path: None,
            runs_on: settings.runs_on.clone(),
            expect_fixed: false,
            strace: replay.strace,
        },
    )
    .map_err(|e| usage(e.to_string()))?;
    let output = if let Some(sink) = settings.output.clone() {
        sink
    } else {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let root = git2::Repository::discover(&cwd)
            .ok()
            .and_then(|r| r.workdir().map(Path::to_path_buf))
            .unwrap_or(cwd);
        Sink::File(root.join(ISSUE_WORKFLOW_PATH))
    };
    write(&output, text.as_bytes(), replay.force)?;
    if let Sink::File(path) = &output {
        let mut out = ui.report();
        writeln!(
            out,
            "wrote {}: replays the bundles attached to each issue opened, edited or labelled, and comments the results",
            path.display()
        )?;
        writeln!(
            out,
            "commit it to the default branch; GitHub runs issue workflows from there"
        )?;
    }
    Ok(Status::Success)
}

pub(crate) fn k8s(settings: &CiK8s, ui: &Ui) -> Result<Status> {
    let replay = &settings.replay;
    let checked = check_bundle(replay)?;
    let bytes = if replay.bundle_url.is_some() {
        Vec::new()
    } else {
        tracing::debug!("embedding {} in the Job", replay.bundle.display());
        std::fs::read(&replay.bundle)
            .with_context(|| format!("cannot read {}", replay.bundle.display()))?
    };
    // An Indexed Job has no id its pods share to seed from: fix one now.
    let seed = replay.seed.unwrap_or_else(|| fastrand::u64(..));
    let text = ci::k8s(
        &spec(replay, &checked, Some(seed)),
        &ci::K8s {
            name: settings.name.clone(),
            image: settings.image.clone(),
            seed,
        },
        &bytes,
    )
    .map_err(|e| usage(format!("{}: {e}", replay.bundle.display())))?;
    write(&settings.output, text.as_bytes(), replay.force)?;
    if let Sink::File(path) = &settings.output {
        let mut out = ui.report();
        writeln!(
            out,
            "wrote {}: an Indexed Job of {} shards of {} (scenario {:?}, seed {seed})",
            path.display(),
            replay.shards,
            replay.bundle.display(),
            printable(&checked.scenario)
        )?;
        writeln!(
            out,
            "apply it with `kubectl apply -f {}`; its first lines say how to collect and merge the reports",
            path.display()
        )?;
    }
    Ok(Status::Success)
}

/// The bundle's path from the repository root, with `/` separators.
fn path_in_repo(bundle: &Path, root: &Path) -> Result<String> {
    let full = bundle
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", bundle.display()))?;
    let root = root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    let rel = full.strip_prefix(&root).map_err(|_| {
        usage(format!(
            "{} is outside the repository at {}: move it in and commit it, or pass --bundle-url URL",
            bundle.display(),
            root.display()
        ))
    })?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let rel = parts
        .map(|p| p.join("/"))
        .ok_or_else(|| usage(format!("{}: the path is not UTF-8", bundle.display())))?;
    ci::check_text("the bundle's path", &rel).map_err(|e| usage(e.to_string()))?;
    Ok(rel)
}

/// Writes `bytes` to the sink: a file replaced atomically (never over an
/// existing one without `force`), or stdout.
fn write(sink: &Sink, bytes: &[u8], force: bool) -> Result<()> {
    let path: &PathBuf = match sink {
        Sink::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            return Ok(out.flush()?);
        }
        Sink::File(path) => path,
    };
    if path.is_dir() {
        return Err(usage(format!(
            "{} is a directory; name a file",
            path.display()
        )));
    }
    if path.exists() && !force {
        return Err(usage(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )));
    }
    bugpack::partial::replace_file(path, bytes)?;
    tracing::info!("wrote {}", path.display());
    Ok(())
}
