//! Redaction throughput on a 100 MB log tail, against the cost of reading
//! the same bytes (issue 18).
//!
//! - in process: reading the file into memory, then the redactor on those
//!   bytes with the built-in rules, and with pseudonyms on as well;
//! - end to end: `bugpack capture --log app.log --log-bytes 100MiB` against
//!   `cat app.log > /dev/null` and `tail -c 100M | zip`.
//!
//! The log is ordinary service output with the things redaction looks for
//! at realistic rates: a token in one line of 2,000, an address or a user
//! name in one line of 10, a URL with a query in one of 20.
//! Run with `cargo bench --bench redaction` (needs `zip`).

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

#[path = "support.rs"]
mod support;

use std::fs;
use std::io::Write as _;
use std::time::{Duration, Instant};

use bugpack::redact::Redactor;
use bugpack::redact::pseudonym::Identity;
use support::{bugpack, measure, median_of, row};

const SIZE: u64 = 100 << 20;

fn main() {
    if support::measure_child() {
        return;
    }
    let bin = bugpack();
    let dir = tempfile::Builder::new()
        .prefix("bugpack-bench-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let log = root.join("app.log");
    write_log(&log);

    println!("{:<52} {:>12} {:>10}", "in process", "median of 5", "MB/s");
    let read = median_time(5, || {
        let bytes = fs::read(&log).unwrap();
        std::hint::black_box(bytes.len());
    });
    rate("read the 100 MB log", read);
    let bytes = fs::read(&log).unwrap();
    let env = [("API_TOKEN", "tok_live_4f8a9b2c7d1e6f30a5b9")];
    let redactor = Redactor::new(&[], env).unwrap();
    let plain = median_time(5, || {
        let mut r = redactor.clone();
        std::hint::black_box(r.redact("logs/app.log", &bytes).len());
    });
    rate("redact (built-in rules)", plain);
    let identity = Identity {
        users: vec!["ajohansson".to_owned()],
        homes: vec!["/home/ajohansson".to_owned()],
        hosts: vec![
            "build7".to_owned(),
            "build7.corp.initech.example".to_owned(),
        ],
        containers: vec![],
        words: vec!["initech".to_owned()],
        addresses: true,
    };
    let names_only = Identity {
        addresses: false,
        ..identity.clone()
    };
    let addresses_only = Identity {
        addresses: true,
        ..Identity::default()
    };
    for (name, id) in [
        ("redact and pseudonymise (names only)", &names_only),
        ("redact and pseudonymise (addresses only)", &addresses_only),
        ("redact and pseudonymise (all)", &identity),
    ] {
        let with_pseudonyms = redactor.clone().with_pseudonyms(id);
        let took = median_time(5, || {
            let mut r = with_pseudonyms.clone();
            std::hint::black_box(r.redact("logs/app.log", &bytes).len());
        });
        rate(name, took);
    }
    drop(bytes);

    println!();
    println!(
        "{:<52} {:>12} {:>14}",
        "end to end", "wall (median of 5)", "peak RSS"
    );
    let cap = median_of(5, || {
        measure(
            root,
            &[
                &bin,
                "capture",
                "-o",
                "bench.zip",
                "--log",
                "app.log",
                "--log-bytes",
                "100MiB",
                "--title",
                "bench",
            ],
        )
    });
    row("bugpack capture --log app.log --log-bytes 100MiB", cap);
    let cat = median_of(5, || {
        measure(root, &["sh", "-c", "cat app.log > /dev/null"])
    });
    row("baseline: cat app.log > /dev/null", cat);
    let zip = median_of(5, || {
        measure(
            root,
            &[
                "sh",
                "-c",
                "tail -c 104857600 app.log > tail.log && rm -f t.zip && zip -q t.zip tail.log",
            ],
        )
    });
    row("baseline: tail -c 100M | zip", zip);
}

/// Ordinary log lines with secrets, names and addresses mixed in.
fn write_log(path: &std::path::Path) {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, fs::File::create(path).unwrap());
    let mut written = 0u64;
    let mut i = 0u64;
    while written < SIZE {
        let line = match i % 2000 {
            0 => format!(
                "2026-12-06T10:00:00.{:06}Z WARN retrying with Authorization: Bearer ghp_{:036}\n",
                i % 1_000_000,
                i
            ),
            n if n % 20 == 1 => format!(
                "2026-12-06T10:00:00.{:06}Z INFO GET https://api.example.com/v1/items?page={}&sort=asc 200\n",
                i % 1_000_000,
                i % 97
            ),
            n if n % 10 == 2 => format!(
                "2026-12-06T10:00:00.{:06}Z INFO ajohansson@build7 connected from 10.20.{}.{}:5432\n",
                i % 1_000_000,
                i % 7,
                i % 250
            ),
            _ => format!(
                "2026-12-06T10:00:00.{:06}Z INFO worker-{} handled request id={} in 3 ms\n",
                i % 1_000_000,
                i % 16,
                i
            ),
        };
        f.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        i += 1;
    }
    f.flush().unwrap();
}

fn median_time(n: usize, mut f: impl FnMut()) -> Duration {
    let mut all: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    all.sort();
    all[all.len() / 2]
}

fn rate(name: &str, took: Duration) {
    println!(
        "{name:<52} {:>9.1} ms {:>10.0}",
        took.as_secs_f64() * 1000.0,
        SIZE as f64 / 1e6 / took.as_secs_f64()
    );
}
