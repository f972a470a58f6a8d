//! `env/system.yaml`: the machine the bug happened on.
//!
//! Only values that describe the machine and stay put between two captures:
//! no free memory, uptime, load or process ids (two captures of the same
//! inputs must give the same bytes), and no host or user names (bundles go
//! to public trackers). Proxy URLs go through the redactor before they are
//! stored. Nothing here fails a capture: what cannot be read is left out.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::interrupt::{Interrupt, Interrupted};
use crate::redact::Redactor;

/// The proxy variables curl, pip, npm and most HTTP libraries honour.
pub const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// The description written to `env/system.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<u64>,
    /// CPUs the process may use (cgroup quota or affinity), when fewer than `cpu_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub locale: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualization: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Tool name to the first line its version command printed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, String>,
}

/// Where the description's raw facts come from; tests point it at fakes.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    pub root: &'a Path,
    pub env: &'a BTreeMap<String, String>,
}

/// Describes this machine. Only an interrupt stops it.
pub fn describe(
    src: &Sources<'_>,
    versions: &[(String, String)],
    cwd: &Path,
    staging: &Path,
    redactor: &mut Redactor,
    interrupt: &Interrupt,
) -> Result<SystemInfo, Interrupted> {
    let read = |rel: &str| read_fact(src.root, rel);
    let mut info = SystemInfo::default();

    if let Some(text) = read("etc/os-release") {
        let fields = os_release(&text);
        info.os = fields.get("PRETTY_NAME").cloned();
        info.os_id = fields.get("ID").cloned();
        info.os_version = fields.get("VERSION_ID").cloned();
    }
    if let Ok(uts) = nix::sys::utsname::uname() {
        info.kernel = Some(uts.release().to_string_lossy().into_owned());
        info.arch = Some(uts.machine().to_string_lossy().into_owned());
    }
    if let Some(text) = read("proc/cpuinfo") {
        info.cpu_model = text
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map(|(_, v)| v.trim().to_owned());
        let count = text.lines().filter(|l| l.starts_with("processor")).count() as u64;
        info.cpu_count = (count > 0).then_some(count);
    }
    info.cpu_limit = cpu_limit(src, info.cpu_count);
    if let Some(text) = read("proc/meminfo") {
        info.memory_total_mib = text
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb / 1024);
    }
    info.memory_limit_mib = read("sys/fs/cgroup/memory.max")
        .or_else(|| read("sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&b| b < (1 << 50))
        .map(|b| b >> 20);
    for name in ["LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE"] {
        if let Some(v) = src.env.get(name) {
            info.locale.insert(name.to_owned(), v.clone());
        }
    }
    info.timezone = src.env.get("TZ").cloned().or_else(|| {
        read("etc/timezone")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .or_else(|| {
                fs::read_link(src.root.join("etc/localtime"))
                    .ok()
                    .and_then(|p| {
                        let s = p.to_string_lossy().into_owned();
                        s.split_once("zoneinfo/").map(|(_, z)| z.to_owned())
                    })
            })
    });
    info.container = container(src);
    if src.root == Path::new("/") {
        tracing::debug!("running `systemd-detect-virt` for the virtualisation");
        let v = super::observe::first_line(
            "systemd-detect-virt 2>/dev/null || true",
            cwd,
            Duration::from_secs(2),
            staging,
            interrupt,
        )?;
        if !v.is_empty() && v != "none" && !v.starts_with('(') {
            info.virtualization = Some(v);
        }
    }
    if info
        .kernel
        .as_deref()
        .is_some_and(|k| k.to_ascii_lowercase().contains("microsoft"))
    {
        info.virtualization = Some("wsl".to_owned());
    }
    for name in PROXY_VARS {
        if let Some(v) = src.env.get(*name) {
            let value = redactor.redact_url("env/system.yaml", v);
            info.proxy.insert((*name).to_owned(), value);
        }
    }
    info.shell = src.env.get("SHELL").cloned();
    for (name, command) in versions {
        tracing::info!(
            "running `sh -c {}` for the version of {name}",
            shlex::try_quote(&redactor.scrub(command)).unwrap_or_default()
        );
        let line =
            super::observe::first_line(command, cwd, Duration::from_secs(5), staging, interrupt)?;
        tracing::debug!("{name}: {}", redactor.scrub(&line));
        info.tools
            .insert(name.clone(), redactor.redact_str("env/system.yaml", &line));
    }
    Ok(info)
}

/// A file under the system root, whole, or `None` when it cannot be read.
fn read_fact(root: &Path, rel: &str) -> Option<String> {
    let path = root.join(rel);
    let text = fs::read_to_string(&path);
    match &text {
        Ok(_) => tracing::debug!("read {}", path.display()),
        Err(e) => tracing::trace!("cannot read {}: {e}", path.display()),
    }
    text.ok()
}

/// `KEY=value` lines of os-release, quotes removed.
fn os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.trim().trim_matches('"').trim_matches('\'').to_owned(),
            )
        })
        .collect()
}

/// A CPU quota below the machine's count, from cgroup v2 `cpu.max` or v1 `cfs_quota`.
fn cpu_limit(src: &Sources<'_>, count: Option<u64>) -> Option<String> {
    let read = |rel: &str| read_fact(src.root, rel);
    let (quota, period) = if let Some(max) = read("sys/fs/cgroup/cpu.max") {
        let mut parts = max.split_whitespace();
        let q = parts.next()?.parse::<f64>().ok()?;
        let p = parts.next()?.parse::<f64>().ok()?;
        (q, p)
    } else {
        let q = read("sys/fs/cgroup/cpu/cpu.cfs_quota_us")?
            .trim()
            .parse::<f64>()
            .ok()?;
        let p = read("sys/fs/cgroup/cpu/cpu.cfs_period_us")?
            .trim()
            .parse::<f64>()
            .ok()?;
        (q, p)
    };
    if quota <= 0.0 || period <= 0.0 {
        return None;
    }
    let cpus = quota / period;
    #[allow(clippy::cast_precision_loss)]
    let below = count.is_none_or(|c| cpus < c as f64);
    below.then(|| format!("{cpus:.2} CPUs (cgroup quota)"))
}

/// Docker, Podman, Kubernetes, LXC, or none, from marker files and cgroups.
fn container(src: &Sources<'_>) -> Option<String> {
    if src.root.join(".dockerenv").exists() {
        return Some("docker".to_owned());
    }
    if src.root.join("run/.containerenv").exists() {
        return Some("podman".to_owned());
    }
    if src.env.contains_key("KUBERNETES_SERVICE_HOST") {
        return Some("kubernetes".to_owned());
    }
    let cgroup = fs::read_to_string(src.root.join("proc/1/cgroup")).unwrap_or_default();
    for (needle, name) in [
        ("kubepods", "kubernetes"),
        ("docker", "docker"),
        ("libpod", "podman"),
        ("lxc", "lxc"),
    ] {
        if cgroup.contains(needle) {
            return Some(name.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        w(
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        w(
            "proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Test CPU @ 3GHz\n\nprocessor\t: 1\nmodel name\t: Test CPU @ 3GHz\n",
        );
        w(
            "proc/meminfo",
            "MemTotal:       16384000 kB\nMemFree:  12 kB\n",
        );
        w("sys/fs/cgroup/cpu.max", "50000 100000\n");
        w("sys/fs/cgroup/memory.max", "max\n");
        w("etc/timezone", "Europe/Paris\n");
        w("proc/1/cgroup", "0::/kubepods/besteffort/pod1\n");
        dir
    }

    #[test]
    fn reads_the_machine_from_its_files() {
        let root = fake_root();
        let env = BTreeMap::from([
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            (
                "https_proxy".to_owned(),
                "http://alice:s3cretpass@proxy.corp:3128".to_owned(),
            ),
            ("SHELL".to_owned(), "/bin/bash".to_owned()),
        ]);
        let src = Sources {
            root: root.path(),
            env: &env,
        };
        let mut redactor = Redactor::new(&[], std::iter::empty()).unwrap();
        let staging = tempfile::tempdir().unwrap();
        let versions = vec![("greeter".to_owned(), "echo greeter 2.0".to_owned())];
        let info = describe(
            &src,
            &versions,
            staging.path(),
            staging.path(),
            &mut redactor,
            &Interrupt::new(),
        )
        .unwrap();
        assert_eq!(info.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(info.os_version.as_deref(), Some("12"));
        assert_eq!(info.cpu_model.as_deref(), Some("Test CPU @ 3GHz"));
        assert_eq!(info.cpu_count, Some(2));
        assert_eq!(info.cpu_limit.as_deref(), Some("0.50 CPUs (cgroup quota)"));
        assert_eq!(info.memory_total_mib, Some(16000));
        assert_eq!(info.memory_limit_mib, None);
        assert_eq!(info.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(info.container.as_deref(), Some("kubernetes"));
        assert_eq!(info.tools["greeter"], "greeter 2.0");
        let proxy = &info.proxy["https_proxy"];
        assert!(!proxy.contains("s3cretpass"), "{proxy}");
        assert!(proxy.contains("proxy.corp:3128"), "{proxy}");
    }

    #[test]
    fn nothing_volatile_is_recorded() {
        let root = fake_root();
        let env = BTreeMap::new();
        let src = Sources {
            root: root.path(),
            env: &env,
        };
        let mut redactor = Redactor::new(&[], std::iter::empty()).unwrap();
        let staging = tempfile::tempdir().unwrap();
        let never = Interrupt::new();
        let a = describe(
            &src,
            &[],
            staging.path(),
            staging.path(),
            &mut redactor,
            &never,
        )
        .unwrap();
        let b = describe(
            &src,
            &[],
            staging.path(),
            staging.path(),
            &mut redactor,
            &never,
        )
        .unwrap();
        assert_eq!(a, b);
        let text = serde_yaml::to_string(&a).unwrap();
        assert!(!text.contains("MemFree") && !text.contains("12 kB"));
    }
}
