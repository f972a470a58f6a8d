//! Arbitrary bytes as `bugpack.yaml`: the untrusted-YAML rules, the format
//! check and the JSON Schema, as every reader applies them.
//!
//! Oracles: no panic, and a manifest that parses survives its own writer:
//! what `to_yaml` makes of it parses back to the same value (otherwise a
//! bundle bugpack writes could be one bugpack refuses).

#![no_main]

use bugpack::bundle::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = Manifest::parse(data) else {
        return;
    };
    let bytes = manifest.to_yaml().expect("a parsed manifest serialises");
    let again = Manifest::parse(&bytes).unwrap_or_else(|e| {
        panic!(
            "bugpack refuses its own manifest: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(again, manifest);
});
