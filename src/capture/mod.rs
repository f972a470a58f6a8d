//! Capture: gathering a bug report into a [`BundleWriter`], one source per
//! file (system, vars, git, files, observe, profile).
//!
//! Every text that enters the bundle passes through the one [`Redactor`]
//! given to [`collect`]; this module hands nothing to the writer that has not
//! been redacted and staged. It never prints and never writes outside the
//! staging directory it is given.

pub mod command;
pub mod files;
pub mod git;
pub mod interrupt;
pub mod network;
pub mod observe;
pub mod profile;
pub mod run_line;
pub mod runtime;
pub mod system;
pub mod trace;
pub mod tree;
pub mod vars;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::bundle::{BundleWriter, SCENARIO_FILE};
use crate::error::usage;
use crate::issue::{self, IssueData, ScenarioView};
use crate::redact::Redactor;
use crate::scenario::{ExitSpec, ExpectFile, ScenarioFile};
use interrupt::Interrupt;
use observe::{Ending, Observed};

/// The most characters in a title (the manifest's limit).
const MAX_TITLE: usize = 300;

/// What the user asked to capture, resolved from flags and profile. Its
/// `Debug` leaves out what may hold secrets (the command, the environment,
/// the steps, the probe URLs).
#[derive(Clone)]
pub struct Request {
    pub title: Option<String>,
    /// RFC 3339 UTC.
    pub created: String,
    /// The steps text, when given.
    pub steps: Option<String>,
    pub scenario_dir: Option<PathBuf>,
    pub configs: Vec<files::Named<PathBuf>>,
    pub logs: Vec<files::Named<String>>,
    pub log_bytes: u64,
    pub includes: Vec<files::Named<PathBuf>>,
    pub env_deny: Vec<String>,
    /// URLs to fetch twice for `env/network.yaml`.
    pub probes: Vec<String>,
    pub versions: Vec<(String, String)>,
    /// The command after `--`, if any.
    pub command: Vec<String>,
    /// Run the command (false with `--no-run` and `--dry-run`).
    pub run: bool,
    pub timeout: Duration,
    pub expect: ExpectFile,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    /// Where `/etc`, `/proc` and `/sys` are read from (tests use a fake root).
    pub system_root: PathBuf,
    /// Give the command bugpack's standard input, recorded, when it is a
    /// file or a pipe (false when the steps were read from it).
    pub stdin: bool,
    /// Run the command a second time under strace (`--trace-files`).
    pub trace_files: bool,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("created", &self.created)
            .field("scenario_dir", &self.scenario_dir)
            .field("configs", &self.configs)
            .field("logs", &self.logs)
            .field("log_bytes", &self.log_bytes)
            .field("includes", &self.includes)
            .field("env_deny", &self.env_deny)
            .field("probes", &self.probes.len())
            .field("versions", &self.versions.len())
            .field("command_args", &self.command.len())
            .field("run", &self.run)
            .field("timeout", &self.timeout)
            .field("cwd", &self.cwd)
            .field("env_vars", &self.env.len())
            .field("system_root", &self.system_root)
            .field("stdin", &self.stdin)
            .field("trace_files", &self.trace_files)
            .finish_non_exhaustive()
    }
}

/// A collected capture, ready to write.
#[derive(Debug)]
pub struct Captured {
    pub writer: BundleWriter,
    /// The issue text's data, without the bundle's hash (added once written).
    pub issue: IssueData,
    pub placed: Vec<files::Placed>,
    pub skipped: Vec<String>,
    pub observed: Option<Observed>,
    /// Things the user should know (a guessed expectation, dropped variables).
    pub notes: Vec<String>,
}

/// The git state and the command record, kept from the gathering for the
/// scenario and the traced run.
struct Project {
    root: Option<PathBuf>,
    cwd: Option<String>,
}

/// Gathers everything `req` names into a writer, staging redacted copies in
/// `staging`. An `interrupt` stops the observed run (and its whole tree)
/// and the gathering with [`interrupt::Interrupted`].
pub fn collect(
    req: &Request,
    redactor: &mut Redactor,
    staging: &Path,
    interrupt: &Interrupt,
) -> anyhow::Result<Captured> {
    let mut notes = Vec::new();
    let title = match &req.title {
        Some(t) => one_line(t),
        None if !req.command.is_empty() => {
            format!("`{}` fails", observe::shell_line(&req.command))
        }
        None => "Bug report".to_owned(),
    };
    // Redacted first, cut after: a placeholder can be longer than its secret.
    let title: String = redactor
        .redact_str("bugpack.yaml", &title)
        .chars()
        .take(MAX_TITLE)
        .collect();
    let title = if title.trim().is_empty() {
        "Bug report".to_owned()
    } else {
        title
    };
    let mut writer = BundleWriter::new(title.clone(), req.created.clone());

    let sources = system::Sources {
        root: &req.system_root,
        env: &req.env,
    };
    let system = system::describe(
        &sources,
        &req.versions,
        &req.cwd,
        staging,
        redactor,
        interrupt,
    )?;
    writer.add_bytes("env/system.yaml", yaml(&system)?)?;
    interrupt.check()?;

    let network = network::describe(&req.env, &req.probes, redactor);
    writer.add_bytes("env/network.yaml", yaml(&network)?)?;
    interrupt.check()?;

    let deny = vars::Deny::new(&req.env_deny)?;
    let (vars, dropped) = vars::collect(&req.env, &deny, redactor);
    if dropped > 0 {
        notes.push(format!(
            "left out {dropped} environment variables (--env-deny)"
        ));
    }
    writer.add_bytes("env/vars.yaml", yaml(&vars)?)?;

    let git_state = git::read(&req.cwd, redactor)?;
    if let Some(state) = &git_state {
        writer.add_bytes("git/repo.yaml", yaml(&state.info)?)?;
        writer.add_bytes("git/diff.patch", state.diff.clone())?;
        writer.add_bytes("git/files.txt", git::files_list(&state.project, redactor))?;
    }
    let project = Project {
        root: git_state.as_ref().map(|s| s.project.root.clone()),
        cwd: git_state
            .as_ref()
            .and_then(|s| command::relative_cwd(&req.cwd, &s.project.root)),
    };
    interrupt.check()?;

    let mut packer = files::Packer::new(&req.cwd, staging, &mut writer, redactor);
    packer.configs(&req.configs)?;
    interrupt.check()?;
    packer.logs(&req.logs, req.log_bytes)?;
    interrupt.check()?;
    let scenario_from_dir = match &req.scenario_dir {
        Some(dir) => Some(pack_scenario_dir(&mut packer, dir)?),
        None => None,
    };
    packer.includes(&req.includes)?;
    interrupt.check()?;
    if let Some(state) = &git_state {
        let done = packer.untracked(&state.project.root, &state.project.untracked)?;
        if done.packed > 0 {
            notes.push(format!(
                "packed {} untracked file{} of the repository ({} bytes) under git/untracked/",
                done.packed,
                if done.packed == 1 { "" } else { "s" },
                done.bytes
            ));
        }
        for why in done.left_out {
            notes.push(format!("left out untracked {why}"));
        }
    }
    interrupt.check()?;
    let placed = std::mem::take(&mut packer.placed);
    let skipped = std::mem::take(&mut packer.skipped);
    let included = std::mem::take(&mut packer.included);
    drop(packer);

    // The scenario's command is settled before the run: a path replay
    // could not follow is refused before anything runs.
    let run_line = if scenario_from_dir.is_none() && !req.command.is_empty() {
        let in_project = |abs: &Path| {
            git_state.as_ref().is_some_and(|g| {
                let root = files::resolve(Path::new("/"), &g.project.root);
                abs.strip_prefix(&root)
                    .ok()
                    .and_then(Path::to_str)
                    .is_some_and(|rel| {
                        g.project.tracked.iter().any(|t| t == rel)
                            || g.project.untracked.iter().any(|t| t == rel)
                    })
            })
        };
        let (argv, missing) =
            run_line::rewrite(&req.command, &req.cwd, &placed, &included, &in_project)?;
        notes.extend(missing);
        Some(observe::shell_line(&argv))
    } else {
        None
    };

    let runtime = if req.command.is_empty() {
        None
    } else {
        let rt = describe_runtime(req, project.root.as_deref(), staging, interrupt)?;
        writer.add_bytes(
            "env/runtime.yaml",
            yaml(&redact_runtime(rt.clone(), redactor))?,
        )?;
        Some(rt)
    };
    interrupt.check()?;

    let stdin_raw = staging.join("stdin.raw");
    let mut taken = None;
    if req.stdin && !req.command.is_empty() && !req.run {
        // Not run: only a file can be read without taking it from the command.
        if observe::InputKind::of_stdin() == Some(observe::InputKind::File) {
            taken = Some(
                observe::record_file_input(&stdin_raw, command::MAX_STDIN)
                    .context("cannot record the standard input")?,
            );
        }
    }
    let mut observed = None;
    let mut observed_view = None;
    if req.run && !req.command.is_empty() {
        let spec = observe::Spec {
            argv: req.command.clone(),
            cwd: req.cwd.clone(),
            timeout: req.timeout,
            tail_bytes: files::DEFAULT_LOG_BYTES,
            env: None,
            stdin: if req.stdin {
                observe::Stdin::Record {
                    record: stdin_raw.clone(),
                    cap: command::MAX_STDIN,
                }
            } else {
                observe::Stdin::Null
            },
        };
        tracing::info!(
            "running `{}` (stopped after {})",
            redactor.scrub(&observe::shell_line(&req.command)),
            humantime::format_duration(req.timeout)
        );
        let o = observe::run(&spec, staging, interrupt)?;
        taken = o.stdin;
        tracing::info!(
            "the command {}; {} bytes of stdout, {} of stderr",
            match (o.observed.ending, o.observed.exit_code, &o.observed.signal) {
                (Ending::Hang, _, _) => format!(
                    "was still running after {} ms: a hang, stopped with its whole tree",
                    o.observed.timeout_ms
                ),
                (_, Some(code), _) => format!(
                    "exited with code {code} after {} ms",
                    o.observed.duration_ms
                ),
                (_, None, Some(sig)) => format!("was killed by {sig}"),
                _ => "ended".to_owned(),
            },
            o.observed.stdout_bytes,
            o.observed.stderr_bytes
        );
        let mut record = o.observed;
        record.command = redactor.redact_str("observed/result.yaml", &record.command);
        let stdout = o.stdout_tail.redact(redactor, "observed/stdout.log");
        let stderr = o.stderr_tail.redact(redactor, "observed/stderr.log");
        observed_view = Some(issue::observed_view(&record, &stdout, &stderr));
        writer.add_bytes("observed/result.yaml", yaml(&record)?)?;
        writer.add_bytes("observed/stdout.log", stdout)?;
        writer.add_bytes("observed/stderr.log", stderr)?;
        observed = Some(record);
    }
    interrupt.check()?;
    if let Some(t) = &taken {
        let bytes = std::fs::read(&stdin_raw).context("cannot read the recorded standard input")?;
        writer.add_bytes(
            command::STDIN_ENTRY,
            redactor.redact(command::STDIN_ENTRY, &bytes),
        )?;
        notes.push(format!(
            "recorded {} bytes of standard input (a {}){}",
            t.bytes,
            match t.kind {
                observe::InputKind::File => "file",
                observe::InputKind::Pipe => "pipe",
            },
            if t.truncated { ", not all of it" } else { "" }
        ));
    }
    let (program_env, env_left_out) = command::program_env(&vars);
    if !req.command.is_empty() && scenario_from_dir.is_none() {
        let record = command::CommandRecord {
            argv: redactor.redact_argv("env/command.yaml", &req.command),
            cwd: project.cwd.clone(),
            stdin: taken,
            env_left_out: env_left_out.clone(),
        };
        writer.add_bytes("env/command.yaml", yaml(&record)?)?;
        let secrets = env_left_out
            .iter()
            .filter(|v| v.ends_with(command::SECRET_LEFT_OUT))
            .count();
        if secrets > 0 {
            notes.push(format!(
                "replay runs the command without {secrets} variable{} of yours that held secrets (env/command.yaml names them)",
                if secrets == 1 { "" } else { "s" }
            ));
        }
    }

    let mut outside_files = Vec::new();
    if req.trace_files && req.run && !req.command.is_empty() {
        let prefixes = runtime
            .as_ref()
            .map(|r| r.prefixes.clone())
            .unwrap_or_default();
        let traced = trace::run(
            &trace::Trace {
                argv: &req.command,
                cwd: &req.cwd,
                timeout: req.timeout,
                root: project.root.as_deref(),
                prefixes: &prefixes,
                stdin: taken.is_some().then(|| stdin_raw.clone()),
            },
            staging,
            interrupt,
            redactor,
        )?;
        writer.add_bytes("env/files.yaml", yaml(&traced)?)?;
        notes.push(format!(
            "--trace-files: the command read {} files of the project, {} of its runtime, {} of the system ({} Debian packages), {} outside them",
            traced.project,
            traced.runtime,
            traced.system,
            traced.packages.len(),
            traced.outside.len()
        ));
        if !traced.outside.is_empty() {
            let shown: Vec<&str> = traced.outside.iter().take(10).map(String::as_str).collect();
            let more = traced.outside.len() - shown.len();
            notes.push(format!(
                "the command read files outside the project that the bundle does not hold: {}{}; to share one, capture again with --config PATH",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more (env/files.yaml)")
                } else {
                    String::new()
                }
            ));
        }
        outside_files = traced.outside;
    }
    interrupt.check()?;

    let scenario = match (scenario_from_dir, run_line) {
        (Some(s), _) => Some(s),
        (None, Some(run)) => {
            let s = scenario_from_command(req, &run, observed.as_ref(), program_env, redactor)?;
            writer.add_bytes(SCENARIO_FILE, s.to_yaml()?)?;
            Some(s)
        }
        (None, None) => None,
    };
    if let Some(s) = &scenario {
        writer.set_scenario(s.name.clone());
    }

    let steps = match &req.steps {
        Some(text) => redactor.redact_str("steps.md", &issue::clean_steps(text)),
        None => String::new(),
    };
    let steps_md = if steps.is_empty() {
        issue::NO_STEPS
    } else {
        &steps
    };
    writer.add_bytes("steps.md", format!("{steps_md}\n"))?;

    let data = IssueData {
        title,
        created: req.created.clone(),
        bugpack_version: env!("CARGO_PKG_VERSION").to_owned(),
        steps,
        environment: issue::environment_rows(&system),
        observed: observed_view,
        scenario: scenario.as_ref().map(|s| ScenarioView {
            name: s.name.clone(),
            run: s.run.clone(),
        }),
        redactions: 0,
        bundle: None,
        outside_files,
    };
    Ok(Captured {
        writer,
        issue: data,
        placed,
        skipped,
        observed,
        notes,
    })
}

impl Captured {
    /// Adds `ISSUE.md` and the redaction counts: the last step before writing.
    pub fn finish(&mut self, redactor: &mut Redactor) -> anyhow::Result<()> {
        let counts = redactor.counts();
        self.issue.redactions = counts.values().sum();
        if !counts.is_empty() {
            let per_rule: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
            tracing::debug!("redactions: {}", per_rule.join(", "));
        }
        let text = issue::render(&self.issue).context("cannot render the issue text")?;
        let text = redactor.redact_str("ISSUE.md", &text);
        self.writer.add_bytes("ISSUE.md", text)?;
        self.writer.set_redactions(redactor.counts());
        Ok(())
    }
}

/// The runtime of the command: its interpreter asked from the capture's
/// directory, with the user's own environment.
fn describe_runtime(
    req: &Request,
    root: Option<&Path>,
    staging: &Path,
    interrupt: &Interrupt,
) -> Result<runtime::Runtime, interrupt::Interrupted> {
    let mut prober = runtime::Prober {
        cwd: req.cwd.clone(),
        env: None,
        staging,
        interrupt,
    };
    runtime::describe(
        &req.command,
        req.env.get("PATH").map(String::as_str),
        &req.cwd,
        root,
        &mut prober,
        &|_| true,
    )
}

/// The runtime as the bundle records it: every path and name redacted.
fn redact_runtime(mut rt: runtime::Runtime, redactor: &mut Redactor) -> runtime::Runtime {
    let origin = "env/runtime.yaml";
    let mut r = |s: &str| redactor.redact_str(origin, s);
    rt.program = r(&rt.program);
    rt.path = rt.path.map(|p| r(&p));
    rt.via = rt.via.map(|p| r(&p));
    rt.prefixes = rt.prefixes.iter().map(|p| r(p)).collect();
    for p in &mut rt.packages {
        p.name = r(&p.name);
        p.version = r(&p.version);
    }
    rt.lockfiles = rt
        .lockfiles
        .iter()
        .map(|(k, v)| (r(k), v.clone()))
        .collect();
    rt
}

/// Validates a scenario directory's `scenario.yaml` and packs the directory.
fn pack_scenario_dir(packer: &mut files::Packer<'_>, dir: &Path) -> anyhow::Result<ScenarioFile> {
    let file = dir.join("scenario.yaml");
    let bytes = std::fs::read(&file).map_err(|e| {
        usage(format!(
            "--scenario {}: cannot read scenario.yaml ({e}); a scenario directory holds a scenario.yaml",
            dir.display()
        ))
    })?;
    ScenarioFile::parse(&bytes)
        .and_then(|s| s.resolve().map(|_| s))
        .map_err(|e| usage(format!("{} {e}", file.display())))?;
    packer.scenario_dir(dir)?;
    // Redaction may have touched scenario.yaml; the packed copy must still be valid.
    let staged = packer
        .placed
        .iter()
        .find(|p| p.entry == SCENARIO_FILE)
        .map(|p| p.staged.clone())
        .with_context(|| format!("{} was not packed", file.display()))?;
    let redacted =
        std::fs::read(&staged).with_context(|| format!("cannot read {}", staged.display()))?;
    ScenarioFile::parse(&redacted).map_err(|e| {
        usage(format!(
            "{}: after redaction the scenario {e}; move the secret out of scenario.yaml",
            file.display()
        ))
    })
}

/// The scenario a command becomes: `run:` the command in the capture's
/// layout, `expect:` what was asked, else what was seen. A command that
/// exited 0 gives no expectation to copy: the scenario then states none
/// (replay's default: any failure reproduces) and the user is told how to
/// say what the bug looks like.
fn scenario_from_command(
    req: &Request,
    run: &str,
    observed: Option<&Observed>,
    env: BTreeMap<String, String>,
    redactor: &mut Redactor,
) -> anyhow::Result<ScenarioFile> {
    let run = redactor.redact_str(SCENARIO_FILE, run);
    let asked = req.expect != ExpectFile::default();
    let expect = if asked {
        Some(req.expect.clone())
    } else {
        observed.and_then(|o| match (o.ending, o.exit_code) {
            (Ending::Hang, _) => Some(ExpectFile {
                hang: Some(true),
                ..ExpectFile::default()
            }),
            (Ending::Exited, Some(code)) if code != 0 => Some(ExpectFile {
                exit: u8::try_from(code)
                    .ok()
                    .map(ExitSpec::Code)
                    .or(Some(ExitSpec::Nonzero)),
                ..ExpectFile::default()
            }),
            (Ending::Signaled, _) => Some(ExpectFile {
                exit: Some(ExitSpec::Nonzero),
                ..ExpectFile::default()
            }),
            (Ending::Exited, _) => {
                tracing::warn!(
                    "the command exited 0, so bugpack cannot tell from its run what the bug looks like; \
                     the scenario states no expectation and replay counts only a failure or a hang. \
                     Capture again with --expect-output REGEX, --expect-exit CODE or --expect-hang to say what to look for"
                );
                None
            }
        })
    };
    let scenario = ScenarioFile {
        name: scenario_name(&req.command),
        description: None,
        env,
        setup: Vec::new(),
        services: Vec::new(),
        run,
        timeout: Some(humantime::format_duration(req.timeout).to_string()),
        expect,
    };
    scenario
        .resolve()
        .map_err(|e| usage(format!("the captured scenario {e}")))?;
    Ok(scenario)
}

/// A scenario name from the command's program: `./tools/build.sh` → `build.sh`.
fn scenario_name(command: &[String]) -> String {
    let program = command
        .first()
        .map_or("captured", |p| p.rsplit('/').next().unwrap_or(p));
    let mut name: String = program
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name.insert(0, 'x');
        name.truncate(64);
    }
    name
}

fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect()
}

fn yaml<T: serde::Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    Ok(serde_yaml::to_string(value)?.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_safe() {
        assert_eq!(scenario_name(&["./tools/build.sh".into()]), "build.sh");
        assert_eq!(scenario_name(&["python3".into(), "x.py".into()]), "python3");
        assert_eq!(scenario_name(&["/usr/bin/.hidden".into()]), "x.hidden");
        assert_eq!(scenario_name(&["a b".into()]), "a-b");
    }
}
