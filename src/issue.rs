//! The GitHub issue text for a bundle, rendered from `templates/issue.md`.
//!
//! Capture renders it twice: into the bundle as `ISSUE.md` (which cannot
//! name the bundle's own hash, nor the manifest's id, which covers it) and
//! beside the bundle as `<output>.md` (which names the bundle and its hash).
//! The values come from the redacted entries, never from raw input, so the
//! text can no more leak a secret than the bundle can; and every value goes
//! through [`crate::markdown`] in the template, so that a hostile bundle
//! cannot put HTML, links or mentions into the issue.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

use crate::capture::observe::{Ending, Observed};
use crate::capture::system::SystemInfo;
use crate::markdown;
use crate::report::table::{duration, printable};

/// What `steps.md` says when the reporter gave no steps.
pub const NO_STEPS: &str = "_The reporter gave no steps._";

/// How many lines of each output stream the issue shows.
const TAIL_LINES: usize = 30;

/// Everything the template sees.
#[derive(Debug, Clone, Serialize)]
pub struct IssueData {
    pub title: String,
    pub created: String,
    pub bugpack_version: String,
    /// The reporter's steps; empty when there are none.
    pub steps: String,
    pub environment: Vec<(String, String)>,
    pub observed: Option<ObservedView>,
    pub scenario: Option<ScenarioView>,
    pub redactions: u64,
    pub bundle: Option<BundleView>,
    /// Files outside the project the command read (`--trace-files`),
    /// which the bundle does not hold.
    pub outside_files: Vec<String>,
}

/// The observed run, ready to show.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedView {
    pub command: String,
    pub summary: String,
    pub tail: String,
    pub fence: String,
}

/// The scenario's name and judged command.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioView {
    pub name: String,
    pub run: String,
}

/// The bundle file, once written.
#[derive(Debug, Clone, Serialize)]
pub struct BundleView {
    pub name: String,
    pub size: String,
    pub sha256: String,
}

/// The environment table's rows, most telling first.
pub fn environment_rows(system: &SystemInfo) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut push = |label: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            rows.push((label.to_owned(), v));
        }
    };
    push("OS", system.os.clone());
    push(
        "Kernel",
        system
            .kernel
            .as_ref()
            .map(|k| format!("{k} ({})", system.arch.as_deref().unwrap_or("?"))),
    );
    push(
        "CPU",
        match (&system.cpu_model, system.cpu_count) {
            (Some(m), Some(n)) => Some(format!("{n} × {m}")),
            (None, Some(n)) => Some(format!("{n} CPUs")),
            (m, None) => m.clone(),
        },
    );
    push("CPU limit", system.cpu_limit.clone());
    push(
        "Memory",
        system.memory_total_mib.map(|m| format!("{m} MiB")),
    );
    push(
        "Memory limit",
        system.memory_limit_mib.map(|m| format!("{m} MiB")),
    );
    push("Container", system.container.clone());
    push("Virtualization", system.virtualization.clone());
    push(
        "Proxy",
        (!system.proxy.is_empty()).then(|| {
            system
                .proxy
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    );
    let locale = system
        .locale
        .get("LC_ALL")
        .or_else(|| system.locale.get("LANG"))
        .cloned();
    push("Locale", locale);
    push("Time zone", system.timezone.clone());
    for (tool, version) in &system.tools {
        push(tool, Some(version.clone()));
    }
    rows
}

/// The observed run for the template, from its record and redacted tails.
pub fn observed_view(observed: &Observed, stdout: &[u8], stderr: &[u8]) -> ObservedView {
    let summary = match observed.ending {
        Ending::Hang => format!(
            "hung: it was still running after {} and was stopped",
            duration(observed.timeout_ms)
        ),
        Ending::Signaled => format!(
            "was killed by {} after {}",
            observed.signal.as_deref().unwrap_or("a signal"),
            duration(observed.duration_ms)
        ),
        Ending::Exited => format!(
            "exited with code {} after {}",
            observed.exit_code.unwrap_or(-1),
            duration(observed.duration_ms)
        ),
    };
    let mut tail = String::new();
    for (label, bytes) in [("stderr", stderr), ("stdout", stdout)] {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        if !tail.is_empty() {
            tail.push('\n');
        }
        tail.push_str(&format!(
            "--- {label} (last {} lines)\n",
            lines.len().min(TAIL_LINES)
        ));
        tail.push_str(&lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n"));
    }
    ObservedView {
        command: observed.command.clone(),
        summary,
        fence: markdown::fence(&tail),
        tail,
    }
}

/// Renders the issue text.
pub fn render(data: &IssueData) -> Result<String, minijinja::Error> {
    environment()
        .get_template("issue.md")?
        .render(minijinja::value::Serde(data))
}

/// The issue text beside an encrypted bundle: its name, size and hash, the
/// keys it is encrypted to, how to open it; nothing the bundle hides.
pub fn render_encrypted(
    bundle: &BundleView,
    recipients: &[String],
) -> Result<String, minijinja::Error> {
    environment()
        .get_template("issue-encrypted.md")?
        .render(minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            bundle => minijinja::value::Serde(bundle),
            recipients => minijinja::value::Serde(recipients),
        })
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        // Every value comes from a bundle or the environment: text, never
        // Markdown or HTML of its own.
        env.add_filter("text", |value: String| markdown::text(&value));
        env.add_filter("lines", |value: String| markdown::lines(&value));
        env.add_filter("code", |value: String| markdown::code(&value));
        // A word on a shell line in a fenced block: quoted, on one line.
        env.add_filter("sh", |value: String| {
            printable(&shlex::try_quote(&value).map_or_else(|_| value.clone(), Into::into))
                .into_owned()
        });
        // The template ships in the binary and is covered by tests; failing
        // to parse it is a build defect, reported on first render.
        let _ = env.add_template("issue.md", include_str!("../templates/issue.md"));
        let _ = env.add_template(
            "issue-encrypted.md",
            include_str!("../templates/issue-encrypted.md"),
        );
        env
    })
}

/// The steps template a user fills in.
pub const STEPS_TEMPLATE: &str = include_str!("../templates/steps.md");

/// Steps text with the template's `<!-- -->` guidance lines removed.
pub fn clean_steps(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> IssueData {
        IssueData {
            title: "Build hangs".into(),
            created: "2026-11-22T10:00:00Z".into(),
            bugpack_version: "0.1.0".into(),
            steps: "1. run make".into(),
            environment: vec![("OS".into(), "Debian | 12".into())],
            observed: Some(observed_view(
                &Observed {
                    command: "make docs".into(),
                    ending: Ending::Hang,
                    exit_code: None,
                    signal: None,
                    duration_ms: 60_000,
                    timeout_ms: 60_000,
                    stdout_bytes: 10,
                    stderr_bytes: 0,
                    stdout_truncated: false,
                    stderr_truncated: false,
                },
                b"building ```docs```\n",
                b"",
            )),
            scenario: Some(ScenarioView {
                name: "make-docs".into(),
                run: "make docs".into(),
            }),
            redactions: 3,
            bundle: Some(BundleView {
                name: "bug.zip".into(),
                size: "12.0 KiB".into(),
                sha256: "ab".repeat(32),
            }),
            outside_files: vec!["/etc/app.conf".into()],
        }
    }

    #[test]
    fn renders_every_section() {
        let text = render(&data()).unwrap();
        assert!(text.starts_with("## Build hangs\n"), "{text}");
        assert!(text.contains("### Files outside the project"), "{text}");
        assert!(text.contains("- `/etc/app.conf`"), "{text}");
        assert!(text.contains("| OS | Debian \\| 12 |"), "{text}");
        assert!(
            text.contains("hung: it was still running after 60.0 s"),
            "{text}"
        );
        assert!(text.contains("<details><summary>Last lines of output</summary>"));
        assert!(
            text.contains("````text\n"),
            "fence must outgrow the output's backticks\n{text}"
        );
        assert!(text.contains("bugpack replay bug.zip"), "{text}");
        assert!(text.contains(&"ab".repeat(32)));
        assert!(text.contains("3 secrets redacted"), "{text}");
    }

    #[test]
    fn without_a_bundle_it_claims_no_name_or_hash() {
        // Inside the bundle the text cannot know the bundle's hash, nor the
        // manifest's id (which covers this very text).
        let mut d = data();
        d.bundle = None;
        d.observed = None;
        let text = render(&d).unwrap();
        assert!(text.contains("The attached bundle holds"), "{text}");
        assert!(
            !text.contains("id `") && !text.contains("SHA-256"),
            "{text}"
        );
        assert!(!text.contains("What happened"));
    }

    #[test]
    fn guidance_comments_are_removed_from_steps() {
        assert_eq!(
            clean_steps("<!-- hint -->\n### What I did\n1. x\n"),
            "### What I did\n1. x"
        );
    }
}
