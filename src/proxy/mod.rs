//! bugpack's own HTTP/1.1 forward proxy: the "proxy axis" of a replay.
//!
//! A maintainer asks "does this bug appear behind a caching proxy?"; replay
//! answers by running the scenario with `http_proxy` pointing here, in one of
//! the [`Mode`]s: plain forwarding, a misconfigured cache that stores every
//! successful GET, an RFC 9111 shared cache, added latency, or reset
//! connections. Faults are drawn from a PRNG seeded by [`Config::seed`], so a
//! run can be replayed exactly.
//!
//! The proxy runs on its own thread ([`Proxy::start`]) or, inside a replay's
//! network namespace, as a process of its own ([`serve_blocking`]).
//!
//! What it must never do: parse HTTP by hand (hyper does), connect anywhere
//! but the host named in a request, hold an unbounded body in memory (only
//! responses up to [`MAX_CACHED_BODY`] are buffered, for the cache; all else
//! streams), panic or stop serving because of what a peer sent, or print
//! (it logs through `tracing`).

pub(crate) mod background;
mod cache;
mod fault;
mod rfc;
mod server;
mod shape;
mod stats;
mod tee;
pub mod tls;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use server::{Proxy, RequestHook, serve_blocking, serve_foreground, serve_until};
pub use stats::Stats;

/// The largest response body the cache modes keep; larger ones are streamed
/// through and never stored.
pub const MAX_CACHED_BODY: usize = 8 * 1024 * 1024;

/// The default latency `slow` adds to every response, in milliseconds.
pub const DEFAULT_SLOW_MS: u64 = 300;

/// The default share of connections `flaky` resets.
pub const DEFAULT_FLAKY_P: f64 = 0.1;

/// The longest latency `slow:MS` accepts: an hour, far past any scenario's timeout.
const MAX_SLOW_MS: u64 = 3_600_000;

/// What the proxy does to the traffic it forwards.
///
/// Parsed from and displayed as the values of `replay --proxy`: `pass`,
/// `cache`, `rfc`, `slow[:MS]`, `flaky[:P]`, and the HTTP faults
/// `status:CODE[:P]`, `truncate:BYTES`, `drop-header:NAME`, `stale:SECS`.
/// (`none`, no proxy at all, is the caller's business and not a mode.)
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Forward everything, cache nothing.
    Pass,
    /// The misconfigured proxy: store every 200 response to a GET by its full
    /// URL and serve it again to later GETs, whatever its headers say.
    Cache,
    /// A shared cache that follows RFC 9111 (freshness, validators,
    /// revalidation, heuristic freshness from `Last-Modified`).
    Rfc,
    /// Forward, delaying every response by `ms` milliseconds, ±10% jitter.
    Slow {
        /// The mean added latency.
        ms: u64,
    },
    /// Forward, but reset (TCP RST) a share `p` of client connections.
    Flaky {
        /// The probability that a connection is reset, in `[0, 1]`.
        p: f64,
    },
    /// Answer a share `p` of requests with `code` instead of forwarding them
    /// (a load balancer's 503s).
    Status {
        code: u16,
        /// The probability that a request gets `code`, in `[0, 1]`.
        p: f64,
    },
    /// Forward, but end every response body after `bytes` bytes, keeping
    /// the `Content-Length` the origin sent: the client sees the
    /// connection close early.
    Truncate { bytes: u64 },
    /// Forward, but remove the header `name` (lowercase) from every
    /// response; without `Content-Length` the body goes chunked.
    DropHeader { name: String },
    /// Store every 200 to a GET and serve it for `secs` seconds after it was
    /// stored, whatever its headers say: a CDN's fixed TTL, where clients
    /// see copies up to `secs` old.
    Stale { secs: u64 },
}

impl Mode {
    /// Whether this mode keeps a response cache.
    pub fn caches(&self) -> bool {
        matches!(self, Self::Cache | Self::Rfc | Self::Stale { .. })
    }
}

/// A `--proxy` value that is not a proxy mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// The name before any `:` is not a mode.
    #[error(
        "unknown proxy mode `{0}`: expected pass, cache, rfc, slow[:MS], flaky[:P], status:CODE[:P], truncate:BYTES, drop-header:NAME or stale:SECS (\"none\" means no proxy)"
    )]
    Unknown(String),
    /// A mode that takes no parameter was given one.
    #[error("proxy mode `{0}` takes no parameter (got `{1}`)")]
    UnexpectedParameter(&'static str, String),
    /// `slow:MS` with an MS that is not a whole number of milliseconds in range.
    #[error(
        "proxy mode `slow:{0}`: MS must be a whole number of milliseconds from 0 to {MAX_SLOW_MS}, e.g. slow:150"
    )]
    BadDelay(String),
    /// `flaky:P` with a P that is not a probability.
    #[error("proxy mode `flaky:{0}`: P must be a probability from 0 to 1, e.g. flaky:0.25")]
    BadProbability(String),
    /// One of the HTTP faults with a parameter that is not what it takes.
    #[error("proxy mode `{0}` needs {1}, e.g. {2}")]
    BadParameter(String, &'static str, &'static str),
}

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, param) = match s.split_once(':') {
            Some((name, param)) => (name, Some(param)),
            None => (s, None),
        };
        let no_param = |mode: Self, name: &'static str| match param {
            None => Ok(mode),
            Some(p) => Err(ModeError::UnexpectedParameter(name, p.to_owned())),
        };
        match name {
            "pass" => no_param(Self::Pass, "pass"),
            "cache" => no_param(Self::Cache, "cache"),
            "rfc" => no_param(Self::Rfc, "rfc"),
            "slow" => match param {
                None => Ok(Self::Slow {
                    ms: DEFAULT_SLOW_MS,
                }),
                Some(p) => match p.parse::<u64>() {
                    Ok(ms) if ms <= MAX_SLOW_MS => Ok(Self::Slow { ms }),
                    _ => Err(ModeError::BadDelay(p.to_owned())),
                },
            },
            "flaky" => match param {
                None => Ok(Self::Flaky { p: DEFAULT_FLAKY_P }),
                Some(text) => match text.parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Ok(Self::Flaky { p }),
                    _ => Err(ModeError::BadProbability(text.to_owned())),
                },
            },
            "status" | "truncate" | "drop-header" | "stale" => http_fault(s, name, param),
            _ => Err(ModeError::Unknown(s.to_owned())),
        }
    }
}

/// The HTTP faults' values: `status:CODE[:P]`, `truncate:BYTES`,
/// `drop-header:NAME`, `stale:SECS`.
fn http_fault(s: &str, name: &str, param: Option<&str>) -> Result<Mode, ModeError> {
    let (what, example) = match name {
        "status" => (
            "CODE[:P], a status from 200 to 599 and a probability",
            "status:503:0.2",
        ),
        "truncate" => ("BYTES, a whole number of bytes", "truncate:100"),
        "drop-header" => ("NAME, a header name", "drop-header:ETag"),
        _ => ("SECS, whole seconds", "stale:30"),
    };
    let bad = || ModeError::BadParameter(s.to_owned(), what, example);
    let param = param.ok_or_else(bad)?;
    let whole = |t: &str| {
        t.parse::<u64>()
            .ok()
            .filter(|&n| n <= MAX_SLOW_MS)
            .ok_or_else(bad)
    };
    match name {
        "status" => {
            let (code, p) = match param.split_once(':') {
                Some((code, p)) => (code, p.parse::<f64>().map_err(|_| bad())?),
                None => (param, 1.0),
            };
            let code = code
                .parse::<u16>()
                .ok()
                .filter(|c| (200..=599).contains(c))
                .ok_or_else(bad)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(bad());
            }
            Ok(Mode::Status { code, p })
        }
        "truncate" => Ok(Mode::Truncate {
            bytes: whole(param)?,
        }),
        "drop-header" => {
            let header =
                http::header::HeaderName::from_bytes(param.as_bytes()).map_err(|_| bad())?;
            Ok(Mode::DropHeader {
                name: header.as_str().to_owned(),
            })
        }
        _ => Ok(Mode::Stale {
            secs: whole(param)?,
        }),
    }
}

impl fmt::Display for Mode {
    /// The form a user types; defaults print bare (`slow`, not `slow:300`) so
    /// that a report shows the axis value the user asked for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pass => f.write_str("pass"),
            Self::Cache => f.write_str("cache"),
            Self::Rfc => f.write_str("rfc"),
            Self::Slow { ms } if *ms == DEFAULT_SLOW_MS => f.write_str("slow"),
            Self::Slow { ms } => write!(f, "slow:{ms}"),
            // Exact comparison on purpose: only the value `flaky` parses to prints bare.
            #[allow(clippy::float_cmp)]
            Self::Flaky { p } if *p == DEFAULT_FLAKY_P => f.write_str("flaky"),
            // f64's Display is the shortest text that parses back to the same value.
            Self::Flaky { p } => write!(f, "flaky:{p}"),
            #[allow(clippy::float_cmp)]
            Self::Status { code, p } if *p == 1.0 => write!(f, "status:{code}"),
            Self::Status { code, p } => write!(f, "status:{code}:{p}"),
            Self::Truncate { bytes } => write!(f, "truncate:{bytes}"),
            Self::DropHeader { name } => write!(f, "drop-header:{name}"),
            Self::Stale { secs } => write!(f, "stale:{secs}"),
        }
    }
}

impl serde::Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One request the proxy served, as `bugpack proxy` logs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestLog {
    pub method: String,
    /// The URL, without credentials or the values of secret-looking
    /// query parameters.
    pub url: String,
    pub status: u16,
    /// `HIT` or `MISS` in the cache modes.
    pub cache: Option<String>,
    /// Latency `slow` added, in milliseconds.
    pub delay_ms: u64,
}

/// How to run a proxy.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the proxy does to traffic.
    pub mode: Mode,
    /// Seeds the PRNG behind `slow`'s jitter and `flaky`'s resets: the same
    /// seed and the same sequence of connections give the same faults.
    pub seed: u64,
    /// Where the cache modes persist their entries, so that a later proxy
    /// with the same directory starts warm. `None` keeps the cache in memory.
    pub cache_dir: Option<PathBuf>,
    /// With a CA, `CONNECT` tunnels are intercepted: the proxy answers TLS
    /// with a certificate for the host signed by the CA, and the HTTPS
    /// requests inside go through the mode like plain ones. Without one,
    /// tunnels pass bytes untouched.
    pub tls: Option<std::sync::Arc<tls::Authority>>,
}

impl Config {
    /// A config for `mode` with seed 0 and an in-memory cache.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            seed: 0,
            cache_dir: None,
            tls: None,
        }
    }
}
