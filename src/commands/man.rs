//! `bugpack man`: the manual page in roff, from the command line's own
//! definition; with `--dir DIR`, `bugpack.1` and one `bugpack-COMMAND.1`
//! per command.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use bugpack::error::usage;
use clap::CommandFactory as _;

use super::Status;
use crate::cli::Cli;
use crate::settings::Man;

pub(crate) fn run(settings: &Man) -> Result<Status> {
    let cmd = public_command();
    match &settings.dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.flush()?;
        }
        Some(dir) => {
            if !dir.is_dir() {
                return Err(usage(format!(
                    "--dir {}: no such directory; create it first",
                    dir.display()
                )));
            }
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "wrote the manual pages into {}", dir.display())?;
        }
    }
    Ok(Status::Success)
}

/// The command line without its hidden internal commands, which neither
/// completions nor manual pages should offer.
pub(crate) fn public_command() -> clap::Command {
    let full = Cli::command();
    let visible: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut cmd = clap::Command::new("bugpack")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .subcommand_required(true);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    if let Some(long) = full.get_long_about() {
        cmd = cmd.long_about(long.clone());
    }
    cmd.args(full.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(visible)
}
