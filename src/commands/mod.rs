//! One file per subcommand and this one dispatch. Each command takes its
//! resolved settings and returns a [`Status`]; errors travel up to `main`.

mod capture;
mod ci;
mod completions;
mod diff;
mod init;
mod inspect;
mod issue;
mod keygen;
mod man;
mod replay;
mod report;
mod sign;
mod verify;

use std::process::ExitCode;

use anyhow::Result;

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
    /// An internal command's own exit code (the sandbox's).
    Code(u8),
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        match status {
            Status::Success => ExitCode::SUCCESS,
            Status::Negative => ExitCode::from(1),
            Status::Code(code) => ExitCode::from(code),
        }
    }
}

pub(crate) fn run(command: Command, ui: &Ui) -> Result<Status> {
    match command {
        Command::Inspect(args) => inspect::run(&settings::Inspect::resolve(args)?, ui),
        Command::Verify(args) => verify::run(&settings::Verify::resolve(args)?, ui),
        Command::Capture(args) => capture::run(settings::Capture::resolve(args)?, ui),
        Command::Replay(args) => replay::run(&settings::Replay::resolve(args)?, ui),
        Command::Sandbox(args) => {
            let net = bugpack::replay::sandbox::Net::parse(&args.net)
                .ok_or_else(|| bugpack::error::usage("--net: none, loopback or host"))?;
            let code = bugpack::replay::sandbox::enter(net, args.probe, args.overlay.as_deref())?;
            Ok(Status::Code(u8::try_from(code).unwrap_or(1)))
        }
        Command::Supervise => {
            bugpack::replay::supervisor::main()?;
            Ok(Status::Success)
        }
        Command::Diff(args) => diff::run(&settings::Diff::resolve(args)?, ui),
        Command::Keygen(args) => keygen::run(&settings::Keygen::resolve(args)?, ui),
        Command::Sign(args) => sign::run(&settings::Sign::resolve(args)?, ui),
        Command::Report(crate::cli::ReportCommand::Merge(args)) => {
            report::merge(&settings::Merge::resolve(args)?, ui)
        }
        Command::Ci(crate::cli::CiCommand::Github(args)) => {
            ci::github(&settings::CiGithub::resolve(args)?, ui)
        }
        Command::Ci(crate::cli::CiCommand::K8s(args)) => {
            ci::k8s(&settings::CiK8s::resolve(args)?, ui)
        }
        Command::Issue(args) => issue::run(&settings::Issue::resolve(args)?, ui),
        Command::Init(args) => init::run(&settings::Init::resolve(args)?, ui),
        Command::Completions(args) => completions::run(&settings::Completions::resolve(&args)),
        Command::Man(args) => man::run(&settings::Man::resolve(args)),
    }
}

/// One line on a bundle's signature, for `inspect` and consent prompts.
pub(crate) fn signature_summary(bundle: &bugpack::bundle::Bundle) -> String {
    // The reader refused any signature that does not verify over the
    // manifest: what is left is unsigned, or signed by a key not yet trusted.
    match bundle.signer() {
        None => "unsigned".to_owned(),
        Some(s) => format!(
            "signed by {} (valid; run `bugpack verify --key ...` to check it is the key you trust)",
            s.fingerprint
        ),
    }
}
