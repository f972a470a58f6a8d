//! Arbitrary bytes as `scenario.yaml` (from a bundle or a directory):
//! parse, schema, then `resolve` (durations, regexes, service names).
//!
//! Oracles: no panic, and a scenario that parses survives its own writer
//! (`capture` writes scenarios with `to_yaml`): it parses back to the same
//! value and resolves the same way.

#![no_main]

use bugpack::scenario::ScenarioFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = ScenarioFile::parse(data) else {
        return;
    };
    let resolved = file.resolve();
    let text = file.to_yaml().expect("a parsed scenario serialises");
    let again = ScenarioFile::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("bugpack refuses its own scenario: {e}\n{text}"));
    assert_eq!(again, file);
    assert_eq!(again.resolve().is_ok(), resolved.is_ok());
});
