//! Parsing YAML that someone else wrote: bundle manifests, scenarios, profiles.
//!
//! `serde_yaml` stops the billion-laughs attack, but a 15 KB document with one
//! anchor referenced thousands of times still expands to millions of nodes.
//! bugpack never writes anchors or aliases, so this module refuses them
//! outright, along with documents past a size cap, deep nesting and streams of
//! several documents, before `serde_yaml` sees a byte. It must never hand a
//! caller a value built from a document it has not checked.

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, Parser};

/// The largest YAML file bugpack reads from a bundle or a scenario.
pub const MAX_YAML_BYTES: usize = 1 << 20;

/// The deepest nesting of mappings and sequences a document may have.
pub const MAX_DEPTH: usize = 64;

/// What is wrong with a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("is {size} bytes, over the {max}-byte limit for YAML files")]
    TooLarge { size: usize, max: usize },
    #[error("is not UTF-8 text")]
    NotUtf8,
    #[error("is not valid YAML: {0}")]
    Syntax(String),
    #[error("uses a YAML anchor or alias at line {line}, which bugpack never writes")]
    AnchorOrAlias { line: usize },
    #[error("nests deeper than {MAX_DEPTH} levels at line {line}")]
    TooDeep { line: usize },
    #[error("holds more than one YAML document")]
    MultipleDocuments,
    #[error("breaks its schema: {0}")]
    Shape(String),
}

/// Checks `bytes` against the rules above and parses it into a JSON value
/// (the form the schema validator takes). An empty document is `null`.
pub fn to_json(bytes: &[u8]) -> Result<serde_json::Value, YamlError> {
    if bytes.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge {
            size: bytes.len(),
            max: MAX_YAML_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| YamlError::NotUtf8)?;
    scan_events(text)?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| YamlError::Syntax(one_line(&e.to_string())))?;
    serde_json::to_value(value).map_err(|e| YamlError::Shape(one_line(&e.to_string())))
}

/// Deserializes an already checked JSON value into `T`.
pub fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, YamlError> {
    serde_json::from_value(value).map_err(|e| YamlError::Shape(one_line(&e.to_string())))
}

/// Walks the event stream once: no anchors, no aliases, bounded depth, one document.
fn scan_events(text: &str) -> Result<(), YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    let mut documents = 0usize;
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| YamlError::Syntax(one_line(&e.to_string())))?;
        let line = mark.line();
        match event {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError::MultipleDocuments);
                }
            }
            Event::Alias(_) => return Err(YamlError::AnchorOrAlias { line }),
            Event::Scalar(_, _, anchor, _) if anchor != 0 => {
                return Err(YamlError::AnchorOrAlias { line });
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if anchor != 0 {
                    return Err(YamlError::AnchorOrAlias { line });
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(YamlError::TooDeep { line });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

/// Parser messages can span lines; an error is one line.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_documents_parse() {
        let v = to_json(b"a: 1\nb: [x, y]\nc: {d: true}\n").unwrap();
        assert_eq!(v["b"][1], "y");
        assert_eq!(v["c"]["d"], true);
        assert_eq!(to_json(b"").unwrap(), serde_json::Value::Null);
    }

    #[test]
    fn anchors_and_aliases_are_refused() {
        let bomb = b"a: &a [x, x]\nb: [*a, *a]\n";
        assert!(matches!(
            to_json(bomb),
            Err(YamlError::AnchorOrAlias { line: 1 })
        ));
        assert!(matches!(
            to_json(b"a: &x 1\n"),
            Err(YamlError::AnchorOrAlias { .. })
        ));
        assert!(matches!(
            to_json(b"a: 1\nb: *x\n"),
            Err(YamlError::AnchorOrAlias { .. } | YamlError::Syntax(_))
        ));
    }

    #[test]
    fn a_star_inside_a_string_is_not_an_alias() {
        let v = to_json(b"run: ls *.txt && echo '&x'\n").unwrap();
        assert_eq!(v["run"], "ls *.txt && echo '&x'");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing() {
        // The scanner has its own limit for runaway flow nesting...
        let deep = "[".repeat(100_000);
        assert!(matches!(
            to_json(deep.as_bytes()),
            Err(YamlError::TooDeep { .. } | YamlError::Syntax(_))
        ));
        // ...and well-formed documents nested past ours are refused too.
        let nested = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            to_json(nested.as_bytes()),
            Err(YamlError::TooDeep { .. })
        ));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(to_json(ok.as_bytes()).is_ok());
    }

    #[test]
    fn size_utf8_and_documents_are_checked() {
        let big = vec![b'#'; MAX_YAML_BYTES + 1];
        assert!(matches!(to_json(&big), Err(YamlError::TooLarge { .. })));
        assert_eq!(to_json(b"a: \xff\n"), Err(YamlError::NotUtf8));
        assert_eq!(
            to_json(b"a: 1\n---\nb: 2\n"),
            Err(YamlError::MultipleDocuments)
        );
        assert!(matches!(to_json(b"a: [1,\n"), Err(YamlError::Syntax(_))));
    }
}
