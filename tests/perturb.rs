//! `chaos`, `noise`, `quota:PCT` and `delay`: each changes what the run
//! sees, as a probe that measures its own CPU set, scheduling policy, CPU
//! share and thread starts tells, and each leaves nothing behind.

use serde_json::Value;

use crate::support::reports::{JReport, replay_json, scenario};
use crate::support::{MACHINE, Sandbox};

/// For 0.8 s: how many CPU sets it ran on, how often it found itself
/// `SCHED_IDLE`, and the share of a CPU its busy loop got.
const PROBE: &str = "import json, os, sys, time\n\
                     sets, idle, start = set(), 0, time.monotonic()\n\
                     cpu = time.thread_time()\n\
                     while time.monotonic() - start < 0.8:\n    \
                     for _ in range(2000): pass\n    \
                     sets.add(tuple(sorted(os.sched_getaffinity(0))))\n    \
                     if os.sched_getscheduler(0) == os.SCHED_IDLE: idle += 1\n\
                     share = (time.thread_time() - cpu) / (time.monotonic() - start)\n\
                     print(json.dumps({'sets': len(sets), 'idle': idle, 'share': share}))\n\
                     sys.exit(1)\n";

fn seen(r: &JReport, timing: &str) -> (Value, Value) {
    let cell = r
        .cells
        .iter()
        .find(|c| c.axes["timing"] == timing)
        .unwrap_or_else(|| panic!("no cell {timing}"));
    let run = &cell.results[0];
    let out = run.stdout_tail.as_deref().unwrap_or_default();
    let probe = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{timing}: {e}: {out:?} {:?}", run.stderr_tail));
    (
        probe,
        run.axes_detail
            .get("timing")
            .cloned()
            .unwrap_or(Value::Null),
    )
}

#[test]
fn chaos_noise_and_quota_change_what_the_run_sees() {
    let _turn = MACHINE.lock();
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "probe",
        "name: probe\nrun: python3 probe.py\nexpect: {exit: 1}\n",
        &[("probe.py", PROBE)],
    );
    let r = replay_json(
        &sb,
        &s,
        &[
            "--timing",
            "none,chaos,noise,quota:20",
            "--runs",
            "1",
            "--jobs",
            "1",
        ],
        0,
    );
    let (none, _) = seen(&r, "none");
    assert_eq!(
        (none["sets"].as_u64(), none["idle"].as_u64()),
        (Some(1), Some(0)),
        "{none}"
    );

    let (chaos, detail) = seen(&r, "chaos");
    let cpus = detail["cpus"].as_array().map_or(0, Vec::len);
    if cpus > 1 {
        assert!(
            chaos["sets"].as_u64() > Some(1),
            "its CPU set changed: {chaos}"
        );
    }
    assert!(chaos["idle"].as_u64() > Some(0), "it was starved: {chaos}");
    assert!(detail["moves"].as_u64() > Some(0), "{detail}");

    let (_, detail) = seen(&r, "noise");
    let threads = detail["threads"].as_u64().unwrap_or(0);
    assert!(threads >= 1, "{detail}");
    assert_eq!(
        detail["kinds"].as_array().map(Vec::len),
        usize::try_from(threads).ok()
    );

    let (quota, detail) = seen(&r, "quota:20");
    assert!(
        quota["share"].as_f64() < Some(0.35),
        "a fifth of a CPU, not more: {quota}"
    );
    assert!(detail["throttled"].as_u64() > Some(0), "{detail}");
    let note = r
        .cells
        .iter()
        .find(|c| c.axes["timing"] == "quota:20")
        .and_then(|c| c.note.clone());
    assert!(note.unwrap_or_default().contains("quota: 20% of one CPU"));

    // Nothing left: no cgroup, no noise file.
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/cpu"] {
        let left: Vec<String> = std::fs::read_dir(root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("bugpack-quota-"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{root}: {left:?}");
    }
    let tmp: Vec<String> = sb
        .listing()
        .into_iter()
        .filter(|p| p.contains("bugpack-noise"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn quota_takes_a_percentage_of_one_cpu() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\n", &[]);
    for bad in ["quota:0", "quota:1001", "quota:half", "chaotic"] {
        sb.bugpack()
            .args(["replay", &s, "--yes", "--timing", bad])
            .run()
            .code(2)
            .one_line_error()
            .stderr_has("quota[:PCT]");
    }
}

/// Starts five threads one after another and prints the shortest time a
/// `Thread.start()` took, which returns once the new thread runs.
const THREAD_PROBE: &str = "import json, sys, threading, time\n\
                            lat = []\n\
                            for _ in range(5):\n    \
                            t = threading.Thread(target=lambda: None)\n    \
                            s = time.monotonic_ns(); t.start(); lat.append(time.monotonic_ns() - s)\n    \
                            t.join()\n\
                            print(json.dumps({'min_start_us': min(lat) // 1000}))\n\
                            sys.exit(1)\n";

#[test]
fn delay_holds_new_threads_and_counts_the_calls_it_slept_at() {
    let _turn = MACHINE.lock();
    let sb = Sandbox::new();
    // The library is for the run step only: a setup step that saw it fails.
    let s = scenario(
        &sb,
        "threads",
        "name: threads\nsetup: ['test -z \"$LD_PRELOAD\"']\nrun: python3 probe.py\nexpect: {exit: 1}\n",
        &[("probe.py", THREAD_PROBE)],
    );
    let r = replay_json(
        &sb,
        &s,
        &[
            "--timing", "delay", "--runs", "8", "--jobs", "1", "--seed", "1",
        ],
        0,
    );
    let cell = &r.cells[0];
    assert_eq!(cell.reproduced, 8, "{:?}", cell.results);
    let mut together = 0;
    for run in &cell.results {
        let detail = &run.axes_detail["timing"];
        let programs: Vec<&str> = detail["programs"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(programs.contains(&"python3"), "{detail}");
        assert!(detail["calls"].as_u64() > Some(0), "{detail}");
        let out = run.stdout_tail.as_deref().unwrap_or_default();
        let probe: Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        if detail["profile"]
            .as_str()
            .is_some_and(|p| p.starts_with("together"))
        {
            together += 1;
            // A held thread starts no sooner than 300 us after its creation.
            assert!(
                probe["min_start_us"].as_u64() >= Some(300),
                "{probe} {detail}"
            );
            assert!(detail["aligned_threads"].as_u64() >= Some(5), "{detail}");
        } else {
            assert!(detail["delays"].as_u64() > Some(0), "{detail}");
        }
    }
    assert!(
        together > 0 && together < 8,
        "both kinds of profile were drawn"
    );
    let note = cell.note.clone().unwrap_or_default();
    assert!(note.contains("delay: loaded by"), "{note}");
    let left: Vec<String> = sb
        .listing()
        .into_iter()
        .filter(|p| p.contains("bugpack-delay"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn delay_says_when_no_call_was_intercepted() {
    let _turn = MACHINE.lock();
    let sb = Sandbox::new();
    // The shell loads the library but makes no thread call: the note names
    // it as loaded and says the cell was not perturbed.
    let s = scenario(
        &sb,
        "static",
        "name: static\nrun: 'exit 1'\nexpect: {exit: 1}\n",
        &[],
    );
    let r = replay_json(&sb, &s, &["--timing", "delay", "--runs", "1"], 0);
    let note = r.cells[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("delay: loaded by sh, which made no thread, lock or semaphore call")
            && note.contains("so this cell ran as none"),
        "{note}"
    );
}
