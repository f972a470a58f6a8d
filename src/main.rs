//! The `bugpack` binary: parse, run, map the error to DESIGN.md's exit code.

mod cli;
mod commands;
mod logging;
mod settings;
mod terminal;

use std::io::Write as _;
use std::process::ExitCode;

use bugpack::error::ErrorKind;
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_failure(&err),
    };
    let ui = terminal::Ui::new(&cli.global);
    let sink = match cli.command {
        cli::Command::Sandbox(_) | cli::Command::Supervise => logging::Sink::Relay,
        _ => logging::Sink::Terminal,
    };
    logging::init(&ui, sink);
    match commands::run(cli.command, &ui) {
        Ok(status) => status.into(),
        Err(err) => {
            let kind = ErrorKind::of(&err);
            if kind == ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            if ui.verbose > 0 {
                // The chain one cause a line, instead of joined into one.
                let _ = writeln!(stderr, "{}{err}", ui.error_prefix());
                for cause in err.chain().skip(1) {
                    let _ = writeln!(stderr, "  caused by: {cause}");
                }
            } else {
                let _ = writeln!(stderr, "{}{err:#}", ui.error_prefix());
            }
            ExitCode::from(kind.exit_code())
        }
    }
}

/// Help and version go out as clap writes them (stdout, exit 0); a usage
/// error becomes one line on stderr, exit 2.
fn clap_failure(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as Clap;
    let code = u8::try_from(err.exit_code()).unwrap_or(2);
    if matches!(
        err.kind(),
        Clap::DisplayHelp | Clap::DisplayVersion | Clap::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(code);
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let line = terminal::usage_error_line(err, &args);
    let prefix = terminal::Ui::from_raw_args(&args).error_prefix();
    let _ = writeln!(std::io::stderr().lock(), "{prefix}{line}");
    ExitCode::from(code)
}
