//! The redaction engine: every text that enters a bundle passes through one
//! [`Redactor`], which replaces secrets with `[REDACTED:<rule>:<n>]`.
//!
//! The rules are data ([`rules`]); the user adds more (`--redact`, profile).
//! The engine also learns the values of secret-named environment variables
//! and removes them wherever they reappear (a token echoed into a log). One
//! pass per text: all rules are matched, overlaps resolved (the earliest,
//! then longest match wins, then the earlier rule; a match it cuts into is
//! redacted with it), each secret replaced once. The same secret
//! gets the same placeholder everywhere in a bundle. The engine never keeps
//! a secret where it could be printed: its `Debug` shows counts only, and
//! [`Redaction`] records name the rule and placeholder, never the value.

pub mod logs;
pub mod pseudonym;
pub mod rules;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder, RegexSet};

pub use rules::{BUILTIN_RULES, is_secret_name};

/// A user-supplied rule (from `--redact REGEX` or a profile). The whole
/// match is the secret, unless the regex has capture groups: then the first
/// group that took part is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRule {
    pub name: String,
    pub regex: String,
}

/// One replacement, for `capture --dry-run`: where, which rule, which
/// placeholder. Never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// The bundle entry the text goes to.
    pub origin: String,
    pub rule: String,
    pub placeholder: String,
    /// 1-based line of the replacement in the original text.
    pub line: usize,
}

/// A bad user rule.
#[derive(Debug, thiserror::Error)]
#[error("redaction rule {name:?} is not a valid regular expression: {why}")]
pub struct RedactError {
    pub name: String,
    pub why: String,
}

/// A string that must never be printed: its `Display` and `Debug` are `[secret]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

/// Values of secret-named variables shorter than this are not hunted for
/// in other texts (a `SESSION_ID=3` would redact every `3`).
const MIN_LITERAL: usize = 8;

struct Rule {
    name: String,
    regex: Regex,
    groups: Vec<usize>,
    keep_if: Option<fn(&[u8]) -> bool>,
}

/// Replaces secrets in texts bound for one bundle. A clone shares the
/// compiled rules (and their warm search caches) and goes its own way from
/// the state it was cloned in (the fuzz target clones a fresh one per input).
#[derive(Clone)]
pub struct Redactor {
    rules: Arc<[Rule]>,
    set: Arc<RegexSet>,
    /// Secret value to its placeholder: the same secret, the same placeholder.
    assigned: HashMap<Vec<u8>, String>,
    next: HashMap<String, usize>,
    counts: BTreeMap<String, u64>,
    events: Vec<Redaction>,
    /// Who the user is, to pseudonymise (none: values stay as they are).
    pseudo: Option<Arc<pseudonym::Rules>>,
    assigned_pseudonyms: pseudonym::Assigned,
    substitutions: Vec<Substitution>,
}

/// One pseudonym put in place of a real value, for `capture --dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    pub origin: String,
    pub line: usize,
    pub entry: pseudonym::Entry,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rules.len())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// The built-in rules, the user's `extra` rules, and one literal rule
    /// (`env`) for the values of secret-named variables in `env`.
    pub fn new<'a>(
        extra: &[ExtraRule],
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RedactError> {
        let mut rules = Vec::with_capacity(BUILTIN_RULES.len() + extra.len() + 1);
        let mut literals: Vec<String> = env
            .into_iter()
            .filter(|(name, value)| is_secret_name(name) && worth_hunting(value))
            .map(|(_, value)| regex::escape(value))
            .collect();
        // Longest first, so a value that contains another is replaced whole.
        literals.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        literals.dedup();
        if !literals.is_empty() {
            rules.push(Rule {
                name: "env".to_owned(),
                regex: build(&bytewise(&literals.join("|"))).map_err(|why| RedactError {
                    name: "env".to_owned(),
                    why,
                })?,
                groups: vec![0],
                keep_if: None,
            });
        }
        for def in BUILTIN_RULES {
            rules.push(Rule {
                name: def.name.to_owned(),
                regex: build(&bytewise(def.pattern)).map_err(|why| RedactError {
                    name: def.name.to_owned(),
                    why,
                })?,
                groups: def.groups.to_vec(),
                keep_if: def.keep_if,
            });
        }
        for e in extra {
            let regex = build(&e.regex).map_err(|why| RedactError {
                name: e.name.clone(),
                why,
            })?;
            let groups = if regex.captures_len() > 1 {
                (1..regex.captures_len()).collect()
            } else {
                vec![0]
            };
            rules.push(Rule {
                name: e.name.clone(),
                regex,
                groups,
                keep_if: None,
            });
        }
        let set =
            RegexSet::new(rules.iter().map(|r| r.regex.as_str())).map_err(|e| RedactError {
                name: "(all)".to_owned(),
                why: e.to_string(),
            })?;
        Ok(Self {
            rules: rules.into(),
            set: Arc::new(set),
            assigned: HashMap::new(),
            next: HashMap::new(),
            counts: BTreeMap::new(),
            events: Vec::new(),
            pseudo: None,
            assigned_pseudonyms: pseudonym::Assigned::default(),
            substitutions: Vec::new(),
        })
    }

    /// Also replaces the user's name, home, host and container names, words
    /// and addresses of `id` with pseudonyms, after the secrets, in every
    /// text but bugpack's own output ([`Redactor::scrub`]).
    #[must_use]
    pub fn with_pseudonyms(mut self, id: &pseudonym::Identity) -> Self {
        let rules = pseudonym::Rules::new(id);
        self.pseudo = (!rules.is_empty()).then(|| Arc::new(rules));
        self
    }

    /// Starts the pseudonyms from an earlier map's (see
    /// [`pseudonym::Assigned::seed`]).
    pub fn seed_pseudonyms(&mut self, entries: &[pseudonym::Entry]) {
        self.assigned_pseudonyms.seed(entries);
    }

    /// Every pseudonym handed out, in order: the map `bugpack unmask` reads.
    pub fn pseudonyms(&self) -> &[pseudonym::Entry] {
        self.assigned_pseudonyms.entries()
    }

    /// Every place a pseudonym was put, in order.
    pub fn substitutions(&self) -> &[Substitution] {
        &self.substitutions
    }

    /// `text` with the pseudonyms in place, each new one recorded.
    fn pseudonymise(&mut self, origin: &str, text: Vec<u8>) -> Vec<u8> {
        let Some(rules) = &self.pseudo else {
            return text;
        };
        let Some((out, made)) = pseudonym::apply(rules, &mut self.assigned_pseudonyms, &text)
        else {
            return text;
        };
        self.substitutions
            .extend(made.into_iter().map(|(line, entry)| Substitution {
                origin: origin.to_owned(),
                line,
                entry,
            }));
        out
    }

    /// Redacts `input` bound for bundle entry `origin`.
    pub fn redact(&mut self, origin: &str, input: &[u8]) -> Vec<u8> {
        self.redact_from(origin, input, 0)
    }

    /// Redacts `input` with every rule seeing all of it, and returns only
    /// the redacted text from byte `keep_from` on: a log tail read with some
    /// context before its cut, so that a secret straddling the cut (a key
    /// name before it, the value after; a private key block) is still seen
    /// whole. A secret that straddles `keep_from` itself becomes its
    /// placeholder; secrets wholly before it are neither kept nor counted.
    pub fn redact_from(&mut self, origin: &str, input: &[u8], keep_from: usize) -> Vec<u8> {
        let keep_from = keep_from.min(input.len());
        let spans = self.spans(input);
        let mut out = Vec::with_capacity(input.len() - keep_from);
        let mut at = keep_from;
        let mut line = 1;
        let mut line_at = keep_from;
        for (start, end, index) in spans {
            // Spans never overlap (see `spans`): only those before the cut are skipped.
            if end <= keep_from {
                continue;
            }
            let shown = start.max(keep_from);
            line += count_newlines(&input[line_at..shown]);
            line_at = shown;
            out.extend_from_slice(&input[at..shown]);
            let placeholder = self.placeholder(index, &input[start..end]);
            out.extend_from_slice(placeholder.as_bytes());
            self.events.push(Redaction {
                origin: origin.to_owned(),
                rule: self.rules[index].name.clone(),
                placeholder,
                line,
            });
            at = end;
        }
        out.extend_from_slice(&input[at..]);
        self.pseudonymise(origin, out)
    }

    /// Text for bugpack's own output (terminal, `-v` logs, error messages):
    /// secrets replaced, nothing counted or recorded, no placeholder
    /// numbers handed out (so printing never changes a bundle's bytes).
    /// A secret the bundle already holds shows its bundle placeholder.
    pub fn scrub(&self, input: &str) -> String {
        let bytes = input.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for (start, end, index) in self.spans(bytes) {
            out.extend_from_slice(&bytes[at..start]);
            match self.assigned.get(&bytes[start..end]) {
                Some(p) => out.extend_from_slice(p.as_bytes()),
                None => {
                    out.extend_from_slice(
                        format!("[REDACTED:{}]", self.rules[index].name).as_bytes(),
                    );
                }
            }
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Every secret's span `(start, end, rule)`, sorted by start, without
    /// overlaps: at each start the longest wins (then the earlier rule), and
    /// a match that starts inside an earlier one and runs past it grows the
    /// earlier one, so that no match leaves its tail behind. Unless the
    /// earlier rule saw where its secret ends (it matched context after
    /// it, as `@` after a URL's credentials): then the later match only
    /// reads past that end greedily (the `token` rule would take the host
    /// of `https://x-access-token:TOKEN@host/`).
    fn spans(&self, input: &[u8]) -> Vec<(usize, usize, usize)> {
        // Text that already holds placeholders (redacted twice, or a bundle's
        // own output quoted back) keeps them: no match may touch one.
        let placeholders: Vec<(usize, usize)> = placeholder_pattern()
            .find_iter(input)
            .map(|m| (m.start(), m.end()))
            .collect();
        // (start, end, rule, whether the rule matched context after the end)
        let mut spans: Vec<(usize, usize, usize, bool)> = Vec::new();
        for index in &self.set.matches(input) {
            let rule = &self.rules[index];
            for caps in rule.regex.captures_iter(input) {
                let Some(m) = rule.groups.iter().find_map(|&g| caps.get(g)) else {
                    continue;
                };
                let value = m.as_bytes();
                if value.is_empty() || contains(value, b"[REDACTED:") {
                    continue;
                }
                let whole = caps
                    .get(0)
                    .map_or((m.start(), m.end()), |w| (w.start(), w.end()));
                if placeholders
                    .iter()
                    .any(|&(s, e)| whole.0 < e && s < whole.1)
                {
                    continue;
                }
                if rule.keep_if.is_some_and(|keep| !keep(value)) {
                    continue;
                }
                spans.push((m.start(), m.end(), index, whole.1 > m.end()));
            }
        }
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut merged: Vec<(usize, usize, usize, bool)> = Vec::with_capacity(spans.len());
        for (start, end, index, bounded) in spans {
            match merged.last_mut() {
                Some(last) if start < last.1 => {
                    if !last.3 && end > last.1 {
                        last.1 = end;
                        last.3 = bounded;
                    }
                }
                _ => merged.push((start, end, index, bounded)),
            }
        }
        merged.into_iter().map(|(s, e, i, _)| (s, e, i)).collect()
    }

    /// Redacts text.
    pub fn redact_str(&mut self, origin: &str, input: &str) -> String {
        String::from_utf8_lossy(&self.redact(origin, input.as_bytes())).into_owned()
    }

    /// A command's arguments, each redacted with the rules seeing the whole
    /// command line, so that a secret in the word after a flag that names
    /// one (`--api-key VALUE`) is found as it is in the line itself.
    pub fn redact_argv(&mut self, origin: &str, argv: &[String]) -> Vec<String> {
        let line = argv.join(" ");
        let mut bounds = Vec::with_capacity(argv.len());
        let mut at = 0;
        for arg in argv {
            bounds.push((at, at + arg.len()));
            at += arg.len() + 1;
        }
        let spans = self.spans(line.as_bytes());
        let mut out = Vec::with_capacity(argv.len());
        for (arg, &(from, to)) in argv.iter().zip(&bounds) {
            let mut text = Vec::with_capacity(arg.len());
            let mut pos = from;
            for &(start, end, index) in &spans {
                let (start, end) = (start.max(from), end.min(to));
                if start >= end {
                    continue;
                }
                text.extend_from_slice(&line.as_bytes()[pos..start]);
                let placeholder = self.placeholder(index, &line.as_bytes()[start..end]);
                text.extend_from_slice(placeholder.as_bytes());
                self.events.push(Redaction {
                    origin: origin.to_owned(),
                    rule: self.rules[index].name.clone(),
                    placeholder,
                    line: 1,
                });
                pos = end;
            }
            text.extend_from_slice(&line.as_bytes()[pos..to]);
            let text = self.pseudonymise(origin, text);
            out.push(String::from_utf8_lossy(&text).into_owned());
        }
        out
    }

    /// An environment variable's value: whole when its name looks secret,
    /// else through the rules like any text.
    pub fn redact_env(&mut self, origin: &str, name: &str, value: &str) -> String {
        if is_secret_name(name) && !value.is_empty() {
            let placeholder = self.placeholder_named("env", value.as_bytes());
            self.events.push(Redaction {
                origin: origin.to_owned(),
                rule: "env".to_owned(),
                placeholder: placeholder.clone(),
                line: 1,
            });
            return placeholder;
        }
        self.redact_str(origin, value)
    }

    /// A URL (git remote, proxy setting): credentials and tokens removed.
    pub fn redact_url(&mut self, origin: &str, url: &str) -> String {
        self.redact_str(origin, url)
    }

    /// Replacements made per rule: what the manifest records.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.clone()
    }

    /// Every replacement, in order.
    pub fn events(&self) -> &[Redaction] {
        &self.events
    }

    fn placeholder(&mut self, index: usize, secret: &[u8]) -> String {
        let name = self.rules[index].name.clone();
        self.placeholder_named(&name, secret)
    }

    fn placeholder_named(&mut self, rule: &str, secret: &[u8]) -> String {
        *self.counts.entry(rule.to_owned()).or_insert(0) += 1;
        if let Some(p) = self.assigned.get(secret) {
            return p.clone();
        }
        let n = self.next.entry(rule.to_owned()).or_insert(0);
        *n += 1;
        let p = format!("[REDACTED:{rule}:{n}]");
        self.assigned.insert(secret.to_vec(), p.clone());
        p
    }
}

/// `[REDACTED:rule:n]`.
pub(crate) fn placeholder_pattern() -> &'static Regex {
    static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        // A fixed pattern, covered by the tests: it always compiles.
        #[allow(clippy::expect_used)]
        Regex::new(r"\[REDACTED:[A-Za-z0-9_.\-]+:[0-9]+\]").expect("placeholder pattern")
    })
}

/// The built-in rules and secret literals are ASCII: matched byte by byte
/// (`(?-u)`), their `\b`, `\s` and classes stay within the fast automata
/// even on binary or non-ASCII input, where Unicode word boundaries would
/// drop the whole set to a slow engine (seconds per megabyte).
fn bytewise(pattern: &str) -> String {
    format!("(?-u:{pattern})")
}

fn build(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(32 << 20)
        .build()
        .map_err(|e| {
            e.to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
}

/// A secret-named variable's value worth removing from every other text.
fn worth_hunting(value: &str) -> bool {
    let v = value.trim();
    v.len() >= MIN_LITERAL
        && rules::plausible_value(v.as_bytes())
        && !v.chars().all(|c| c.is_ascii_digit())
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
