//! `--proxy` values: parsing, errors, and display that parses back.

use crate::proxy::{Mode, ModeError};

#[test]
fn modes_parse_with_defaults_and_parameters() {
    let cases = [
        ("pass", Mode::Pass),
        ("cache", Mode::Cache),
        ("rfc", Mode::Rfc),
        ("slow", Mode::Slow { ms: 300 }),
        ("slow:150", Mode::Slow { ms: 150 }),
        ("slow:0", Mode::Slow { ms: 0 }),
        ("flaky", Mode::Flaky { p: 0.1 }),
        ("flaky:0.25", Mode::Flaky { p: 0.25 }),
        ("flaky:1", Mode::Flaky { p: 1.0 }),
        ("flaky:0", Mode::Flaky { p: 0.0 }),
        ("status:503", Mode::Status { code: 503, p: 1.0 }),
        ("status:500:0.25", Mode::Status { code: 500, p: 0.25 }),
        ("truncate:0", Mode::Truncate { bytes: 0 }),
        (
            "drop-header:ETag",
            Mode::DropHeader {
                name: "etag".into(),
            },
        ),
        ("stale:30", Mode::Stale { secs: 30 }),
    ];
    for (text, mode) in cases {
        assert_eq!(text.parse::<Mode>(), Ok(mode), "{text}");
    }
}

#[test]
fn display_round_trips_and_keeps_defaults_bare() {
    for mode in [
        Mode::Pass,
        Mode::Cache,
        Mode::Rfc,
        Mode::Slow { ms: 300 },
        Mode::Slow { ms: 7 },
        Mode::Flaky { p: 0.1 },
        Mode::Flaky { p: 0.3 },
        Mode::Flaky { p: 1.0 / 3.0 },
        Mode::Status { code: 503, p: 1.0 },
        Mode::Status { code: 429, p: 0.5 },
        Mode::Truncate { bytes: 10 },
        Mode::DropHeader {
            name: "content-length".into(),
        },
        Mode::Stale { secs: 5 },
    ] {
        assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode.clone()), "{mode}");
    }
    assert_eq!(Mode::Status { code: 503, p: 1.0 }.to_string(), "status:503");
    assert_eq!(Mode::Slow { ms: 300 }.to_string(), "slow");
    assert_eq!(Mode::Slow { ms: 150 }.to_string(), "slow:150");
    assert_eq!(Mode::Flaky { p: 0.25 }.to_string(), "flaky:0.25");
    assert_eq!(Mode::Flaky { p: 0.1 }.to_string(), "flaky");
}

#[test]
fn bad_values_say_what_is_expected() {
    for bad in ["none", "", "PASS", "slowly", "cache:1", "pass:"] {
        assert!(bad.parse::<Mode>().is_err(), "{bad:?}");
    }
    let err = "none".parse::<Mode>().unwrap_err();
    assert!(matches!(err, ModeError::Unknown(_)));
    assert!(
        err.to_string()
            .contains("pass, cache, rfc, slow[:MS], flaky[:P], status:CODE[:P]")
    );
    for bad in ["slow:-1", "slow:1.5", "slow:", "slow:99999999999"] {
        let err = bad.parse::<Mode>().unwrap_err();
        assert!(matches!(err, ModeError::BadDelay(_)), "{bad}: {err}");
        assert!(err.to_string().contains("slow:150"), "{err}");
    }
    for bad in [
        "flaky:1.5",
        "flaky:-0.1",
        "flaky:NaN",
        "flaky:inf",
        "flaky:x",
    ] {
        let err = bad.parse::<Mode>().unwrap_err();
        assert!(matches!(err, ModeError::BadProbability(_)), "{bad}: {err}");
    }
    for (bad, example) in [
        ("status", "status:503:0.2"),
        ("status:99", "status:503:0.2"),
        ("status:600", "status:503:0.2"),
        ("status:503:2", "status:503:0.2"),
        ("truncate:x", "truncate:100"),
        ("drop-header:", "drop-header:ETag"),
        ("drop-header:a b", "drop-header:ETag"),
        ("stale:-1", "stale:30"),
    ] {
        let err = bad.parse::<Mode>().unwrap_err();
        assert!(matches!(err, ModeError::BadParameter(..)), "{bad}: {err}");
        assert!(err.to_string().contains(example), "{err}");
    }
}

#[test]
fn modes_serialize_as_their_text() {
    let json = serde_json::to_string(&Mode::Slow { ms: 150 }).unwrap();
    assert_eq!(json, "\"slow:150\"");
    assert_eq!(
        serde_json::from_str::<Mode>(&json).unwrap(),
        Mode::Slow { ms: 150 }
    );
    assert!(serde_json::from_str::<Mode>("\"bogus\"").is_err());
}
