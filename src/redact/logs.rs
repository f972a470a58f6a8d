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

/// The log redactor, or what to build it from when the first line comes:
/// compiling the rules costs milliseconds, which a run's sandbox that logs
/// nothing (the default) should not pay on every run.
enum Slot {
    /// Not installed: built from this process's environment on first use.
    Unset,
    /// Built on first use from these variables (a run's environment).
    Pending(Vec<(String, String)>),
    Built(Arc<Redactor>),
}

static LOG_REDACTOR: RwLock<Slot> = RwLock::new(Slot::Unset);

/// Makes `redactor` the one every later log line passes through.
pub fn install(redactor: Redactor) {
    let mut slot = LOG_REDACTOR.write().unwrap_or_else(PoisonError::into_inner);
    *slot = Slot::Built(Arc::new(redactor));
}

/// Makes the built-in rules and the secret-named variables of `env` the
/// redactor of every later log line; the rules are compiled only when the
/// first line is scrubbed.
pub fn install_env(env: Vec<(String, String)>) {
    let mut slot = LOG_REDACTOR.write().unwrap_or_else(PoisonError::into_inner);
    *slot = Slot::Pending(env);
}

/// `text` with every secret the log redactor knows replaced.
pub fn scrub(text: &str) -> String {
    if let Slot::Built(r) = &*LOG_REDACTOR.read().unwrap_or_else(PoisonError::into_inner) {
        return r.scrub(text);
    }
    let mut slot = LOG_REDACTOR.write().unwrap_or_else(PoisonError::into_inner);
    let made = match &*slot {
        Slot::Built(r) => Some(Arc::clone(r)),
        Slot::Pending(env) => {
            with_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map(Arc::new)
        }
        Slot::Unset => from_environment().map(Arc::new),
    };
    let Some(redactor) = made else {
        // Left as it was, so that no later line goes out less scrubbed.
        return "(a log line was left out: its redactor could not be built)".to_owned();
    };
    *slot = Slot::Built(Arc::clone(&redactor));
    drop(slot);
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
    fn a_pending_environment_scrubs_its_secrets_on_first_use() {
        install_env(vec![(
            "RUN_TOKEN".to_owned(),
            "pendingSecretValue42".to_owned(),
        )]);
        let clean = scrub("the run said pendingSecretValue42");
        assert!(!clean.contains("pendingSecretValue42"), "{clean}");
        assert!(clean.starts_with("the run said "), "{clean}");
    }

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
