//! `scenario.yaml`: the runnable reproduction, its types, defaults and checks.
//!
//! [`ScenarioFile`] is the file as written (capture makes one, replay reads
//! one); [`Scenario`] is the same after validation, with durations parsed and
//! regular expressions compiled, so replay never meets a bad value mid-run.
//! A scenario may come from a stranger's bundle: it is parsed with the
//! untrusted-YAML rules and checked against `schema/scenario.schema.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::schema::Schema;
use crate::yaml::YamlError;

/// A run's time limit when the scenario gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_mins(1);
/// How long a service may take to become ready when the scenario says nothing.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// `scenario.yaml` as written on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceFile>,
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<ExpectFile>,
}

/// A service as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    pub name: String,
    pub run: String,
    /// Written `{http: /health}`, never as `serde_yaml`'s default for an
    /// enum, the tag `!http /health`, which the reader (rightly) refuses.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_yaml::with::singleton_map"
    )]
    pub ready: Option<Ready>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<String>,
    /// Serve the service behind a TLS terminator, with a certificate from
    /// the replay's CA: its URL is then `https://`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

/// How bugpack knows a service is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Ready {
    /// An HTTP GET of this path answers with any status below 500.
    Http(String),
    /// The service accepts TCP connections on its port.
    Tcp(bool),
    /// The service's output matches this regular expression.
    Log(String),
}

/// What counts as the bug showing, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// `exit: nonzero` or `exit: 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitSpec {
    Code(u8),
    Nonzero,
}

impl Serialize for ExitSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Code(code) => s.serialize_u8(*code),
            Self::Nonzero => s.serialize_str("nonzero"),
        }
    }
}

impl<'de> Deserialize<'de> for ExitSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u8),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Code(code) => Ok(Self::Code(code)),
            Raw::Word(word) if word == "nonzero" => Ok(Self::Nonzero),
            Raw::Word(_) => Err(serde::de::Error::custom(
                "expected `nonzero` or an exit code",
            )),
        }
    }
}

/// A validated scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub env: BTreeMap<String, String>,
    pub setup: Vec<String>,
    pub services: Vec<Service>,
    pub run: String,
    pub timeout: Duration,
    pub expect: Expect,
}

/// A validated service.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub run: String,
    pub ready: Readiness,
    pub ready_timeout: Duration,
    pub tls: bool,
}

/// Readiness, with its regular expression compiled.
#[derive(Debug, Clone)]
pub enum Readiness {
    Http(String),
    Tcp,
    Log(Regex),
}

/// A run reproduces the bug when any of these holds.
#[derive(Debug, Clone)]
pub struct Expect {
    pub hang: bool,
    pub exit: Option<ExitSpec>,
    pub output: Option<Regex>,
}

impl Expect {
    /// The expectation when the scenario states none: any failure (a hang or a nonzero exit).
    pub fn any_failure() -> Self {
        Self {
            hang: true,
            exit: Some(ExitSpec::Nonzero),
            output: None,
        }
    }
}

/// What is wrong with a scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("breaks its schema {0}")]
    Schema(String),
    #[error("has a bad duration {value:?} for {field} (use e.g. 500ms, 10s, 2m)")]
    Duration { field: String, value: String },
    #[error("has a bad regular expression for {field}: {why}")]
    Regex { field: String, why: String },
    #[error("has two services named {0:?}")]
    DuplicateService(String),
}

impl ScenarioFile {
    /// Parses and checks untrusted bytes (a bundle's or a directory's scenario.yaml).
    pub fn parse(bytes: &[u8]) -> Result<Self, ScenarioError> {
        let value = crate::yaml::to_json(bytes)?;
        Schema::Scenario
            .validate(&value)
            .map_err(ScenarioError::Schema)?;
        Ok(crate::yaml::from_json(value)?)
    }

    /// Checks what the schema cannot (durations, regexes, unique names) and
    /// resolves defaults.
    pub fn resolve(&self) -> Result<Scenario, ScenarioError> {
        let timeout = match &self.timeout {
            Some(text) => parse_duration("timeout", text)?,
            None => DEFAULT_TIMEOUT,
        };
        let mut services = Vec::with_capacity(self.services.len());
        for (i, s) in self.services.iter().enumerate() {
            if self.services[..i].iter().any(|o| o.name == s.name) {
                return Err(ScenarioError::DuplicateService(s.name.clone()));
            }
            let ready = match &s.ready {
                None | Some(Ready::Tcp(_)) => Readiness::Tcp,
                Some(Ready::Http(path)) => Readiness::Http(path.clone()),
                Some(Ready::Log(re)) => {
                    Readiness::Log(compile(&format!("services[{i}].ready.log"), re)?)
                }
            };
            let ready_timeout = match &s.ready_timeout {
                Some(text) => parse_duration(&format!("services[{i}].ready_timeout"), text)?,
                None => DEFAULT_READY_TIMEOUT,
            };
            services.push(Service {
                name: s.name.clone(),
                run: s.run.clone(),
                ready,
                ready_timeout,
                tls: s.tls,
            });
        }
        let expect = match &self.expect {
            None => Expect::any_failure(),
            Some(e) => Expect {
                hang: e.hang.unwrap_or(false),
                exit: e.exit,
                output: e
                    .output
                    .as_deref()
                    .map(|re| compile("expect.output", re))
                    .transpose()?,
            },
        };
        Ok(Scenario {
            name: self.name.clone(),
            description: self.description.clone(),
            env: self.env.clone(),
            setup: self.setup.clone(),
            services,
            run: self.run.clone(),
            timeout,
            expect,
        })
    }

    /// The file's YAML text, as capture writes it.
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }
}

/// Parses a duration such as `500ms`, `10s`, `2m` or `1h 30m`; zero is refused.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration, ScenarioError> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(ScenarioError::Duration {
            field: field.to_owned(),
            value: text.chars().take(40).collect(),
        }),
    }
}

fn compile(field: &str, re: &str) -> Result<Regex, ScenarioError> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| ScenarioError::Regex {
            field: field.to_owned(),
            why: e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name: cached-ajax
description: polling UI hangs behind a caching proxy
env: {POLL_INTERVAL: "0.2"}
setup: ["python3 make_fixture.py"]
services:
  - name: app
    run: python3 server.py
    ready: {http: /health}
    ready_timeout: 10s
  - name: worker
    run: python3 worker.py
    ready: {log: "^ready"}
  - name: db
    run: python3 db.py
    ready: {tcp: true}
run: python3 client.py
timeout: 10s
expect:
  hang: true
  exit: nonzero
  output: "PENDING forever"
"#;

    #[test]
    fn the_design_example_resolves() {
        let s = ScenarioFile::parse(FULL.as_bytes())
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert!(matches!(s.services[0].ready, Readiness::Http(ref p) if p == "/health"));
        assert!(matches!(s.services[1].ready, Readiness::Log(_)));
        assert!(matches!(s.services[2].ready, Readiness::Tcp));
        assert_eq!(s.services[1].ready_timeout, DEFAULT_READY_TIMEOUT);
        assert_eq!(s.expect.exit, Some(ExitSpec::Nonzero));
        assert!(s.expect.hang);
        assert!(s.expect.output.unwrap().is_match("status PENDING forever"));
    }

    #[test]
    fn defaults_mean_any_failure_within_a_minute() {
        let s = ScenarioFile::parse(b"name: x\nrun: 'true'\n")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert!(s.expect.hang);
        assert_eq!(s.expect.exit, Some(ExitSpec::Nonzero));
    }

    #[test]
    fn exact_exit_codes_round_trip() {
        let f = ScenarioFile::parse(b"name: x\nrun: 'false'\nexpect: {exit: 3}\n").unwrap();
        assert_eq!(f.expect.as_ref().unwrap().exit, Some(ExitSpec::Code(3)));
        let again = ScenarioFile::parse(f.to_yaml().unwrap().as_bytes()).unwrap();
        assert_eq!(again, f);
        let nz = ScenarioFile {
            expect: Some(ExpectFile {
                exit: Some(ExitSpec::Nonzero),
                ..ExpectFile::default()
            }),
            ..f
        };
        let text = nz.to_yaml().unwrap();
        assert!(text.contains("exit: nonzero"), "{text}");
        assert_eq!(ScenarioFile::parse(text.as_bytes()).unwrap(), nz);
    }

    #[test]
    fn a_scenario_with_services_survives_its_own_writer() {
        // Found by the `scenario` fuzz target: `ready` came out as a YAML
        // tag (`ready: !http /health`) that parse refused.
        let file = ScenarioFile::parse(FULL.as_bytes()).unwrap();
        let text = file.to_yaml().unwrap();
        assert!(text.contains("ready:\n    http: /health"), "{text}");
        assert_eq!(ScenarioFile::parse(text.as_bytes()).unwrap(), file);
    }

    #[test]
    fn bad_inputs_are_named() {
        let cases: &[(&str, &str)] = &[
            ("name: x\n", "schema"),
            ("name: x\nrun: y\nbogus: 1\n", "bogus"),
            ("name: x\nrun: y\ntimeout: soon\n", "/timeout"),
            ("name: x\nrun: y\nexpect: {output: '('}\n", "expect.output"),
            ("name: x\nrun: y\nexpect: {}\n", "/expect"),
            ("name: x\nrun: y\nexpect: {exit: 300}\n", "/expect/exit"),
            (
                "name: x\nrun: y\nservices: [{name: a, run: z}, {name: a, run: z}]\n",
                "two services",
            ),
        ];
        for (text, needle) in cases {
            let err = ScenarioFile::parse(text.as_bytes()).and_then(|f| f.resolve().map(|_| f));
            let msg = err.expect_err(text).to_string();
            assert!(msg.contains(needle), "{text:?}: {msg}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("t", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("t", "2m").unwrap(), Duration::from_mins(2));
        assert!(parse_duration("t", "0s").is_err());
        assert!(parse_duration("t", "-1s").is_err());
    }
}
