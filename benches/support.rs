//! What the benchmarks share: timing a command and its peak memory, and a
//! table of figures. Peak RSS comes from `getrusage(RUSAGE_CHILDREN)`, which
//! keeps the largest child ever waited for; each measurement therefore runs
//! in a fresh copy of the bench binary (`--measure`), so cases never mix.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One measured command.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    pub peak_rss_kib: u64,
    /// User and system CPU time of the command and everything it waited for.
    pub cpu: Duration,
}

/// Runs `argv` to completion (output discarded) in `dir`, in a fresh copy of
/// this bench binary, and returns its wall time, peak RSS and CPU time.
pub fn measure(dir: &Path, argv: &[&str]) -> Measured {
    let me = std::env::current_exe().unwrap();
    let out = Command::new(me)
        .arg("--measure")
        .args(argv)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let nanos: u64 = parts.next().unwrap().parse().unwrap();
    let kib: u64 = parts.next().unwrap().parse().unwrap();
    let cpu: u64 = parts.next().unwrap().parse().unwrap();
    Measured {
        wall: Duration::from_nanos(nanos),
        peak_rss_kib: kib,
        cpu: Duration::from_nanos(cpu),
    }
}

/// The `--measure` side: run the command, print "nanoseconds peak-KiB
/// cpu-nanoseconds".
/// Returns true when this process was started for that.
pub fn measure_child() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("--measure") {
        return false;
    }
    let started = Instant::now();
    let status = Command::new(&args[2])
        .args(&args[3..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .status()
        .unwrap();
    let wall = started.elapsed();
    assert!(status.success(), "{:?} failed: {status}", &args[2..]);
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let cpu = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap() * 1_000_000_000
            + u64::try_from(t.tv_usec()).unwrap() * 1_000
    };
    println!(
        "{} {} {}",
        wall.as_nanos(),
        usage.max_rss(),
        cpu(usage.user_time()) + cpu(usage.system_time())
    );
    true
}

/// The median of several measurements of the same command.
pub fn median_of(n: usize, mut f: impl FnMut() -> Measured) -> Measured {
    let mut all: Vec<Measured> = (0..n).map(|_| f()).collect();
    all.sort_by_key(|m| m.wall);
    all[all.len() / 2]
}

pub fn bugpack() -> String {
    // Benches build the release binary next to themselves.
    let me = std::env::current_exe().unwrap();
    let dir = me.parent().unwrap().parent().unwrap();
    let bin = dir.join("bugpack");
    assert!(
        bin.is_file(),
        "build the binary first: cargo build --release ({})",
        bin.display()
    );
    bin.display().to_string()
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn row(name: &str, m: Measured) {
    println!(
        "{name:<52} {:>12} {:>10} MiB",
        ms(m.wall),
        m.peak_rss_kib / 1024
    );
}
