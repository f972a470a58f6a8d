//! `bugpack replay --shard` and `bugpack report merge` through the binary:
//! shards together run exactly the runs of the whole replay, their merge is
//! the whole replay's report, and merge refuses what does not belong together.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use crate::support::Sandbox;
use crate::support::reports::{JReport, JShard, scenario};
use crate::support::zipper::BundleSpec;

/// A scenario whose outcome is a function of the run's seed: it reproduces
/// (exit 3) when the seed's last digit is 0 to 4.
pub const SEEDED: &str = "name: seeded\nrun: 'case \"$BUGPACK_SEED\" in *[0-4]) echo \"seed $BUGPACK_SEED\"; exit 3;; esac; echo fine'\ntimeout: 10s\nexpect: {exit: 3}\n";

/// What the seeded scenario does with `seed`.
pub fn seeded_outcome(seed: u64) -> &'static str {
    if seed % 10 <= 4 {
        "reproduced"
    } else {
        "passed"
    }
}

/// Four cells, two of them warm: 8 units of work with `--runs 3`.
pub const AXES: [&str; 4] = ["--timing", "none,cpu1", "--cache", "cold,warm"];

pub fn read_report(sb: &Sandbox, rel: &str) -> JReport {
    let text = fs::read_to_string(sb.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}\n{text}"))
}

/// Replays with `--yes --json OUT`; returns the report and the exit code.
pub fn replay_to(sb: &Sandbox, source: &str, args: &[&str], out: &str) -> (JReport, i32) {
    let _ = fs::remove_file(sb.path(out));
    let run = sb
        .bugpack()
        .args(["replay", source, "--yes", "--json", out])
        .args(args)
        .run();
    let code = run.code.unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "replay {args:?} exited {code}\n{}",
        run.stderr
    );
    (read_report(sb, out), code)
}

/// One run as the report tells it: cell axes, index, seed, outcome, reason, exit code.
pub type RunKey = (String, u32, u64, String, String, Option<i32>);

pub fn runs_of(r: &JReport) -> Vec<RunKey> {
    let mut out = Vec::new();
    for c in &r.cells {
        let axes = format!(
            "{}/{}/{}",
            c.axes["timing"], c.axes["proxy"], c.axes["cache"]
        );
        for x in &c.results {
            out.push((
                axes.clone(),
                x.index,
                x.seed,
                x.outcome.clone(),
                x.reason.clone(),
                x.exit_code,
            ));
        }
    }
    out
}

/// `merged` is the report `whole` made, run for run; its medians are the
/// medians of its own judged runs (durations are measured, so they differ).
pub fn assert_same_as_whole(merged: &JReport, whole: &JReport) {
    assert_eq!(merged.verdict, whole.verdict);
    assert_eq!(merged.seed, whole.seed);
    assert_eq!(merged.scenario, whole.scenario);
    assert_eq!(merged.bundle_sha256, whole.bundle_sha256);
    assert_eq!(merged.scenario_sha256, whole.scenario_sha256);
    assert_eq!(merged.matrix, whole.matrix);
    assert_eq!(merged.shard, None);
    let info = merged.merged.as_ref().expect("a merged report says so");
    assert!(info.missing.is_empty(), "{info:?}");
    assert_eq!(merged.cells.len(), whole.cells.len());
    for (m, w) in merged.cells.iter().zip(&whole.cells) {
        assert_eq!(m.axes, w.axes);
        assert_eq!(
            (m.runs, m.reproduced, m.passed, m.errors),
            (w.runs, w.reproduced, w.passed, w.errors),
            "{:?}",
            m.axes
        );
        assert_eq!(m.rate, w.rate, "{:?}", m.axes);
        assert_eq!(m.ci95, w.ci95, "{:?}", m.axes);
        assert_eq!(m.reason, w.reason, "{:?}", m.axes);
        // Errored runs never ran to an end: the median leaves them out.
        let mut durations: Vec<u64> = m
            .results
            .iter()
            .filter(|x| x.outcome != "error")
            .map(|x| x.duration_ms)
            .collect();
        durations.sort_unstable();
        let lower_middle = durations
            .get(durations.len().saturating_sub(1) / 2)
            .copied();
        assert_eq!(m.median_ms, lower_middle, "{:?}", m.axes);
        let indexes: Vec<u32> = m.results.iter().map(|x| x.index).collect();
        let mut sorted = indexes.clone();
        sorted.sort_unstable();
        assert_eq!(indexes, sorted, "results in index order");
    }
    let mut a = runs_of(merged);
    let mut b = runs_of(whole);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn shards_together_run_exactly_the_whole_replay_and_merge_into_its_report() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "seeded", SEEDED, &[]);
    let base: Vec<&str> = [&["--runs", "3", "--seed", "4242"][..], &AXES].concat();
    let (whole, whole_code) = replay_to(&sb, &s, &base, "whole.json");
    let all = runs_of(&whole);
    assert_eq!(all.len(), 12, "4 cells x 3 runs");
    for (_, _, seed, outcome, _, _) in &all {
        assert_eq!(outcome, seeded_outcome(*seed), "seed {seed}");
    }
    let outcomes: BTreeSet<&str> = all.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(outcomes.len(), 2, "seed 4242 gives both outcomes: {all:?}");
    assert_eq!(whole_code, 0);
    let matrix = whole.matrix.expect("every report carries its matrix");
    assert_eq!(
        (
            matrix.cells,
            matrix.runs,
            matrix.total_runs,
            matrix.timeout_ms
        ),
        (4, 3, 12, 10_000)
    );
    assert!(
        whole
            .scenario_sha256
            .as_ref()
            .is_some_and(|s| s.len() == 64)
    );
    assert_eq!(whole.shard, None);

    // 8 units (6 cold runs, 2 warm cells); 11 shards leave 3 empty.
    for count in [1_u32, 2, 3, 11] {
        let mut files = Vec::new();
        let mut seen: BTreeMap<(String, u32), u32> = BTreeMap::new();
        let mut empty = 0;
        for index in 1..=count {
            let file = format!("n{count}-s{index}.json");
            let shard = format!("{index}/{count}");
            let args: Vec<&str> = [&base[..], &["--shard", &shard]].concat();
            let (r, code) = replay_to(&sb, &s, &args, &file);
            assert_eq!(r.shard, Some(JShard { index, count }));
            assert_eq!(r.matrix, Some(matrix), "every shard names the whole matrix");
            assert_eq!(r.seed, 4242);
            assert_eq!(r.scenario_sha256, whole.scenario_sha256);
            assert_eq!(r.cells.len(), 4, "every cell is listed, run or not");
            let runs = runs_of(&r);
            if runs.is_empty() {
                empty += 1;
                assert_eq!((code, r.verdict.as_str()), (1, "not-reproduced"));
            }
            for key in &runs {
                assert!(
                    all.contains(key),
                    "shard {shard} ran {key:?}, not in the whole replay"
                );
                assert!(
                    seen.insert((key.0.clone(), key.1), index).is_none(),
                    "{key:?} ran twice"
                );
            }
            // A warm cell's runs stay together.
            for c in r.cells.iter().filter(|c| c.axes["cache"] == "warm") {
                assert!(c.results.is_empty() || c.results.len() == 3, "{c:?}");
            }
            files.push(file);
        }
        assert_eq!(seen.len(), all.len(), "{count} shards ran every run");
        assert_eq!(
            empty,
            if count == 11 { 3 } else { 0 },
            "8 units over {count} shards"
        );

        let out = sb
            .bugpack()
            .args(["report", "merge"])
            .args(&files)
            .args(["--json", "merged.json", "--markdown", "merged.md"])
            .run()
            .code(whole_code);
        let merged = read_report(&sb, "merged.json");
        assert_same_as_whole(&merged, &whole);
        let info = merged.merged.as_ref().unwrap();
        assert_eq!(info.count, count);
        assert_eq!(info.present, (1..=count).collect::<Vec<_>>());
        assert!(
            out.stdout.contains("timing  proxy  cache  reproduced"),
            "{}",
            out.stdout
        );
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        let md = fs::read_to_string(sb.path("merged.md")).unwrap();
        assert!(
            md.contains("| timing | proxy | cache | reproduced |"),
            "{md}"
        );
    }

    // A missing shard: merged with a warning, and the report names it.
    let out = sb
        .bugpack()
        .args(["report", "merge", "n3-s1.json", "n3-s3.json", "--json", "-"])
        .run();
    assert!(
        out.stderr.contains(
            "warning: 1 of 3 shards missing (2): the merged report covers only the shards given"
        ),
        "{}",
        out.stderr
    );
    let partial: JReport = serde_json::from_str(&out.stdout).unwrap();
    let info = partial.merged.clone().unwrap();
    assert_eq!((info.present, info.missing), (vec![1, 3], vec![2]));
    let n3s2 = read_report(&sb, "n3-s2.json");
    assert_eq!(
        runs_of(&partial).len() + runs_of(&n3s2).len(),
        all.len(),
        "the partial report holds all but the missing shard's runs"
    );
    // And the table says so too.
    sb.bugpack()
        .args(["report", "merge", "n3-s1.json", "n3-s3.json"])
        .run()
        .stdout_has("1 of 3 shards missing (2), partial results");
    // --expect-fixed never passes a partial merge.
    let fixed = scenario(
        &sb,
        "fixed",
        "name: fixed\nrun: 'true'\nexpect: {exit: 3}\n",
        &[],
    );
    for index in 1..=2 {
        let shard = format!("{index}/3");
        replay_to(
            &sb,
            &fixed,
            &["--runs", "3", "--seed", "1", "--shard", &shard],
            &format!("f{index}.json"),
        );
    }
    sb.bugpack()
        .args(["report", "merge", "f1.json", "f2.json", "--expect-fixed"])
        .run()
        .code(1);
    replay_to(
        &sb,
        &fixed,
        &["--runs", "3", "--seed", "1", "--shard", "3/3"],
        "f3.json",
    );
    sb.bugpack()
        .args([
            "report",
            "merge",
            "f1.json",
            "f2.json",
            "f3.json",
            "--expect-fixed",
        ])
        .run()
        .success()
        .stdout_has("not reproduced in 3 runs");
}

#[test]
fn merge_refuses_what_is_not_one_replay() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\nexpect: {exit: 3}\n", &[]);
    let replay = |args: &[&str], out: &str| replay_to(&sb, &s, args, out);
    replay(&["--runs", "2", "--seed", "5", "--shard", "1/2"], "a0.json");
    replay(&["--runs", "2", "--seed", "5", "--shard", "2/2"], "a1.json");
    replay(
        &["--runs", "2", "--seed", "6", "--shard", "2/2"],
        "seed.json",
    );
    replay(
        &["--runs", "3", "--seed", "5", "--shard", "2/2"],
        "runs.json",
    );
    replay(
        &["--runs", "2", "--seed", "5", "--shard", "2/3"],
        "count.json",
    );
    replay(
        &[
            "--runs", "2", "--seed", "5", "--shard", "2/2", "--cache", "warm",
        ],
        "cells.json",
    );
    replay(&["--runs", "2", "--seed", "5"], "whole.json");
    fs::copy(sb.path("a0.json"), sb.path("a0-copy.json")).unwrap();

    let refused = |files: &[&str], needle: &str| {
        sb.bugpack()
            .args(["report", "merge"])
            .args(files)
            .args(["--json", "out.json"])
            .run()
            .code(2)
            .one_line_error()
            .stderr_has(needle);
        assert!(
            !sb.path("out.json").exists(),
            "a refused merge wrote a report"
        );
    };
    refused(
        &["a0.json", "seed.json"],
        "seed.json is not part of the same replay as a0.json: seed 6 there, 5 in a0.json",
    );
    refused(&["a0.json", "runs.json"], "matrix 1 cells x 3 runs");
    refused(
        &["a0.json", "count.json"],
        "shard count 3 there, 2 in a0.json",
    );
    refused(
        &["a0.json", "cells.json"],
        "cells none/none/warm there, none/none/cold in a0.json",
    );
    refused(
        &["a0.json", "a1.json", "a0-copy.json"],
        "a0.json and a0-copy.json both hold shard 1/2",
    );
    refused(&["whole.json", "whole.json"], "both hold the whole replay");
    refused(
        &["a0.json", "whole.json"],
        "shard count 1 there, 2 in a0.json",
    );

    // A scenario directory is named by its files: change one, and it is another replay.
    sb.write("ok/extra.txt", "changed");
    replay(
        &["--runs", "2", "--seed", "5", "--shard", "2/2"],
        "changed.json",
    );
    refused(&["a0.json", "changed.json"], "scenario directory SHA-256");

    // Two bundles of the same scenario are two replays.
    let one = BundleSpec::valid();
    let two = BundleSpec::valid().with_file("steps.md", "other steps\n");
    sb.write("one.zip", one.zip().bytes());
    sb.write("two.zip", two.zip().bytes());
    replay_to(
        &sb,
        "one.zip",
        &["--runs", "2", "--seed", "5", "--shard", "1/2"],
        "b0.json",
    );
    replay_to(
        &sb,
        "two.zip",
        &["--runs", "2", "--seed", "5", "--shard", "2/2"],
        "b1.json",
    );
    refused(&["b0.json", "b1.json"], "bundle SHA-256");
    refused(
        &["b0.json", "a1.json"],
        "a1.json is not part of the same replay as b0.json",
    );

    // Files that are no reports.
    sb.write("notes.txt", "hello\n");
    sb.write(
        "half.log",
        "-----BEGIN BUGPACK REPORT-----\n{\"bugpack\": \"0.1.0\"\n",
    );
    sb.write("other.json", "{\"name\": \"not a report\"}\n");
    refused(&["missing.json"], "missing.json: no such file");
    refused(&["notes.txt"], "notes.txt holds no bugpack replay report");
    refused(
        &["half.log"],
        "half.log: the report that starts at line 1 never ends",
    );
    refused(
        &["other.json"],
        "other.json is not a bugpack replay report: missing field",
    );
    sb.bugpack()
        .args(["report", "merge"])
        .run()
        .code(2)
        .stderr_has("FILE");

    // And what belongs together merges, from JSON and from logs alike.
    let a1 = fs::read_to_string(sb.path("a1.json")).unwrap();
    sb.write(
        "pod-1.log",
        format!(
            "warning: something\n-----BEGIN BUGPACK REPORT-----\n{a1}-----END BUGPACK REPORT-----\n"
        ),
    );
    sb.bugpack()
        .args([
            "report",
            "merge",
            "a0.json",
            "pod-1.log",
            "--json",
            "out.json",
        ])
        .run()
        .code(1)
        .stdout_has("not reproduced in 2 runs");
}

#[test]
fn bad_shards_and_until_repro_with_a_shard_are_usage_errors() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\n", &[]);
    for (shard, needle) in [
        ("4/3", "the shards of 3 are 1/3 to 3/3"),
        ("0/3", "the shards of 3 are 1/3 to 3/3"),
        ("1/0", "COUNT must be at least 1"),
        ("one/3", "give INDEX/COUNT with INDEX counting from 1"),
        ("2", "give INDEX/COUNT"),
    ] {
        sb.bugpack()
            .args(["replay", &s, "--yes", "--shard", shard])
            .run()
            .code(2)
            .one_line_error()
            .stderr_has(needle);
    }
    sb.bugpack()
        .args(["replay", &s, "--yes", "--shard", "1/2", "--until-repro"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("--until-repro cannot be used with --shard");
    sb.bugpack()
        .args(["replay", "--help"])
        .run()
        .success()
        .stdout_has("INDEX/COUNT, INDEX counting from 1")
        .stdout_has("nextest");
}
