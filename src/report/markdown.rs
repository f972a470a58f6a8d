//! The report as GitHub-flavoured Markdown, for an issue comment or a CI
//! job summary.
//!
//! Much of a report is text from runs of a stranger's code (error causes,
//! matched output lines) or paths as the user typed them. None of it may
//! become Markdown or HTML in the comment: every such piece goes through
//! [`crate::markdown`], never straight into the output.

use std::io::{self, Write};

use super::Report;
use super::table::{columns, first_reproduction, header, printable, rows, summary};
use crate::markdown::{code, text};

/// Renders the Markdown: a verdict line, the table, what each cell's
/// conditions did, and a line tying the result to the bundle it came from.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "**bugpack replay** of {} (scenario {}): **{}**",
        code(&report.source),
        code(&report.scenario),
        text(&summary(report))
    )?;
    for line in super::table::budget_lines(report) {
        writeln!(out)?;
        writeln!(out, "{}.", text(&capitalise(&line)))?;
    }
    if let Some(line) = first_reproduction(report) {
        writeln!(out)?;
        writeln!(out, "{}.", text(&capitalise(&line)))?;
    }
    let head = header(report);
    if !head.is_empty() {
        writeln!(out)?;
        for (label, line) in &head {
            if label.is_empty() {
                writeln!(out, "- {}", text(&printable(line)))?;
            } else {
                writeln!(out, "- **{label}**: {}", text(&printable(line)))?;
            }
        }
    }
    writeln!(out)?;
    let headers = columns(report);
    writeln!(out, "| {} |", headers.join(" | "))?;
    writeln!(out, "|{}|", vec!["---"; headers.len()].join("|"))?;
    for row in rows(report) {
        // `rows` has already made control characters visible.
        let cells: Vec<String> = row.iter().map(|c| text(c)).collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    writeln!(out)?;
    // What each condition did, as the table's note lines say it.
    for cell in &report.cells {
        for note in [&cell.note, &cell.unlike_observed].into_iter().flatten() {
            let a = &cell.axes;
            writeln!(
                out,
                "- {}: {}",
                code(&a.to_string()),
                text(&printable(note))
            )?;
        }
    }
    if report
        .cells
        .iter()
        .any(|c| c.note.is_some() || c.unlike_observed.is_some())
    {
        writeln!(out)?;
    }
    let seed = report.seed;
    let version = text(&report.bugpack);
    match &report.bundle_sha256 {
        Some(sha) => writeln!(
            out,
            "<sub>bugpack {version} · seed {seed} · bundle SHA-256 {}</sub>",
            code(sha)
        )?,
        None => writeln!(
            out,
            "<sub>bugpack {version} · seed {seed} · scenario directory, not a bundle</sub>",
        )?,
    }
    Ok(())
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}
