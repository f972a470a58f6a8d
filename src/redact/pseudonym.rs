//! Pseudonyms: the user's name, host names, home directory, container and
//! pod names, the words the user asks for (`--obfuscate`), and IPv4, IPv6 and
//! MAC addresses become stable stand-ins (`user-1`, `host-1`, `/home/user-1`,
//! `198.18.0.7`, `02:00:00:00:00:01`) in every text of a bundle, as `sos clean`
//! does. The same value always gets the same pseudonym within a bundle;
//! addresses that share a /24 (IPv4) or /64 (IPv6) share a pseudonymous one.
//! Loopback, unspecified, broadcast and documentation addresses stay.
//!
//! The map back to the real values ([`Map`]) is kept on the user's machine
//! only (`bugpack unmask` reads it); it never enters a bundle.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use regex::bytes::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// What a pseudonym stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Home,
    Host,
    Container,
    Word,
    Ipv4,
    Ipv6,
    Mac,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Home => "home",
            Self::Host => "host",
            Self::Container => "container",
            Self::Word => "word",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Mac => "mac",
        }
    }
}

/// User names that identify no one (system accounts, cloud images' and CI
/// runners' defaults) and are also common words in logs: left alone.
const ANONYMOUS_USERS: &[&str] = &[
    "root",
    "nobody",
    "user",
    "admin",
    "dev",
    "test",
    "ubuntu",
    "debian",
    "fedora",
    "centos",
    "ec2-user",
    "vagrant",
    "runner",
    "node",
    "app",
    "www-data",
    "daemon",
    "bin",
    "sys",
    "guest",
    "pi",
    "builder",
    "jenkins",
    "gitlab-runner",
];

/// Host names that say nothing about the machine.
const ANONYMOUS_HOSTS: &[&str] = &["localhost", "localhost.localdomain", "localdomain"];

/// Who and where the user is: the values to replace wherever they appear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub users: Vec<String>,
    pub homes: Vec<String>,
    /// Short and fully qualified names.
    pub hosts: Vec<String>,
    /// Container ids and names, pod names.
    pub containers: Vec<String>,
    /// `--obfuscate WORD` and the profile's `obfuscate:`.
    pub words: Vec<String>,
    /// Replace IPv4, IPv6 and MAC addresses.
    pub addresses: bool,
}

impl Identity {
    /// The identity of the machine a capture runs on: user and home from
    /// the environment and `/etc/passwd`, host names from the kernel,
    /// `/etc/hostname`, `/etc/hosts` and `HOSTNAME`, container and pod names
    /// from the environment and the cgroup path. Files are read under `root`.
    pub fn of_machine(env: &BTreeMap<String, String>, root: &Path) -> Self {
        let mut id = Self {
            addresses: true,
            ..Self::default()
        };
        for name in ["USER", "LOGNAME", "USERNAME", "SUDO_USER"] {
            if let Some(v) = env.get(name) {
                id.users.push(v.clone());
            }
        }
        if let Some(home) = env.get("HOME") {
            id.homes.push(home.trim_end_matches('/').to_owned());
        }
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        let uid = nix::unistd::getuid().as_raw().to_string();
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 6 && fields[2] == uid {
                id.users.push(fields[0].to_owned());
                id.homes.push(fields[5].trim_end_matches('/').to_owned());
            }
        }
        let mut hosts = Vec::new();
        for file in ["proc/sys/kernel/hostname", "etc/hostname"] {
            if let Ok(text) = std::fs::read_to_string(root.join(file)) {
                hosts.push(text.trim().to_owned());
            }
        }
        if let Some(h) = env.get("HOSTNAME") {
            hosts.push(h.clone());
        }
        let hosts_file = std::fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
        let shorts: Vec<String> = hosts
            .iter()
            .map(|h| h.split('.').next().unwrap_or_default().to_owned())
            .collect();
        for line in hosts_file.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let names: Vec<&str> = line.split_whitespace().skip(1).collect();
            if names.iter().any(|n| {
                shorts
                    .iter()
                    .any(|s| !s.is_empty() && n.split('.').next() == Some(s))
            }) {
                hosts.extend(names.iter().map(|n| (*n).to_owned()));
            }
        }
        for h in hosts {
            if let Some((short, _)) = h.split_once('.') {
                id.hosts.push(short.to_owned());
            }
            id.hosts.push(h);
        }
        for name in [
            "POD_NAME",
            "MY_POD_NAME",
            "KUBERNETES_POD_NAME",
            "CONTAINER_NAME",
            "CONTAINER_ID",
        ] {
            if let Some(v) = env.get(name) {
                id.containers.push(v.clone());
            }
        }
        let cgroup = std::fs::read_to_string(root.join("proc/self/cgroup")).unwrap_or_default();
        for container in container_ids(&cgroup) {
            id.containers.push(container[..12].to_owned());
            id.containers.push(container);
        }
        id
    }
}

impl Identity {
    /// Also the real values of an earlier map, so that a text of this
    /// machine gets the pseudonyms a bundle of it has (`diff --here`).
    pub fn add_known(&mut self, entries: &[Entry]) {
        for e in entries {
            let list = match e.kind {
                Kind::User => &mut self.users,
                Kind::Home => &mut self.homes,
                Kind::Host => &mut self.hosts,
                Kind::Container => &mut self.containers,
                Kind::Word => &mut self.words,
                Kind::Ipv4 | Kind::Ipv6 | Kind::Mac => continue,
            };
            if !list.contains(&e.real) {
                list.push(e.real.clone());
            }
        }
    }
}

/// The 64-hex container ids in a cgroup file (`docker-<id>.scope`,
/// `/docker/<id>`, `cri-containerd-<id>`, `libpod-<id>`).
fn container_ids(cgroup: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in cgroup.split(|c: char| !c.is_ascii_hexdigit()) {
        if word.len() == 64 && !out.iter().any(|o: &String| o == word) {
            out.push(word.to_owned());
        }
    }
    out
}

/// One substitution for `capture --dry-run` and the map file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    pub real: String,
    pub pseudonym: String,
}

/// The literal values and address patterns of one identity, compiled.
#[derive(Debug)]
pub struct Rules {
    /// Longest first; each with its kind and whether case is ignored.
    literals: Option<Regex>,
    kinds: HashMap<String, Kind>,
    addresses: bool,
}

impl Rules {
    pub fn new(id: &Identity) -> Self {
        let mut kinds: HashMap<String, Kind> = HashMap::new();
        let mut add = |value: &str, kind: Kind| {
            let v = value.trim();
            if worth_replacing(v, kind) {
                kinds.entry(key(kind, v).into_owned()).or_insert(kind);
            }
        };
        for u in &id.users {
            if !ANONYMOUS_USERS.contains(&u.as_str()) {
                add(u, Kind::User);
            }
        }
        for h in &id.homes {
            add(h, Kind::Home);
        }
        for h in &id.hosts {
            if !ANONYMOUS_HOSTS.contains(&h.to_ascii_lowercase().as_str()) {
                add(h, Kind::Host);
            }
        }
        for c in &id.containers {
            add(c, Kind::Container);
        }
        for w in &id.words {
            add(w, Kind::Word);
        }
        let mut values: Vec<(&String, &Kind)> = kinds.iter().collect();
        values.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        let literals = if values.is_empty() {
            None
        } else {
            let alternation: Vec<String> = values
                .iter()
                .map(|(v, k)| {
                    let escaped = regex::escape(v);
                    if case_blind(**k) {
                        format!("(?i:{escaped})")
                    } else {
                        escaped
                    }
                })
                .collect();
            // With addresses, one pattern for both: a single pass over
            // the text instead of two.
            let addresses = if id.addresses {
                format!("|{MAC}|{IPV6}|{IPV4}")
            } else {
                String::new()
            };
            RegexBuilder::new(&format!("(?-u:{}{addresses})", alternation.join("|")))
                .size_limit(32 << 20)
                .build()
                .ok()
        };
        Self {
            literals,
            kinds,
            addresses: id.addresses,
        }
    }

    /// Whether there is anything to replace.
    pub fn is_empty(&self) -> bool {
        self.literals.is_none() && !self.addresses
    }

    /// Every value to replace in `input`: `(start, end, kind)`, sorted, not
    /// overlapping, never inside a `[REDACTED:...]` placeholder.
    fn spans(&self, input: &[u8]) -> Vec<(usize, usize, Kind)> {
        let mut spans = Vec::new();
        let re = match &self.literals {
            Some(re) => re,
            None if self.addresses => address_pattern(),
            None => return spans,
        };
        for m in re.find_iter(input) {
            let value = m.as_bytes();
            let literal = std::str::from_utf8(value).ok().and_then(|text| {
                self.kinds
                    .get(text)
                    .or_else(|| self.kinds.get(&text.to_ascii_lowercase()))
                    .copied()
            });
            match literal {
                Some(kind) if bounded(input, m.start(), m.end(), value) => {
                    spans.push((m.start(), m.end(), kind));
                }
                Some(_) => {}
                None if self.addresses => {
                    let kind = address_kind(value);
                    if address_bounded(input, m.start(), m.end(), kind) && replaceable(kind, value)
                    {
                        spans.push((m.start(), m.end(), kind));
                    }
                }
                None => {}
            }
        }
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let placeholders: Vec<(usize, usize)> = super::placeholder_pattern()
            .find_iter(input)
            .map(|m| (m.start(), m.end()))
            .collect();
        let mut out: Vec<(usize, usize, Kind)> = Vec::with_capacity(spans.len());
        for (s, e, k) in spans {
            if out.last().is_some_and(|&(_, end, _)| s < end) {
                continue;
            }
            if placeholders.iter().any(|&(ps, pe)| s < pe && ps < e) {
                continue;
            }
            out.push((s, e, k));
        }
        out
    }
}

/// Case does not matter for host names (DNS) and the user's words.
fn case_blind(kind: Kind) -> bool {
    matches!(kind, Kind::Host | Kind::Word | Kind::Container)
}

/// How a value of `kind` is looked up: lower-case where case does not
/// matter, allocating only when it has capitals.
fn key(kind: Kind, value: &str) -> std::borrow::Cow<'_, str> {
    if case_blind(kind) && value.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(value.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

fn worth_replacing(v: &str, kind: Kind) -> bool {
    match kind {
        _ if v.is_empty() => false,
        // `/` and `/root` say nothing about who the user is.
        Kind::Home => v.starts_with('/') && v.len() > 1 && v != "/root",
        // The user asked for it.
        Kind::Word => true,
        _ => v.chars().count() >= 3 && !v.contains(char::is_whitespace),
    }
}

/// A literal matched as a whole word: an alphanumeric end of the value must
/// not continue into the text around it (`alice` is not in `malice`, nor
/// `/home/alice` in `/home/alice2`).
fn bounded(input: &[u8], start: usize, end: usize, value: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let before_ok =
        !value.first().is_some_and(|&b| word(b)) || start == 0 || !word(input[start - 1]);
    let after_ok =
        !value.last().is_some_and(|&b| word(b)) || end == input.len() || !word(input[end]);
    before_ok && after_ok
}

/// An address is not part of a longer token: no letter, digit or `_`
/// joined to it, nor `.` (a trailing full stop ends a sentence and is
/// allowed), nor for IPv6 and MAC addresses a `:` (an IPv4 address may have
/// a port after it, or a scheme before it).
fn address_bounded(input: &[u8], start: usize, end: usize, kind: Kind) -> bool {
    if kind == Kind::Ipv4 && looks_like_a_version(input, start, end) {
        return false;
    }
    let colon_joins = kind != Kind::Ipv4;
    let joins = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || (colon_joins && b == b':');
    if start > 0 && (joins(input[start - 1]) || input[start - 1] == b'.') {
        return false;
    }
    match input.get(end) {
        None => true,
        Some(&b) if joins(b) => false,
        Some(b'.') => !input.get(end + 1).is_some_and(u8::is_ascii_alphanumeric),
        Some(_) => true,
    }
}

/// Four dotted numbers that are a package version: a Debian or semver
/// suffix after them (`1.2.5.1-2`, `1.2.3.4+dfsg`, `2.0.0.1~rc1`), or a
/// version pin before them (`pkg==1.2.3.4`, `>=`, `<=`, `~=`).
fn looks_like_a_version(input: &[u8], start: usize, end: usize) -> bool {
    let suffix = matches!(input.get(end), Some(b'-' | b'+' | b'~'))
        && input.get(end + 1).is_some_and(u8::is_ascii_alphanumeric);
    let pin = start >= 2
        && input[start - 1] == b'='
        && matches!(input[start - 2], b'=' | b'>' | b'<' | b'~' | b'!');
    suffix || pin
}

fn replaceable(kind: Kind, bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    match kind {
        Kind::Ipv4 => text.parse::<Ipv4Addr>().is_ok_and(|ip| {
            let o = ip.octets();
            !(ip.is_loopback()
                || ip.is_unspecified()
                || o[0] == 255
                || ip.is_documentation()
                || ip.is_multicast())
        }),
        Kind::Ipv6 => {
            text.bytes().any(|b| b.is_ascii_digit())
                && text.parse::<Ipv6Addr>().is_ok_and(|ip| {
                    let s = ip.segments();
                    !(ip.is_loopback()
                        || ip.is_unspecified()
                        || (s[0] == 0x2001 && s[1] == 0x0db8)
                        || ip.is_multicast()
                        || ip.to_ipv4_mapped().is_some())
                })
        }
        Kind::Mac => {
            let lower = text.to_ascii_lowercase();
            lower != "00:00:00:00:00:00"
                && lower != "ff:ff:ff:ff:ff:ff"
                && lower != "00-00-00-00-00-00"
                && lower != "ff-ff-ff-ff-ff-ff"
        }
        _ => true,
    }
}

const IPV4: &str = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}";
/// Eight groups, or a `::` somewhere: never a `10:00:00` timestamp, which
/// would make every log line a candidate.
const IPV6: &str = r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){0,6}(?:[0-9A-Fa-f]{1,4})?::(?:[0-9A-Fa-f]{1,4}:){0,6}(?:[0-9A-Fa-f]{1,4})?";
const MAC: &str = r"[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}";

fn ipv4_pattern() -> &'static Regex {
    static P: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    // Fixed patterns, covered by the tests: they always compile.
    #[allow(clippy::expect_used)]
    P.get_or_init(|| Regex::new(&format!("(?-u){IPV4}")).expect("ipv4 pattern"))
}

/// A MAC, IPv6 or IPv4 address, in that order of preference (when there
/// are no literals to find with them).
fn address_pattern() -> &'static Regex {
    static P: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    #[allow(clippy::expect_used)]
    P.get_or_init(|| Regex::new(&format!("(?-u){MAC}|{IPV6}|{IPV4}")).expect("address pattern"))
}

/// Which kind of address a match of [`address_pattern`] is.
fn address_kind(text: &[u8]) -> Kind {
    if text.contains(&b'.') {
        Kind::Ipv4
    } else if text.len() == 17 && matches!(text[2], b':' | b'-') && text[5] == text[2] {
        Kind::Mac
    } else {
        Kind::Ipv6
    }
}

/// The substitutions made for one bundle: real value to pseudonym.
#[derive(Debug, Clone, Default)]
pub struct Assigned {
    /// Per kind, the real value (lower-case where case does not matter) to
    /// its pseudonym.
    by_real: HashMap<Kind, HashMap<String, String>>,
    order: Vec<Entry>,
    next: BTreeMap<Kind, usize>,
    /// IPv4 /24 and IPv6 /64 prefixes to their pseudonymous subnet number.
    subnets4: HashMap<[u8; 3], usize>,
    subnets6: HashMap<[u16; 4], (usize, usize)>,
    pseudonyms: std::collections::HashSet<String>,
}

impl Assigned {
    /// Every substitution, in the order first made.
    pub fn entries(&self) -> &[Entry] {
        &self.order
    }

    /// The pseudonym `real` already has, without allocating.
    fn known(&self, kind: Kind, real: &str) -> Option<&String> {
        self.by_real.get(&kind)?.get(key(kind, real).as_ref())
    }

    fn pseudonym(&mut self, kind: Kind, real: &str, rules: &Rules) -> String {
        if let Some(p) = self.known(kind, real) {
            return p.clone();
        }
        let key = key(kind, real).into_owned();
        let p = match kind {
            Kind::User => format!("user-{}", self.bump(kind)),
            Kind::Home => {
                // The home of the user pseudonymised as user-N is /home/user-N.
                let user = real.rsplit('/').next().unwrap_or_default();
                if rules.kinds.get(user) == Some(&Kind::User) {
                    format!("/home/{}", self.pseudonym(Kind::User, user, rules))
                } else {
                    format!("/home/user-{}", self.bump(Kind::User))
                }
            }
            Kind::Host => self.host(real, rules),
            Kind::Container => format!("container-{}", self.bump(kind)),
            Kind::Word => format!("word-{}", self.bump(kind)),
            Kind::Ipv4 => self.ipv4(real),
            Kind::Ipv6 => self.ipv6(real),
            Kind::Mac => {
                let n = self.bump(kind);
                format!("02:00:00:00:{:02x}:{:02x}", (n >> 8) & 0xff, n & 0xff)
            }
        };
        self.by_real.entry(kind).or_default().insert(key, p.clone());
        self.pseudonyms.insert(p.clone());
        self.order.push(Entry {
            kind,
            real: real.to_owned(),
            pseudonym: p.clone(),
        });
        p
    }

    fn bump(&mut self, kind: Kind) -> usize {
        let n = self.next.entry(kind).or_insert(0);
        *n += 1;
        *n
    }

    /// A fully qualified name keeps its short name's pseudonym:
    /// `web7.corp.example` → `host-1.example.com` when `web7` is `host-1`.
    fn host(&mut self, real: &str, rules: &Rules) -> String {
        match real.split_once('.') {
            Some((short, _)) if !short.is_empty() => {
                let s = self.pseudonym(Kind::Host, short, rules);
                format!("{s}.example.com")
            }
            _ => format!("host-{}", self.bump(Kind::Host)),
        }
    }

    /// Starts from the substitutions of an earlier map: the same real
    /// values get the same pseudonyms, new ones the next numbers.
    pub fn seed(&mut self, entries: &[Entry]) {
        for e in entries {
            if self.known(e.kind, &e.real).is_some() {
                continue;
            }
            self.by_real
                .entry(e.kind)
                .or_default()
                .insert(key(e.kind, &e.real).into_owned(), e.pseudonym.clone());
            self.pseudonyms.insert(e.pseudonym.clone());
            self.order.push(e.clone());
            let counted = match e.kind {
                Kind::Home => None,
                Kind::Ipv4 => {
                    self.seed_subnet4(e);
                    None
                }
                Kind::Ipv6 => {
                    self.seed_subnet6(e);
                    None
                }
                Kind::Mac => e
                    .pseudonym
                    .rsplit(':')
                    .take(2)
                    .collect::<Vec<_>>()
                    .iter()
                    .rev()
                    .map(|h| usize::from_str_radix(h, 16).unwrap_or(0))
                    .reduce(|hi, lo| hi * 256 + lo),
                _ => e
                    .pseudonym
                    .split('.')
                    .next()
                    .and_then(|p| p.rsplit_once('-'))
                    .and_then(|(_, n)| n.parse().ok()),
            };
            if let Some(n) = counted {
                let next = self.next.entry(e.kind).or_insert(0);
                *next = (*next).max(n);
            }
        }
    }

    fn seed_subnet4(&mut self, e: &Entry) {
        if let (Ok(real), Ok(p)) = (e.real.parse::<Ipv4Addr>(), e.pseudonym.parse::<Ipv4Addr>()) {
            let (r, p) = (real.octets(), p.octets());
            let k = usize::from(p[1].saturating_sub(18)) * 256 + usize::from(p[2]);
            self.subnets4.entry([r[0], r[1], r[2]]).or_insert(k);
        }
    }

    fn seed_subnet6(&mut self, e: &Entry) {
        if let (Ok(real), Ok(p)) = (e.real.parse::<Ipv6Addr>(), e.pseudonym.parse::<Ipv6Addr>()) {
            let (r, p) = (real.segments(), p.segments());
            let entry = self
                .subnets6
                .entry([r[0], r[1], r[2], r[3]])
                .or_insert((usize::from(p[3]), 0));
            entry.1 = entry.1.max(usize::from(p[7]));
        }
    }

    /// Whether `text` is a pseudonym this map handed out (a text redacted
    /// twice keeps its pseudonyms).
    fn is_pseudonym(&self, text: &str) -> bool {
        self.pseudonyms.contains(text)
    }

    fn ipv4(&mut self, real: &str) -> String {
        let Ok(ip) = real.parse::<Ipv4Addr>() else {
            return real.to_owned();
        };
        // Pseudonymous subnets come from 198.18.0.0/15 (RFC 2544's
        // benchmarking range), which real reports seldom hold.
        let o = ip.octets();
        let next = self.subnets4.len();
        let k = *self.subnets4.entry([o[0], o[1], o[2]]).or_insert(next) % 512;
        format!("198.{}.{}.{}", 18 + (k >> 8), k & 0xff, o[3])
    }

    fn ipv6(&mut self, real: &str) -> String {
        let Ok(ip) = real.parse::<Ipv6Addr>() else {
            return real.to_owned();
        };
        let s = ip.segments();
        let next = self.subnets6.len() + 1;
        let entry = self
            .subnets6
            .entry([s[0], s[1], s[2], s[3]])
            .or_insert((next, 0));
        entry.1 += 1;
        let (k, host) = *entry;
        let k = u16::try_from(k).unwrap_or(u16::MAX);
        let host = u16::try_from(host).unwrap_or(u16::MAX);
        Ipv6Addr::new(0xfd00, 0, 0, k, 0, 0, 0, host).to_string()
    }
}

/// The replacements of one text: each value's first line and its entry.
pub(super) type Made = Vec<(usize, Entry)>;

/// Replaces every value of `rules` in `input` with its pseudonym; returns
/// the text and the line numbers of the replacements with their entries,
/// or `None` when there is nothing to replace (the text stays as it is,
/// uncopied).
pub(super) fn apply(
    rules: &Rules,
    assigned: &mut Assigned,
    input: &[u8],
) -> Option<(Vec<u8>, Made)> {
    let spans = rules.spans(input);
    if spans.is_empty() {
        return None;
    }
    // `made` lists each real value once per text, where it first appears.
    let mut out = Vec::with_capacity(input.len());
    let mut made = Vec::new();
    let mut seen: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    let mut at = 0;
    let mut line = 1;
    let mut line_at = 0;
    for (start, end, kind) in spans {
        out.extend_from_slice(&input[at..start]);
        at = end;
        let bytes = &input[start..end];
        let lossy = String::from_utf8_lossy(bytes);
        let real = lossy.as_ref();
        if assigned.is_pseudonym(real) {
            out.extend_from_slice(bytes);
            continue;
        }
        let first = seen.insert(bytes);
        match assigned.known(kind, real) {
            Some(p) if !first => out.extend_from_slice(p.as_bytes()),
            _ => {
                let p = assigned.pseudonym(kind, real, rules);
                out.extend_from_slice(p.as_bytes());
                line += input[line_at..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                line_at = start;
                made.push((
                    line,
                    Entry {
                        kind,
                        real: real.to_owned(),
                        pseudonym: p,
                    },
                ));
            }
        }
    }
    out.extend_from_slice(&input[at..]);
    Some((out, made))
}

/// The map of one bundle, kept on the user's machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Map {
    /// The bundle's id (its manifest's `id`).
    pub bundle: String,
    pub pseudonyms: Vec<Entry>,
}

/// Where maps are kept: `$XDG_DATA_HOME/bugpack/pseudonyms`, else
/// `~/.local/share/bugpack/pseudonyms`.
pub fn map_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("bugpack/pseudonyms"))
}

impl Map {
    /// The map of bundle `id` in `dir`, if this machine keeps one.
    pub fn load(dir: &Path, id: &str) -> Option<Self> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Self::read(&dir.join(format!("{id}.yaml"))).ok()
    }

    /// The map in the file at `path` (at most 16 MiB are read).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        use std::io::Read as _;

        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(16 << 20).read_to_string(&mut text))
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_yaml::from_str(&text).with_context(|| {
            format!(
                "{} is not a pseudonym map bugpack wrote; remove it and capture again",
                path.display()
            )
        })
    }

    /// Writes the map as `DIR/<bundle>.yaml`, mode 0600, in a 0700 directory.
    pub fn save(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        use anyhow::Context as _;
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{}.yaml", self.bundle));
        let text = serde_yaml::to_string(self)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// `text` with every pseudonym back to its real value; an IPv4 address
    /// in a pseudonymous /24 that the bundle never held gets the real /24.
    /// Bytes that are not UTF-8 pass through unchanged.
    pub fn unmask(&self, text: &[u8]) -> Vec<u8> {
        let mut by_pseudonym: HashMap<&str, &str> = HashMap::new();
        for e in &self.pseudonyms {
            by_pseudonym.entry(&e.pseudonym).or_insert(&e.real);
        }
        let mut subnets: HashMap<String, String> = HashMap::new();
        for e in self.pseudonyms.iter().filter(|e| e.kind == Kind::Ipv4) {
            if let (Some((p, _)), Some((r, _))) =
                (e.pseudonym.rsplit_once('.'), e.real.rsplit_once('.'))
            {
                subnets.insert(p.to_owned(), r.to_owned());
            }
        }
        let mut keys: Vec<&str> = by_pseudonym.keys().copied().collect();
        keys.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        let bytes = text;
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        if !keys.is_empty() {
            let alternation: Vec<String> = keys.iter().map(|k| regex::escape(k)).collect();
            if let Ok(re) = Regex::new(&format!("(?-u:{})", alternation.join("|"))) {
                for m in re.find_iter(bytes) {
                    if !bounded(bytes, m.start(), m.end(), m.as_bytes())
                        || (m.as_bytes().first().is_some_and(u8::is_ascii_digit)
                            && !address_bounded(bytes, m.start(), m.end(), Kind::Ipv4))
                    {
                        continue;
                    }
                    let key = String::from_utf8_lossy(m.as_bytes());
                    if let Some(real) = by_pseudonym.get(key.as_ref()) {
                        spans.push((m.start(), m.end(), (*real).to_owned()));
                    }
                }
            }
        }
        for m in ipv4_pattern().find_iter(bytes) {
            if !address_bounded(bytes, m.start(), m.end(), Kind::Ipv4)
                || spans.iter().any(|&(s, e, _)| m.start() < e && s < m.end())
            {
                continue;
            }
            let ip = String::from_utf8_lossy(m.as_bytes());
            if let Some((prefix, last)) = ip.rsplit_once('.')
                && let Some(real) = subnets.get(prefix)
            {
                spans.push((m.start(), m.end(), format!("{real}.{last}")));
            }
        }
        spans.sort_by_key(|s| s.0);
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for (s, e, real) in spans {
            if s < at {
                continue;
            }
            out.extend_from_slice(&text[at..s]);
            out.extend_from_slice(real.as_bytes());
            at = e;
        }
        out.extend_from_slice(&text[at..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`apply`], with an unchanged text given back as it was.
    fn applied(rules: &Rules, a: &mut Assigned, text: &[u8]) -> (Vec<u8>, Made) {
        apply(rules, a, text).unwrap_or_else(|| (text.to_vec(), Vec::new()))
    }

    fn alice() -> Identity {
        Identity {
            users: vec!["alice".to_owned()],
            homes: vec!["/home/alice".to_owned()],
            hosts: vec!["web7".to_owned(), "web7.corp.acme.io".to_owned()],
            containers: vec!["checkout-5d8f9c-x2x7q".to_owned()],
            words: vec!["Acme".to_owned()],
            addresses: true,
        }
    }

    fn run(id: &Identity, text: &str) -> (String, Assigned) {
        let rules = Rules::new(id);
        let mut a = Assigned::default();
        let (out, _) = applied(&rules, &mut a, text.as_bytes());
        (String::from_utf8(out).unwrap(), a)
    }

    #[test]
    fn the_same_value_gets_the_same_pseudonym_and_words_stay_whole() {
        let (out, _) = run(
            &alice(),
            "alice@web7.corp.acme.io:/home/alice/src$ malice alice WEB7 /home/alice2 ACME acmes",
        );
        assert_eq!(
            out,
            "user-1@host-1.example.com:/home/user-1/src$ malice user-1 host-1 /home/alice2 word-1 acmes"
        );
    }

    #[test]
    fn addresses_keep_their_subnets_and_special_ones_stay() {
        let (out, a) = run(
            &Identity {
                addresses: true,
                ..Identity::default()
            },
            "192.168.4.20:8080 192.168.4.21, 172.16.0.9. 127.0.0.1 0.0.0.0 255.255.255.0 192.0.2.7 \
             v1.2.3.4.5 1.2.5.1-2 pkg==4.3.2.1 2a01:4f8:1:2::10 2a01:4f8:1:2::11 ::1 2001:db8::5 12:34:56 \
             aa:bb:cc:dd:ee:ff ff:ff:ff:ff:ff:ff std::fs",
        );
        assert_eq!(
            out,
            "198.18.0.20:8080 198.18.0.21, 198.18.1.9. 127.0.0.1 0.0.0.0 255.255.255.0 192.0.2.7 \
             v1.2.3.4.5 1.2.5.1-2 pkg==4.3.2.1 fd00:0:0:1::1 fd00:0:0:1::2 ::1 2001:db8::5 12:34:56 \
             02:00:00:00:00:01 ff:ff:ff:ff:ff:ff std::fs"
        );
        assert_eq!(a.entries().len(), 6);
    }

    #[test]
    fn anonymous_accounts_and_root_are_left_alone() {
        let (out, a) = run(
            &Identity {
                users: vec!["root".to_owned()],
                homes: vec!["/root".to_owned()],
                hosts: vec!["localhost".to_owned()],
                ..Identity::default()
            },
            "root at localhost in /root",
        );
        assert_eq!(out, "root at localhost in /root");
        assert!(a.entries().is_empty());
    }

    #[test]
    fn a_text_pseudonymised_twice_keeps_its_pseudonyms() {
        let rules = Rules::new(&alice());
        let mut a = Assigned::default();
        let text = b"alice 192.168.4.20 aa:bb:cc:dd:ee:01 2a01:4f8::1";
        let (once, _) = applied(&rules, &mut a, text);
        let (twice, made) = applied(&rules, &mut a, &once);
        assert_eq!(once, twice);
        assert!(made.is_empty(), "{made:?}");
    }

    #[test]
    fn a_seeded_map_gives_the_same_pseudonyms_and_numbers_on() {
        let rules = Rules::new(&alice());
        let mut first = Assigned::default();
        let text = b"alice web7 192.168.4.20 aa:bb:cc:dd:ee:01";
        let (once, _) = applied(&rules, &mut first, text);
        let mut again = Assigned::default();
        again.seed(first.entries());
        let (twice, _) = applied(&rules, &mut again, text);
        assert_eq!(once, twice);
        let (more, _) = applied(
            &rules,
            &mut again,
            b"Acme 192.168.4.30 10.1.1.1 aa:bb:cc:dd:ee:02",
        );
        assert_eq!(
            String::from_utf8(more).unwrap(),
            "word-1 198.18.0.30 198.18.1.1 02:00:00:00:00:02"
        );
    }

    #[test]
    fn placeholders_are_never_touched() {
        let (out, _) = run(&alice(), "[REDACTED:alice:1] alice");
        assert_eq!(out, "[REDACTED:alice:1] user-1");
    }

    #[test]
    fn unmask_round_trips_and_restores_unseen_hosts_of_a_subnet() {
        let id = alice();
        let text = "alice on web7 (192.168.4.20) saw /home/alice/x fail";
        let (out, a) = run(&id, text);
        let map = Map {
            bundle: "0".repeat(32),
            pseudonyms: a.entries().to_vec(),
        };
        assert_eq!(map.unmask(out.as_bytes()), text.as_bytes());
        assert_eq!(
            map.unmask(b"try 198.18.0.1 as user-1 on host-1; user-10 is not ours\xff"),
            b"try 192.168.4.1 as alice on web7; user-10 is not ours\xff"
        );
    }

    #[test]
    fn a_container_id_in_the_cgroup_path_is_found() {
        let id = "3f".repeat(32);
        assert_eq!(
            container_ids(&format!("0::/system.slice/docker-{id}.scope\n")),
            vec![id]
        );
    }
}
