//! `bugpack diff A B` and `bugpack diff A --here`: the differences that
//! matter between two environments, grouped, most telling first.
//!
//! Both bundles are opened (and so checked) before anything is gathered or
//! printed. Everything printed comes from redacted bundle entries or from
//! this machine's environment redacted by capture's engine.

use std::io::Write as _;

use anyhow::Result;
use bugpack::bundle::Bundle;
use bugpack::diff::{self, Comparison, Snapshot};
use serde::Serialize;

use super::Status;
use crate::settings::{Diff, DiffOther};
use crate::terminal::{Style, Ui, printable};

/// `diff --json`'s output. Keys are stable: added to, never renamed.
#[derive(Debug, Serialize)]
struct DiffJson<'a> {
    bugpack: &'static str,
    a: Side,
    b: Side,
    same: bool,
    differences: usize,
    groups: Vec<GroupJson<'a>>,
}

/// One side of the comparison.
#[derive(Debug, Serialize)]
struct Side {
    /// `bundle` or `here` (this machine).
    kind: &'static str,
    path: Option<String>,
    /// The bundle file's SHA-256.
    sha256: Option<String>,
}

#[derive(Debug, Serialize)]
struct GroupJson<'a> {
    group: &'static str,
    changes: Vec<ChangeJson<'a>>,
    not_compared: &'a [String],
}

#[derive(Debug, Serialize)]
struct ChangeJson<'a> {
    key: &'a str,
    a: Option<&'a str>,
    b: Option<&'a str>,
    diff: Option<&'a str>,
}

/// B, once opened.
enum Other<'a> {
    Bundle(Box<Bundle>),
    Here(&'a diff::Here, Option<&'a std::path::Path>),
}

pub(crate) fn run(settings: &Diff, ui: &Ui) -> Result<Status> {
    // Both bundles are checked before anything is gathered or printed.
    let mut bundle_a = Bundle::open(&settings.a, &settings.limits)?;
    let other = match &settings.b {
        DiffOther::Bundle(path) => Other::Bundle(Box::new(Bundle::open(path, &settings.limits)?)),
        DiffOther::Here { request, profile } => Other::Here(request, profile.as_deref()),
    };
    let a = Snapshot::from_bundle(&mut bundle_a)?;
    let side_a = Side {
        kind: "bundle",
        path: Some(settings.a.display().to_string()),
        sha256: Some(bundle_a.file_sha256()?),
    };
    let (b, side_b) = match other {
        Other::Bundle(mut bundle) => (
            Snapshot::from_bundle(&mut bundle)?,
            Side {
                kind: "bundle",
                path: Some(bundle.path().display().to_string()),
                sha256: Some(bundle.file_sha256()?),
            },
        ),
        Other::Here(request, profile) => {
            // The map stays on the machine that captured the bundle: there,
            // this machine's names get the bundle's pseudonyms.
            let known = bugpack::redact::pseudonym::map_dir()
                .and_then(|dir| {
                    bugpack::redact::pseudonym::Map::load(&dir, &bundle_a.manifest().id)
                })
                .map(|m| m.pseudonyms)
                .unwrap_or_default();
            let redactor = request.redactor(&known)?;
            // This machine's log lines get the profile's redaction rules too.
            bugpack::redact::logs::install(redactor.clone());
            if let Some(p) = profile {
                tracing::info!("using the profile {}", p.display());
            }
            let (snapshot, notes) = Snapshot::here(request, redactor, a.command.as_deref())?;
            for note in notes {
                tracing::warn!("this machine: {note}");
            }
            (
                snapshot,
                Side {
                    kind: "here",
                    path: None,
                    sha256: None,
                },
            )
        }
    };
    let comparison = diff::compare(&a, &b);
    if settings.json {
        let mut out = std::io::stdout().lock();
        let json = DiffJson {
            bugpack: env!("CARGO_PKG_VERSION"),
            same: comparison.count() == 0,
            differences: comparison.count(),
            groups: comparison
                .groups
                .iter()
                .map(|g| GroupJson {
                    group: g.kind.as_str(),
                    changes: g
                        .changes
                        .iter()
                        .map(|c| ChangeJson {
                            key: &c.key,
                            a: c.a.as_deref(),
                            b: c.b.as_deref(),
                            diff: c.diff.as_deref(),
                        })
                        .collect(),
                    not_compared: &g.not_compared,
                })
                .collect(),
            a: side_a,
            b: side_b,
        };
        // Serialized first, so that a closed stdout is a plain I/O error
        // (exit 0 on a broken pipe), not one wrapped by serde_json.
        let mut text = serde_json::to_vec_pretty(&json)?;
        text.push(b'\n');
        out.write_all(&text)?;
    } else {
        // The grouped report; under -q the exit code alone answers.
        render(&mut ui.report(), &comparison, &side_a, &side_b, ui)?;
    }
    Ok(if comparison.count() == 0 {
        Status::Success
    } else {
        Status::Negative
    })
}

fn describe(side: &Side) -> String {
    match (&side.path, &side.sha256) {
        (Some(path), Some(sha)) => format!("{} (sha256 {})", printable(path), &sha[..12]),
        (Some(path), None) => printable(path).into_owned(),
        _ => "this machine".to_owned(),
    }
}

/// The text report: one section per group that differs.
fn render(
    out: &mut impl std::io::Write,
    comparison: &Comparison,
    a: &Side,
    b: &Side,
    ui: &Ui,
) -> std::io::Result<()> {
    writeln!(out, "a: {}", describe(a))?;
    writeln!(out, "b: {}", describe(b))?;
    let shown =
        |v: Option<&str>| v.map_or_else(|| "(none)".to_owned(), |v| printable(v).into_owned());
    for group in &comparison.groups {
        if group.changes.is_empty() && group.not_compared.is_empty() {
            continue;
        }
        writeln!(out)?;
        writeln!(out, "{}", ui.paint(Style::Bold, group.kind.title()))?;
        let width = group
            .changes
            .iter()
            .filter(|c| c.diff.is_none())
            .map(|c| c.key.chars().count())
            .filter(|&w| w <= 32)
            .max()
            .unwrap_or(0);
        for change in &group.changes {
            let key = printable(&change.key);
            if let Some(diff) = &change.diff {
                let state = match (&change.a, &change.b) {
                    (Some(_), None) => "only in a",
                    (None, Some(_)) => "only in b",
                    _ => "differs",
                };
                writeln!(out, "  {key} ({state})")?;
                for line in diff.lines() {
                    writeln!(out, "    {}", printable(line))?;
                }
                continue;
            }
            writeln!(out, "  {key:<width$}  a: {}", shown(change.a.as_deref()))?;
            writeln!(out, "  {:<width$}  b: {}", "", shown(change.b.as_deref()))?;
        }
        if !group.not_compared.is_empty() {
            let names: Vec<String> = group
                .not_compared
                .iter()
                .map(|k| printable(k).into_owned())
                .collect();
            writeln!(out, "  not compared (redacted): {}", names.join(", "))?;
        }
    }
    writeln!(out)?;
    let count = comparison.count();
    if count == 0 {
        writeln!(out, "no differences that matter")?;
    } else {
        let per_group: Vec<String> = comparison
            .groups
            .iter()
            .filter(|g| !g.changes.is_empty())
            .map(|g| format!("{} {}", g.kind.as_str(), g.changes.len()))
            .collect();
        writeln!(
            out,
            "{count} difference{} ({})",
            if count == 1 { "" } else { "s" },
            per_group.join(", ")
        )?;
    }
    Ok(())
}
