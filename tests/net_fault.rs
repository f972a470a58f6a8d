//! The `--net-fault` axis: a TCP fault proxy between clients and each
//! service. Each toxic changes what a client of a plain TCP service sees
//! (delay, bytes, pieces, close, reset), the service keeps its own port,
//! and the example's lost messages appear only under a mid-stream reset.

use serde_json::Value;

use crate::support::reports::{JCell, JReport, replay_json, scenario};
use crate::support::{MACHINE, Sandbox};

/// A TCP service that sends its own port on a line, then 5,000 bytes, then
/// after 800 ms 5,000 more, then closes; and a client that measures what
/// reaches it and prints it as JSON, failing on purpose so that the report
/// keeps what it printed.
fn probe(sb: &Sandbox) -> String {
    let service = "import os, socket, threading, time\n\
                   PORT = int(os.environ['PORT'])\n\
                   def serve(conn):\n    \
                   with conn:\n        \
                   conn.recv(16)\n        \
                   conn.sendall(b'%d\\n' % PORT + b'a' * 5000)\n        \
                   time.sleep(0.8)\n        \
                   conn.sendall(b'b' * 5000)\n\
                   server = socket.create_server(('127.0.0.1', PORT))\n\
                   print('listening', flush=True)\n\
                   while True:\n    \
                   threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()\n";
    let client = "import json, os, socket, sys, time\n\
                  port = int(os.environ['BUGPACK_SERVICE_SRV_PORT'])\n\
                  conn = socket.create_connection(('127.0.0.1', port))\n\
                  conn.settimeout(2.5)\n\
                  start = time.monotonic()\n\
                  conn.sendall(b'go\\n')\n\
                  data, reads, stamps, ending = b'', [], [], 'eof'\n\
                  while True:\n    \
                  try:\n        \
                  chunk = conn.recv(65536)\n    \
                  except ConnectionResetError:\n        \
                  ending = 'reset'; break\n    \
                  except socket.timeout:\n        \
                  ending = 'timeout'; break\n    \
                  if not chunk:\n        \
                  break\n    \
                  data += chunk; reads.append(len(chunk)); stamps.append(time.monotonic() - start)\n\
                  end = time.monotonic() - start\n\
                  head, _, body = data.partition(b'\\n')\n\
                  first_a = body.find(b'a')\n\
                  def at(n):\n    \
                  total = 0\n    \
                  for size, when in zip(reads, stamps):\n        \
                  total += size\n        \
                  if total >= n: return when\n\
                  print(json.dumps({\n    \
                  'service_port': int(head or 0), 'client_port': port,\n    \
                  'bytes': len(body), 'ending': ending, 'max_read': max(reads, default=0),\n    \
                  'reads': len(reads), 'first': stamps[0] if stamps else None,\n    \
                  'half': at(len(head) + 1 + 5000), 'last': stamps[-1] if stamps else None,\n    \
                  'end': end}))\n\
                  sys.exit(1)\n";
    scenario(
        sb,
        "tcp",
        "name: tcp\nservices: [{name: srv, run: python3 service.py, ready: {log: listening}}]\n\
         run: python3 client.py\ntimeout: 8s\nexpect: {exit: 1}\n",
        &[("service.py", service), ("client.py", client)],
    )
}

/// What the client of the cell with this network fault measured.
fn seen<'a>(r: &'a JReport, fault: &str) -> (&'a JCell, Value) {
    let cell = r
        .cells
        .iter()
        .find(|c| c.axes.get("net_fault").map(String::as_str) == Some(fault))
        .unwrap_or_else(|| panic!("no cell with net_fault {fault}"));
    let run = &cell.results[0];
    let out = run.stdout_tail.as_deref().unwrap_or_default();
    let json = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!(
            "{fault}: the client printed no measurement ({e}): {out:?} {:?}",
            run.stderr_tail
        )
    });
    (cell, json)
}

/// A count the client measured.
fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {v}"))
}

/// A time the client measured, in seconds.
fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

#[test]
fn each_toxic_changes_what_a_tcp_client_sees() {
    // The delays below are lower bounds, but a loaded machine must not eat
    // the slack of the blackhole's timing.
    let _turn = MACHINE.lock();
    let sb = Sandbox::new();
    let s = probe(&sb);
    let r = replay_json(
        &sb,
        &s,
        &[
            "--runs",
            "1",
            "--net-fault",
            "none,latency:300,bandwidth:20,slow-close:500,blackhole:400,reset:1000,slice:100",
        ],
        0,
    );
    assert_eq!(r.cells.len(), 7);

    let (plain, none) = seen(&r, "none");
    assert_eq!(none["ending"], "eof", "{none}");
    assert_eq!(count(&none, "bytes"), 10_000, "{none}");
    // Without a fault the client talks to the service itself.
    assert_eq!(none["service_port"], none["client_port"], "{none}");
    assert!(!plain.results[0].axes_detail.contains_key("net_fault"));
    assert!(plain.note.is_none(), "{:?}", plain.note);

    let (cell, latency) = seen(&r, "latency:300");
    assert!(num(&latency, "first") >= 0.29, "{latency}");
    assert_eq!(count(&latency, "bytes"), 10_000, "{latency}");
    // The service keeps its port; the client was given the fault proxy's.
    assert_ne!(latency["service_port"], latency["client_port"], "{latency}");
    let detail = &cell.results[0].axes_detail["net_fault"];
    assert_eq!(detail["connections"], 1, "{detail}");
    assert!(
        detail["bytes_to_client"].as_u64() > Some(10_000),
        "{detail}"
    );
    let note = cell.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("net fault latency:300") && note.contains("1 connection"),
        "{note}"
    );

    // 5,000 bytes at 20 KB/s take a quarter of a second; unthrottled, none.
    let (_, bandwidth) = seen(&r, "bandwidth:20");
    assert!(
        num(&bandwidth, "half") - num(&bandwidth, "first") >= 0.2,
        "{bandwidth}"
    );
    assert!(num(&none, "half") - num(&none, "first") < 0.2, "{none}");
    assert_eq!(count(&bandwidth, "bytes"), 10_000, "{bandwidth}");

    let (_, close) = seen(&r, "slow-close:500");
    assert_eq!(close["ending"], "eof", "{close}");
    assert!(num(&close, "end") - num(&close, "last") >= 0.45, "{close}");
    assert!(num(&none, "end") - num(&none, "last") < 0.45, "{none}");

    // The first half crosses before the hole opens, the second never does,
    // and neither does the service's close.
    let (cell, hole) = seen(&r, "blackhole:400");
    assert_eq!(count(&hole, "bytes"), 5000, "{hole}");
    assert_eq!(hole["ending"], "timeout", "{hole}");
    assert_eq!(
        cell.results[0].axes_detail["net_fault"]["blackholed"], 1,
        "{:?}",
        cell.results[0].axes_detail
    );

    // The port line and the body count together: 1,000 bytes, then a reset.
    let (cell, reset) = seen(&r, "reset:1000");
    assert_eq!(reset["ending"], "reset", "{reset}");
    let port_line = reset["service_port"].to_string().len() as u64 + 1;
    assert_eq!(count(&reset, "bytes"), 1000 - port_line, "{reset}");
    assert_eq!(cell.results[0].axes_detail["net_fault"]["resets"], 1);

    // At least 100 pieces of 50 to 100 bytes, a millisecond apart: a
    // client that reads as they come sees each one, a client held up by a
    // busy machine a few at a time, but far more reads than the two or
    // three of the whole stream.
    let (_, slice) = seen(&r, "slice:100");
    assert_eq!(count(&slice, "bytes"), 10_000, "{slice}");
    assert!(count(&slice, "reads") >= 30, "{slice}");
    assert!(
        count(&slice, "reads") > 10 * count(&none, "reads"),
        "{slice} {none}"
    );
    assert!(count(&none, "max_read") > 100, "{none}");
}

#[test]
fn the_example_loses_messages_only_when_its_connection_is_reset() {
    let sb = Sandbox::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/reset-stream");
    let args = ["--runs", "2", "--net-fault", "none,reset:4096"];
    let r = replay_json(&sb, example, &args, 0);
    let by = |r: &JReport, fault: &str| {
        r.cells
            .iter()
            .find(|c| c.axes["net_fault"] == fault)
            .map_or_else(|| panic!("no cell {fault}"), |c| (c.reproduced, c.passed))
    };
    assert_eq!(by(&r, "none"), (0, 2));
    assert_eq!(by(&r, "reset:4096"), (2, 0));
    let cell = r.cells.iter().find(|c| c.axes["net_fault"] == "reset:4096");
    let out = cell
        .and_then(|c| c.results[0].stdout_tail.as_deref())
        .unwrap_or_default();
    assert!(out.contains(" lost"), "{out}");

    let fixed = format!("{example}/fixed");
    let r = replay_json(&sb, &fixed, &args, 1);
    assert_eq!(by(&r, "none"), (0, 2));
    assert_eq!(by(&r, "reset:4096"), (0, 2));
}

#[test]
fn bad_fault_values_are_usage_errors() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\n", &[]);
    for value in ["lag:5", "latency", "bandwidth:0", "reset:-1", "slice:x"] {
        sb.bugpack()
            .args(["replay", &s, "--yes", "--net-fault", value])
            .run()
            .code(2)
            .one_line_error()
            .stderr_has("--net-fault");
    }
}

#[test]
fn a_cell_without_a_fault_says_none_in_json_and_no_column_in_the_table() {
    let sb = Sandbox::new();
    let s = scenario(&sb, "ok", "name: ok\nrun: 'true'\n", &[]);
    let r = replay_json(&sb, &s, &["--runs", "1"], 1);
    assert_eq!(r.cells[0].axes["net_fault"], "none");
    sb.bugpack()
        .args(["replay", &s, "--yes", "--runs", "1"])
        .run()
        .code(1)
        .stdout_lacks("net fault");
    sb.bugpack()
        .args([
            "replay",
            &s,
            "--yes",
            "--runs",
            "1",
            "--net-fault",
            "latency:1",
        ])
        .run()
        .code(1)
        .stdout_has("net fault")
        .stdout_has("latency:1");
}
