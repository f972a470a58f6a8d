//! The redaction engine on fuzzed text with a secret of a chosen rule's
//! shape embedded in it, on a line of its own.
//!
//! Input: byte 0 picks the shape, byte 1 its length, the next bytes are the
//! secret's material (mapped onto the rule's alphabet; the `env` shape's
//! secret is the variable's fixed value), and the rest is the text around
//! it: before the first NUL it precedes the secret's line, after it follows.
//!
//! Oracles: no panic, and the property DESIGN.md promises: no secret a rule
//! matches survives. The secret's last eight characters (random material,
//! never rule syntax) must not appear in the output, placeholders aside,
//! unless the surrounding text itself holds them.

#![no_main]

use std::sync::OnceLock;

use bugpack::redact::{BUILTIN_RULES, ExtraRule, Redactor};
use bugpack_fuzz::redact::{ENV_NAME, ENV_VALUE, EXTRA, SHAPES};
use libfuzzer_sys::fuzz_target;
use regex::bytes::Regex;

/// How many of the secret's last characters must not survive.
const TAIL: usize = 8;

/// A redactor with the built-in rules, a user rule and a secret-named
/// variable, compiled once; each input gets a fresh clone.
fn template() -> &'static Redactor {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    REDACTOR.get_or_init(|| {
        let extra = [ExtraRule {
            name: EXTRA.0.to_owned(),
            regex: EXTRA.1.to_owned(),
        }];
        Redactor::new(&extra, [(ENV_NAME, ENV_VALUE)]).expect("the rules compile")
    })
}

fn placeholders() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\[REDACTED:[A-Za-z0-9_.\-]+:[0-9]+\]").expect("pattern"))
}

fn check_shapes_cover_rules() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        for rule in BUILTIN_RULES {
            assert!(
                SHAPES.iter().any(|s| s.rule == rule.name),
                "built-in rule {} has no shape in this fuzz target: add one",
                rule.name
            );
        }
    });
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return Vec::new();
    }
    (0..=haystack.len() - needle.len())
        .filter(|&i| &haystack[i..i + needle.len()] == needle)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    check_shapes_cover_rules();
    let [pick, len_byte, rest @ ..] = data else {
        return;
    };
    let shape = &SHAPES[usize::from(*pick) % SHAPES.len()];
    let (lo, hi) = shape.len;
    let len = lo + usize::from(*len_byte) % (hi - lo + 1);
    if rest.len() < len {
        return;
    }
    let (material, text) = rest.split_at(len);
    let secret: Vec<u8> = material
        .iter()
        .map(|&b| shape.alphabet[usize::from(b) % shape.alphabet.len()])
        .collect();
    let (prefix, suffix) = match text.iter().position(|&b| b == 0) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, &[][..]),
    };
    // The variable's value is fixed when the redactor is made, once.
    let secret = if shape.rule == "env" {
        ENV_VALUE.as_bytes().to_vec()
    } else {
        secret
    };
    let mut redactor = template().clone();

    let mut input = Vec::with_capacity(text.len() + secret.len() + 128);
    input.extend_from_slice(prefix);
    input.push(b'\n');
    input.extend_from_slice(shape.before.as_bytes());
    let start = input.len();
    input.extend_from_slice(&secret);
    let end = input.len();
    input.extend_from_slice(shape.after.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(suffix);

    let out = redactor.redact("fuzz", &input);

    // A rule's own keep-if check (not a credential) may spare the value.
    let spared = BUILTIN_RULES
        .iter()
        .find(|r| r.name == shape.rule)
        .and_then(|r| r.keep_if)
        .is_some_and(|keep| !keep(&secret));
    let tail = &secret[secret.len() - TAIL..];
    let elsewhere = find_all(&input, tail)
        .into_iter()
        .any(|at| at < start || at + TAIL > end);
    if spared || elsewhere {
        return;
    }
    let scrubbed = placeholders().replace_all(&out, &b"\0"[..]);
    assert!(
        find_all(&scrubbed, tail).is_empty(),
        "rule {}: the end of its secret survived\ninput:  {:?}\noutput: {:?}",
        shape.rule,
        String::from_utf8_lossy(&input),
        String::from_utf8_lossy(&out),
    );
});
