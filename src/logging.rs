//! bugpack's log lines: what `-v` shows, on stderr, one line per event.
//!
//! Lines read like a CLI's, not a server's (cargo, rustup): `warning: ...`,
//! `info: ...`, `debug: ...`, no timestamps, no targets; the level's label
//! coloured only when colour is allowed on stderr. Levels: warnings always,
//! `-v` info (files read and written, processes started, runs and proxy
//! requests), `-vv` debug (the decisions behind them), `-vvv` trace; `-q`
//! errors only. Only bugpack's own events are shown: a dependency's debug
//! output could quote a header or a URL bugpack never scrubbed.
//!
//! Every line is scrubbed by the one log redactor
//! ([`bugpack::redact::logs`]) and has its control characters escaped
//! before it is written, whole, under stderr's lock; while a progress bar
//! is drawn, it is lifted for the line and drawn again below it.
//!
//! Inside a run's sandbox (`__sandbox`, `__supervise`) stderr is a file
//! nobody reads: there the lines go to the engine as events instead
//! ([`bugpack::replay::supervisor::relay_log`]), and it prints them.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::terminal::{Ui, printable};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// The user's terminal (stderr).
    Terminal,
    /// The engine outside the sandbox, as events on stdout.
    Relay,
}

/// The progress bar being drawn on stderr, if any: log lines lift it.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Installs the subscriber for this process.
pub(crate) fn init(ui: &Ui, sink: Sink) {
    let level = level(ui);
    let layer = Lines {
        sink,
        color: ui.color_stderr,
    };
    let _ = tracing_subscriber::registry()
        .with(level)
        .with(layer)
        .try_init();
}

/// The most detailed level shown: `-q` errors, default warnings, each `-v` one more.
pub(crate) fn level(ui: &Ui) -> LevelFilter {
    if ui.quiet {
        return LevelFilter::ERROR;
    }
    match ui.verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Shows `bar` until [`clear_bar`]; log lines are printed above it.
pub(crate) fn show_bar(bar: &indicatif::ProgressBar) {
    *BAR.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
}

/// The bar is gone: log lines go straight to stderr again.
pub(crate) fn clear_bar() {
    *BAR.lock().unwrap_or_else(PoisonError::into_inner) = None;
}

/// The layer that turns events into lines.
struct Lines {
    sink: Sink,
    color: bool,
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Lines {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        ours(metadata.target())
    }

    // Only called for events `enabled` let through: bugpack's own.
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let level = *event.metadata().level();
        match self.sink {
            Sink::Relay => bugpack::replay::supervisor::relay_log(level.into(), &text.0),
            Sink::Terminal => self.print(level, &text.0),
        }
    }
}

impl Lines {
    fn print(&self, level: Level, message: &str) {
        let clean = bugpack::redact::logs::scrub(message);
        let (label, code) = match level {
            Level::ERROR => ("error:", "1;31"),
            Level::WARN => ("warning:", "1;33"),
            Level::INFO => ("info:", "1;32"),
            Level::DEBUG => ("debug:", "1;34"),
            Level::TRACE => ("trace:", "2"),
        };
        let line = if self.color {
            format!("\x1b[{code}m{label}\x1b[0m {}\n", printable(&clean))
        } else {
            format!("{label} {}\n", printable(&clean))
        };
        let bar = BAR.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let write = || {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// bugpack's own events: the library's and the binary's (both crates are
/// named `bugpack`), never a dependency's.
fn ours(target: &str) -> bool {
    target == "bugpack" || target.starts_with("bugpack::")
}

/// An event's message, then any other fields as ` name=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}
