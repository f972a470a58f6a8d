//! Text from elsewhere (a bundle, a run, the environment) written into
//! GitHub-flavoured Markdown as text: the issue text and the replay report
//! both go into a public tracker, where nothing a stranger wrote may become
//! HTML, a link, an image or a notification.
//!
//! Every piece of such text goes through one of these functions, never
//! straight into the output.

use crate::report::table::printable;

/// `raw` as literal inline text, safe in a table cell too: the characters
/// that start Markdown inline syntax (emphasis, code, links, strikethrough,
/// cell breaks) and backslash itself are backslash-escaped, and `<`, `>`
/// and `&` become entities, so that no HTML tag, autolink or entity can
/// form. Line breaks and other control characters are shown escaped. An
/// `@mention` gets a zero-width space after its `@`, so that it notifies
/// no one (an e-mail address, with a word before its `@`, is left as is).
pub fn text(raw: &str) -> String {
    let shown = printable(raw);
    let mut out = String::with_capacity(shown.len());
    let mut prev: Option<char> = None;
    let mut chars = shown.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '@' if !prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_')
                && chars.peek().is_some_and(char::is_ascii_alphanumeric) =>
            {
                out.push_str("@&#8203;");
            }
            _ => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// Several lines of `raw` (steps a reporter wrote), each as [`text`], with
/// line breaks kept and the structure that cannot carry HTML or links kept
/// as Markdown: a heading's `#`s, a `* ` bullet, a `> ` quote at the start
/// of a line.
pub fn lines(raw: &str) -> String {
    raw.lines()
        .map(|line| {
            let body = line.trim_start_matches([' ', '\t']);
            let indent = &line[..line.len() - body.len()];
            let hashes = body.bytes().take_while(|&b| b == b'#').count();
            let marker = if (1..=6).contains(&hashes) && body[hashes..].starts_with(' ') {
                hashes + 1
            } else if body.starts_with("* ") || body.starts_with("> ") {
                2
            } else {
                0
            };
            let (marker, rest) = body.split_at(marker);
            format!("{indent}{marker}{}", text(rest))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `raw` as a code span (outside tables), shown exactly: the fence is one
/// backtick longer than the longest run of backticks inside, padded with a
/// space where the text starts or ends with a backtick or a space.
/// Markdown and HTML are not interpreted inside a code span.
pub fn code(raw: &str) -> String {
    let raw = printable(raw);
    let fence = "`".repeat(longest_backticks(&raw) + 1);
    let pad = if raw.starts_with(['`', ' ']) || raw.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{raw}{pad}{fence}")
}

/// The fence of a fenced code block around `body`: backticks, at least
/// three, and more than any run of backticks in `body`, which therefore
/// cannot close the block early.
pub fn fence(body: &str) -> String {
    "`".repeat((longest_backticks(body) + 1).max(3))
}

fn longest_backticks(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
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
    fn mentions_notify_no_one_and_addresses_stay() {
        assert_eq!(text("@someone"), "@&#8203;someone");
        assert_eq!(
            text("cc @org/team, (@x)"),
            "cc @&#8203;org/team, (@&#8203;x)"
        );
        assert_eq!(text("me@example.com"), "me@example.com");
        assert_eq!(text("a @ b, @-x"), "a @ b, @-x");
    }

    #[test]
    fn lines_keep_headings_bullets_and_quotes_and_escape_the_rest() {
        assert_eq!(
            lines("### What I did\n\n1. run `make`\n* <b>x</b>\n> quoted _here_\n  - @me"),
            "### What I did\n\n1. run \\`make\\`\n* &lt;b&gt;x&lt;/b&gt;\n\
             > quoted \\_here\\_\n  - @&#8203;me"
        );
        // Not a heading: no space, or more than six.
        assert_eq!(
            lines("#1 and ####### x"),
            "\\#1 and \\#\\#\\#\\#\\#\\#\\# x"
        );
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

    #[test]
    fn fences_outgrow_the_backticks_inside() {
        assert_eq!(fence("no ticks"), "```");
        assert_eq!(fence("``` and ````"), "`````");
    }
}
