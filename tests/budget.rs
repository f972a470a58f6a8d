//! `--budget DUR|N`: runs until the budget is spent, spreads them to the
//! cells likelier to reproduce, stops at the first reproduction with
//! `--until-repro`, prints status lines without a terminal, and bounds the
//! rate that zero reproductions leave.

use crate::support::Sandbox;
use crate::support::reports::{JReport, replay_json, scenario};

fn runs_of(r: &JReport, proxy: &str) -> u32 {
    r.cells
        .iter()
        .find(|c| c.axes["proxy"] == proxy)
        .map_or_else(|| panic!("no cell {proxy}"), |c| c.runs)
}

/// A scenario that fails only where no proxy is set: in one cell of a
/// `--proxy` matrix.
fn fails_without_proxy(sb: &Sandbox) -> String {
    scenario(
        sb,
        "one",
        "name: one\nrun: 'test -n \"$http_proxy\" || exit 1'\nexpect: {exit: 1}\n",
        &[],
    )
}

#[test]
fn a_cell_that_reproduces_gets_most_of_the_budget() {
    let sb = Sandbox::new();
    // One cell of six reproduces.
    let s = fails_without_proxy(&sb);
    let r = replay_json(
        &sb,
        &s,
        &[
            "--budget",
            "120",
            "--timing",
            "none",
            "--proxy",
            "none,pass,slow:1,flaky:0,rfc,cache",
            "--seed",
            "3",
        ],
        0,
    );
    let budget = r.budget.as_ref().expect("budget");
    assert_eq!(
        (
            budget.limit.as_str(),
            budget.runs,
            budget.allocation.as_str()
        ),
        ("120 runs", 120, "thompson")
    );
    assert_eq!(budget.rate_below, None, "it reproduced");
    // The none cell reproduces every time: a fix shows itself 10× rarer
    // there with 0 in 29 runs ((1 - 0.1)^29 < 0.05).
    assert_eq!(budget.fix_runs, Some(29));
    let m = r.matrix.as_ref().unwrap();
    assert_eq!((m.runs, m.total_runs), (0, 120));
    for proxy in ["pass", "slow:1", "flaky:0", "rfc", "cache"] {
        let n = runs_of(&r, proxy);
        assert!(n >= budget.warm_up, "{proxy} warmed up: {n}");
    }
    // Uniform allocation would give it 20.
    assert!(
        runs_of(&r, "none") > 80,
        "{:?}",
        r.cells.iter().map(|c| c.runs).collect::<Vec<_>>()
    );
}

#[test]
fn the_budget_line_says_how_the_runs_were_spread() {
    let sb = Sandbox::new();
    let s = fails_without_proxy(&sb);
    let spread = |budget: &str| {
        let out = sb
            .bugpack()
            .args([
                "replay", &s, "--yes", "--budget", budget, "--timing", "none",
            ])
            .args(["--proxy", "none,pass,cache", "--seed", "3"])
            .run()
            .code(0);
        out.stdout
            .lines()
            .find(|l| l.contains("spread by Thompson sampling"))
            .unwrap_or_else(|| panic!("no budget line: {}", out.stdout))
            .to_owned()
    };
    // Six runs over three cells never leave the warm-up: no cell had more.
    let even = spread("6");
    assert!(even.ends_with("; 2 to each cell"), "{even}");
    // Past it, the cell that reproduces takes the most.
    let skewed = spread("60");
    assert!(skewed.contains("; most to none/none/cold ("), "{skewed}");
}

#[test]
fn only_the_first_reproductions_keep_their_output() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "loud",
        "name: loud\nrun: 'echo boom; exit 1'\nexpect: {exit: 1}\n",
        &[],
    );
    let r = replay_json(&sb, &s, &["--budget", "12", "--timing", "none"], 0);
    let kept = r.budget.as_ref().unwrap().kept_in_full;
    let results = &r.cells[0].results;
    assert_eq!((results.len(), r.cells[0].reproduced), (12, 12));
    let with_output = results.iter().filter(|r| r.stdout_tail.is_some()).count();
    assert_eq!(with_output, usize::try_from(kept).unwrap());
    assert!(
        results.iter().all(|r| r.reason == "exit"),
        "every one keeps its reason"
    );
}

#[test]
fn until_repro_stops_a_budget_at_the_first_reproduction() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "sixth",
        "name: sixth\nrun: 'test \"$BUGPACK_RUN_INDEX\" != 5'\nexpect: {exit: 1}\n",
        &[],
    );
    let r = replay_json(
        &sb,
        &s,
        &[
            "--budget",
            "1000",
            "--until-repro",
            "--jobs",
            "1",
            "--timing",
            "none",
        ],
        0,
    );
    assert_eq!(r.budget.as_ref().unwrap().runs, 6);
    assert_eq!((r.cells[0].runs, r.cells[0].reproduced), (6, 1));
}

#[test]
fn a_time_budget_keeps_starting_runs_until_it_is_spent() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "nap",
        "name: nap\nrun: sleep 0.1\nexpect: {exit: 1}\n",
        &[],
    );
    let r = replay_json(
        &sb,
        &s,
        &["--budget", "2s", "--jobs", "1", "--timing", "none"],
        1,
    );
    assert!(r.duration_ms >= 2000, "{}", r.duration_ms);
    let runs = r.budget.as_ref().unwrap().runs;
    assert!((3..=21).contains(&runs), "{runs}");
}

#[test]
fn zero_reproductions_bound_the_rate_by_the_rule_of_three() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "fixed",
        "name: fixed\nrun: 'true'\nexpect: {exit: 1}\n",
        &[],
    );
    let r = replay_json(
        &sb,
        &s,
        &["--budget", "300", "--expect-fixed", "--timing", "none"],
        0,
    );
    let bound = r.budget.as_ref().unwrap().rate_below.expect("rate_below");
    assert!((bound - 3.0 / 300.0).abs() < 0.0002, "{bound}");
    sb.bugpack()
        .args([
            "replay",
            &s,
            "--yes",
            "--budget",
            "300",
            "--expect-fixed",
            "--timing",
            "none",
        ])
        .run()
        .code(0)
        .stdout_has("0 in 300 runs: rate < 0.99% at 95%");
}

#[test]
fn without_a_terminal_a_status_line_comes_every_30_seconds() {
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "slow",
        "name: slow\nrun: sleep 0.4\nexpect: {exit: 1}\n",
        &[],
    );
    let out = sb
        .bugpack()
        .args([
            "replay", &s, "--yes", "--budget", "33s", "--jobs", "1", "--timing", "none",
        ])
        .run()
        .code(1);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(" runs, 0 reproduced (0.00%), "))
        .unwrap_or_else(|| panic!("no status line: {}", out.stderr));
    let runs: u64 = line.split(' ').next().unwrap().parse().unwrap();
    assert!(runs >= 30, "{line}");
    assert!(line.ends_with(" runs/s"), "{line}");
}

#[test]
fn a_budget_without_timing_tries_every_timing_this_machine_can_give() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\nexpect: {exit: 1}\n", &[]);
    let r = replay_json(&sb, &s, &["--budget", "40"], 1);
    let timings: Vec<&str> = r.cells.iter().map(|c| c.axes["timing"].as_str()).collect();
    for t in ["none", "slow", "jitter", "load", "chaos", "noise"] {
        assert!(timings.contains(&t), "{t} missing: {timings:?}");
    }
    assert!(
        r.cells.iter().all(|c| c.errors == 0),
        "only timings that work here: {:?}",
        r.cells
            .iter()
            .map(|c| (&c.axes["timing"], c.errors))
            .collect::<Vec<_>>()
    );
}

#[test]
fn bad_budgets_are_usage_errors() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\n", &[]);
    for args in [
        &["--budget", "0"][..],
        &["--budget", "soon"],
        &["--budget", "10", "--shard", "1/2"],
        &["--budget", "10", "--cache", "warm"],
    ] {
        sb.bugpack()
            .args(["replay", &s, "--yes"])
            .args(args)
            .run()
            .code(2)
            .one_line_error()
            .stderr_has("--budget");
    }
}
