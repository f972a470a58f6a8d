//! The report as a table for the terminal, one row per cell; the row logic
//! is shared with the Markdown renderer.

use std::io::{self, Write};

use super::{CellReport, Report, Verdict};
use crate::replay::outcome::Outcome;

/// Column headers.
pub const HEADERS: [&str; 8] = [
    "timing",
    "proxy",
    "cache",
    "reproduced",
    "rate",
    "95% CI",
    "median",
    "reason",
];

/// A cell's row, as text.
pub fn row(cell: &CellReport) -> [String; 8] {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    [
        cell.axes.timing.clone(),
        cell.axes.proxy.clone(),
        cell.axes.cache.clone(),
        if cell.errors > 0 {
            format!("{}/{} ({} err)", cell.reproduced, cell.runs, cell.errors)
        } else {
            format!("{}/{}", cell.reproduced, cell.runs)
        },
        cell.rate.map_or_else(|| "-".to_owned(), pct),
        cell.ci95.map_or_else(
            || "-".to_owned(),
            |[lo, hi]| format!("{}–{}", pct(lo), pct(hi)),
        ),
        cell.median_ms.map_or_else(|| "-".to_owned(), duration),
        cell.reason.clone().unwrap_or_default(),
    ]
}

/// `812 ms`, `10.0 s`, `2m 05s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        #[allow(clippy::cast_precision_loss)]
        let s = ms as f64 / 1000.0;
        format!("{s:.1} s")
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// One sentence on the whole replay.
pub fn summary(report: &Report) -> String {
    let reproduced: u32 = report.cells.iter().map(|c| c.reproduced).sum();
    let cells_hit = report.cells.iter().filter(|c| c.reproduced > 0).count();
    let mut text = match report.verdict {
        Verdict::Reproduced => format!(
            "reproduced in {cells_hit} of {} cells ({reproduced} of {} runs)",
            report.cells.len(),
            report.runs()
        ),
        Verdict::NotReproduced => format!("not reproduced in {} runs", report.runs()),
        Verdict::Error => format!("every run errored ({} runs)", report.runs()),
    };
    if report.errors() > 0 && report.verdict != Verdict::Error {
        text.push_str(&format!("; {} runs errored", report.errors()));
    }
    if report.interrupted {
        text.push_str("; interrupted, partial results");
    }
    if let Some(shard) = &report.shard {
        text.push_str(&format!("; shard {shard} only"));
    }
    if let Some(m) = &report.merged
        && !m.missing.is_empty()
    {
        text.push_str(&format!(
            "; {} of {} shards missing ({}), partial results",
            m.missing.len(),
            m.count,
            super::merge::list(&m.missing)
        ));
    }
    text
}

/// Renders the table, then the hang diagnostics and errors worth reading.
pub fn render(report: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<[String; 8]> = report.cells.iter().map(row).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 8]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let head = line(&HEADERS.map(str::to_owned));
    if color {
        writeln!(out, "\x1b[1m{head}\x1b[0m")?;
    } else {
        writeln!(out, "{head}")?;
    }
    for (cell, r) in report.cells.iter().zip(&rows) {
        let text = line(r);
        match (color, cell.reproduced > 0) {
            (true, true) => writeln!(out, "\x1b[31m{text}\x1b[0m")?,
            _ => writeln!(out, "{text}")?,
        }
        if let Some(note) = &cell.note {
            writeln!(out, "    {note}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}: {}", report.scenario, summary(report))?;
    for cell in &report.cells {
        let label = format!(
            "{}/{}/{}",
            cell.axes.timing, cell.axes.proxy, cell.axes.cache
        );
        if let Some(run) = cell
            .results
            .iter()
            .find(|r| r.diagnostics.as_ref().is_some_and(|d| !d.is_empty()))
        {
            writeln!(out, "  {label} run {} hung; its processes:", run.index)?;
            for p in run.diagnostics.iter().flatten().take(8) {
                writeln!(out, "    {}", p.short())?;
            }
        }
        if let Some(run) = cell.results.iter().find(|r| r.outcome == Outcome::Error) {
            writeln!(out, "  {label} run {} errored: {}", run.index, run.reason)?;
        }
        for run in &cell.results {
            if let Some(dir) = &run.dir {
                writeln!(out, "  {label} run {} kept in {dir}", run.index)?;
            }
        }
    }
    Ok(())
}
