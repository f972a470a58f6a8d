//! `bugpack issue BUNDLE`: the GitHub issue text for a bundle, rendered
//! again from the bundle's own (redacted) entries, with the bundle file's
//! name, size and SHA-256, as capture writes it beside the bundle.
//!
//! Piped, the text is printed exactly as rendered; on a terminal, control
//! characters from the bundle are shown as escapes instead of acted on.

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, Result};
use bugpack::bundle::Bundle;
use bugpack::capture::observe::Observed;
use bugpack::capture::system::SystemInfo;
use bugpack::capture::trace::Traced;
use bugpack::issue::{self, BundleView, IssueData, ScenarioView};

use super::Status;
use crate::settings::Issue;
use crate::terminal::{Ui, human_size, printable};

/// The largest observed output tail read back (capture keeps 1 MiB; redaction
/// placeholders may add a little).
const MAX_TAIL_BYTES: u64 = 8 << 20;
/// The largest steps text read back.
const MAX_STEPS_BYTES: u64 = 8 << 20;

pub(crate) fn run(settings: &Issue, _ui: &Ui) -> Result<Status> {
    let mut bundle = Bundle::open(&settings.bundle, &settings.limits)?;
    let data = issue_data(&mut bundle)?;
    let text = issue::render(&data).context("cannot render the issue text")?;
    let mut out = std::io::stdout().lock();
    if out.is_terminal() {
        for line in text.split_inclusive('\n') {
            let (body, end) = line
                .strip_suffix('\n')
                .map_or((line, ""), |body| (body, "\n"));
            write!(out, "{}{end}", printable(body))?;
        }
    } else {
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    Ok(Status::Success)
}

/// The template's data, from the bundle's entries.
fn issue_data(bundle: &mut Bundle) -> Result<IssueData> {
    let manifest = bundle.manifest().clone();
    let steps = match optional(bundle, "steps.md", MAX_STEPS_BYTES)? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            // Capture's own words for no steps, not the reporter's.
            if text == issue::NO_STEPS {
                String::new()
            } else {
                text.to_owned()
            }
        }
        None => String::new(),
    };
    let system: SystemInfo = bundle.read_typed("env/system.yaml")?.unwrap_or_default();
    let observed = match bundle.read_typed::<Observed>("observed/result.yaml")? {
        Some(record) => {
            let stdout =
                optional(bundle, "observed/stdout.log", MAX_TAIL_BYTES)?.unwrap_or_default();
            let stderr =
                optional(bundle, "observed/stderr.log", MAX_TAIL_BYTES)?.unwrap_or_default();
            Some(issue::observed_view(&record, &stdout, &stderr))
        }
        None => None,
    };
    let scenario = bundle.scenario().map(|s| ScenarioView {
        name: s.name.clone(),
        run: s.run.clone(),
    });
    let name = bundle
        .path()
        .file_name()
        .map_or_else(|| "bundle.zip".into(), |n| n.to_string_lossy().into_owned());
    Ok(IssueData {
        title: manifest.title.clone(),
        created: manifest.created.clone(),
        bugpack_version: manifest.bugpack_version.clone(),
        steps,
        environment: issue::environment_rows(&system),
        observed,
        scenario,
        redactions: manifest.redactions.values().sum(),
        bundle: Some(BundleView {
            name,
            size: human_size(bundle.file_size()),
            sha256: bundle.file_sha256()?,
        }),
        outside_files: bundle
            .read_typed::<Traced>("env/files.yaml")?
            .map(|t| t.outside)
            .unwrap_or_default(),
    })
}

/// A listed entry's bytes (at most `max`), or `None` when the bundle has no such entry.
fn optional(bundle: &mut Bundle, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
    if bundle.manifest().file(name).is_none() {
        return Ok(None);
    }
    bundle.read(name, max).map(Some)
}
