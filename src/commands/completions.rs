//! `bugpack completions SHELL`: a completion script for bash, zsh, fish or
//! PowerShell on stdout, generated from the command line's own definition.

use anyhow::Result;

use super::Status;
use crate::settings::Completions;

pub(crate) fn run(settings: &Completions) -> Result<Status> {
    let mut cmd = super::man::public_command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(settings.shell, &mut cmd, "bugpack", &mut out);
    std::io::Write::flush(&mut out)?;
    Ok(Status::Success)
}
