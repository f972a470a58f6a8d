//! The starter files `bugpack init` writes, embedded in the binary: the
//! capture profile, the GitHub issue form and the starter scenarios of
//! `templates/`.
//!
//! Rendering is pure: this module decides the text, the command writes it.
//! Everything here is bugpack's own text, never a user's or a bundle's.

use std::path::Path;

use minijinja::Environment;
use serde::Serialize;

use crate::schema::Schema;

/// Where `init` writes the GitHub issue form, relative to the current directory.
pub const ISSUE_FORM_PATH: &str = ".github/ISSUE_TEMPLATE/bug_report.yml";

/// The GitHub issue form, as written.
pub const ISSUE_FORM: &str = include_str!("../templates/github/bug_report.yml");

const PROFILE_TEMPLATE: &str = include_str!("../templates/profile.yaml");

/// The starter scenario kinds, in the order `--help` and errors list them.
pub const KINDS: &[&str] = &["http-poll", "deadlock", "subprocess", "race", "timeout"];

/// A file of a starter scenario: its path inside the scenario directory and its text.
pub type StarterFile = (&'static str, &'static str);

macro_rules! starter {
    ($kind:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!("../templates/scenarios/", $kind, "/", $file)))),+]
    };
}

/// The files of the starter scenario `kind`, or `None` for an unknown kind.
pub fn scenario(kind: &str) -> Option<&'static [StarterFile]> {
    Some(match kind {
        "http-poll" => {
            starter!("http-poll": "README.md", "client.py", "scenario.yaml", "server.py")
        }
        "deadlock" => starter!("deadlock": "README.md", "pool.py", "scenario.yaml"),
        "subprocess" => starter!("subprocess": "README.md", "build.py", "scenario.yaml"),
        "race" => starter!("race": "README.md", "counter.py", "scenario.yaml"),
        "timeout" => starter!("timeout": "README.md", "scenario.yaml", "service.py"),
        _ => return None,
    })
}

/// A tool whose version the profile records, and the command that prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCommand {
    pub name: &'static str,
    /// The command, quoted as a YAML (JSON-style) string.
    pub command: String,
}

/// A toolchain: the files that mark a project using it, and its tools'
/// names and version commands.
type Toolchain = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

/// The toolchains `init` recognises.
const TOOLCHAINS: &[Toolchain] = &[
    (
        &["Cargo.toml"],
        &[("rustc", "rustc --version"), ("cargo", "cargo --version")],
    ),
    (
        &["package.json"],
        &[("node", "node --version"), ("npm", "npm --version")],
    ),
    (
        &[
            "pyproject.toml",
            "setup.py",
            "setup.cfg",
            "requirements.txt",
        ],
        &[("python", "python3 --version")],
    ),
    (&["go.mod"], &[("go", "go version")]),
    (
        &["pom.xml", "build.gradle", "build.gradle.kts"],
        &[("java", "java -version 2>&1")],
    ),
    (&["Gemfile"], &[("ruby", "ruby --version")]),
];

/// The version commands for the toolchains whose marker files are in `dir`.
pub fn detect_versions(dir: &Path) -> Vec<VersionCommand> {
    let mut out = Vec::new();
    for (markers, tools) in TOOLCHAINS {
        if markers.iter().any(|m| dir.join(m).is_file()) {
            for (name, command) in *tools {
                out.push(VersionCommand {
                    name,
                    command: serde_json::Value::String((*command).to_owned()).to_string(),
                });
            }
        }
    }
    out
}

/// The URL of the profile schema: its `$id`, which editors fetch.
pub fn profile_schema_url() -> String {
    serde_json::from_str::<serde_json::Value>(Schema::Profile.source())
        .ok()
        .and_then(|v| v.get("$id").and_then(|id| id.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

/// The commented `.bugpack.yaml`, recording `versions`.
pub fn profile(versions: &[VersionCommand]) -> Result<String, minijinja::Error> {
    #[derive(Serialize)]
    struct Data<'a> {
        schema_url: String,
        versions: &'a [VersionCommand],
    }
    let mut env = Environment::new();
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.add_template("profile.yaml", PROFILE_TEMPLATE)?;
    env.get_template("profile.yaml")?
        .render(minijinja::value::Serde(&Data {
            schema_url: profile_schema_url(),
            versions,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `templates/scenarios/` is embedded, and nothing else.
    #[test]
    fn every_starter_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/scenarios");
        let mut on_disk: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .flat_map(|kind| {
                let kind = kind.unwrap();
                let name = kind.file_name().to_string_lossy().into_owned();
                std::fs::read_dir(kind.path())
                    .unwrap()
                    .map(move |f| format!("{name}/{}", f.unwrap().file_name().to_string_lossy()))
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = KINDS
            .iter()
            .flat_map(|k| {
                scenario(k)
                    .unwrap()
                    .iter()
                    .map(move |(f, _)| format!("{k}/{f}"))
            })
            .collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
        assert!(scenario("nope").is_none());
    }

    #[test]
    fn the_profile_names_its_schema_and_detected_versions() {
        let url = profile_schema_url();
        assert!(url.starts_with("https://"), "{url}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("go.mod"), "module x\n").unwrap();
        let text = profile(&detect_versions(dir.path())).unwrap();
        assert_eq!(
            text.lines().next(),
            Some(format!("# yaml-language-server: $schema={url}").as_str())
        );
        assert!(
            text.contains("\nversions:\n  go: \"go version\"\n"),
            "{text}"
        );
        let bare = profile(&[]).unwrap();
        assert!(bare.contains("\n# versions:\n"), "{bare}");
    }
}
