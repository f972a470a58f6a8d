//! What the terminal gets: colour decisions, sizes for humans, and text from
//! bundles made safe to print.
//!
//! A bundle comes from a stranger; its title or file names may carry escape
//! sequences meant to rewrite a maintainer's terminal. Everything printed from
//! a bundle goes through [`printable`].

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::IsTerminal as _;

use clap::CommandFactory as _;

use crate::cli::{Cli, ColorChoice, GlobalArgs};

/// How to talk to the user, decided once from the global flags and environment.
#[derive(Debug, Clone)]
pub(crate) struct Ui {
    pub(crate) verbose: u8,
    pub(crate) quiet: bool,
    /// Colour on stdout.
    pub(crate) color: bool,
    /// Colour on stderr.
    pub(crate) color_stderr: bool,
    /// Whether stdin and stderr are terminals (prompts, progress bars).
    pub(crate) interactive: bool,
}

impl Ui {
    pub(crate) fn new(global: &GlobalArgs) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |is_tty: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && !no_color,
        };
        Self {
            verbose: global.verbose,
            quiet: global.quiet,
            color: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(std::io::stderr().is_terminal()),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// The best guess at the user's wishes when the command line did not
    /// parse: `--color` read by hand (an invalid value counts as `auto`).
    pub(crate) fn from_raw_args(args: &[OsString]) -> Self {
        let mut color = ColorChoice::Auto;
        let mut words = args.iter().skip(1).map(|a| a.to_string_lossy());
        while let Some(word) = words.next() {
            if word == "--" {
                break;
            }
            let value = match word.strip_prefix("--color") {
                Some("") => words.next().map(Cow::into_owned),
                Some(v) => v.strip_prefix('=').map(str::to_owned),
                None => None,
            };
            if let Some(value) = value {
                color = match value.as_str() {
                    "always" => ColorChoice::Always,
                    "never" => ColorChoice::Never,
                    _ => ColorChoice::Auto,
                };
            }
        }
        Self::new(&GlobalArgs {
            verbose: 0,
            quiet: false,
            color,
        })
    }

    /// Where a command's report goes: stdout, or nowhere under `-q`. Data
    /// the user asked for by name (`--json`) is written to stdout directly,
    /// never through this.
    pub(crate) fn report(&self) -> Box<dyn std::io::Write> {
        if self.quiet {
            Box::new(std::io::sink())
        } else {
            Box::new(std::io::stdout().lock())
        }
    }

    pub(crate) fn error_prefix(&self) -> &'static str {
        if self.color_stderr {
            "\x1b[1;31merror:\x1b[0m "
        } else {
            "error: "
        }
    }

    /// Wraps `text` in an ANSI style when colour is on for stdout.
    pub(crate) fn paint<'a>(&self, style: Style, text: &'a str) -> Cow<'a, str> {
        if !self.color {
            return Cow::Borrowed(text);
        }
        let code = match style {
            Style::Bold => "1",
            Style::Good => "32",
        };
        Cow::Owned(format!("\x1b[{code}m{text}\x1b[0m"))
    }
}

/// A usage error from clap as one line, without the `error: ` prefix: what
/// is wrong, clap's first suggestion, and which `--help` to read. clap's own
/// rendering spreads this over four or five lines.
pub(crate) fn usage_error_line(err: &clap::Error, args: &[OsString]) -> String {
    let text = err.render().to_string();
    let mut lines = text.lines();
    let mut what = lines
        .next()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("error: ")
        .to_owned();
    let mut more = Vec::new();
    let mut tip = None;
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Usage:") || line.starts_with("For more information")
        {
            continue;
        }
        match line.strip_prefix("tip: ") {
            Some(t) => {
                tip.get_or_insert(t);
            }
            None => more.push(line),
        }
    }
    if !more.is_empty() {
        let sep = if what.ends_with(':') { ", " } else { " " };
        what.push(' ');
        what.push_str(&more.join(sep));
    }
    if let Some(tip) = tip {
        what.push_str("; ");
        what.push_str(tip);
    }
    let command = Cli::command();
    let sub = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .find(|a| {
            command
                .get_subcommands()
                .any(|s| !s.is_hide_set() && s.get_name() == a.as_ref())
        });
    match sub {
        Some(sub) => format!("{what}; try 'bugpack {sub} --help'"),
        None => format!("{what}; try 'bugpack --help'"),
    }
}

/// The few styles bugpack uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    Bold,
    Good,
}

pub(crate) use bugpack::report::table::printable;

/// Asks `question` with ` [y/N] ` on `err` and reads the answer from
/// `input`: yes only for `y` or `yes`.
pub(crate) fn confirm(
    err: &mut impl std::io::Write,
    input: &mut impl std::io::BufRead,
    question: &str,
) -> std::io::Result<bool> {
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

/// Text from a bundle that may run over several lines (a description, a
/// script), for a field whose label is already printed: line breaks at the
/// end dropped, each further line indented by `indent`, and every other
/// control character shown as an escape, as [`printable`] does.
pub(crate) fn printable_lines(text: &str, indent: &str) -> String {
    text.trim_end_matches(['\n', '\r'])
        .split('\n')
        .map(|line| printable(line.strip_suffix('\r').unwrap_or(line)))
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

/// A byte count for humans: `812 B`, `12.3 KiB`, `4.0 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_neutralised() {
        assert_eq!(printable("plain title"), "plain title");
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\ry"), "x\\ry");
        assert_eq!(printable("evil\u{202e}txt"), "evil\\u{202e}txt");
    }

    #[test]
    fn lines_stay_lines_and_nothing_else_acts() {
        assert_eq!(printable_lines("folded text\n", "  "), "folded text");
        assert_eq!(
            printable_lines("one\r\ntwo\x1b[2J\nthree\n\n", "    "),
            "one\n    two\\u{1b}[2J\n    three"
        );
        assert_eq!(printable_lines("a\rb", ""), "a\\rb");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(12_595), "12.3 KiB");
        assert_eq!(human_size(4 << 20), "4.0 MiB");
    }
}
