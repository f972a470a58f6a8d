//! `bugpack capture`: gather, redact, write the bundle and the issue text.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use bugpack::capture::interrupt::{Interrupt, Interrupted};
use bugpack::capture::{self, Captured, tree};
use bugpack::error::{ErrorKind, usage};
use bugpack::issue::{self, BundleView};
use bugpack::partial::{self, Partial};
use bugpack::redact::Redactor;

use super::Status;
use crate::settings::{Capture, SignKey};
use crate::terminal::{Style, Ui, human_size};

/// GitHub's limit for an issue attachment.
const GITHUB_ATTACHMENT_LIMIT: u64 = 25_000_000;
/// The most steps text read from a file or stdin.
const MAX_STEPS_BYTES: u64 = 1 << 20;

pub(crate) fn run(settings: Capture, ui: &Ui) -> Result<Status> {
    let interrupt = Arc::new(Interrupt::new());
    watch_signals(&interrupt, ui.error_prefix())?;
    // Orphans of the observed command come back to us, so that stopping
    // its tree reaches grandchildren that called setsid.
    if let Err(e) = tree::become_subreaper() {
        tracing::debug!("cannot become a child subreaper ({e}); stopping a run may miss daemons");
    }
    let mut redactor = Redactor::new(
        &settings.redact,
        settings
            .request
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| usage(format!("{e}")))?
    .with_pseudonyms(&settings.pseudonyms);
    // Log lines get the same rules as the bundle (the user's --redact too);
    // a clone shares the compiled rules and starts with no counts.
    bugpack::redact::logs::install(redactor.clone());
    let result = capture(settings, ui, &interrupt, &mut redactor);
    if let Err(e) = &result
        && e.chain().any(<dyn std::error::Error>::is::<Interrupted>)
        && interrupt.aborted()
    {
        // The signal watcher has cleaned up and is saying so: one line, once.
        loop {
            std::thread::park();
        }
    }
    // Errors quote paths, commands and URLs: never print a secret in one.
    result.map_err(|e| scrub_error(e, &redactor))
}

fn capture(
    settings: Capture,
    ui: &Ui,
    interrupt: &Interrupt,
    redactor: &mut Redactor,
) -> Result<Status> {
    let mut request = settings.request;
    if let Some(profile) = &settings.profile {
        tracing::info!("using the profile {}", profile.display());
    }
    request.steps = read_steps(settings.steps.as_deref(), ui, settings.dry_run, interrupt)?;
    // Load the key first: a wrong passphrase should cost nothing.
    let key = match (&settings.sign, settings.dry_run) {
        (Some(which), false) => {
            let path = match which {
                SignKey::Default => None,
                SignKey::Path(p) => Some(p.as_path()),
            };
            Some(interrupt.defer(|| super::sign::load_key(path))?)
        }
        _ => None,
    };
    // The keys to encrypt to, before anything runs: a wrong one costs nothing.
    let mut recipients = Vec::new();
    for spec in &settings.encrypt_to {
        recipients.extend(interrupt.defer(|| bugpack::bundle::crypt::recipients(spec))?);
    }
    let sealed_to: Vec<String> = recipients.iter().map(|r| r.fingerprint.clone()).collect();
    let tmp = std::env::temp_dir();
    let staging = interrupt.create(
        || {
            Partial::fresh(&tmp, partial::STAGING_PREFIX).with_context(|| {
                format!("cannot create a temporary directory in {}", tmp.display())
            })
        },
        |d| d.path().to_path_buf(),
    )?;
    let mut captured = capture::collect(&request, redactor, staging.path(), interrupt)?;
    captured.finish(redactor)?;

    if settings.dry_run {
        // What --dry-run shows is what the user asked for: printed even under -q.
        let mut out = std::io::stdout().lock();
        let had_command = !request.command.is_empty();
        dry_run(
            &mut out,
            &captured,
            redactor,
            &settings.output,
            had_command,
            ui,
        )?;
        if !sealed_to.is_empty() {
            writeln!(
                out,
                "the bundle would be encrypted to {}",
                sealed_to.join(", ")
            )?;
        }
        return Ok(Status::Success);
    }
    let signer = |manifest: &[u8]| -> Result<Vec<u8>> {
        match &key {
            Some(k) => k.sign(manifest).context("cannot sign the manifest"),
            None => Ok(Vec::new()),
        }
    };
    // Everything is written into a private directory beside the output,
    // then renamed into place at once: an interrupt before that leaves
    // nothing at the output path, and removes the directory; SIGKILL
    // leaves the directory, which the next capture to this output removes.
    let (_, name) = partial::split_output(&settings.output);
    let private = interrupt.create(
        || {
            Partial::beside(&settings.output).with_context(|| {
                format!(
                    "cannot create a temporary directory beside {}",
                    settings.output.display()
                )
            })
        },
        |d| d.path().to_path_buf(),
    )?;
    let staged_bundle = private.path().join(&name);
    let mut written = captured.writer.write_to(
        &staged_bundle,
        key.as_ref()
            .map(|_| &signer as bugpack::bundle::writer::Signer<'_>),
    )?;
    if !recipients.is_empty() {
        // The signed inner bundle, sealed; the outer file is what is attached.
        let sealed = private.path().join(format!("{name}.sealed"));
        bugpack::bundle::crypt::encrypt(
            &staged_bundle,
            &sealed,
            &recipients,
            &written.manifest.id,
        )?;
        std::fs::rename(&sealed, &staged_bundle)
            .with_context(|| format!("cannot write {}", staged_bundle.display()))?;
        let (size, sha256) = bugpack::bundle::sha256_stream(std::fs::File::open(&staged_bundle)?)?;
        written.size = size;
        written.sha256 = sha256;
    }
    let issue_path = issue_path(&settings.output);
    let mut data = captured.issue.clone();
    data.bundle = Some(BundleView {
        name: name.clone(),
        size: human_size(written.size),
        sha256: written.sha256.clone(),
    });
    let text = match (&data.bundle, sealed_to.is_empty()) {
        (Some(view), false) => issue::render_encrypted(view, &sealed_to),
        _ => issue::render(&data),
    }
    .context("cannot render the issue text")?;
    let text = redactor.redact_str("ISSUE.md", &text);
    let staged_issue = private.path().join(format!("{name}.md"));
    std::fs::write(&staged_issue, text.as_bytes())
        .with_context(|| format!("cannot write {}", issue_path.display()))?;
    std::fs::set_permissions(
        &staged_issue,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    interrupt.commit(|| {
        std::fs::rename(&staged_bundle, &settings.output)
            .with_context(|| format!("cannot write {}", settings.output.display()))?;
        if let Err(e) = std::fs::rename(&staged_issue, &issue_path) {
            let _ = std::fs::remove_file(&settings.output);
            return Err(
                anyhow::Error::new(e).context(format!("cannot write {}", issue_path.display()))
            );
        }
        Ok(())
    })?;
    drop(private);
    let map = save_pseudonyms(redactor, &written.manifest.id);
    tracing::info!("wrote {}", settings.output.display());
    tracing::info!("wrote {}", issue_path.display());

    // The summary is a report: `-q` leaves it out (the exit code says it worked).
    let mut out = ui.report();
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
    if !sealed_to.is_empty() {
        writeln!(out, "  sealed  encrypted to {}", sealed_to.join(", "))?;
    }
    writeln!(out, "  issue   {}", issue_path.display())?;
    if let Some((path, n)) = &map {
        writeln!(
            out,
            "  masked  {n} name{} and address{} as pseudonyms; the map stays here ({}): `bugpack unmask {}` reads a reply back",
            if *n == 1 { "" } else { "s" },
            if *n == 1 { "" } else { "es" },
            path.display(),
            written.manifest.id
        )?;
    }
    if let Some(o) = &captured.observed {
        writeln!(out, "  run     `{}` {}", o.command, outcome_words(o))?;
    }
    for note in &captured.notes {
        writeln!(out, "  note    {}", redactor.scrub(note))?;
    }
    for why in &captured.skipped {
        writeln!(out, "  skipped {why}")?;
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

/// Keeps the map from the bundle's pseudonyms to the real values on this
/// machine only, for `bugpack unmask`; the path and how many. A map that
/// cannot be written costs the user only the unmasking: a warning.
fn save_pseudonyms(redactor: &Redactor, id: &str) -> Option<(std::path::PathBuf, usize)> {
    let entries = redactor.pseudonyms();
    if entries.is_empty() {
        return None;
    }
    let Some(dir) = bugpack::redact::pseudonym::map_dir() else {
        tracing::warn!(
            "no HOME or XDG_DATA_HOME: the pseudonym map is not kept, so `bugpack unmask` cannot read replies back"
        );
        return None;
    };
    let map = bugpack::redact::pseudonym::Map {
        bundle: id.to_owned(),
        pseudonyms: entries.to_vec(),
    };
    match map.save(&dir) {
        Ok(path) => Some((path, entries.len())),
        Err(e) => {
            tracing::warn!("{e:#}: `bugpack unmask {id}` will not be able to read replies back");
            None
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP: stop the observed command's tree, remove
/// every temporary file, say so in one line, exit 4, whatever the capture
/// is doing at the time (it may be blocked in a read or a probe).
fn watch_signals(interrupt: &Arc<Interrupt>, prefix: &'static str) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot watch for Ctrl-C")?;
    let interrupt = Arc::clone(interrupt);
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            for _ in signals.forever() {
                if interrupt.abort() {
                    let _ = writeln!(std::io::stderr().lock(), "{prefix}{Interrupted}");
                    std::process::exit(4);
                }
            }
        })
        .context("cannot watch for Ctrl-C")?;
    Ok(())
}

/// An error whose text may quote a secret (a command line, a URL, a file
/// name), rewritten through the redactor; its exit code is kept.
fn scrub_error(err: anyhow::Error, redactor: &Redactor) -> anyhow::Error {
    let text = format!("{err:#}");
    let clean = redactor.scrub(&text);
    if clean == text {
        return err;
    }
    match ErrorKind::of(&err) {
        ErrorKind::Usage => usage(clean),
        _ => anyhow::anyhow!(clean),
    }
}

fn outcome_words(o: &capture::observe::Observed) -> String {
    use bugpack::report::table::duration;
    use capture::observe::Ending;
    match o.ending {
        Ending::Hang => format!("hung (stopped after {})", duration(o.timeout_ms)),
        Ending::Signaled => format!(
            "was killed by {}",
            o.signal.as_deref().unwrap_or("a signal")
        ),
        Ending::Exited => format!(
            "exited {} in {}",
            o.exit_code.unwrap_or(-1),
            duration(o.duration_ms)
        ),
    }
}

/// `--steps FILE|-`, or on a terminal with neither, `$EDITOR` on the
/// template (the editor owns Ctrl-C while it runs).
fn read_steps(
    steps: Option<&Path>,
    ui: &Ui,
    dry_run: bool,
    interrupt: &Interrupt,
) -> Result<Option<String>> {
    match steps {
        Some(p) if p == Path::new("-") => {
            tracing::info!("reading the steps from stdin");
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .take(MAX_STEPS_BYTES)
                .read_to_string(&mut text)
                .context("cannot read the steps from stdin")?;
            Ok(Some(text))
        }
        Some(p) => {
            tracing::info!("reading the steps from {}", p.display());
            let bytes =
                std::fs::read(p).map_err(|e| usage(format!("--steps {}: {e}", p.display())))?;
            let bytes = &bytes[..bytes
                .len()
                .min(usize::try_from(MAX_STEPS_BYTES).unwrap_or(usize::MAX))];
            Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
        }
        None if ui.interactive && !dry_run && std::io::stdout().is_terminal() => {
            interrupt.defer(edit_steps)
        }
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
    tracing::info!(
        "running `{editor}` on the steps template {}",
        file.path().display()
    );
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
    let subs = redactor.substitutions();
    writeln!(
        out,
        "{} pseudonyms{}:",
        subs.len(),
        if subs.is_empty() {
            " (--no-pseudonyms, or nothing of yours found)"
        } else {
            " (the map stays on this machine)"
        }
    )?;
    for s in subs {
        writeln!(
            out,
            "  {}:{}  {}  {} -> {}",
            s.origin,
            s.line,
            s.entry.kind.as_str(),
            s.entry.real,
            s.entry.pseudonym
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
