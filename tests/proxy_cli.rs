//! Issue 20, part 1: `bugpack proxy` runs the proxy axis's proxy standalone,
//! in the foreground: `curl -x` through it, one log line (or JSON line) per
//! request with HIT/MISS, and Ctrl-C prints the totals and exits 0.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::Sandbox;

/// An origin on loopback whose body counts the requests it answered, so a
/// cached answer is told from a fresh one.
fn origin() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let body = format!("status {n}\n");
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, served)
}

/// Starts `bugpack proxy ARGS` on a free port and returns it with its address.
fn start(sb: &Sandbox, args: &[&str]) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let mut child = sb
        .bugpack()
        .args(["proxy", "--listen", "127.0.0.1:0"])
        .args(args)
        .spawn();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .map_or_else(
            || panic!("no address in {first:?}"),
            |w| w.trim_end_matches(':').to_owned(),
        );
    (child, format!("http://{addr}"), stderr)
}

fn curl(proxy: &str, url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-x", proxy, url])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Ctrl-C, then what the proxy printed: (stdout, rest of stderr).
fn stop(mut child: Child, mut stderr: BufReader<std::process::ChildStderr>) -> (String, String) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    (out, err)
}

#[test]
fn the_cache_mode_serves_a_hit_to_curl_and_logs_it() {
    let sb = Sandbox::new();
    let (base, served) = origin();
    let (child, proxy, stderr) = start(&sb, &["--mode", "cache"]);
    let status = format!("{base}/status?task=7&access_token=s3cr3t-t0ken-value");
    assert_eq!(curl(&proxy, &status), "status 1\n");
    // The origin says no-store; the misconfigured cache keeps it anyway.
    assert_eq!(curl(&proxy, &status), "status 1\n");
    assert_eq!(
        served.load(Ordering::SeqCst),
        1,
        "the second GET never reached the origin"
    );
    let (out, err) = stop(child, stderr);
    let lines: Vec<&str> = out.lines().collect();
    let shown = format!("{base}/status?task=7&access_token=[REDACTED:query]");
    assert_eq!(
        lines,
        [
            format!("GET {shown} 200 MISS"),
            format!("GET {shown} 200 HIT")
        ],
        "{out}"
    );
    assert!(!out.contains("s3cr3t"), "{out}");
    assert!(
        err.contains("bugpack proxy stopped: 2 requests; 1 of 2 GETs served from cache"),
        "{err}"
    );
}

#[test]
fn json_lines_and_slow_delays_go_to_the_log_file() {
    let sb = Sandbox::new();
    let (base, served) = origin();
    let (child, proxy, stderr) =
        start(&sb, &["--mode", "slow:120", "--json", "--log", "proxy.log"]);
    assert_eq!(curl(&proxy, &format!("{base}/a")), "status 1\n");
    assert_eq!(curl(&proxy, &format!("{base}/a")), "status 2\n");
    assert_eq!(served.load(Ordering::SeqCst), 2, "slow caches nothing");
    let (out, err) = stop(child, stderr);
    assert!(out.is_empty(), "the log went to the file: {out}");
    let log = std::fs::read_to_string(sb.path("proxy.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    for request in &lines[..2] {
        assert_eq!(request["method"], "GET");
        assert_eq!(request["url"], format!("{base}/a"));
        assert_eq!(request["status"], 200);
        assert!(request["cache"].is_null());
        let ms = request["delay_ms"].as_u64().unwrap();
        assert!((100..=140).contains(&ms), "slow:120 added {ms} ms");
    }
    assert_eq!(lines[2]["totals"]["requests"], 2, "{log}");
    assert!(err.contains("2 requests"), "{err}");
}

#[test]
fn bad_modes_and_addresses_are_one_line_errors() {
    let sb = Sandbox::new();
    for (args, code, says) in [
        (vec!["--mode", "cached"], 2, "unknown proxy mode"),
        (vec!["--mode", "slow:soon"], 2, "slow:soon"),
        (
            vec!["--mode", "pass", "--listen", "localhost"],
            2,
            "--listen",
        ),
    ] {
        sb.bugpack()
            .arg("proxy")
            .args(&args)
            .run()
            .code(code)
            .one_line_error()
            .stderr_has(says);
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    sb.bugpack()
        .args(["proxy", "--mode", "pass", "--listen", &addr])
        .run()
        .code(4)
        .one_line_error()
        .stderr_has(&format!("cannot listen on {addr}"));
}
