//! `bugpack report merge`: read the reports of a sharded replay, merge them
//! ([`bugpack::report::merge`]), and render the result as replay does.
//!
//! Every problem with an input (missing, unreadable, not a report, from
//! another replay, a shard given twice) is a usage error, exit 2: exit 3 is
//! DESIGN.md's code for a rejected bundle, and these files are the user's
//! own replay results, which merge reads and never runs.

use std::fs;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use bugpack::error::usage;
use bugpack::report::merge::{self, Input};
use bugpack::report::{self, Report};

use super::Status;
use crate::settings::Merge;
use crate::terminal::Ui;

/// The largest report file merge reads.
const MAX_REPORT_BYTES: u64 = 1 << 30;
/// The lines around a report in a log (what `bugpack ci k8s` pods print).
pub(crate) const BEGIN: &str = "-----BEGIN BUGPACK REPORT-----";
pub(crate) const END: &str = "-----END BUGPACK REPORT-----";

pub(crate) fn merge(settings: &Merge, ui: &Ui) -> Result<Status> {
    let mut inputs = Vec::new();
    for path in &settings.files {
        inputs.extend(read_inputs(path)?);
    }
    let (report, warnings) = merge::merge(&inputs).map_err(|e| usage(e.to_string()))?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    write_outputs(settings, &report, ui)?;
    let partial = report.interrupted
        || report
            .merged
            .as_ref()
            .is_some_and(|m| !m.missing.is_empty());
    let clean = report.errors() == 0 && !partial;
    super::replay::status(report.verdict, settings.expect_fixed, clean).ok_or_else(|| {
        anyhow::anyhow!(
            "no run in the merged reports finished without an error ({} runs); see the report for why",
            report.runs()
        )
    })
}

/// The reports in one file: a JSON report, or a log with reports between
/// [`BEGIN`] and [`END`] lines.
fn read_inputs(path: &Path) -> Result<Vec<Input>> {
    let shown = path.display().to_string();
    tracing::info!("reading {shown}");
    let meta = fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            usage(format!(
                "{shown}: no such file; give the shards' JSON reports"
            ))
        } else {
            usage(format!("cannot read {shown}: {e}"))
        }
    })?;
    if !meta.is_file() {
        return Err(usage(format!(
            "{shown} is not a file; give the shards' JSON reports"
        )));
    }
    if meta.len() > MAX_REPORT_BYTES {
        return Err(usage(format!(
            "{shown} is {} bytes, more than a replay report can be (1 GiB)",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_REPORT_BYTES).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {shown}"))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        usage(format!(
            "{shown} is not a bugpack replay report (not UTF-8 text)"
        ))
    })?;
    if text.trim_start().starts_with('{') {
        return Ok(vec![Input {
            report: parse(&text, &shown)?,
            name: shown,
        }]);
    }
    let mut found = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let marker = line.trim();
        match &mut block {
            None if marker == BEGIN => block = Some((n + 1, String::new())),
            None => {}
            Some((start, json)) if marker == END => {
                let name = format!("{shown} (report at line {start})");
                found.push(Input {
                    report: parse(json, &name)?,
                    name,
                });
                block = None;
            }
            Some((_, json)) => {
                json.push_str(line);
                json.push('\n');
            }
        }
    }
    if let Some((start, _)) = block {
        return Err(usage(format!(
            "{shown}: the report that starts at line {start} never ends (was its pod stopped while printing?)"
        )));
    }
    if found.is_empty() {
        return Err(usage(format!(
            "{shown} holds no bugpack replay report: neither JSON nor a log with {BEGIN} lines"
        )));
    }
    tracing::debug!("{shown}: {} reports between {BEGIN} lines", found.len());
    Ok(found)
}

fn parse(text: &str, name: &str) -> Result<Report> {
    serde_json::from_str(text)
        .map_err(|e| usage(format!("{name} is not a bugpack replay report: {e}")))
}

fn write_outputs(settings: &Merge, report: &Report, ui: &Ui) -> Result<()> {
    let table = if ui.quiet {
        None
    } else {
        let mut table = Vec::new();
        report::table::render(report, ui.color, &mut table)?;
        // The reports came from other machines: nothing in them may drive the terminal.
        Some(terminal_safe(&String::from_utf8_lossy(&table)).into_bytes())
    };
    super::replay::write_report(
        report,
        settings.json.as_ref(),
        settings.markdown.as_ref(),
        table,
    )
}

/// `text` with every control character escaped, except line breaks and
/// the three colour codes the table itself writes.
fn terminal_safe(text: &str) -> String {
    const OURS: [&str; 3] = ["\x1b[1m", "\x1b[0m", "\x1b[31m"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(code) = OURS.iter().find(|code| rest.starts_with(**code)) {
            out.push_str(code);
            rest = &rest[code.len()..];
            continue;
        }
        if c != '\n' && report::table::is_unsafe_char(c) {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_colours_reach_the_terminal() {
        assert_eq!(
            terminal_safe("\x1b[31mrow\x1b[0m\nx\x1b]0;title\x07y\r"),
            "\x1b[31mrow\x1b[0m\nx\\u{1b}]0;title\\u{7}y\\r"
        );
    }
}
