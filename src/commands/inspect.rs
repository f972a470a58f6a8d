//! `bugpack inspect BUNDLE [--json]`: what a bundle holds, after every
//! reader check has passed.

use std::io::Write as _;

use anyhow::Result;
use bugpack::bundle::Bundle;
use bugpack::scenario::{ExitSpec, Ready, ScenarioFile};

use super::Status;
use crate::settings::Inspect;
use crate::terminal::{Style, Ui, human_size, printable, printable_lines};

pub(crate) fn run(settings: &Inspect, ui: &Ui) -> Result<Status> {
    let bundle = Bundle::open(&settings.bundle, &settings.limits)?;
    if settings.json {
        // Serialised first, then written: an `io::Error` from a closed pipe
        // stays an `io::Error` (main exits 0 on it), not a serde_json one.
        let mut text = serde_json::to_vec_pretty(bundle.manifest())?;
        text.push(b'\n');
        std::io::stdout().lock().write_all(&text)?;
        return Ok(Status::Success);
    }
    let mut out = ui.report();
    let m = bundle.manifest();
    let label = |text: &str| ui.paint(Style::Bold, text).into_owned();
    writeln!(out, "{}     {}", label("title"), printable(&m.title))?;
    writeln!(
        out,
        "{}   {} by bugpack {}",
        label("created"),
        m.created,
        m.bugpack_version
    )?;
    writeln!(out, "{}        {}", label("id"), m.id)?;
    writeln!(
        out,
        "{} {}",
        label("signature"),
        printable(&super::signature_summary(&bundle))
    )?;
    if let Some(to) = bundle.encrypted_to() {
        writeln!(
            out,
            "{} encrypted to {} (decrypted here)",
            label("encrypted"),
            printable(&to.join(", "))
        )?;
    }
    match bundle.scenario() {
        Some(s) => {
            writeln!(out, "{}  {}", label("scenario"), printable(&s.name))?;
            for line in scenario_lines(s) {
                writeln!(out, "  {line}")?;
            }
        }
        None => writeln!(out, "{}  none", label("scenario"))?,
    }
    let total: u64 = m.files.iter().map(|f| f.size).sum();
    writeln!(
        out,
        "{}     {} files, {}",
        label("files"),
        m.files.len(),
        human_size(total)
    )?;
    let width = m.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
    for f in &m.files {
        writeln!(
            out,
            "  {:<width$}  {:>10}",
            printable(&f.path),
            human_size(f.size)
        )?;
    }
    if m.redactions.is_empty() {
        writeln!(out, "{} none", label("redactions"))?;
    } else {
        let count: u64 = m.redactions.values().sum();
        writeln!(out, "{} {count}", label("redactions"))?;
        for (rule, n) in &m.redactions {
            writeln!(out, "  {rule:<24} {n}")?;
        }
    }
    Ok(Status::Success)
}

/// The scenario's commands and expectations, one field each; a field that
/// spans lines (a folded description, a script) continues indented under
/// its value.
fn scenario_lines(s: &ScenarioFile) -> Vec<String> {
    // Each line is printed after two spaces.
    let field = |label: &str, value: &str| {
        format!(
            "{label}{}",
            printable_lines(value, &" ".repeat(2 + label.chars().count()))
        )
    };
    let mut lines = Vec::new();
    if let Some(d) = &s.description {
        lines.push(field("description  ", d));
    }
    for cmd in &s.setup {
        lines.push(field("setup    ", cmd));
    }
    for svc in &s.services {
        let ready = match &svc.ready {
            None | Some(Ready::Tcp(_)) => "tcp".to_owned(),
            Some(Ready::Http(p)) => format!("http {}", printable(p)),
            Some(Ready::Log(re)) => format!("log /{}/", printable(re)),
        };
        lines.push(format!(
            "{} (ready: {ready})",
            field(&format!("service  {}: ", printable(&svc.name)), &svc.run)
        ));
    }
    lines.push(field("run      ", &s.run));
    lines.push(format!(
        "timeout  {}",
        s.timeout
            .as_deref()
            .map_or_else(|| "60s (default)".into(), printable)
    ));
    let expect = match &s.expect {
        None => "a hang or a nonzero exit (default)".to_owned(),
        Some(e) => {
            let mut parts = Vec::new();
            if e.hang == Some(true) {
                parts.push("hang".to_owned());
            }
            match e.exit {
                Some(ExitSpec::Nonzero) => parts.push("exit nonzero".to_owned()),
                Some(ExitSpec::Code(c)) => parts.push(format!("exit {c}")),
                None => {}
            }
            if let Some(o) = &e.output {
                parts.push(format!("output /{}/", printable(o)));
            }
            parts.join(", ")
        }
    };
    lines.push(format!("expect   {expect}"));
    lines
}
