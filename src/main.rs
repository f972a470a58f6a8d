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
        Err(err) => {
            // clap prints help and version to stdout (exit 0) and usage
            // errors to stderr (exit 2), as DESIGN.md wants.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let ui = terminal::Ui::new(&cli.global);
    logging::init(&ui);
    match commands::run(cli.command, &ui) {
        Ok(status) => status.into(),
        Err(err) => {
            let kind = ErrorKind::of(&err);
            if kind == ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{}{err:#}", ui.error_prefix());
            if ui.verbose > 0 {
                for cause in err.chain().skip(1) {
                    let _ = writeln!(stderr, "  caused by: {cause}");
                }
            }
            ExitCode::from(kind.exit_code())
        }
    }
}
