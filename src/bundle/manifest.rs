//! `bugpack.yaml`: the manifest's types, and its reading from untrusted bytes.
//!
//! The serde types are the single description of the format's fields; the
//! JSON Schema in `schema/manifest.schema.json` says the same and is checked
//! on every read, before the bytes become a [`Manifest`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FORMAT, MANIFEST, Rejection};
use crate::schema::Schema;

/// The manifest of a `bugpack/v1` bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// A content-derived identifier (32 hex digits).
    pub id: String,
    /// RFC 3339 UTC time of capture.
    pub created: String,
    /// The report's one-line title.
    pub title: String,
    /// The version of bugpack that wrote the bundle.
    pub bugpack_version: String,
    /// The runnable scenario, if the bundle has one.
    pub scenario: Option<ScenarioRef>,
    /// Values replaced per redaction rule (counts, never values).
    pub redactions: BTreeMap<String, u64>,
    /// Every entry but the manifest and signature, sorted by path.
    pub files: Vec<FileEntry>,
}

/// The scenario a bundle carries under `scenario/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRef {
    /// The `name` from `scenario/scenario.yaml`.
    pub name: String,
}

/// One listed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the entry's uncompressed bytes.
    pub sha256: String,
}

impl Manifest {
    /// Parses and checks manifest bytes: safe YAML, a known format, the schema.
    pub fn parse(bytes: &[u8]) -> Result<Self, Rejection> {
        let yaml_err = |why| Rejection::Yaml {
            file: MANIFEST.to_owned(),
            why,
        };
        let value = crate::yaml::to_json(bytes).map_err(yaml_err)?;
        // The format decides which schema applies, so it is checked first and
        // gets its own message: "upgrade bugpack" beats "breaks the schema".
        match value.get("format") {
            Some(serde_json::Value::String(found)) if found != FORMAT => {
                return Err(Rejection::UnsupportedFormat {
                    found: found.chars().take(40).collect(),
                });
            }
            _ => {}
        }
        Schema::Manifest
            .validate(&value)
            .map_err(|why| Rejection::Schema {
                file: MANIFEST.to_owned(),
                why,
            })?;
        crate::yaml::from_json(value).map_err(yaml_err)
    }

    /// The manifest's canonical bytes, as written into a bundle.
    pub fn to_yaml(&self) -> Result<Vec<u8>, serde_yaml::Error> {
        serde_yaml::to_string(self).map(String::into_bytes)
    }

    /// The listed entry at `path`.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT.to_owned(),
            id: "0".repeat(32),
            created: "2026-11-22T10:00:00Z".to_owned(),
            title: "demo".to_owned(),
            bugpack_version: "0.1.0".to_owned(),
            scenario: Some(ScenarioRef {
                name: "demo".to_owned(),
            }),
            redactions: BTreeMap::from([("github-token".to_owned(), 2)]),
            files: vec![FileEntry {
                path: "steps.md".to_owned(),
                size: 3,
                sha256: "a".repeat(64),
            }],
        }
    }

    #[test]
    fn round_trips_through_its_own_bytes() {
        let m = sample();
        let bytes = m.to_yaml().unwrap();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn a_future_format_is_named() {
        let text = String::from_utf8(sample().to_yaml().unwrap())
            .unwrap()
            .replace("bugpack/v1", "bugpack/v9");
        let err = Manifest::parse(text.as_bytes()).unwrap_err();
        assert!(matches!(err, Rejection::UnsupportedFormat { ref found } if found == "bugpack/v9"));
    }

    #[test]
    fn schema_breaks_are_rejected() {
        let text = String::from_utf8(sample().to_yaml().unwrap())
            .unwrap()
            .replace("size: 3", "size: -3");
        let err = Manifest::parse(text.as_bytes()).unwrap_err();
        assert!(matches!(err, Rejection::Schema { .. }), "{err}");
        assert!(err.to_string().contains("/files/0/size"), "{err}");
    }
}
