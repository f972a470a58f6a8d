//! The JSON Schemas of `schema/`, embedded into the binary and compiled once.
//!
//! Every manifest, scenario and profile bugpack reads is checked against its
//! schema here, with a schema-validation crate rather than hand-written
//! checks. Error messages never echo the offending value (it may be huge, or
//! a secret in a user's profile): they name the place and the rule.

use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

/// One of the schemas bugpack ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `bugpack.yaml`, a bundle's manifest.
    Manifest,
    /// `scenario.yaml`.
    Scenario,
    /// `.bugpack.yaml`, a capture profile.
    Profile,
}

impl Schema {
    /// The schema's text, as shipped in `schema/`.
    pub fn source(self) -> &'static str {
        match self {
            Self::Manifest => include_str!("../schema/manifest.schema.json"),
            Self::Scenario => include_str!("../schema/scenario.schema.json"),
            Self::Profile => include_str!("../schema/profile.schema.json"),
        }
    }

    fn validator(self) -> &'static Validator {
        static MANIFEST: OnceLock<Validator> = OnceLock::new();
        static SCENARIO: OnceLock<Validator> = OnceLock::new();
        static PROFILE: OnceLock<Validator> = OnceLock::new();
        let cell = match self {
            Self::Manifest => &MANIFEST,
            Self::Scenario => &SCENARIO,
            Self::Profile => &PROFILE,
        };
        cell.get_or_init(|| {
            // The schemas are part of the binary and covered by the tests
            // below; a failure here is a build defect, not a user error.
            #[allow(clippy::expect_used)]
            let schema: Value =
                serde_json::from_str(self.source()).expect("embedded schema is valid JSON");
            #[allow(clippy::expect_used)]
            jsonschema::draft202012::new(&schema).expect("embedded schema compiles")
        })
    }

    /// Checks `instance`; on failure, says where and what rule, in one line.
    pub fn validate(self, instance: &Value) -> Result<(), String> {
        let validator = self.validator();
        let Some(first) = validator.iter_errors(instance).next() else {
            return Ok(());
        };
        let path = first.instance_path().to_string();
        let place = if path.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("at {path}")
        };
        Err(format!("{place}: {}", first.masked()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles() {
        for schema in [Schema::Manifest, Schema::Scenario, Schema::Profile] {
            let _ = schema.validator();
        }
    }

    #[test]
    fn a_minimal_scenario_passes_and_an_unknown_key_fails() {
        let ok = json!({"name": "demo", "run": "true"});
        assert_eq!(Schema::Scenario.validate(&ok), Ok(()));
        let bad = json!({"name": "demo", "run": "true", "runn": "x"});
        let err = Schema::Scenario.validate(&bad).unwrap_err();
        assert!(err.contains("runn"), "{err}");
        let no_run = json!({"name": "demo"});
        assert!(Schema::Scenario.validate(&no_run).is_err());
    }

    #[test]
    fn the_design_example_scenario_passes() {
        let v = json!({
            "name": "cached-ajax",
            "description": "polling UI hangs behind a caching proxy",
            "env": {"POLL_INTERVAL": "0.2"},
            "setup": ["python3 make_fixture.py"],
            "services": [{"name": "app", "run": "python3 server.py",
                          "ready": {"http": "/health"}, "ready_timeout": "10s"}],
            "run": "python3 client.py",
            "timeout": "10s",
            "expect": {"hang": true, "exit": "nonzero", "output": "PENDING forever"}
        });
        assert_eq!(Schema::Scenario.validate(&v), Ok(()));
    }

    #[test]
    fn messages_name_the_place_not_the_value() {
        let v = json!({"name": "demo", "run": "true", "timeout": "hunter2-secret"});
        let err = Schema::Scenario.validate(&v).unwrap_err();
        assert!(err.contains("/timeout"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
