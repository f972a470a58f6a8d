//! `bugpack completions SHELL`: a completion script for bash, zsh, fish or
//! PowerShell on stdout, generated from the command line's own definition.

use std::io::Write as _;

use anyhow::Result;

use super::Status;
use crate::settings::Completions;

pub(crate) fn run(settings: &Completions) -> Result<Status> {
    let mut cmd = super::man::public_command();
    // clap_complete panics when its writer fails; a buffer cannot, and a
    // closed stdout (`bugpack completions bash | head`) is then an ordinary
    // broken pipe.
    let mut script = Vec::new();
    clap_complete::generate(settings.shell, &mut cmd, "bugpack", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(Status::Success)
}
