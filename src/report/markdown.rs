//! The report as GitHub-flavoured Markdown, for an issue comment or a CI
//! job summary.
//!
//! Much of a report is text from runs of a stranger's code (error causes,
//! matched output lines) or paths as the user typed them. None of it may
//! become Markdown or HTML in the comment: every such piece goes through
//! [`text`] or [`code`], never straight into the output.

use std::io::{self, Write};

use super::Report;
use super::table::{HEADERS, first_reproduction, printable, row, summary};

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
    if let Some(line) = first_reproduction(report) {
        writeln!(out)?;
        writeln!(out, "{}.", text(&capitalise(&line)))?;
    }
    writeln!(out)?;
    writeln!(out, "| {} |", HEADERS.join(" | "))?;
    writeln!(out, "|{}|", HEADERS.map(|_| "---").join("|"))?;
    for cell in &report.cells {
        // `row` has already made control characters visible.
        let cells = row(cell).map(|c| text(&c));
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    writeln!(out)?;
    // What each condition did, as the table's note lines say it.
    for cell in &report.cells {
        if let Some(note) = &cell.note {
            let a = &cell.axes;
            writeln!(
                out,
                "- {}: {}",
                code(&format!("{}/{}/{}", a.timing, a.proxy, a.cache)),
                text(&printable(note))
            )?;
        }
    }
    if report.cells.iter().any(|c| c.note.is_some()) {
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

/// `raw` as literal inline text, safe in a table cell too: the characters
/// that start Markdown inline syntax (emphasis, code, links, strikethrough,
/// cell breaks) and backslash itself are backslash-escaped, and `<`, `>`
/// and `&` become entities, so that no HTML tag, autolink or entity can
/// form. Line breaks and other control characters are shown escaped.
pub fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in printable(raw).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `raw` as a code span (outside tables), shown exactly: the fence is one
/// backtick longer than the longest run of backticks inside, padded with a
/// space where the text starts or ends with a backtick or a space.
/// Markdown and HTML are not interpreted inside a code span.
pub fn code(raw: &str) -> String {
    let raw = printable(raw);
    let mut longest = 0;
    let mut run = 0;
    for c in raw.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if raw.starts_with(['`', ' ']) || raw.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{raw}{pad}{fence}")
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_leaves_no_markdown_or_html() {
        assert_eq!(
            text("<img src=x onerror=alert(1)> & **b** _i_ `c` [l](u) ~~s~~ a|b \\ !#"),
            "&lt;img src=x onerror=alert(1)&gt; &amp; \\*\\*b\\*\\* \\_i\\_ \\`c\\` \
             \\[l\\](u) \\~\\~s\\~\\~ a\\|b \\\\ \\!\\#"
        );
        // Ordinary report text stays readable.
        assert_eq!(text("3/4 (1 err)"), "3/4 (1 err)");
        assert_eq!(text("44%–100%"), "44%–100%");
        // A line break cannot end the table row or start a block.
        assert_eq!(text("a\n# b"), "a\\\\n\\# b");
    }

    #[test]
    fn code_spans_hold_any_backticks() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("a``b`"), "``` a``b` ```");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code(" x "), "`  x  `");
        assert_eq!(code("<b>|"), "`<b>|`");
        assert_eq!(code("a\u{1b}]0;t\u{7}"), "`a\\u{1b}]0;t\\u{7}`");
    }
}
