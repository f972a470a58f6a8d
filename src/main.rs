//! The `bugpack` binary: parse, run, map the error to DESIGN.md's exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let _ = cli;
    ExitCode::SUCCESS
}
