//! The report as GitHub-flavoured Markdown, for an issue comment.

use std::io::{self, Write};

use super::Report;
use super::table::{HEADERS, first_reproduction, row, summary};

/// Renders the Markdown: a verdict line, the table, what each cell's
/// conditions did, and a line tying the result to the bundle it came from.
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
    // What each condition did, as the table's note lines say it.
    for cell in &report.cells {
        if let Some(note) = &cell.note {
            let a = &cell.axes;
            writeln!(out, "- `{}/{}/{}`: {note}", a.timing, a.proxy, a.cache)?;
        }
    }
    if report.cells.iter().any(|c| c.note.is_some()) {
        writeln!(out)?;
    }
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
