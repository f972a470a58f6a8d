//! `tracing` output on stderr: warnings always, `-v` what bugpack does,
//! `-vv` more, `-q` errors only. Lines read like a CLI's, not a server's:
//! `warning: ...`, no timestamps, no targets.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::terminal::Ui;

pub(crate) fn init(ui: &Ui) {
    let level = if ui.quiet {
        Level::ERROR
    } else {
        match ui.verbose {
            0 => Level::WARN,
            1 => Level::INFO,
            2 => Level::DEBUG,
            _ => Level::TRACE,
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(ui.color_stderr)
        .event_format(Plain {
            color: ui.color_stderr,
        })
        .try_init();
}

struct Plain {
    color: bool,
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let (label, code) = match *event.metadata().level() {
            Level::ERROR => ("error: ", "1;31"),
            Level::WARN => ("warning: ", "33"),
            Level::INFO => ("", ""),
            Level::DEBUG => ("debug: ", "2"),
            Level::TRACE => ("trace: ", "2"),
        };
        if self.color && !label.is_empty() {
            write!(writer, "\x1b[{code}m{label}\x1b[0m")?;
        } else {
            write!(writer, "{label}")?;
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
