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
mod proxy;
mod replay;
mod report;
mod sign;
mod unmask;
mod verify;

use std::io::Write as _;
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
        Command::Inspect(mut args) => {
            args.bundle = fetched(args.bundle, args.sha256.as_deref(), &args.limits, ui)?.0;
            inspect::run(&settings::Inspect::resolve(args)?, ui)
        }
        Command::Verify(mut args) => {
            args.bundle = fetched(args.bundle, args.sha256.as_deref(), &args.limits, ui)?.0;
            verify::run(&settings::Verify::resolve(args)?, ui)
        }
        Command::Capture(args) => capture::run(settings::Capture::resolve(args)?, ui),
        Command::Replay(mut args) => {
            let url;
            (args.source, url) = fetched(args.source, args.sha256.as_deref(), &args.limits, ui)?;
            let mut settings = settings::Replay::resolve(args)?;
            settings.shown_as = url;
            replay::run(&settings, ui)
        }
        Command::Sandbox(args) => {
            let net = bugpack::replay::sandbox::Net::parse(&args.net)
                .ok_or_else(|| bugpack::error::usage("--net: none, loopback or host"))?;
            let code = if args.probe {
                bugpack::replay::sandbox::probe(net, args.overlay.as_deref())?
            } else {
                bugpack::replay::sandbox::slot(net)?
            };
            Ok(Status::Code(u8::try_from(code).unwrap_or(1)))
        }
        Command::Supervise => {
            bugpack::replay::supervisor::main()?;
            Ok(Status::Success)
        }
        Command::Diff(mut args) => {
            args.a = fetched(args.a, None, &args.limits, ui)?.0;
            if let Some(b) = args.b.take() {
                args.b = Some(fetched(b, None, &args.limits, ui)?.0);
            }
            diff::run(&settings::Diff::resolve(args)?, ui)
        }
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
        Command::Proxy(args) => proxy::run(&settings::ProxyServe::resolve(&args)?, ui),
        Command::Unmask(args) => unmask::run(&settings::Unmask::resolve(&args)?, ui),
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

/// A bundle argument that is a URL, downloaded into the cache
/// ([`bugpack::fetch`]) and replaced by the cached file's path, with the
/// bundle's URL to show; any other argument as it is, its SHA-256 checked
/// when `sha256` pins one.
fn fetched(
    arg: std::path::PathBuf,
    sha256: Option<&str>,
    limits: &crate::cli::LimitArgs,
    ui: &Ui,
) -> Result<(std::path::PathBuf, Option<String>)> {
    let Some(url) = arg.to_str().filter(|a| bugpack::fetch::is_url(a)) else {
        if let Some(pinned) = sha256 {
            let actual = bugpack::bundle::reader::sha256_file(&arg)?;
            if !actual.eq_ignore_ascii_case(pinned.trim()) {
                return Err(
                    anyhow::Error::new(bugpack::bundle::Rejection::Download(format!(
                        "its SHA-256 is {actual}, not the {} that --sha256 pins",
                        pinned.trim()
                    )))
                    .context(format!("{} rejected", arg.display())),
                );
            }
        }
        return Ok((arg, None));
    };
    let max = settings::limits(limits)?.max_total;
    let chosen;
    let url = if let Some((owner, repo, number)) = bugpack::fetch::github_issue(url) {
        chosen = choose_bundle(&owner, &repo, number, ui)?;
        chosen.as_str()
    } else {
        url
    };
    let bar = DownloadBar::new(ui);
    let got = bugpack::fetch::fetch(url, sha256, max, &bar)?;
    if !ui.quiet {
        let how = if got.cached { "cached" } else { "downloaded" };
        let _ = writeln!(
            std::io::stderr(),
            "{how} {} ({}, sha256 {})",
            crate::terminal::printable(url),
            crate::terminal::human_size(got.bytes),
            got.sha256
        );
    }
    Ok((got.path, Some(url.to_owned())))
}

/// The bundle of a GitHub issue to read: the only one it links to, or, on
/// a terminal, the one the user picks; without a terminal several are a
/// usage error that lists them.
fn choose_bundle(owner: &str, repo: &str, number: u64, ui: &Ui) -> Result<String> {
    use crate::terminal::printable;
    let links = bugpack::fetch::issue_bundles(owner, repo, number)?;
    let issue = format!("{owner}/{repo}#{number}");
    match links.len() {
        0 => Err(bugpack::error::usage(format!(
            "{} links no bundle (.zip); attach one to the issue, or give the bundle's URL",
            printable(&issue)
        ))),
        1 => {
            if !ui.quiet {
                let _ = writeln!(
                    std::io::stderr(),
                    "{} links one bundle: {}",
                    printable(&issue),
                    printable(&links[0])
                );
            }
            Ok(links[0].clone())
        }
        n if ui.interactive => {
            let mut err = std::io::stderr().lock();
            writeln!(err, "{} links {n} bundles:", printable(&issue))?;
            for (i, link) in links.iter().enumerate() {
                writeln!(err, "  {}) {}", i + 1, printable(link))?;
            }
            write!(err, "replay which (1-{n})? ")?;
            err.flush()?;
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            answer
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| links.get(i.checked_sub(1)?))
                .cloned()
                .ok_or_else(|| {
                    bugpack::error::usage(format!("no bundle {:?}; give 1 to {n}", answer.trim()))
                })
        }
        n => Err(bugpack::error::usage(format!(
            "{} links {n} bundles ({}); replay one by its URL",
            printable(&issue),
            links
                .iter()
                .map(|l| printable(l).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Bytes downloaded, on a terminal only.
struct DownloadBar(Option<indicatif::ProgressBar>);

impl DownloadBar {
    fn new(ui: &Ui) -> Self {
        Self((ui.interactive && !ui.quiet).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec}, ETA {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        }))
    }
}

impl bugpack::fetch::Progress for DownloadBar {
    fn start(&self, length: Option<u64>) {
        if let (Some(bar), Some(length)) = (&self.0, length) {
            bar.set_length(length);
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }
    fn done(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
