//! `bugpack init`: a commented capture profile (`.bugpack.yaml`), with
//! `--github` a GitHub issue form, or with `--scenario KIND DIR` a runnable
//! starter scenario.
//!
//! An existing file is replaced only with `--force` or a "yes" on a
//! terminal; without a terminal and without `--force`, nothing is written
//! (exit 2). Every file is written to a temporary name beside it and renamed
//! into place.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use bugpack::capture::profile::FILE_NAME;
use bugpack::error::usage;
use bugpack::starter;

use super::Status;
use crate::settings::{Init, InitTarget};
use crate::terminal::{Style, Ui};

pub(crate) fn run(settings: &Init, ui: &Ui) -> Result<Status> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (files, next) = match &settings.target {
        InitTarget::Profile { github } => {
            let versions = starter::detect_versions(&cwd);
            let text = starter::profile(&versions).context("cannot render the profile")?;
            let mut files = vec![(PathBuf::from(FILE_NAME), text)];
            if *github {
                files.push((
                    PathBuf::from(starter::ISSUE_FORM_PATH),
                    starter::ISSUE_FORM.to_owned(),
                ));
            }
            if !versions.is_empty() {
                let names: Vec<&str> = versions.iter().map(|v| v.name).collect();
                tracing::info!("recording the versions of {}", names.join(", "));
            }
            (
                files,
                format!(
                    "next: edit {FILE_NAME}, then run `bugpack capture --dry-run` to see what a report would hold"
                ),
            )
        }
        InitTarget::Scenario { kind, dir } => {
            let starter = starter::scenario(kind)
                .ok_or_else(|| usage(format!("--scenario {kind:?}: no such starter scenario")))?;
            if dir.exists() && !dir.is_dir() {
                return Err(usage(format!(
                    "{} exists and is not a directory; name a new directory for the scenario",
                    dir.display()
                )));
            }
            let files = starter
                .iter()
                .map(|(name, text)| (dir.join(name), (*text).to_owned()))
                .collect();
            (
                files,
                format!(
                    "next: bugpack replay {} --yes   (see {} for what it shows)",
                    dir.display(),
                    dir.join("README.md").display()
                ),
            )
        }
    };

    let chosen = choose(&files, settings.force, ui)?;
    // A summary of what was done: `-q` leaves it out.
    let mut out = ui.report();
    let mut wrote = 0;
    for ((path, text), write) in files.iter().zip(chosen) {
        if write {
            bugpack::partial::replace_file(path, text.as_bytes())?;
            tracing::info!("wrote {}", path.display());
            writeln!(out, "{} {}", ui.paint(Style::Good, "wrote"), path.display())?;
            wrote += 1;
        } else {
            writeln!(out, "kept  {} (not overwritten)", path.display())?;
        }
    }
    if wrote > 0 {
        writeln!(out, "{next}")?;
    }
    Ok(Status::Success)
}

/// Which files to write: new ones, and existing ones with `--force` or a
/// yes on a terminal. Decided for every file before any is written.
fn choose(files: &[(PathBuf, String)], force: bool, ui: &Ui) -> Result<Vec<bool>> {
    for (path, _) in files {
        if path.is_dir() {
            return Err(usage(format!(
                "{} is a directory; move it away first",
                path.display()
            )));
        }
    }
    let existing: Vec<&Path> = files
        .iter()
        .map(|(p, _)| p.as_path())
        .filter(|p| p.exists())
        .collect();
    if existing.is_empty() || force {
        return Ok(vec![true; files.len()]);
    }
    if !ui.interactive {
        let names: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
        return Err(usage(format!(
            "{} already exist{}; pass --force to overwrite",
            names.join(" and "),
            if names.len() == 1 { "s" } else { "" }
        )));
    }
    let mut err = std::io::stderr().lock();
    let mut input = std::io::stdin().lock();
    files
        .iter()
        .map(|(path, _)| {
            if !path.exists() {
                return Ok(true);
            }
            Ok(crate::terminal::confirm(
                &mut err,
                &mut input,
                &format!("{} exists. Overwrite it?", path.display()),
            )?)
        })
        .collect()
}
