//! `.bugpack.yaml`: what a project's maintainers ask their users to capture.
//!
//! Found in the current directory, then at the root of the git repository
//! around it; `--profile FILE` overrides. Checked against
//! `schema/profile.schema.json`. Paths in a profile are relative to the
//! profile's own directory. Loading never runs anything the profile names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::schema::Schema;

/// The profile's file name.
pub const FILE_NAME: &str = ".bugpack.yaml";

/// A capture profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub config: Vec<String>,
    #[serde(default)]
    pub logs: Vec<String>,
    #[serde(default)]
    pub log_bytes: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    #[serde(default)]
    pub env_deny: Vec<String>,
    #[serde(default)]
    pub redact: Vec<RedactRule>,
    /// Keys every bundle of this project is encrypted to (`--encrypt-to`).
    #[serde(default)]
    pub encrypt_to: Vec<String>,
    /// Words every bundle of this project replaces with pseudonyms.
    #[serde(default)]
    pub obfuscate: Vec<String>,
    #[serde(default)]
    pub probe: Vec<String>,
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A profile's extra redaction rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RedactRule {
    Regex(String),
    Named { name: String, regex: String },
}

impl RedactRule {
    /// The rule for the redactor; an unnamed one is named `profile`.
    pub fn to_extra(&self) -> crate::redact::ExtraRule {
        match self {
            Self::Regex(re) => crate::redact::ExtraRule {
                name: "profile".to_owned(),
                regex: re.clone(),
            },
            Self::Named { name, regex } => crate::redact::ExtraRule {
                name: name.clone(),
                regex: regex.clone(),
            },
        }
    }
}

/// A profile and the directory its paths are relative to.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub base: PathBuf,
    pub profile: Profile,
}

/// The profile for `cwd`: in it, else at its repository's root.
pub fn find(cwd: &Path) -> Option<PathBuf> {
    let here = cwd.join(FILE_NAME);
    if here.is_file() {
        return Some(here);
    }
    let repo = git2::Repository::discover(cwd).ok()?;
    let root = repo.workdir()?.join(FILE_NAME);
    root.is_file().then_some(root)
}

/// Reads and checks a profile. Errors are usage errors (exit 2): the
/// profile is the user's (or their project's) input.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| {
        crate::error::usage(format!("cannot read the profile {}: {e}", path.display()))
    })?;
    let bad = |why: String| {
        crate::error::usage(format!(
            "the profile {} {why}; see schema/profile.schema.json",
            path.display()
        ))
    };
    let value = crate::yaml::to_json(&bytes).map_err(|e| bad(e.to_string()))?;
    let value = if value.is_null() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        value
    };
    Schema::Profile
        .validate(&value)
        .map_err(|why| bad(format!("breaks its schema {why}")))?;
    let profile: Profile = crate::yaml::from_json(value).map_err(|e| bad(e.to_string()))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let base = base
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", base.display()))?;
    Ok(Loaded {
        path: path.to_path_buf(),
        base,
        profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_profile_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        std::fs::write(
            &p,
            "config: [conf/app.ini]\nlogs: ['logs/*.log']\nlog_bytes: 64KiB\nversions: {python: python3 --version}\n\
             env_deny: ['AWS_*']\nredact: ['corp-[0-9]+', {name: ticket, regex: 'TCK-[0-9]+'}]\nscenario: repro\ntimeout: 30s\n",
        )
        .unwrap();
        let loaded = load(&p).unwrap();
        assert_eq!(loaded.profile.logs, ["logs/*.log"]);
        assert_eq!(loaded.profile.redact.len(), 2);
        assert!(
            matches!(&loaded.profile.redact[1], RedactRule::Named { name, .. } if name == "ticket")
        );
        assert_eq!(loaded.base, dir.path().canonicalize().unwrap());
    }

    #[test]
    fn an_empty_profile_is_fine_and_a_bad_one_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        std::fs::write(&p, "").unwrap();
        assert_eq!(load(&p).unwrap().profile, Profile::default());
        std::fs::write(&p, "logz: [x]\n").unwrap();
        let err = load(&p).unwrap_err();
        assert_eq!(
            crate::error::ErrorKind::of(&err),
            crate::error::ErrorKind::Usage
        );
        assert!(err.to_string().contains("logz"), "{err}");
    }
}
