//! `bugpack capture`: gather, redact, write the bundle and the issue text.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result};
use bugpack::capture::{self, Captured};
use bugpack::error::usage;
use bugpack::issue::{self, BundleView};
use bugpack::redact::Redactor;

use super::Status;
use crate::settings::Capture;
use crate::terminal::{Style, Ui, human_size};

/// GitHub's limit for an issue attachment.
const GITHUB_ATTACHMENT_LIMIT: u64 = 25_000_000;
/// The most steps text read from a file or stdin.
const MAX_STEPS_BYTES: u64 = 1 << 20;

pub(crate) fn run(settings: Capture, ui: &Ui) -> Result<Status> {
    let mut request = settings.request;
    if let Some(profile) = &settings.profile {
        tracing::info!("using the profile {}", profile.display());
    }
    request.steps = read_steps(settings.steps.as_deref(), ui, settings.dry_run)?;
    // Load the key first: a wrong passphrase should cost nothing.
    let key = match (&settings.sign, settings.dry_run) {
        (Some(path), false) => Some(super::sign::load_key(Some(path))?),
        _ => None,
    };
    let mut redactor = Redactor::new(
        &settings.redact,
        request.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| usage(format!("{e}")))?;
    let staging = tempfile::Builder::new()
        .prefix("bugpack-capture-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("cannot watch for Ctrl-C")?;
    }
    if request.run && !request.command.is_empty() {
        tracing::info!(
            "running `{}` (stopped after {})",
            capture::observe::shell_line(&request.command),
            humantime::format_duration(request.timeout)
        );
    }
    let mut captured = capture::collect(&request, &mut redactor, staging.path(), &interrupted)?;
    captured.finish(&mut redactor)?;

    let mut out = std::io::stdout().lock();
    if settings.dry_run {
        let had_command = !request.command.is_empty();
        dry_run(
            &mut out,
            &captured,
            &redactor,
            &settings.output,
            had_command,
            ui,
        )?;
        return Ok(Status::Success);
    }
    let signer = |manifest: &[u8]| -> Result<Vec<u8>> {
        match &key {
            Some(k) => k.sign(manifest).context("cannot sign the manifest"),
            None => Ok(Vec::new()),
        }
    };
    let written = captured.writer.write(
        &settings.output,
        key.as_ref()
            .map(|_| &signer as bugpack::bundle::writer::Signer<'_>),
    )?;
    let issue_path = issue_path(&settings.output);
    let mut data = captured.issue.clone();
    data.bundle = Some(BundleView {
        name: settings
            .output
            .file_name()
            .map_or_else(|| "bundle.zip".into(), |n| n.to_string_lossy().into_owned()),
        size: human_size(written.size),
        sha256: written.sha256.clone(),
    });
    let text = issue::render(&data).context("cannot render the issue text")?;
    let text = redactor.redact_str("ISSUE.md", &text);
    write_atomically(&issue_path, text.as_bytes())?;

    let redactions: u64 = written.manifest.redactions.values().sum();
    writeln!(
        out,
        "{} {} ({}, {} entries, {redactions} redaction{})",
        ui.paint(Style::Good, "wrote"),
        settings.output.display(),
        human_size(written.size),
        written.manifest.files.len() + 1,
        if redactions == 1 { "" } else { "s" }
    )?;
    writeln!(out, "  sha256  {}", written.sha256)?;
    if let Some(k) = &key {
        writeln!(out, "  signed  {}", k.fingerprint())?;
    }
    writeln!(out, "  issue   {}", issue_path.display())?;
    if let Some(o) = &captured.observed {
        writeln!(out, "  run     `{}` {}", o.command, outcome_words(o))?;
    }
    for note in &captured.notes {
        writeln!(out, "  note    {note}")?;
    }
    if written.size > GITHUB_ATTACHMENT_LIMIT {
        let mut files = written.manifest.files.clone();
        files.sort_by_key(|f| std::cmp::Reverse(f.size));
        let largest: Vec<String> = files
            .iter()
            .take(3)
            .map(|f| format!("{} ({})", f.path, human_size(f.size)))
            .collect();
        tracing::warn!(
            "{} is {}, over GitHub's 25 MB attachment limit; the largest entries: {}. Try a smaller --log-bytes or fewer --include paths",
            settings.output.display(),
            human_size(written.size),
            largest.join(", ")
        );
    }
    Ok(Status::Success)
}

fn outcome_words(o: &capture::observe::Observed) -> String {
    use capture::observe::Ending;
    match o.ending {
        Ending::Hang => format!("hung (stopped after {} ms)", o.timeout_ms),
        Ending::Signaled => format!(
            "was killed by {}",
            o.signal.as_deref().unwrap_or("a signal")
        ),
        Ending::Exited => format!(
            "exited {} in {} ms",
            o.exit_code.unwrap_or(-1),
            o.duration_ms
        ),
    }
}

/// `--steps FILE|-`, or on a terminal with neither, `$EDITOR` on the template.
fn read_steps(steps: Option<&Path>, ui: &Ui, dry_run: bool) -> Result<Option<String>> {
    match steps {
        Some(p) if p == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .take(MAX_STEPS_BYTES)
                .read_to_string(&mut text)
                .context("cannot read the steps from stdin")?;
            Ok(Some(text))
        }
        Some(p) => {
            let bytes =
                std::fs::read(p).map_err(|e| usage(format!("--steps {}: {e}", p.display())))?;
            let bytes = &bytes[..bytes
                .len()
                .min(usize::try_from(MAX_STEPS_BYTES).unwrap_or(usize::MAX))];
            Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
        }
        None if ui.interactive && !dry_run && std::io::stdout().is_terminal() => edit_steps(),
        None => Ok(None),
    }
}

/// Opens `$VISUAL`/`$EDITOR` (else `vi`) on the steps template.
fn edit_steps() -> Result<Option<String>> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_owned());
    let mut file = tempfile::Builder::new()
        .prefix("bugpack-steps-")
        .suffix(".md")
        .tempfile()
        .context("cannot create a temporary file for the steps")?;
    file.write_all(issue::STEPS_TEMPLATE.as_bytes())?;
    file.flush()?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()
        .with_context(|| format!("cannot start the editor `{editor}`"))?;
    if !status.success() {
        return Err(usage(format!(
            "the editor `{editor}` failed; pass the steps with --steps FILE instead"
        )));
    }
    let text = std::fs::read_to_string(file.path()).context("cannot read the steps back")?;
    Ok(Some(text))
}

/// What `--dry-run` shows: every entry and every redaction, and no values.
fn dry_run(
    out: &mut impl std::io::Write,
    captured: &Captured,
    redactor: &Redactor,
    output: &Path,
    had_command: bool,
    ui: &Ui,
) -> Result<()> {
    let manifest = captured.writer.manifest()?;
    writeln!(
        out,
        "{} {} would hold {} files:",
        ui.paint(Style::Bold, "dry run:"),
        output.display(),
        manifest.files.len() + 1
    )?;
    let width = manifest
        .files
        .iter()
        .map(|f| f.path.len())
        .max()
        .unwrap_or(0);
    writeln!(out, "  {:<width$}  (the manifest)", "bugpack.yaml")?;
    for f in &manifest.files {
        writeln!(out, "  {:<width$}  {:>10}", f.path, human_size(f.size))?;
    }
    let events = redactor.events();
    writeln!(out, "{} redactions:", events.len())?;
    for e in events {
        writeln!(
            out,
            "  {}:{}  {}  {}",
            e.origin, e.line, e.rule, e.placeholder
        )?;
    }
    for why in &captured.skipped {
        writeln!(out, "skipped {why}")?;
    }
    if had_command {
        writeln!(
            out,
            "the command was not run (--dry-run); its output would be redacted the same way"
        )?;
    }
    writeln!(out, "nothing was written")?;
    Ok(())
}

/// `<output>.md` beside the bundle.
fn issue_path(output: &Path) -> std::path::PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".md");
    name.into()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".bugpack-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
