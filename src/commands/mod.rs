//! One file per subcommand and this one dispatch. Each command takes its
//! resolved settings and returns a [`Status`]; errors travel up to `main`.

mod inspect;
mod verify;

use std::process::ExitCode;

use anyhow::Result;
use bugpack::error::Unavailable;

use crate::cli::Command;
use crate::settings;
use crate::terminal::Ui;

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exit 0.
    Success,
    /// Exit 1: a negative answer (no reproduction, differences found).
    Negative,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        match status {
            Status::Success => ExitCode::SUCCESS,
            Status::Negative => ExitCode::from(1),
        }
    }
}

pub(crate) fn run(command: Command, ui: &Ui) -> Result<Status> {
    match command {
        Command::Inspect(args) => inspect::run(&settings::Inspect::resolve(args)?, ui),
        Command::Verify(args) => verify::run(&settings::Verify::resolve(args)?, ui),
        Command::Capture(_) => Err(Unavailable("`bugpack capture`").into()),
        Command::Replay(_) => Err(Unavailable("`bugpack replay`").into()),
        Command::Diff(_) => Err(Unavailable("`bugpack diff`").into()),
        Command::Keygen(_) => Err(Unavailable("`bugpack keygen`").into()),
        Command::Sign(_) => Err(Unavailable("`bugpack sign`").into()),
        Command::Issue(_) => Err(Unavailable("`bugpack issue`").into()),
        Command::Init(_) => Err(Unavailable("`bugpack init`").into()),
    }
}

/// One line on a bundle's signature, for `inspect` and consent prompts.
fn signature_summary(bundle: &bugpack::bundle::Bundle) -> &'static str {
    if bundle.signature().is_some() {
        "signed (run `bugpack verify` with the signer's key to check it)"
    } else {
        "unsigned"
    }
}
