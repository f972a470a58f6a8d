//! `bugpack replay`: verify, ask, run the matrix, report.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result};
use bugpack::bundle::Bundle;
use bugpack::capture::command::STDIN_ENTRY;
use bugpack::error::usage;
use bugpack::replay::matrix::{self, Cell};
use bugpack::replay::sandbox::Isolation;
use bugpack::replay::user::UserSide;
use bugpack::replay::{self, Plan, Progress, workspace};
use bugpack::report::{self, Report, RunResult, Verdict};
use bugpack::scenario::{Readiness, ScenarioFile};

use super::Status;
use crate::settings::{Replay, ReplaySource, RepoChoice, Sink};
use crate::terminal::{Ui, printable, printable_lines};

pub(crate) fn run(settings: &Replay, ui: &Ui) -> Result<Status> {
    let mut scenario_sha256 = None;
    let mut user = UserSide::default();
    let (label, file, files, bundle_sha256, signature) = match &settings.source {
        ReplaySource::Bundle(path) => {
            let shown = settings
                .shown_as
                .clone()
                .unwrap_or_else(|| path.display().to_string());
            let mut opened = Bundle::open_as(path, &shown, &settings.limits)?;
            let Some(file) = opened.scenario().cloned() else {
                return Err(usage(format!(
                    "{shown} holds no scenario to replay; capture with -- COMMAND or --scenario DIR"
                )));
            };
            let sha = opened.file_sha256()?;
            let signature = super::signature_summary(&opened);
            user = UserSide::read(&mut opened)?;
            (
                shown,
                file,
                Files::Bundle(Box::new(opened)),
                Some(sha),
                signature,
            )
        }
        ReplaySource::Directory(dir) => {
            let path = dir.join("scenario.yaml");
            tracing::info!("reading {}", path.display());
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let file = ScenarioFile::parse(&bytes)
                .map_err(|e| usage(format!("{} {e}", path.display())))?;
            scenario_sha256 = Some(
                bugpack::shard::tree_sha256(dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?,
            );
            (
                dir.display().to_string(),
                file,
                Files::Directory(dir.clone()),
                None,
                "a local directory, not a signed bundle".to_owned(),
            )
        }
    };
    let mut scenario = file
        .resolve()
        .map_err(|e| usage(format!("the scenario {e}")))?;
    let checkout = choose_checkout(settings, &user, &label)?;
    if let (Some(src), Some(command)) = (&checkout, &user.command) {
        // The command as the user typed it, from their directory in the checkout.
        scenario.run = bugpack::capture::observe::shell_line(&command.argv);
        if src.found && !ui.quiet {
            let _ = writeln!(
                std::io::stderr(),
                "note: replaying in a checkout of {} at {}, which has the bundle's commit (--no-repo to replay the scenario alone)",
                printable(&src.dir.display().to_string()),
                workspace::short(&src.commit)
            );
        }
    }
    // Asked before anything is written: Ctrl-C at the question ends
    // bugpack there and then, with nothing to clean up.
    consent(settings, ui, &scenario, &signature, checkout.as_ref())?;

    // From here on an interrupt is noted and acted on between steps, so
    // that what is extracted or running is removed before bugpack exits.
    // A closed terminal (SIGHUP) too: by default it would end bugpack at
    // once, leaving the run directories, and, without namespaces, the runs.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("cannot watch for Ctrl-C")?;
    }
    // Keep the extracted bundle (and the checkout made in it) alive for
    // the whole replay; it goes, with everything in it, when this does.
    let mut extracted = None;
    let files = match files {
        Files::Bundle(mut bundle) => {
            let dir = bundle.extract(|p| {
                p.starts_with("scenario/")
                    || p.starts_with("git/untracked/")
                    || p == "git/diff.patch"
                    || p == STDIN_ENTRY
            })?;
            let files = dir.path().join("scenario");
            extracted = Some(dir);
            files
        }
        Files::Directory(dir) => dir,
    };

    let (isolation, warning) = Isolation::detect(settings.net)?;
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    tracing::debug!(
        "isolation: {}, network {}, {}",
        if isolation.namespaces {
            "user and PID namespaces"
        } else {
            "process groups (no namespaces)"
        },
        isolation.net.as_str(),
        isolation.run_as.map_or_else(
            || "runs as the current user".to_owned(),
            |(u, g)| format!("runs as uid {u}, gid {g}")
        )
    );
    let extracted_dir = extracted.as_ref().map(|d| d.path().to_path_buf());
    let (files, checkout_info) = match (&checkout, &extracted_dir) {
        (Some(src), Some(dir)) => {
            let cwd = user
                .command
                .as_ref()
                .and_then(|c| c.cwd.clone())
                .unwrap_or_else(|| ".".to_owned());
            let (files, info) = workspace::setup(src, dir, &cwd, &isolation, settings.keep)?;
            (files, Some(info))
        }
        _ => (replay::Files::Scenario(files), None),
    };
    let stdin = extracted_dir
        .as_ref()
        .map(|d| d.join(STDIN_ENTRY))
        .filter(|p| p.is_file() && user.command.as_ref().is_some_and(|c| c.stdin.is_some()));
    let runtime = match (&extracted_dir, &user.runtime) {
        (Some(dir), Some(_)) => user.runtime_differences(&files, dir),
        _ => Vec::new(),
    };
    // A budget hunt without --timing tries every timing this machine can give.
    let timing = if settings.budget.is_some() && settings.timing.is_empty() {
        let usable = bugpack::replay::budget::usable_timings();
        tracing::info!(
            "--budget without --timing: every timing this machine can give ({})",
            usable
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        usable
    } else {
        settings.timing.clone()
    };
    let cells = matrix::cells(
        &timing,
        &settings.proxy,
        &settings.cache,
        &settings.net_fault,
    );
    let plan = Plan {
        source: label,
        bundle_sha256,
        timeout: settings.timeout.unwrap_or(scenario.timeout),
        scenario,
        known: user.known(checkout.is_some()),
        observed: user.observed.clone(),
        files,
        stdin,
        checkout: checkout_info,
        runtime,
        runs: settings.runs,
        jobs: settings.jobs,
        cells,
        seed: settings.seed,
        shard: settings.shard,
        scenario_sha256,
        until_repro: settings.until_repro,
        budget: settings.budget,
        keep: settings.keep,
        isolation,
        limits: settings.rlimits,
        lang: std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".to_owned()),
        term: std::env::var("TERM").unwrap_or_else(|_| "dumb".to_owned()),
    };
    tracing::info!(
        "replaying {} ({} cell{} x {} run{}, {} at a time, seed {})",
        printable(&plan.scenario.name),
        plan.cells.len(),
        if plan.cells.len() == 1 { "" } else { "s" },
        plan.runs,
        if plan.runs == 1 { "" } else { "s" },
        plan.jobs,
        plan.seed
    );
    if let Some(shard) = settings.shard {
        tracing::info!("running shard {shard} of the matrix (shards count from 1)");
    }
    let report = if ui.interactive && !ui.quiet {
        let bar = Bar::new();
        crate::logging::show_bar(&bar.bar);
        let r = replay::replay(&plan, &interrupted, &bar);
        crate::logging::clear_bar();
        bar.bar.finish_and_clear();
        r?
    } else if plan.budget.is_some() && !ui.quiet {
        // A budget can run for hours: say how it goes, as Go's stress does.
        replay::replay(&plan, &interrupted, &Lines::new())?
    } else {
        replay::replay(&plan, &interrupted, &replay::Silent)?
    };
    write_outputs(settings, &report, ui)?;
    if report.interrupted {
        if report.runs() == 0 {
            return Err(anyhow::anyhow!(
                "interrupted before any run finished; nothing to report"
            ));
        }
        let runs = report.runs();
        return Err(anyhow::anyhow!(
            "interrupted after {runs} {}; the report holds what finished",
            if runs == 1 { "run" } else { "runs" }
        ));
    }
    if let Some(line) = report.cannot_run() {
        return Err(anyhow::anyhow!(line));
    }
    status(report.verdict, settings.expect_fixed, report.errors() == 0).ok_or_else(|| {
        anyhow::anyhow!(
            "every run errored ({}); see the report for why",
            report
                .cells
                .iter()
                .find_map(|c| c.reason.clone())
                .unwrap_or_default()
        )
    })
}

/// The exit status of a replay's (or a merge's) verdict: reproduced is
/// success, unless `--expect-fixed`, which succeeds only when nothing
/// reproduced and the runs were `clean` (no errors, nothing missing). None
/// when every run errored: the caller says why.
pub(crate) fn status(verdict: Verdict, expect_fixed: bool, clean: bool) -> Option<Status> {
    Some(match (verdict, expect_fixed) {
        (Verdict::Error, _) => return None,
        (Verdict::Reproduced, false) => Status::Success,
        (Verdict::NotReproduced, false) | (Verdict::Reproduced, true) => Status::Negative,
        (Verdict::NotReproduced, true) if clean => Status::Success,
        (Verdict::NotReproduced, true) => Status::Negative,
    })
}

/// Where a replay's scenario files come from.
enum Files {
    /// Extracted once the user has agreed to run them.
    Bundle(Box<Bundle>),
    Directory(PathBuf),
}

/// The checkout a captured command runs in: `--repo DIR`'s, or the
/// repository around the current directory when it has the bundle's
/// commit (unless `--no-repo`). Errors only for `--repo`.
fn choose_checkout(
    settings: &Replay,
    user: &UserSide,
    label: &str,
) -> Result<Option<workspace::Source>> {
    match &settings.repo {
        RepoChoice::Off => Ok(None),
        RepoChoice::Auto => Ok(match (user.head(), &user.command) {
            (Some(head), Some(_)) => std::env::current_dir()
                .ok()
                .and_then(|cwd| workspace::find_around(&cwd, head)),
            _ => None,
        }),
        RepoChoice::Dir(dir) => {
            let Some(repo) = &user.repo else {
                return Err(usage(format!(
                    "--repo: {label} was captured outside any git repository (it has no git/repo.yaml), so there is no commit to check out; replay it without --repo"
                )));
            };
            let Some(head) = repo.head.as_deref() else {
                return Err(usage(format!(
                    "--repo: the user's repository had no commit yet when {label} was captured; replay it without --repo"
                )));
            };
            if user.command.is_none() {
                return Err(usage(format!(
                    "--repo: {label}'s scenario is a packed directory, not a captured command (it has no env/command.yaml); replay it without --repo"
                )));
            }
            workspace::open(dir, head).map(Some)
        }
    }
}

/// Shows what would run and asks; without a terminal, `--yes` is required.
fn consent(
    settings: &Replay,
    ui: &Ui,
    scenario: &bugpack::scenario::Scenario,
    signature: &str,
    checkout: Option<&workspace::Source>,
) -> Result<()> {
    if settings.yes {
        return Ok(());
    }
    if !ui.interactive {
        return Err(usage(
            "replay runs the scenario's commands; without a terminal to ask on, pass --yes to allow it",
        ));
    }
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "bugpack replay will run scenario {:?} ({}):",
        printable(&scenario.name),
        printable(signature)
    )?;
    // A command that spans lines (a script) continues under its first line.
    let indent = " ".repeat(11);
    for s in &scenario.setup {
        writeln!(err, "  setup    {}", printable_lines(s, &indent))?;
    }
    for s in &scenario.services {
        let ready = match &s.ready {
            Readiness::Tcp => "tcp".to_owned(),
            Readiness::Http(p) => format!("http {p}"),
            Readiness::Log(r) => format!("log /{}/", r.as_str()),
        };
        writeln!(
            err,
            "  service  {}: {} (ready: {})",
            printable(&s.name),
            printable_lines(&s.run, &indent),
            printable(&ready)
        )?;
    }
    writeln!(
        err,
        "  run      {}",
        printable_lines(&scenario.run, &indent)
    )?;
    if let Some(src) = checkout {
        writeln!(
            err,
            "  in       a checkout of {} at {}, with the user's changes and untracked files",
            printable(&src.dir.display().to_string()),
            workspace::short(&src.commit)
        )?;
    }
    if crate::terminal::confirm(
        &mut err,
        &mut std::io::stdin().lock(),
        "Run it in a sandbox?",
    )? {
        Ok(())
    } else {
        Err(usage("not run: the replay was declined"))
    }
}

fn write_outputs(settings: &Replay, report: &Report, ui: &Ui) -> Result<()> {
    let table = if ui.quiet {
        None
    } else {
        let mut table = Vec::new();
        report::table::render(report, ui.color, &mut table)?;
        Some(table)
    };
    write_report(
        report,
        settings.json.as_ref(),
        settings.markdown.as_ref(),
        table,
    )
}

/// Writes the report where it was asked for: the files first, then
/// stdout (the JSON or Markdown sent there, or else `table`), so that a
/// dead stdout (a closed pipe, a hung-up terminal) loses no file. A closed
/// pipe only ends what goes to stdout: the exit code still says what the
/// replay found.
pub(super) fn write_report(
    report: &Report,
    json: Option<&Sink>,
    markdown: Option<&Sink>,
    table: Option<Vec<u8>>,
) -> Result<()> {
    let mut to_stdout = Vec::new();
    if let Some(sink) = json {
        let mut text = serde_json::to_vec_pretty(report)?;
        text.push(b'\n');
        match sink {
            Sink::File(path) => write_file(path, &text)?,
            Sink::Stdout => to_stdout.push(text),
        }
    }
    if let Some(sink) = markdown {
        let mut text = Vec::new();
        report::markdown::render(report, &mut text)?;
        match sink {
            Sink::File(path) => write_file(path, &text)?,
            Sink::Stdout => to_stdout.push(text),
        }
    }
    if to_stdout.is_empty()
        && let Some(table) = table
    {
        to_stdout.push(table);
    }
    let mut out = std::io::stdout().lock();
    let printed = to_stdout
        .iter()
        .try_for_each(|bytes| out.write_all(bytes))
        .and_then(|()| out.flush());
    match printed {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            tracing::debug!("stdout was closed: the report was not printed");
            Ok(())
        }
        other => other.context("cannot print the report"),
    }
}

fn write_file(path: &PathBuf, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!("wrote {}", path.display());
    Ok(())
}

/// How often a budget replay without a terminal says how it goes.
const STATUS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Without a terminal: a plain line on stderr every [`STATUS_EVERY`],
/// `1250 runs, 3 reproduced (0.24%), 41 runs/s`, for CI logs.
struct Lines {
    started: std::time::Instant,
    state: std::sync::Mutex<(u64, u64, std::time::Instant)>,
}

impl Lines {
    fn new() -> Self {
        let now = std::time::Instant::now();
        Self {
            started: now,
            state: std::sync::Mutex::new((0, 0, now)),
        }
    }
}

impl Progress for Lines {
    fn start(&self, _total: u64) {}

    fn finished(&self, _cell: &Cell, result: &RunResult) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let (runs, reproduced, last) = &mut *state;
        *runs += 1;
        *reproduced += u64::from(result.outcome == replay::outcome::Outcome::Reproduced);
        if last.elapsed() < STATUS_EVERY {
            return;
        }
        *last = std::time::Instant::now();
        #[allow(clippy::cast_precision_loss, reason = "figures for people")]
        let (share, per_second) = (
            *reproduced as f64 * 100.0 / *runs as f64,
            *runs as f64 / self.started.elapsed().as_secs_f64().max(0.001),
        );
        let _ = writeln!(
            std::io::stderr(),
            "{runs} runs, {reproduced} reproduced ({share:.2}%), {per_second:.0} runs/s"
        );
    }
}

/// A progress bar on stderr, for terminals only: runs done, reproductions
/// and their rate, runs per second and the time left.
struct Bar {
    bar: indicatif::ProgressBar,
    reproduced: std::sync::atomic::AtomicU64,
}

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} runs, {msg}, {per_sec}, ETA {eta} [{elapsed}]",
        ) {
            bar.set_style(style);
        }
        bar.set_message("0 reproduced");
        Self {
            bar,
            reproduced: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        if total == 0 {
            // A time budget: no total to count towards.
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {pos} runs, {msg}, {per_sec} [{elapsed}]",
            ) {
                self.bar.set_style(style);
            }
        }
        self.bar.set_length(total);
    }

    fn finished(&self, _cell: &Cell, result: &RunResult) {
        use std::sync::atomic::Ordering;
        self.bar.inc(1);
        let mut reproduced = self.reproduced.load(Ordering::Relaxed);
        if result.outcome == replay::outcome::Outcome::Reproduced {
            reproduced = self.reproduced.fetch_add(1, Ordering::Relaxed) + 1;
        }
        let done = self.bar.position().max(1);
        #[allow(clippy::cast_precision_loss)]
        let rate = reproduced as f64 * 100.0 / done as f64;
        self.bar
            .set_message(format!("{reproduced} reproduced ({rate:.0}%)"));
    }
}
