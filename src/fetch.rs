//! Bundles given as URLs: `bugpack replay https://…/bug.zip` (and `inspect`,
//! `verify`, `diff`) downloads the bundle, capped at a size, into a cache
//! keyed by its SHA-256, then reads the cached file like any other.
//!
//! Only `https://` is fetched, and `http://` to a loopback address (a local
//! server, in tests). The download goes to a locked private directory in the
//! cache and is renamed to `<sha256>.zip` once complete and hashed, so a
//! killed download leaves nothing a later run would trust. With `--sha256`
//! a cached copy is used without any download, and a download whose hash
//! differs is refused (exit 3) and removed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::bundle::Rejection;
use crate::error::usage;
use crate::partial::Partial;

/// Prefix of the private directories downloads are written in.
const PARTIAL_PREFIX: &str = ".download-";

/// Whether `arg` is a URL rather than a path.
pub fn is_url(arg: &str) -> bool {
    arg.starts_with("https://") || arg.starts_with("http://")
}

/// Where downloaded bundles are kept: `$XDG_CACHE_HOME/bugpack/bundles`, else
/// `~/.cache/bugpack/bundles`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| {
            anyhow::anyhow!("neither XDG_CACHE_HOME nor HOME is set: nowhere to keep downloads")
        })?;
    Ok(base.join("bugpack").join("bundles"))
}

/// What the download reports as it goes (a progress bar on a terminal).
pub trait Progress {
    /// The server's announced length, when it gave one.
    fn start(&self, length: Option<u64>);
    fn advance(&self, bytes: u64);
    fn done(&self);
}

/// No progress shown.
#[derive(Debug)]
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn done(&self) {}
}

/// A downloaded (or cached) bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Whether the cache already held it (only with a pinned SHA-256).
    pub cached: bool,
}

/// Downloads `url` into the cache (at most `max_bytes`), or finds it there
/// when `sha256` pins it. Errors: a URL bugpack will not fetch is a usage
/// error (exit 2); a download too large or with another hash is a
/// rejection (exit 3); a network or HTTP failure is exit 4.
pub fn fetch(
    url: &str,
    sha256: Option<&str>,
    max_bytes: u64,
    progress: &dyn Progress,
) -> anyhow::Result<Fetched> {
    check_url(url)?;
    let pinned = sha256.map(parse_sha256).transpose()?;
    let dir = cache_dir()?;
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Some(pinned) = &pinned {
        let path = dir.join(format!("{pinned}.zip"));
        if let Ok(meta) = fs::metadata(&path) {
            // A cached file is trusted only if it still hashes to its name.
            let (bytes, actual) = crate::bundle::sha256_stream(File::open(&path)?)?;
            if &actual == pinned {
                tracing::info!("{url}: using the cached {}", path.display());
                return Ok(Fetched {
                    path,
                    sha256: actual,
                    bytes: bytes.max(meta.len()),
                    cached: true,
                });
            }
            fs::remove_file(&path).ok();
        }
    }
    let partial = Partial::fresh(&dir, PARTIAL_PREFIX)
        .with_context(|| format!("cannot create a download directory in {}", dir.display()))?;
    let part = partial.path().join("bundle.zip");
    let (bytes, actual) = download(url, &part, max_bytes, progress)?;
    if let Some(pinned) = &pinned
        && &actual != pinned
    {
        return Err(anyhow::Error::new(Rejection::Download(format!(
            "the download's SHA-256 is {actual}, not the {pinned} that --sha256 pins"
        )))
        .context(format!("{url} rejected")));
    }
    let path = dir.join(format!("{actual}.zip"));
    fs::rename(&part, &path).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(
        "{url}: {bytes} bytes, sha256 {actual}, kept as {}",
        path.display()
    );
    Ok(Fetched {
        path,
        sha256: actual,
        bytes,
        cached: false,
    })
}

/// The client for small requests to GitHub (its API, a user's `.keys`):
/// the whole exchange within `timeout`, the proxy of the environment, an
/// HTTP error status returned rather than raised.
pub(crate) fn api_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .proxy(ureq::Proxy::try_from_env())
        .user_agent(concat!("bugpack/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// `https://` anywhere; `http://` only to loopback.
pub(crate) fn check_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(usage(format!(
            "{url}: bugpack fetches bundles over https:// (plain http:// only from loopback); use the https:// URL"
        )))
    }
}

fn parse_sha256(text: &str) -> anyhow::Result<String> {
    let hex = text.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(usage(format!(
            "--sha256 {text:?}: give the 64 hex digits `sha256sum` prints"
        )))
    }
}

/// Streams `url` into `out`, hashing; refuses more than `max` bytes.
fn download(
    url: &str,
    out: &Path,
    max: u64,
    progress: &dyn Progress,
) -> anyhow::Result<(u64, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_mins(10)))
        .http_status_as_error(false)
        .proxy(ureq::Proxy::try_from_env())
        .user_agent(concat!("bugpack/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot download {url}"))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!(
            "cannot download {url}: the server answered {status}; check the URL (a private repository's attachment needs you signed in)"
        );
    }
    let too_large = |bytes: u64| {
        anyhow::Error::new(Rejection::Download(format!(
            "the download is {bytes} bytes or more, over the {max}-byte limit (raise it with --max-size if you trust this bundle)"
        )))
        .context(format!("{url} rejected"))
    };
    let length = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = length.filter(|&l| l > max) {
        return Err(too_large(length));
    }
    progress.start(length);
    let mut reader = response.body_mut().as_reader().take(max + 1);
    let mut file = File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot download {url}")),
        };
        total += n as u64;
        if total > max {
            return Err(too_large(total));
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", out.display()))?;
        progress.advance(n as u64);
    }
    if let Some(length) = length.filter(|&l| l != total) {
        anyhow::bail!(
            "cannot download {url}: the server announced {length} bytes and sent {total}"
        );
    }
    file.sync_all().ok();
    progress.done();
    Ok((total, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_and_loopback_http_are_fetched() {
        for ok in [
            "https://github.com/u/r/files/1/bug.zip",
            "http://127.0.0.1:8080/b.zip",
            "http://localhost/b.zip",
            "http://[::1]:9/b.zip",
            "http://user@127.0.0.2/b.zip",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/b.zip",
            "http://127.0.0.1.evil.example/b.zip",
            "http://10.0.0.1/b.zip",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sha256_must_be_64_hex_digits() {
        assert!(parse_sha256(&"A".repeat(64)).is_ok());
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }
}

/// The environment variable that replaces `https://api.github.com` (tests,
/// GitHub Enterprise).
pub const GITHUB_API_ENV: &str = "BUGPACK_GITHUB_API_URL";

/// `https://github.com/OWNER/REPO/issues/N` (or `/pull/N`): its owner,
/// repository and number; `None` for any other URL.
pub fn github_issue(url: &str) -> Option<(String, String, u64)> {
    let rest = url
        .strip_prefix("https://github.com/")?
        .split(['?', '#'])
        .next()?;
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match parts[..] {
        [owner, repo, "issues" | "pull", number] if !owner.is_empty() && !repo.is_empty() => {
            Some((owner.to_owned(), repo.to_owned(), number.parse().ok()?))
        }
        _ => None,
    }
}

/// The `.zip` links in a Markdown text, once each, in order.
pub fn zip_links(text: &str) -> Vec<String> {
    static LINK: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(link) = LINK
        .get_or_init(|| regex::Regex::new(r#"https?://[^\s()<>\[\]"'`]+?\.zip\b"#).ok())
        .as_ref()
    else {
        return Vec::new();
    };
    let mut links: Vec<String> = Vec::new();
    for m in link.find_iter(text) {
        // The link ends at the `.zip`: a space, a bracket or punctuation
        // that ends a sentence follows, not more of a name (`a.zip.txt`).
        let mut after = text[m.end()..].chars();
        let ends = match after.next() {
            None => true,
            Some(c) if c.is_whitespace() || "()<>[]\"'`".contains(c) => true,
            Some(c) if ".,;:!?".contains(c) => after.next().is_none_or(|n| !n.is_alphanumeric()),
            Some(_) => false,
        };
        if !ends {
            continue;
        }
        if !links.iter().any(|l| l == m.as_str()) {
            links.push(m.as_str().to_owned());
        }
    }
    links
}

/// The token of GitHub's CLI, when it is installed and logged in: what a
/// maintainer who uses `gh` has already set up.
fn gh_token() -> Option<String> {
    let out = duct::cmd!("gh", "auth", "token", "--hostname", "github.com")
        .stdin_null()
        .stderr_null()
        .stdout_capture()
        .unchecked()
        .run()
        .ok()?;
    let token = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !token.is_empty() && !token.contains(char::is_whitespace))
        .then_some(token)
}

/// The bundles linked from a GitHub issue's body and comments, read
/// through the GitHub API (`$BUGPACK_GITHUB_API_URL` or
/// `https://api.github.com`), with a token from `GH_TOKEN` or
/// `GITHUB_TOKEN` when one is set, else from `gh auth token` when `gh` is
/// installed and logged in (never printed).
pub fn issue_bundles(owner: &str, repo: &str, number: u64) -> anyhow::Result<Vec<String>> {
    let api = std::env::var(GITHUB_API_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "https://api.github.com".to_owned());
    let api = api.trim_end_matches('/');
    check_url(api)?;
    let token = ["GH_TOKEN", "GITHUB_TOKEN"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(gh_token);
    let agent = api_agent(Duration::from_mins(1));
    let get = |path: String| -> anyhow::Result<serde_json::Value> {
        let url = format!("{api}{path}");
        let mut request = agent
            .get(&url)
            .header("Accept", "application/vnd.github+json");
        if let Some(token) = &token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut response = request
            .call()
            .with_context(|| format!("cannot read {owner}/{repo}#{number} from the GitHub API"))?;
        let status = response.status();
        if !status.is_success() {
            let hint = if token.is_some() {
                "check the issue's URL and that the token can read it"
            } else {
                "check the issue's URL; for a private repository set GH_TOKEN or run `gh auth login`"
            };
            anyhow::bail!("cannot read {owner}/{repo}#{number}: GitHub answered {status}; {hint}");
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .with_context(|| format!("cannot read {owner}/{repo}#{number} from the GitHub API"))?;
        serde_json::from_str(&text)
            .with_context(|| format!("cannot read {owner}/{repo}#{number}: not the API's JSON"))
    };
    let issue = get(format!("/repos/{owner}/{repo}/issues/{number}"))?;
    let mut text = issue["body"].as_str().unwrap_or_default().to_owned();
    let comments = get(format!(
        "/repos/{owner}/{repo}/issues/{number}/comments?per_page=100"
    ))?;
    for comment in comments.as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(comment["body"].as_str().unwrap_or_default());
    }
    Ok(zip_links(&text))
}

#[cfg(test)]
mod issue_tests {
    use super::*;

    #[test]
    fn issue_urls_are_told_from_bundle_urls() {
        assert_eq!(
            github_issue("https://github.com/o/r/issues/12#issuecomment-1"),
            Some(("o".into(), "r".into(), 12))
        );
        assert_eq!(
            github_issue("https://github.com/o/r/pull/3/"),
            Some(("o".into(), "r".into(), 3))
        );
        assert_eq!(github_issue("https://github.com/o/r/files/1/bug.zip"), None);
        assert_eq!(github_issue("https://github.com/o/r/issues/x"), None);
    }

    #[test]
    fn zip_links_are_found_once_each() {
        let text = "see [bug.zip](https://github.com/user-attachments/files/1/bug.zip), \
                    https://x.example/a.zip and https://x.example/a.zip again; \
                    not https://x.example/a.zip.txt nor https://x.example/zipper";
        assert_eq!(
            zip_links(text),
            [
                "https://github.com/user-attachments/files/1/bug.zip",
                "https://x.example/a.zip"
            ]
        );
    }
}
