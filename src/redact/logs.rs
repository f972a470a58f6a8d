//! bugpack's own log lines (`-v`, warnings, relayed sandbox events) pass
//! through one process-wide redactor before they reach a terminal, so that
//! no code path can log a secret by forgetting to scrub it (DESIGN.md:
//! "-v logs never print a secret value").
//!
//! By default it knows the built-in rules and the values of this process's
//! secret-named environment variables; a command with more to hide (capture's
//! `--redact` rules, a run's scenario environment) installs its own. It never
//! counts or records anything: scrubbing a log line never changes a bundle.

use std::sync::{Arc, PoisonError, RwLock};

use super::Redactor;

static LOG_REDACTOR: RwLock<Option<Arc<Redactor>>> = RwLock::new(None);

/// Makes `redactor` the one every later log line passes through.
pub fn install(redactor: Redactor) {
    let mut slot = LOG_REDACTOR.write().unwrap_or_else(PoisonError::into_inner);
    *slot = Some(Arc::new(redactor));
}

/// `text` with every secret the log redactor knows replaced.
pub fn scrub(text: &str) -> String {
    let current = LOG_REDACTOR
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let redactor = if let Some(r) = current {
        r
    } else {
        let Some(made) = from_environment() else {
            return "(a log line was left out: its redactor could not be built)".to_owned();
        };
        let made = Arc::new(made);
        let mut slot = LOG_REDACTOR.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slot.get_or_insert(made))
    };
    redactor.scrub(text)
}

/// The built-in rules and this process's secret-named variables.
pub fn from_environment() -> Option<Redactor> {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    with_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The built-in rules and the secret-named variables of `env`.
pub fn with_env<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Redactor> {
    Redactor::new(&[], env).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_lose_secrets_of_every_known_shape() {
        let r = with_env([("DEPLOY_TOKEN", "s3cretDeployValue")]).unwrap();
        let line =
            "GET http://u:hunter2pass@h/x?access_token=abc123def&page=2 with s3cretDeployValue";
        let clean = r.scrub(line);
        for secret in ["hunter2pass", "abc123def", "s3cretDeployValue"] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(
            clean.starts_with("GET http://") && clean.contains("@h/x?access_token="),
            "{clean}"
        );
    }
}
