//! The report as a table for the terminal, one row per cell; the row logic
//! is shared with the Markdown renderer.

use std::borrow::Cow;
use std::io::{self, Write};

use super::{CellReport, Report, RunResult, Verdict, stats};
use crate::run::Outcome;

/// The most processes of a hung run the table lists.
const SHORT_PROCESSES: usize = 8;
/// The widest a reason gets in a table cell.
const REASON_WIDTH: usize = 48;

/// Column headers; the `net fault` column is only there when a cell of the
/// report has a network fault (see [`columns`]).
const HEADERS: [&str; 9] = [
    "timing",
    "proxy",
    "cache",
    "net fault",
    "reproduced",
    "rate",
    "95% CI",
    "median",
    "reason",
];

/// Where the `net fault` column is in [`HEADERS`] and a full row.
const NET_FAULT_COLUMN: usize = 3;

/// The report's column headers.
pub fn columns(report: &Report) -> Vec<&'static str> {
    keep_columns(report, HEADERS.to_vec())
}

/// A report's rows, one per cell, with the same columns as [`columns`].
pub fn rows(report: &Report) -> Vec<Vec<String>> {
    report
        .cells
        .iter()
        .map(|c| keep_columns(report, row(c).to_vec()))
        .collect()
}

fn keep_columns<T>(report: &Report, mut cells: Vec<T>) -> Vec<T> {
    if report.cells.iter().all(|c| c.axes.net_fault == "none") {
        cells.remove(NET_FAULT_COLUMN);
    }
    cells
}

/// A cell's row, as text.
fn row(cell: &CellReport) -> [String; 9] {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    [
        cell.axes.timing.clone(),
        cell.axes.proxy.clone(),
        cell.axes.cache.clone(),
        cell.axes.net_fault.clone(),
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
        stats::commonest(
            CellReport::reason_runs(&cell.results)
                .map(reason_label)
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
        .map(|r| shorten(&r, REASON_WIDTH))
        .unwrap_or_default(),
    ]
    .map(|c| printable(&c).into_owned())
}

/// A run's reason with its detail: `hang`, `exit 3`, `killed by SIGSEGV`,
/// `output "the matched line"`, or an error's cause.
pub fn reason_label(run: &RunResult) -> String {
    match (run.outcome, run.reason.as_str()) {
        (Outcome::Reproduced, "exit") => match (run.exit_code, &run.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by {signal}"),
            (None, None) => "exit".to_owned(),
        },
        (Outcome::Reproduced, "output") => match &run.matched {
            Some(line) => format!("output \"{}\"", shorten(line.trim(), 32)),
            None => "output".to_owned(),
        },
        _ => run.reason.clone(),
    }
}

/// `text`, cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A character a terminal would act on instead of showing: a control
/// character (escape sequences, carriage returns) or a bidi override.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Text from a run or a bundle (its output, its command lines) with control
/// characters shown as escapes instead of acted on by the terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_unsafe_char(c) {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
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
            "reproduced in {cells_hit} of {} cells ({reproduced} of {})",
            report.cells.len(),
            count(report.runs(), "run")
        ),
        Verdict::NotReproduced => format!("not reproduced in {}", count(report.runs(), "run")),
        Verdict::Error if report.interrupted && report.runs() == 0 => {
            return "interrupted before any run finished".to_owned();
        }
        Verdict::Error => format!("every run errored ({})", count(report.runs(), "run")),
    };
    if report.errors() > 0 && report.verdict != Verdict::Error {
        text.push_str(&format!("; {} errored", count(report.errors(), "run")));
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

/// `1 run`, `3 runs`.
pub(crate) fn count(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How a `--budget` was spent, and with no reproduction the rate the runs
/// rule out, for lines under the table: `budget 500 runs: 500 runs in
/// 12.3 s (40.6 runs/s), spread by Thompson sampling after 3 per cell; most
/// to none/none/cold (420)`, `0 in 500 runs: rate < 0.60% at 95%`.
pub fn budget_lines(report: &Report) -> Vec<String> {
    let Some(b) = &report.budget else {
        return Vec::new();
    };
    #[allow(clippy::cast_precision_loss, reason = "figures for people")]
    let per_second = b.runs as f64 * 1000.0 / report.duration_ms.max(1) as f64;
    let mut first = format!(
        "budget {}: {} in {} ({per_second:.1} runs/s), spread by Thompson sampling after {} per cell",
        b.limit,
        count(u32::try_from(b.runs).unwrap_or(u32::MAX), "run"),
        duration(report.duration_ms),
        b.warm_up
    );
    if let Some(most) = report.cells.iter().max_by_key(|c| c.runs)
        && report.cells.len() > 1
    {
        // A budget spent before the sampling starts is even: naming one
        // cell as "most" would single out a tie.
        if report.cells.iter().all(|c| c.runs == most.runs) {
            first.push_str(&format!("; {} to each cell", most.runs));
        } else {
            first.push_str(&format!("; most to {} ({})", most.axes, most.runs));
        }
    }
    let mut lines = vec![first];
    if let (Some(runs), Some(best)) = (
        b.fix_runs,
        report
            .cells
            .iter()
            .filter(|c| c.rate.is_some_and(|r| r > 0.0))
            .max_by(|a, b| a.rate.unwrap_or(0.0).total_cmp(&b.rate.unwrap_or(0.0))),
    ) {
        lines.push(format!(
            "a fix shows it makes the bug 10× rarer in {} with 0 in {runs} runs of that cell alone (--budget {runs} --expect-fixed)",
            best.axes
        ));
    }
    if let Some(rate) = b.rate_below {
        lines.push(format!(
            "0 in {}: rate < {} at 95%",
            count(u32::try_from(b.runs).unwrap_or(u32::MAX), "run"),
            percent(rate)
        ));
    }
    lines
}

/// A small rate as a percentage with two significant digits: `0.10%`, `1.5%`.
fn percent(rate: f64) -> String {
    let pct = rate * 100.0;
    if pct >= 10.0 {
        format!("{pct:.0}%")
    } else if pct >= 1.0 {
        format!("{pct:.1}%")
    } else {
        // Two significant digits: one more decimal than the leading zeros.
        #[allow(clippy::cast_possible_truncation, reason = "a small digit count")]
        let digits = usize::try_from((-pct.log10()).ceil() as i64 + 1).unwrap_or(2);
        format!("{pct:.digits$}%")
    }
}

/// When the bug first showed, for a line under the table.
pub fn first_reproduction(report: &Report) -> Option<String> {
    let first = report.first_reproduction.as_ref()?;
    Some(format!(
        "first reproduced by run {} of {}, after {} and {}",
        first.index,
        first.axes,
        count(first.runs, "run"),
        duration(first.elapsed_ms)
    ))
}

/// The lines above the table that set the runs beside the user's side:
/// what the user saw, the checkout the runs ran in, and how their runtime
/// differs from the user's. Each is `(label, text)`.
pub fn header(report: &Report) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(o) = &report.observed {
        let mut text = format!("{} on the user's machine", o.words());
        if let Some(tail) = &o.stderr_tail
            && let Some(last) = tail.lines().rev().find(|l| !l.trim().is_empty())
        {
            text.push_str(&format!("; stderr ended: {}", shorten(last.trim(), 100)));
        }
        lines.push(("observed", text));
    }
    if let Some(c) = &report.checkout {
        let mut text = format!(
            "{} at {}",
            c.repo,
            c.commit.chars().take(12).collect::<String>()
        );
        if c.patched > 0 {
            text.push_str(&format!(
                " + the user's changes to {}",
                count(c.patched, "file")
            ));
        }
        if c.untracked > 0 {
            text.push_str(&format!(" + {}", count(c.untracked, "untracked file")));
        }
        if c.cwd != "." {
            text.push_str(&format!(", run from {}/", c.cwd));
        }
        text.push_str(match c.view.as_str() {
            "overlay" => "; a copy-on-write view per run",
            _ => "; a copy per run",
        });
        if let Some(why) = &c.why_copy {
            text.push_str(&format!(" ({why})"));
        }
        lines.push(("checkout", text));
        for note in &c.notes {
            lines.push(("", note.clone()));
        }
    }
    let (packages, others): (Vec<_>, Vec<_>) = report
        .runtime
        .iter()
        .partition(|d| d.key.starts_with("package "));
    let shown = |d: &crate::capture::runtime::Difference| {
        format!(
            "{}: {} for the user, {} here",
            d.key,
            d.user.as_deref().unwrap_or("none"),
            d.here.as_deref().unwrap_or("none")
        )
    };
    for d in others {
        lines.push(("runtime", shown(d)));
    }
    // A whole site-packages can differ: the versions that moved first,
    // and the rest counted (the JSON lists every one).
    let moved: Vec<_> = packages
        .iter()
        .filter(|d| d.user.is_some() && d.here.is_some())
        .collect();
    let limit = if packages.len() <= PACKAGE_LINES {
        PACKAGE_LINES
    } else {
        PACKAGE_LINES - 1
    };
    let listed: Vec<_> = moved
        .iter()
        .copied()
        .chain(
            packages
                .iter()
                .filter(|d| d.user.is_none() || d.here.is_none()),
        )
        .take(limit)
        .collect();
    for d in &listed {
        lines.push(("runtime", shown(d)));
    }
    if packages.len() > listed.len() {
        let only_user = packages.iter().filter(|d| d.here.is_none()).count();
        let only_here = packages.iter().filter(|d| d.user.is_none()).count();
        lines.push((
            "runtime",
            format!(
                "{} packages differ in all: {} at another version, {} only the user's, {} only here (--json lists them)",
                packages.len(),
                moved.len(),
                only_user,
                only_here
            ),
        ));
    }
    lines
}

/// The most package differences listed above the table.
const PACKAGE_LINES: usize = 6;

/// Renders the table, then the hang diagnostics and errors worth reading.
pub fn render(report: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let head = header(report);
    for (label, text) in &head {
        writeln!(out, "{label:<9} {}", printable(text))?;
    }
    if !head.is_empty() {
        writeln!(out)?;
    }
    let rows = rows(report);
    let headers = columns(report);
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let head = line(&headers.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
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
        if let Some(unlike) = &cell.unlike_observed {
            writeln!(out, "    {}", printable(unlike))?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}: {}", printable(&report.scenario), summary(report))?;
    for line in budget_lines(report) {
        writeln!(out, "  {line}")?;
    }
    if let Some(line) = first_reproduction(report) {
        writeln!(out, "  {line}")?;
    }
    for cell in &report.cells {
        let label = printable(&cell.axes.to_string()).into_owned();
        if let Some(run) = cell
            .results
            .iter()
            .find(|r| r.diagnostics.as_ref().is_some_and(|d| !d.is_empty()))
        {
            writeln!(
                out,
                "  {label} run {} hung; its processes{}:",
                run.index,
                if run.diagnostics_cut_short {
                    " (diagnostics cut short by the interrupt)"
                } else {
                    ""
                }
            )?;
            // Zombies wait on nothing; the JSON keeps them.
            let live: Vec<_> = run
                .diagnostics
                .iter()
                .flatten()
                .filter(|p| !p.state.starts_with('Z'))
                .collect();
            for p in live.iter().take(SHORT_PROCESSES) {
                writeln!(out, "    {}", printable(&p.short()))?;
            }
            let more = live.len().saturating_sub(SHORT_PROCESSES)
                + run.diagnostics_omitted.map_or(0, |n| n as usize);
            if more > 0 {
                writeln!(out, "    ... and {more} more (see --json)")?;
            }
        }
        if let Some(run) = cell.results.iter().find(|r| r.outcome == Outcome::Error) {
            writeln!(
                out,
                "  {label} run {} errored: {}",
                run.index,
                printable(&run.reason)
            )?;
            if let Some(hint) = &run.hint {
                writeln!(out, "    {}", printable(hint))?;
            }
        }
        for run in &cell.results {
            if let Some(dir) = &run.dir {
                writeln!(
                    out,
                    "  {label} run {} kept in {}",
                    run.index,
                    printable(dir)
                )?;
            }
        }
    }
    Ok(())
}
