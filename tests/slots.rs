//! Job slots (issue 17, part 3): the runs of one job share a user and a
//! network namespace, each gets a PID, mount and IPC namespace of its own,
//! and nothing one run leaves (a daemon, a socket in `TIME_WAIT`, a file in
//! its home, its `TMPDIR` or `/dev/shm`, a System V segment) is there for the
//! next.

use std::fs;

use serde_json::Value;

use crate::support::reports::{replay_json, scenario};
use crate::support::{MACHINE, Sandbox};

/// Says what it finds of earlier runs and which namespaces it is in, then
/// leaves all it can behind: a daemon in a session of its own, files, a
/// System V segment and, on even runs, a TCP connection it closed first (so
/// `TIME_WAIT`). Exits 1, so that every run's output is kept.
const PROBE: &str = r"import json, os, socket, subprocess, sys
marker = open('marker').read().strip()
index = int(os.environ['BUGPACK_RUN_INDEX'])
found = []
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        if marker.encode() in open(f'/proc/{pid}/cmdline', 'rb').read():
            found.append(f'process {pid}')
    except OSError:
        pass
for table in ('tcp', 'tcp6', 'udp', 'udp6', 'unix'):
    rows = open(f'/proc/self/net/{table}').read().splitlines()[1:]
    if rows:
        found.append(f'{len(rows)} {table} socket(s)')
for path in (os.path.join(os.environ['HOME'], marker),
             os.path.join(os.environ['TMPDIR'], marker),
             os.path.join('/dev/shm', marker)):
    if os.path.exists(path):
        found.append(path)
ipc = subprocess.run(['ipcs', '-m'], capture_output=True, text=True).stdout
if any(line.startswith('0x') for line in ipc.splitlines()):
    found.append('a System V segment')
if marker in os.environ:
    found.append('the variable')
# A namespace's inode number is reused once it is freed; a network
# namespace's cookie never is.
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
net = int.from_bytes(probe.getsockopt(socket.SOL_SOCKET, 71, 8), 'little')
probe.close()
nspid = [l.split()[1:] for l in open('/proc/self/status') if l.startswith('NSpid:')][0]
print(json.dumps({'index': index, 'found': found, 'net': net, 'pid': int(nspid[-1]),
                  'user': os.readlink('/proc/self/ns/user')}))
sys.stdout.flush()
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', marker],
                 start_new_session=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
for path in (os.path.join(os.environ['HOME'], marker),
             os.path.join(os.environ['TMPDIR'], marker),
             os.path.join('/dev/shm', marker)):
    open(path, 'w').write('left behind\n')
subprocess.run(['ipcmk', '-M', '4096'], capture_output=True)
if index % 2 == 0:
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    client.close()
    peer.recv(1)
    peer.close()
    server.close()
sys.exit(1)
";

fn marker_processes(marker: &str) -> Vec<String> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn runs_of_one_job_keep_its_network_namespace_and_find_nothing_of_each_other() {
    let _turn = MACHINE.lock();
    let sb = Sandbox::new();
    // Unique to this test's directory, so that nothing else matches it.
    let marker = format!(
        "bugpack-leak-{}",
        sb.path("").display().to_string().replace('/', "-")
    );
    let s = scenario(
        &sb,
        "leak",
        "name: leak\nrun: python3 probe.py\nexpect: {exit: 1}\n",
        &[("probe.py", PROBE), ("marker", &marker)],
    );
    let r = replay_json(&sb, &s, &["--runs", "6", "--jobs", "1"], 0);
    let mut seen: Vec<Value> = r.cells[0]
        .results
        .iter()
        .map(|run| {
            let out = run.stdout_tail.as_deref().unwrap_or_default();
            serde_json::from_str(out.trim())
                .unwrap_or_else(|e| panic!("{e}: {out:?} {:?}", run.stderr_tail))
        })
        .collect();
    seen.sort_by_key(|v| v["index"].as_u64());
    assert_eq!(seen.len(), 6);
    for run in &seen {
        assert_eq!(run["found"], serde_json::json!([]), "{run}");
    }
    for run in &seen {
        // The run step is the second process of a PID namespace of its own.
        assert!(run["pid"].as_u64() <= Some(3), "{run}");
    }
    let users: std::collections::BTreeSet<&str> =
        seen.iter().filter_map(|v| v["user"].as_str()).collect();
    assert_eq!(users.len(), 1, "one user namespace for the job: {users:?}");
    // An even run leaves a socket in TIME_WAIT: the next run gets a fresh
    // network namespace (and found no socket above). An odd run leaves
    // none: the next keeps it.
    for i in 0..5 {
        let (this, next) = (&seen[i]["net"], &seen[i + 1]["net"]);
        if i % 2 == 0 {
            assert_ne!(this, next, "after run {i}");
        } else {
            assert_eq!(this, next, "after run {i}");
        }
    }
    assert_eq!(
        marker_processes(&marker),
        Vec::<String>::new(),
        "a run's daemon outlived the replay"
    );
    assert!(
        !std::path::Path::new("/dev/shm").join(&marker).exists(),
        "a run's /dev/shm file reached the host's"
    );
}

#[test]
fn two_jobs_have_a_slot_each() {
    let _turn = MACHINE.lock();
    let sb = Sandbox::new();
    let s = scenario(
        &sb,
        "users",
        "name: users\nrun: readlink /proc/self/ns/user; sleep 0.2; exit 1\nexpect: {exit: 1}\n",
        &[],
    );
    let r = replay_json(&sb, &s, &["--runs", "8", "--jobs", "2"], 0);
    let users: std::collections::BTreeSet<String> = r.cells[0]
        .results
        .iter()
        .map(|run| {
            run.stdout_tail
                .clone()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(users.len(), 2, "one user namespace per job: {users:?}");
}
