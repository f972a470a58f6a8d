//! The report as GitHub-flavoured Markdown, for an issue comment.

use std::io::{self, Write};

use super::Report;
use super::table::{HEADERS, first_reproduction, row, summary};

/// Renders the Markdown: a verdict line, the table, and a line tying the
/// result to the bundle it came from.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "**bugpack replay** of `{}` (scenario `{}`): **{}**",
        report.source.replace('`', "'"),
        report.scenario.replace('`', "'"),
        summary(report)
    )?;
    if let Some(line) = first_reproduction(report) {
        writeln!(out)?;
        writeln!(out, "{}.", capitalise(&line))?;
    }
    writeln!(out)?;
    writeln!(out, "| {} |", HEADERS.join(" | "))?;
    writeln!(out, "|{}|", HEADERS.map(|_| "---").join("|"))?;
    for cell in &report.cells {
        let cells = row(cell).map(|c| c.replace('|', "\\|"));
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    writeln!(out)?;
    match &report.bundle_sha256 {
        Some(sha) => writeln!(
            out,
            "<sub>bugpack {} · seed {} · bundle SHA-256 `{sha}`</sub>",
            report.bugpack, report.seed
        )?,
        None => writeln!(
            out,
            "<sub>bugpack {} · seed {} · scenario directory, not a bundle</sub>",
            report.bugpack, report.seed
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
