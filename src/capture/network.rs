//! `env/network.yaml`: proxy settings, and with `--probe URL` what the
//! network between the user and a server says about itself.
//!
//! Each URL is fetched twice, the way the user's programs would (through
//! the proxy their environment names), and the status and the headers that
//! reveal intermediaries and caches are kept: a second answer with a
//! growing `Age` or an `X-Cache: HIT` is the caching proxy of the
//! "polling UI hangs" story. URLs and header values pass through the
//! redactor. A failed fetch is recorded, never fatal.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::system::PROXY_VARS;
use crate::redact::Redactor;

/// The response headers that reveal proxies and caches.
pub const REVEALING: &[&str] = &[
    "via",
    "age",
    "x-cache",
    "x-cache-lookup",
    "x-served-by",
    "cache-control",
    "expires",
    "last-modified",
    "etag",
    "date",
    "pragma",
    "vary",
];

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
const ORIGIN: &str = "env/network.yaml";

/// What `env/network.yaml` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfo {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
}

/// One URL, fetched twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub url: String,
    pub attempts: Vec<Attempt>,
}

/// One fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Proxy settings from `env`, and a probe of each URL.
pub fn describe(
    env: &BTreeMap<String, String>,
    urls: &[String],
    redactor: &mut Redactor,
) -> NetworkInfo {
    let mut info = NetworkInfo::default();
    for name in PROXY_VARS {
        if let Some(v) = env.get(*name) {
            info.proxy
                .insert((*name).to_owned(), redactor.redact_url(ORIGIN, v));
        }
    }
    if urls.is_empty() {
        return info;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(PROBE_TIMEOUT))
        .http_status_as_error(false)
        .proxy(ureq::Proxy::try_from_env())
        .user_agent(concat!("bugpack/", env!("CARGO_PKG_VERSION"), " (probe)"))
        .build()
        .into();
    for url in urls {
        tracing::info!("probing {} (two GETs)", redactor.scrub(url));
        let attempts = (0..2).map(|_| fetch(&agent, url, redactor)).collect();
        info.probes.push(Probe {
            url: redactor.redact_url(ORIGIN, url),
            attempts,
        });
    }
    info
}

fn fetch(agent: &ureq::Agent, url: &str, redactor: &mut Redactor) -> Attempt {
    match agent.get(url).call() {
        Ok(response) => {
            let mut headers = BTreeMap::new();
            for name in REVEALING {
                let values: Vec<String> = response
                    .headers()
                    .get_all(*name)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                if !values.is_empty() {
                    headers.insert(
                        (*name).to_owned(),
                        redactor.redact_str(ORIGIN, &values.join(", ")),
                    );
                }
            }
            tracing::debug!(
                "probe answered {} ({} revealing headers)",
                response.status().as_u16(),
                headers.len()
            );
            Attempt {
                status: Some(response.status().as_u16()),
                headers,
                error: None,
            }
        }
        Err(e) => {
            let error = redactor.redact_str(ORIGIN, &e.to_string());
            tracing::debug!("probe failed: {error}");
            Attempt {
                status: None,
                headers: BTreeMap::new(),
                error: Some(error),
            }
        }
    }
}
