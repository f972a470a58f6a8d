//! `bugpack proxy`: the proxy of replay's proxy axis, standalone and in the
//! foreground, so that a maintainer can put it in front of a browser or an
//! app and watch what it does: one line per request (method, URL, status,
//! HIT/MISS, added delay), or JSON lines; Ctrl-C stops it and prints the
//! totals.

use std::io::Write as _;
use std::sync::Mutex;

use anyhow::{Context as _, Result};
use bugpack::proxy::RequestLog;

use super::Status;
use crate::settings::ProxyServe;
use crate::terminal::Ui;

pub(crate) fn run(settings: &ProxyServe, ui: &Ui) -> Result<Status> {
    let listener = std::net::TcpListener::bind(settings.listen).with_context(|| {
        format!(
            "cannot listen on {}; pick another address with --listen",
            settings.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let out: Box<dyn std::io::Write + Send> = match &settings.log {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot write the log {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let out = std::sync::Arc::new(Mutex::new(out));
    let json = settings.json;
    // Status lines go to stderr (the log may be stdout); -q leaves them out.
    if !ui.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "bugpack proxy ({}) listening on http://{addr}: set http_proxy=http://{addr} (or curl -x http://{addr}); Ctrl-C stops",
            settings.config.mode
        );
    }
    let log = std::sync::Arc::clone(&out);
    let stats = bugpack::proxy::serve_foreground(
        listener,
        settings.config.clone(),
        Box::new(move |r: &RequestLog| {
            let line = if json {
                serde_json::to_string(r).unwrap_or_default()
            } else {
                text(r)
            };
            if let Ok(mut out) = log.lock() {
                // A closed log (a pipe whose reader left) must not stop the proxy.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        }),
    )
    .context("the proxy stopped")?;
    if json && let Ok(mut out) = out.lock() {
        let totals = serde_json::json!({ "totals": stats });
        let _ = writeln!(out, "{totals}").and_then(|()| out.flush());
    }
    if !ui.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "bugpack proxy stopped: {}",
            stats.summary()
        );
    }
    Ok(Status::Success)
}

/// `GET http://127.0.0.1:5000/status 200 HIT +300 ms`.
fn text(r: &RequestLog) -> String {
    let mut line = format!("{} {} {}", r.method, r.url, r.status);
    if let Some(cache) = &r.cache {
        line.push(' ');
        line.push_str(cache);
    }
    if r.delay_ms > 0 {
        line.push_str(&format!(" +{} ms", r.delay_ms));
    }
    crate::terminal::printable(&line).into_owned()
}
