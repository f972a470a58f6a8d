//! The TCP fault proxy: the `--net-fault` axis of a replay.
//!
//! A broker, a database or a gRPC service misbehaves behind a real network
//! in ways no HTTP proxy can show: a hop that adds latency, a thin link, a
//! load balancer that stops forwarding an idle connection, a reset in the
//! middle of a stream. Replay puts one [`FaultProxy`] in front of each of a
//! scenario's services; clients get its port in `BUGPACK_SERVICE_<NAME>_PORT`
//! and the service keeps its own.
//!
//! The faults are the toxics toxiproxy users rely on, one [`Toxic`] per axis
//! value. Like toxiproxy's, they act on what the service sends to its client
//! (downstream), except `blackhole`, which swallows both directions. Random
//! choices (jitter, slice sizes) come from a PRNG seeded by the run's seed,
//! so a failing run can be replayed with the same faults.
//!
//! What it must never do: connect anywhere but its one upstream, hold more
//! than a bounded number of chunks per connection, panic or stop serving
//! because of what a peer sent, or print (it logs through `tracing`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The largest value any toxic takes: an hour in milliseconds, a GiB in
/// bytes, far past what a scenario's timeout leaves room for.
const MAX_PARAMETER: u64 = 1 << 30;

/// How long a connection to the service may take before the client is reset.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much one read takes off a socket.
const CHUNK: usize = 64 * 1024;

/// Chunks `latency` holds per connection before it stops reading: the
/// memory bound, and the back-pressure a slow hop puts on a fast sender.
const LATENCY_QUEUE: usize = 64;

/// The pause between two slices of `slice`, so that each one reaches the
/// client in a read of its own.
const SLICE_PAUSE: Duration = Duration::from_millis(1);

/// One network fault, as `--net-fault` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toxic {
    /// `latency:MS[:JITTER]`: every chunk the service sends reaches the
    /// client MS ± JITTER milliseconds later, in order.
    Latency { ms: u64, jitter: u64 },
    /// `bandwidth:KBPS`: the service's data reaches the client at KBPS
    /// kilobytes (1,000 bytes) a second.
    Bandwidth { kbps: u64 },
    /// `slow-close:MS`: when the service closes, the client sees the close
    /// MS milliseconds later.
    SlowClose { ms: u64 },
    /// `blackhole:MS`: MS milliseconds after a connection opens, nothing
    /// more crosses it in either direction, not even a close.
    Blackhole { ms: u64 },
    /// `reset:BYTES`: after BYTES bytes of the service's data, the client's
    /// connection is reset (TCP RST).
    Reset { bytes: u64 },
    /// `slice:BYTES`: the service's writes reach the client in pieces of at
    /// most BYTES, a millisecond apart.
    Slice { bytes: u64 },
}

/// A `--net-fault` value that is not a toxic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToxicError {
    #[error(
        "unknown network fault `{0}`: expected latency:MS[:JITTER], bandwidth:KBPS, slow-close:MS, blackhole:MS, reset:BYTES or slice:BYTES (\"none\" means no fault)"
    )]
    Unknown(String),
    #[error("network fault `{0}` needs {1}, e.g. {2}")]
    Parameter(String, &'static str, &'static str),
}

impl FromStr for Toxic {
    type Err = ToxicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let params: Vec<&str> = parts.collect();
        let (what, example): (&'static str, &'static str) = match name {
            "latency" => ("MS[:JITTER], whole milliseconds", "latency:200:50"),
            "bandwidth" => ("KBPS, kilobytes a second above 0", "bandwidth:64"),
            "slow-close" => ("MS, whole milliseconds", "slow-close:2000"),
            "blackhole" => ("MS, whole milliseconds", "blackhole:1000"),
            "reset" => ("BYTES, a whole number of bytes", "reset:4096"),
            "slice" => ("BYTES, a whole number of bytes above 0", "slice:16"),
            _ => return Err(ToxicError::Unknown(s.to_owned())),
        };
        let bad = || ToxicError::Parameter(s.to_owned(), what, example);
        let number = |text: &str| match text.parse::<u64>() {
            Ok(n) if n <= MAX_PARAMETER => Ok(n),
            _ => Err(bad()),
        };
        let one = |params: &[&str]| match params {
            [n] => number(n),
            _ => Err(bad()),
        };
        let toxic = match name {
            "latency" => match params.as_slice() {
                [ms] => Self::Latency {
                    ms: number(ms)?,
                    jitter: 0,
                },
                [ms, jitter] => Self::Latency {
                    ms: number(ms)?,
                    jitter: number(jitter)?,
                },
                _ => return Err(bad()),
            },
            "bandwidth" => Self::Bandwidth {
                kbps: one(&params)?,
            },
            "slow-close" => Self::SlowClose { ms: one(&params)? },
            "blackhole" => Self::Blackhole { ms: one(&params)? },
            "reset" => Self::Reset {
                bytes: one(&params)?,
            },
            _ => Self::Slice {
                bytes: one(&params)?,
            },
        };
        match toxic {
            Self::Bandwidth { kbps: 0 } | Self::Slice { bytes: 0 } => Err(bad()),
            toxic => Ok(toxic),
        }
    }
}

impl fmt::Display for Toxic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Latency { ms, jitter: 0 } => write!(f, "latency:{ms}"),
            Self::Latency { ms, jitter } => write!(f, "latency:{ms}:{jitter}"),
            Self::Bandwidth { kbps } => write!(f, "bandwidth:{kbps}"),
            Self::SlowClose { ms } => write!(f, "slow-close:{ms}"),
            Self::Blackhole { ms } => write!(f, "blackhole:{ms}"),
            Self::Reset { bytes } => write!(f, "reset:{bytes}"),
            Self::Slice { bytes } => write!(f, "slice:{bytes}"),
        }
    }
}

impl Toxic {
    /// What the toxic does, for a report's note on its cell.
    pub fn describe(self) -> String {
        match self {
            Self::Latency { ms, jitter: 0 } => format!("adds {ms} ms to the service's replies"),
            Self::Latency { ms, jitter } => {
                format!("adds {ms} ms ±{jitter} ms to the service's replies")
            }
            Self::Bandwidth { kbps } => format!("the service's replies at {kbps} KB/s"),
            Self::SlowClose { ms } => format!("the service's close reaches clients {ms} ms late"),
            Self::Blackhole { ms } => {
                format!("every connection stops forwarding after {ms} ms")
            }
            Self::Reset { bytes } => {
                format!("resets every connection after {bytes} bytes from the service")
            }
            Self::Slice { bytes } => format!("the service's writes cut into ≤{bytes}-byte pieces"),
        }
    }
}

/// What a fault proxy did, as a run's `axes_detail.net_fault` records it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Client connections accepted.
    pub connections: u64,
    /// Bytes forwarded from clients to the service.
    pub bytes_to_service: u64,
    /// Bytes forwarded from the service to clients.
    pub bytes_to_client: u64,
    /// Connections reset by `reset`.
    pub resets: u64,
    /// Connections that `blackhole` stopped forwarding.
    pub blackholed: u64,
    /// Connections the service refused or did not answer in time.
    pub upstream_errors: u64,
}

impl Stats {
    /// Adds another proxy's (or run's) counts to these.
    pub fn add(&mut self, other: &Self) {
        self.connections += other.connections;
        self.bytes_to_service += other.bytes_to_service;
        self.bytes_to_client += other.bytes_to_client;
        self.resets += other.resets;
        self.blackholed += other.blackholed;
        self.upstream_errors += other.upstream_errors;
    }

    /// `3 connections, 12.0 KiB to clients, 1 reset`.
    pub fn summary(&self) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![
            plural(self.connections, "connection", "connections"),
            format!(
                "{} to clients, {} to the service",
                bytes(self.bytes_to_client),
                bytes(self.bytes_to_service)
            ),
        ];
        if self.resets > 0 {
            parts.push(plural(self.resets, "reset", "resets"));
        }
        if self.blackholed > 0 {
            parts.push(format!("{} black-holed", self.blackholed));
        }
        if self.upstream_errors > 0 {
            parts.push(plural(
                self.upstream_errors,
                "failed connect to the service",
                "failed connects to the service",
            ));
        }
        parts.join(", ")
    }
}

fn bytes(n: u64) -> String {
    #[allow(
        clippy::cast_precision_loss,
        reason = "a figure for people, one decimal"
    )]
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    bytes_to_service: AtomicU64,
    bytes_to_client: AtomicU64,
    resets: AtomicU64,
    blackholed: AtomicU64,
    upstream_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections: get(&self.connections),
            bytes_to_service: get(&self.bytes_to_service),
            bytes_to_client: get(&self.bytes_to_client),
            resets: get(&self.resets),
            blackholed: get(&self.blackholed),
            upstream_errors: get(&self.upstream_errors),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A running fault proxy on its own thread, with its own current-thread
/// tokio runtime. Dropping it stops it, as [`FaultProxy::shutdown`] does.
#[derive(Debug)]
pub struct FaultProxy {
    server: crate::proxy::background::Background,
    counters: Arc<Counters>,
}

impl FaultProxy {
    /// Listens on `listen` (port 0 for a free one) and forwards every
    /// connection to `upstream` through `toxic`, its random choices drawn
    /// from `seed`.
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        toxic: Toxic,
        seed: u64,
    ) -> io::Result<Self> {
        let counters = Arc::new(Counters::default());
        let server = crate::proxy::background::Background::spawn(listen, "bugpack-net-fault", {
            let counters = Arc::clone(&counters);
            let mut rng = fastrand::Rng::with_seed(seed);
            move |client, peer| {
                bump(&counters.connections, 1);
                // Drawn in accept order, so a seed replays the same faults.
                let seed = rng.u64(..);
                let counters = Arc::clone(&counters);
                async move {
                    if let Err(err) = connection(client, upstream, toxic, seed, &counters).await {
                        tracing::debug!(%peer, "fault proxy connection ended: {err}");
                    }
                }
            }
        })?;
        tracing::debug!(addr = %server.addr(), %upstream, %toxic, "fault proxy started");
        Ok(Self { server, counters })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Stops accepting, closes every connection and joins the thread;
    /// returns the final counts.
    pub fn shutdown(self) -> Stats {
        let Self { server, counters } = self;
        drop(server);
        counters.snapshot()
    }
}

/// How a connection's downstream half ended.
enum Ending {
    /// The service closed (or a black hole swallowed the rest).
    Closed,
    /// `reset` reached its byte count.
    Reset,
}

async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    toxic: Toxic,
    seed: u64,
    counters: &Counters,
) -> io::Result<()> {
    let mut service =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(err)) => {
                bump(&counters.upstream_errors, 1);
                // The client sees what it would see of a service that is down.
                client.set_zero_linger()?;
                return Err(err);
            }
            Err(_) => {
                bump(&counters.upstream_errors, 1);
                client.set_zero_linger()?;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{upstream} did not answer in {CONNECT_TIMEOUT:?}"),
                ));
            }
        };
    let _ = client.set_nodelay(true);
    let _ = service.set_nodelay(true);
    let opened = Instant::now();
    let blackhole_at = match toxic {
        Toxic::Blackhole { ms } => Some(opened + Duration::from_millis(ms)),
        _ => None,
    };
    let ending = {
        let (mut client_in, mut client_out) = client.split();
        let (mut service_in, mut service_out) = service.split();
        let up = async {
            let result = forward_plain(
                &mut client_in,
                &mut service_out,
                blackhole_at,
                &counters.bytes_to_service,
            )
            .await;
            if result.is_ok() {
                let _ = service_out.shutdown().await;
            }
            result
        };
        let down = downstream(
            &mut service_in,
            &mut client_out,
            toxic,
            seed,
            blackhole_at,
            counters,
        );
        // The connection is over when the service's side is: the client's
        // side may still be open (a client that never closes), and a reset
        // ends both at once.
        tokio::pin!(up, down);
        let mut up_done = false;
        loop {
            tokio::select! {
                result = &mut up, if !up_done => {
                    up_done = true;
                    result?;
                }
                ending = &mut down => break ending?,
            }
        }
    };
    if matches!(ending, Ending::Reset) {
        bump(&counters.resets, 1);
        client.set_zero_linger()?;
        service.set_zero_linger()?;
        tracing::info!("net fault: reset a connection after {toxic}");
    }
    Ok(())
}

/// Copies `from` to `to` untouched, except that after `blackhole_at` the
/// data is read and dropped and the end is never passed on.
async fn forward_plain(
    from: &mut ReadHalf<'_>,
    to: &mut WriteHalf<'_>,
    blackhole_at: Option<Instant>,
    counted: &AtomicU64,
) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if blackhole_at.is_some_and(|at| Instant::now() >= at) {
            if n == 0 {
                return std::future::pending().await;
            }
            continue;
        }
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        bump(counted, n as u64);
    }
}

/// The service-to-client half, where the toxics act.
async fn downstream(
    from: &mut ReadHalf<'_>,
    to: &mut WriteHalf<'_>,
    toxic: Toxic,
    seed: u64,
    blackhole_at: Option<Instant>,
    counters: &Counters,
) -> io::Result<Ending> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let counted = &counters.bytes_to_client;
    match toxic {
        Toxic::Blackhole { .. } => {
            // A timer of its own, so that the counter is bumped when the hole
            // opens even if the service is silent.
            let counting = async {
                if let Some(at) = blackhole_at {
                    tokio::time::sleep_until(at).await;
                    bump(&counters.blackholed, 1);
                    tracing::info!("net fault: a connection fell into the black hole");
                }
                std::future::pending::<()>().await;
            };
            tokio::select! {
                result = forward_plain(from, to, blackhole_at, counted) => result?,
                () = counting => {}
            }
            // The service's close is swallowed too: hold the client's side open.
            std::future::pending().await
        }
        Toxic::Latency { ms, jitter } => {
            let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(LATENCY_QUEUE);
            let reading = async move {
                let mut buf = vec![0; CHUNK];
                loop {
                    let n = from.read(&mut buf).await?;
                    if queue
                        .send((Instant::now(), buf[..n].to_vec()))
                        .await
                        .is_err()
                        || n == 0
                    {
                        return io::Result::Ok(());
                    }
                }
            };
            let writing = async {
                let mut release = Instant::now();
                while let Some((arrived, chunk)) = queued.recv().await {
                    let spread = if jitter == 0 {
                        0
                    } else {
                        rng.u64(0..=2 * jitter)
                    };
                    let delay = Duration::from_millis((ms + spread).saturating_sub(jitter));
                    // Never before the chunk ahead of it: a hop reorders nothing.
                    release = release.max(arrived + delay);
                    // The timer rounds up to a millisecond: a chunk already
                    // due goes out at once.
                    if release > Instant::now() {
                        tokio::time::sleep_until(release).await;
                    }
                    if chunk.is_empty() {
                        break;
                    }
                    to.write_all(&chunk).await?;
                    bump(counted, chunk.len() as u64);
                }
                to.shutdown().await
            };
            let (read, written) = tokio::join!(reading, writing);
            read?;
            written?;
            Ok(Ending::Closed)
        }
        Toxic::Bandwidth { kbps } => {
            let per_second = kbps * 1000;
            // Pieces of a hundredth of a second's worth, for an even pace.
            let piece = usize::try_from((per_second / 100).max(1))
                .unwrap_or(CHUNK)
                .min(CHUNK);
            let mut buf = vec![0; piece];
            let started = Instant::now();
            let mut sent: u64 = 0;
            loop {
                let n = from.read(&mut buf).await?;
                if n == 0 {
                    to.shutdown().await?;
                    return Ok(Ending::Closed);
                }
                to.write_all(&buf[..n]).await?;
                sent += n as u64;
                bump(counted, n as u64);
                let due =
                    started + Duration::from_micros(sent.saturating_mul(1_000_000) / per_second);
                tokio::time::sleep_until(due).await;
            }
        }
        Toxic::SlowClose { ms } => {
            forward_plain(from, to, None, counted).await?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            to.shutdown().await?;
            Ok(Ending::Closed)
        }
        Toxic::Reset { bytes } => {
            let mut left = bytes;
            let mut buf = vec![0; CHUNK];
            while left > 0 {
                let n = from.read(&mut buf).await?;
                if n == 0 {
                    to.shutdown().await?;
                    return Ok(Ending::Closed);
                }
                let take = usize::try_from(left).map_or(n, |l| l.min(n));
                to.write_all(&buf[..take]).await?;
                bump(counted, take as u64);
                left -= take as u64;
            }
            Ok(Ending::Reset)
        }
        Toxic::Slice { bytes } => {
            let most = usize::try_from(bytes).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = vec![0; CHUNK];
            loop {
                let n = from.read(&mut buf).await?;
                if n == 0 {
                    to.shutdown().await?;
                    return Ok(Ending::Closed);
                }
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let size = rng.usize(most.div_ceil(2)..=most).min(rest.len());
                    to.write_all(&rest[..size]).await?;
                    to.flush().await?;
                    bump(counted, size as u64);
                    rest = &rest[size..];
                    if !rest.is_empty() {
                        tokio::time::sleep(SLICE_PAUSE).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_written() {
        for text in [
            "latency:200",
            "latency:200:50",
            "bandwidth:64",
            "slow-close:2000",
            "blackhole:0",
            "reset:4096",
            "slice:1",
        ] {
            let toxic: Toxic = text.parse().expect(text);
            assert_eq!(toxic.to_string(), text);
        }
        assert_eq!(
            "latency:5:0".parse::<Toxic>().map(|t| t.to_string()),
            Ok("latency:5".into())
        );
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        for (text, expect) in [
            ("lag:5", "unknown network fault `lag:5`"),
            ("latency", "needs MS[:JITTER]"),
            ("latency:1:2:3", "needs MS[:JITTER]"),
            ("bandwidth:0", "above 0"),
            ("slice:0", "above 0"),
            ("reset:-1", "whole number of bytes"),
            ("reset:99999999999", "whole number of bytes"),
            ("blackhole:soon", "e.g. blackhole:1000"),
        ] {
            let err = text.parse::<Toxic>().expect_err(text).to_string();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }
}
