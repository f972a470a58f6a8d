//! `env/vars.yaml`: the environment variables, redacted.
//!
//! Every variable is kept except those matching an `--env-deny` pattern,
//! which are dropped whole (name and value). Values of secret-looking names
//! become placeholders; every other value still passes through the redactor,
//! since a token can hide in `DATABASE_URL` as well as in `GITHUB_TOKEN`.

use std::collections::BTreeMap;

use crate::error::usage;
use crate::redact::Redactor;

/// Names bugpack never records: they change from one shell to the next and
/// say nothing about the bug.
const NOISE: &[&str] = &["_", "OLDPWD", "SHLVL", "TERM_SESSION_ID", "WINDOWID"];

/// Compiled `--env-deny` patterns (globs on names, case-sensitive).
#[derive(Debug, Clone, Default)]
pub struct Deny(Vec<glob::Pattern>);

impl Deny {
    pub fn new(patterns: &[String]) -> anyhow::Result<Self> {
        patterns
            .iter()
            .map(|p| {
                glob::Pattern::new(p)
                    .map_err(|e| usage(format!("--env-deny {p:?}: bad pattern: {}", e.msg)))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn denies(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.matches(name))
    }
}

/// The variables as `env/vars.yaml` records them, and how many were dropped.
pub fn collect(
    env: &BTreeMap<String, String>,
    deny: &Deny,
    redactor: &mut Redactor,
) -> (BTreeMap<String, String>, usize) {
    let mut out = BTreeMap::new();
    let mut dropped = 0;
    for (name, value) in env {
        if NOISE.contains(&name.as_str()) {
            continue;
        }
        if deny.denies(name) {
            dropped += 1;
            continue;
        }
        out.insert(
            name.clone(),
            redactor.redact_env("env/vars.yaml", name, value),
        );
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_names_vanish_and_secrets_are_replaced() {
        let env = BTreeMap::from([
            ("HOME".to_owned(), "/home/u".to_owned()),
            ("CORP_INTERNAL_HOST".to_owned(), "db.corp".to_owned()),
            ("MY_API_TOKEN".to_owned(), "tok-abcdef123456".to_owned()),
            ("SHLVL".to_owned(), "2".to_owned()),
        ]);
        let deny = Deny::new(&["CORP_*".to_owned()]).unwrap();
        let mut r = Redactor::new(&[], env.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        let (vars, dropped) = collect(&env, &deny, &mut r);
        assert_eq!(dropped, 1);
        assert!(!vars.contains_key("CORP_INTERNAL_HOST"));
        assert!(!vars.contains_key("SHLVL"));
        assert_eq!(vars["HOME"], "/home/u");
        assert!(
            vars["MY_API_TOKEN"].starts_with("[REDACTED:"),
            "{}",
            vars["MY_API_TOKEN"]
        );
    }

    #[test]
    fn a_bad_pattern_is_a_usage_error() {
        let err = Deny::new(&["[".to_owned()]).unwrap_err();
        assert_eq!(
            crate::error::ErrorKind::of(&err),
            crate::error::ErrorKind::Usage
        );
    }
}
