//! Serving: the accept loop, one hyper HTTP/1.1 connection per client, and
//! what each mode does to a request on its way to the origin and back.
//!
//! The proxy connects only to the host a request names (an absolute-form
//! URL, or a CONNECT authority); it never follows another proxy and never
//! rewrites bodies. A peer can make a request fail, never the proxy: every
//! bad input becomes a 4xx/5xx response or a closed connection.
//!
//! Each request is logged at info as one line (method, URL without its
//! credentials, status, HIT/MISS, added delay), each deliberate reset too;
//! the cache's decisions and their RFC 9111 reasons at debug. Headers are
//! never logged: they carry `Authorization` and cookies.

use std::convert::Infallible;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use http_cache_semantics::{AfterResponse, BeforeRequest, CacheOptions, CachePolicy};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::cache::{Cache, Entry};
use super::fault::Faults;
use super::rfc;
use super::stats::{Counter, Counters};
use super::tee::Tee;
use super::tls::Authority;
use super::{Config, MAX_CACHED_BODY, Mode, Stats};

/// Every body the proxy sends or forwards: streamed from a peer, or whole
/// from the cache.
pub(super) type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// How long an upstream TCP connect may take before the client gets a 502/504.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection picked for a reset may take to send its request.
const RESET_WAIT: Duration = Duration::from_secs(2);

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus the de-facto `Proxy-Connection`; never forwarded either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Response header telling the client whether the body came from the cache.
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// What every connection of one proxy shares.
pub(super) struct Shared {
    mode: Mode,
    counters: Counters,
    faults: Faults,
    /// `Some` in the cache modes only.
    cache: Option<Cache>,
    /// Pools keep-alive connections to each origin.
    client: Client<HttpsConnector<HttpConnector>, ProxyBody>,
    /// Intercepts `CONNECT` tunnels when set.
    tls: Option<Arc<Authority>>,
    /// Told of every request served (`bugpack proxy`'s log).
    on_request: Option<RequestHook>,
}

/// What `bugpack proxy` is told of each request.
pub type RequestHook = Box<dyn Fn(&super::RequestLog) + Send + Sync>;

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("mode", &self.mode)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn mode(&self) -> &Mode {
        &self.mode
    }

    pub(super) fn counters(&self) -> &Counters {
        &self.counters
    }

    fn new(config: Config) -> io::Result<Self> {
        let cache = if config.mode.caches() {
            Some(Cache::new(config.cache_dir)?)
        } else {
            None
        };
        let mut connector = HttpConnector::new();
        // Small request/response exchanges on loopback: Nagle would only add latency.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // https:// URLs only arise inside an intercepted tunnel.
        connector.enforce_http(false);
        let tls_client = match &config.tls {
            Some(authority) => authority.client_config(),
            None => super::tls::client_trusting(rustls::RootCertStore::empty())
                .map_err(io::Error::other)?,
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_client)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            faults: Faults::new(config.mode.clone(), config.seed),
            mode: config.mode,
            counters: Counters::default(),
            cache,
            client,
            tls: config.tls,
            on_request: None,
        })
    }
}

/// A running proxy on its own thread, with its own current-thread tokio runtime.
///
/// Dropping it shuts it down, as [`Proxy::shutdown`] does.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Binds `listen` (use `127.0.0.1:0` for a free port) and serves until
    /// shutdown. Fails if the address cannot be bound or the cache directory
    /// cannot be created.
    pub fn start(config: Config, listen: SocketAddr) -> io::Result<Proxy> {
        let listener = std::net::TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let runtime = runtime()?;
        let listener = {
            let _context = runtime.enter();
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)?
        };
        let mode = config.mode.clone();
        let shared = Arc::new(Shared::new(config)?);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(format!("bugpack-proxy-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    runtime.block_on(serve(listener, shared, None, async {
                        // A dropped sender stops the proxy as well.
                        let _ = stopped.await;
                    }));
                    // Dropping the runtime here closes every connection and tunnel.
                }
            })?;
        tracing::debug!(%addr, %mode, "proxy started");
        Ok(Proxy {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// A snapshot of the counters, which restart from zero (per-run accounting).
    pub fn take_stats(&self) -> Stats {
        self.shared.counters.take()
    }

    /// Empties the cache (and its directory, if any): the next run starts cold.
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.shared.cache {
            cache.clear();
        }
    }

    /// Stops accepting, closes every connection and joins the proxy's thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(addr = %self.addr, "proxy thread panicked");
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Serves on an already-bound listener until SIGTERM or SIGINT, for running
/// the proxy as a process of its own (inside a replay's network namespace).
///
/// With `stats_path`, a JSON [`Stats`] snapshot is kept there, replaced
/// atomically after every change and once more at exit. With
/// `config.cache_dir`, the cache persists there, so a later process with the
/// same directory serves the same hits.
pub fn serve_blocking(
    listener: std::net::TcpListener,
    config: Config,
    stats_path: Option<&Path>,
) -> io::Result<()> {
    serve_with(listener, config, stats_path, || {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::debug!("SIGTERM: proxy stopping"),
                _ = int.recv() => tracing::debug!("SIGINT: proxy stopping"),
            }
        })
    })
}

/// As [`serve_blocking`], but stops when `stop` resolves instead of on a signal.
pub fn serve_until(
    listener: std::net::TcpListener,
    config: Config,
    stats_path: Option<&Path>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_with(listener, config, stats_path, || Ok(stop))
}

/// `bugpack proxy`: serves on `listener` in the foreground until SIGINT or
/// SIGTERM, telling `on_request` of every request; returns the totals.
pub fn serve_foreground(
    listener: std::net::TcpListener,
    config: Config,
    on_request: RequestHook,
) -> io::Result<Stats> {
    use tokio::signal::unix::{SignalKind, signal};

    let runtime = runtime()?;
    let (listener, stop) = {
        let _context = runtime.enter();
        listener.set_nonblocking(true)?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        (TcpListener::from_std(listener)?, stop)
    };
    let mut shared = Shared::new(config)?;
    shared.on_request = Some(on_request);
    let shared = Arc::new(shared);
    runtime.block_on(serve(listener, Arc::clone(&shared), None, stop));
    Ok(shared.counters.snapshot())
}

fn serve_with<F: Future<Output = ()>>(
    listener: std::net::TcpListener,
    config: Config,
    stats_path: Option<&Path>,
    make_stop: impl FnOnce() -> io::Result<F>,
) -> io::Result<()> {
    let runtime = runtime()?;
    let (listener, stop) = {
        // Signal streams and tokio sockets must be made inside the runtime.
        let _context = runtime.enter();
        listener.set_nonblocking(true)?;
        (TcpListener::from_std(listener)?, make_stop()?)
    };
    let shared = Arc::new(Shared::new(config)?);
    runtime.block_on(serve(listener, shared, stats_path, stop));
    Ok(())
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
}

/// The accept loop: runs until `stop` resolves, then drops every connection.
async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stats_path: Option<&Path>,
    stop: impl Future<Output = ()>,
) {
    let stats_writer = async {
        let Some(path) = stats_path else {
            return std::future::pending().await;
        };
        loop {
            write_stats(path, &shared.counters.snapshot());
            shared.counters.changed().await;
        }
    };
    tokio::pin!(stop, stats_writer);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = &mut stats_writer => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.counters.bump(Counter::Connections);
                    // Decided here, in accept order, so a seed replays the same resets.
                    let reset = shared.faults.reset_connection();
                    connections.spawn(connection(Arc::clone(&shared), stream, peer, reset));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("proxy cannot accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    if let Some(path) = stats_path {
        write_stats(path, &shared.counters.snapshot());
    }
}

/// Replaces the stats file atomically (temp file and rename), so a reader
/// never sees half a snapshot.
fn write_stats(path: &Path, stats: &Stats) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let result = serde_json::to_vec_pretty(stats)
        .map_err(io::Error::other)
        .and_then(|json| {
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            io::Write::write_all(&mut file, &json)?;
            file.persist(path).map_err(|e| e.error)?;
            Ok(())
        });
    if let Err(err) = result {
        tracing::warn!("cannot write proxy stats to {}: {err}", path.display());
    }
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, reset: bool) {
    if reset {
        shared.counters.bump(Counter::Resets);
        // Let the request arrive first: the client then sees its request
        // fail, as behind a flaky middlebox, rather than a refused connect.
        let _ = tokio::time::timeout(RESET_WAIT, stream.readable()).await;
        // SO_LINGER 0: closing sends RST instead of FIN.
        if let Err(err) = stream.set_zero_linger() {
            tracing::warn!(%peer, "cannot arm a connection reset: {err}");
        }
        tracing::info!("proxy: reset the connection from {peer} (flaky)");
        return;
    }
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
    });
    let served = http1::Builder::new()
        // Enables hyper's header read timeout, so an idle half-sent request
        // cannot hold a connection forever.
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(err) = served {
        tracing::debug!(%peer, "client connection ended: {}", chain(&err));
    }
}

/// One request: route it, then hold the response as `slow` says.
async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<ProxyBody> {
    shared.counters.bump(Counter::Requests);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let target = SafeUri(&uri);
    let delay = shared.faults.response_delay();
    let response = match shared.faults.injected_status() {
        Some(code) if method != Method::CONNECT => {
            shared.counters.bump(Counter::Faulted);
            injected(code)
        }
        _ => super::shape::response(shared, route(shared, req).await),
    };
    let mut delay_ms = 0;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        shared.counters.add(Counter::AddedDelayMs, delay_ms);
    }
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get(&X_CACHE)
        .and_then(|v| v.to_str().ok());
    // The line's parts are formatted only when the line is logged.
    tracing::info!(
        "proxy: {method} {target} -> {status}{}{}",
        cache.map(|v| format!(" {v}")).unwrap_or_default(),
        if delay.is_some() {
            format!(" +{delay_ms} ms delay")
        } else {
            String::new()
        }
    );
    if let Some(hook) = &shared.on_request {
        hook(&super::RequestLog {
            method: method.to_string(),
            url: target.to_string(),
            status,
            cache: cache.map(str::to_owned),
            delay_ms,
        });
    }
    response
}

/// A request's URL for a log line: whatever the client put before `@` in
/// the authority (a user name and password) is left out, and so is the
/// value of every query parameter whose name looks secret (`access_token`,
/// `api_key`, `X-Amz-Signature`); the rest of the query stays, it tells
/// one poll from the next. Handed to the log macros unformatted (over a
/// clone of the request's `Uri`, which shares its bytes), it costs nothing
/// on the lines that are not logged, which by default is all of them.
struct SafeUri<'a>(&'a http::Uri);

impl fmt::Display for SafeUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            let host = without_userinfo(authority);
            if host.len() < authority.as_str().len() {
                f.write_str("[REDACTED:url-credentials]@")?;
            }
            f.write_str(host)?;
        }
        if uri.scheme().is_none() && uri.authority().is_some() {
            return Ok(());
        }
        f.write_str(uri.path())?;
        if let Some(query) = uri.query() {
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match pair.split_once('=') {
                    Some((name, _)) if secret_parameter(name) => {
                        write!(f, "{name}=[REDACTED:query]")?;
                    }
                    _ => f.write_str(pair)?,
                }
            }
        }
        Ok(())
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<ProxyBody> {
    if req.method() == Method::CONNECT {
        return tunnel(shared, req).await;
    }
    if came_through_us(req.headers()) {
        return error_response(
            StatusCode::LOOP_DETECTED,
            "this request already went through bugpack's proxy: it would loop",
        );
    }
    match (req.uri().scheme_str(), req.uri().authority()) {
        (Some("http"), Some(authority)) if has_bad_port(authority) => {
            return error_response(StatusCode::BAD_REQUEST, "the URL's port is not a TCP port");
        }
        (Some("http"), Some(_)) => {}
        (Some("https"), Some(_)) if shared.tls.is_some() => {}
        (Some(_), _) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bugpack's proxy forwards http:// URLs; HTTPS goes through a CONNECT tunnel",
            );
        }
        (None, _) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bugpack's proxy needs an absolute URL in the request line (GET http://host/path)",
            );
        }
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without Host gets a 400.
    if req.version() == Version::HTTP_11 && !req.headers().contains_key(header::HOST) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "an HTTP/1.1 request needs a Host header",
        );
    }
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // RFC 9112 §3.2.2: the absolute URL wins over the Host the client sent.
    if let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(&match authority.port() {
            // Never the userinfo of `http://user@host/`: it is no part of Host.
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_owned(),
        })
    {
        parts.headers.insert(header::HOST, host);
    }
    append_via(&mut parts.headers, parts.version);
    // Upstream is always HTTP/1.1, for keep-alive, whatever the client spoke.
    parts.version = Version::HTTP_11;
    let req = Request::from_parts(parts, body.boxed());

    let is_get = req.method() == Method::GET;
    if is_get {
        shared.counters.bump(Counter::Gets);
    }
    match (&shared.mode, &shared.cache) {
        (Mode::Cache, Some(cache)) if is_get => cache_get(shared, cache, req, None).await,
        (Mode::Stale { secs }, Some(cache)) if is_get => {
            cache_get(shared, cache, req, Some(*secs)).await
        }
        (Mode::Rfc, Some(cache)) if is_get => rfc_get(shared, cache, req).await,
        (Mode::Rfc, Some(cache)) if !req.method().is_safe() => {
            let key = req.uri().to_string();
            let uri = req.uri().clone();
            let shown = SafeUri(&uri);
            let method = req.method().clone();
            let response = pass(shared, req).await;
            // RFC 9111 §4.4: a successful unsafe request invalidates the URL.
            if response.status().is_success() || response.status().is_redirection() {
                tracing::debug!(
                    "rfc: {method} {shown} succeeded: its cached entry is invalidated (RFC 9111 §4.4)"
                );
                cache.remove(&key);
                for also in rfc::also_invalidated(&method, &uri, response.headers()) {
                    tracing::debug!("rfc: and the entry of {also}, which its response names");
                    cache.remove(&also);
                }
            }
            response
        }
        _ => pass(shared, req).await,
    }
}

/// Forwards as is: no cache involved.
async fn pass(shared: &Arc<Shared>, req: Request<ProxyBody>) -> Response<ProxyBody> {
    match forward(shared, req).await {
        Ok(response) => respond(shared, response, None, None),
        Err(response) => response,
    }
}

/// The misconfigured cache: any 200 to a GET is stored and served forever,
/// or for `ttl` seconds after it was stored (`stale:SECS`).
async fn cache_get(
    shared: &Arc<Shared>,
    cache: &Cache,
    req: Request<ProxyBody>,
    ttl: Option<u64>,
) -> Response<ProxyBody> {
    let key = req.uri().to_string();
    let uri = req.uri().clone();
    let shown = SafeUri(&uri);
    let resident_of = |entry: &Entry| {
        SystemTime::now()
            .duration_since(entry.stored_at)
            .unwrap_or_default()
            .as_secs()
    };
    if let Some(entry) = cache
        .get(&key)
        .filter(|entry| ttl.is_none_or(|ttl| resident_of(entry) < ttl))
    {
        shared.counters.bump(Counter::Hits);
        let resident = resident_of(&entry);
        tracing::debug!(
            "cache: HIT {shown}; stored {resident} s ago, served whatever its headers say"
        );
        return hit(&entry, origin_age(&entry.headers).saturating_add(resident));
    }
    shared.counters.bump(Counter::Misses);
    let response = match forward(shared, req).await {
        Ok(response) => response,
        Err(response) => return response,
    };
    let ok = response.status() == StatusCode::OK;
    tracing::debug!(
        "cache: MISS {shown}; {}",
        if ok {
            "the 200 is stored and served to every later GET".to_owned()
        } else {
            format!(
                "status {} is not stored (only 200s are)",
                response.status().as_u16()
            )
        }
    );
    let store = ok.then(|| Store {
        key,
        variant: None,
        policy: None,
    });
    respond(shared, response, Some("MISS"), store)
}

/// The RFC 9111 shared cache; `http-cache-semantics` decides, this only acts.
async fn rfc_get(
    shared: &Arc<Shared>,
    cache: &Cache,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let key = req.uri().to_string();
    let uri = req.uri().clone();
    let shown = SafeUri(&uri);
    let head = head_of(&req);
    let now = SystemTime::now();
    // When the URL's latest response varies, the variant this request
    // selects is the one to judge, if it was stored.
    let entry = cache.get(&key).map(|latest| {
        rfc::variant_key(&key, &latest.headers, head.headers())
            .and_then(|variant| cache.get(&variant))
            .unwrap_or(latest)
    });
    if let Some(entry) = entry
        && let Some(policy) = &entry.policy
    {
        match policy.before_request(&rfc::canonical_request(&head, &entry.headers), now) {
            BeforeRequest::Fresh(_) => {
                shared.counters.bump(Counter::Hits);
                tracing::debug!(
                    "rfc: HIT {shown}; fresh (age {} s, {} s left)",
                    policy.age(now).as_secs(),
                    policy.time_to_live(now).as_secs()
                );
                return answer(&entry, policy.age(now).as_secs(), head.headers());
            }
            BeforeRequest::Stale {
                request,
                matches: true,
            } => {
                tracing::debug!(
                    "rfc: {shown} is stale (age {} s): revalidating with the origin",
                    policy.age(now).as_secs()
                );
                return revalidate(shared, cache, key, &entry, policy, request, head.headers())
                    .await;
            }
            // Another variant (Vary) of the URL: fetch it like a miss.
            BeforeRequest::Stale { matches: false, .. } => {
                tracing::debug!(
                    "rfc: {shown}; the stored response is for another variant (Vary); fetching"
                );
            }
        }
    }
    shared.counters.bump(Counter::Misses);
    let mut response = match forward(shared, req).await {
        Ok(response) => response,
        Err(response) => return response,
    };
    rfc::normalise_age(response.headers_mut());
    let received = SystemTime::now();
    let policy = CachePolicy::new_options(
        &rfc::canonical_request(&head, response.headers()),
        &rfc::policy_head(&response),
        received,
        CacheOptions::default(),
    );
    let variant = rfc::variant_key(&key, response.headers(), head.headers());
    let storing = Storing::of(&policy, response.headers(), received);
    tracing::debug!(
        "rfc: MISS {shown}; {}",
        storing.reason(response.status(), response.headers())
    );
    let store = storing.stored().then(|| Store {
        key,
        variant,
        policy: Some(policy),
    });
    respond(shared, response, Some("MISS"), store)
}

/// Asks the origin whether a stale entry still holds (a conditional request
/// built by the policy); a 304 refreshes it and the client gets the cached body.
async fn revalidate(
    shared: &Arc<Shared>,
    cache: &Cache,
    key: String,
    entry: &Entry,
    policy: &CachePolicy,
    mut request: http::request::Parts,
    asked: &HeaderMap,
) -> Response<ProxyBody> {
    request.version = Version::HTTP_11;
    let req = Request::from_parts(request, empty());
    let sent = head_of(&req);
    let mut response = match forward(shared, req).await {
        Ok(response) => response,
        Err(response) => return response,
    };
    rfc::normalise_age(response.headers_mut());
    let received = SystemTime::now();
    match policy.after_response(&sent, &rfc::policy_head(&response), received) {
        AfterResponse::NotModified(policy, _) => {
            tracing::debug!(
                "rfc: the origin answered 304 Not Modified: the stored body is served, fresh for {} s more",
                policy.time_to_live(received).as_secs()
            );
            let (mut parts, _empty_body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let refreshed = Entry {
                status: entry.status,
                headers: merge_not_modified(&entry.headers, &parts.headers),
                body: entry.body.clone(),
                stored_at: received,
                policy: Some(policy),
            };
            let age = refreshed
                .policy
                .as_ref()
                .map_or(0, |p| p.age(received).as_secs());
            let response = answer(&refreshed, age, asked);
            if let Some(variant) = rfc::variant_key(&key, &refreshed.headers, asked) {
                cache.insert(&variant, refreshed.clone());
            }
            cache.insert(&key, refreshed);
            shared.counters.bump(Counter::Revalidated);
            shared.counters.bump(Counter::Hits);
            response
        }
        // A 304 whose validator does not match the stored one (or that has
        // none, where the stored response has one) updates nothing, but it
        // still says the client may have the stored body: a 304 is never
        // passed on to a client that did not ask conditionally.
        AfterResponse::Modified(..) if response.status() == StatusCode::NOT_MODIFIED => {
            tracing::debug!(
                "rfc: the origin answered 304 with another validator: the stored body is served, not updated"
            );
            shared.counters.bump(Counter::Revalidated);
            shared.counters.bump(Counter::Hits);
            answer(entry, policy.age(received).as_secs(), asked)
        }
        AfterResponse::Modified(policy, _) => {
            let storing = Storing::of(&policy, response.headers(), received);
            tracing::debug!(
                "rfc: the origin sent a new response ({}): {}",
                response.status().as_u16(),
                storing.reason(response.status(), response.headers())
            );
            shared.counters.bump(Counter::Misses);
            let variant = rfc::variant_key(&key, response.headers(), asked);
            let store = storing.stored().then(|| Store {
                key,
                variant,
                policy: Some(policy),
            });
            respond(shared, response, Some("MISS"), store)
        }
    }
}

/// What the `rfc` cache does with a response: it earns a place when it is
/// storable and either fresh for a while or revalidatable (an entry that is
/// neither would never be used).
enum Storing {
    NotStorable,
    Fresh(Duration),
    Revalidatable,
    Useless,
}

impl Storing {
    fn of(policy: &CachePolicy, headers: &HeaderMap, now: SystemTime) -> Self {
        if !policy.is_storable() {
            return Self::NotStorable;
        }
        let ttl = policy.time_to_live(now);
        if ttl > Duration::ZERO {
            Self::Fresh(ttl)
        } else if headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED)
        {
            Self::Revalidatable
        } else {
            Self::Useless
        }
    }

    fn stored(&self) -> bool {
        matches!(self, Self::Fresh(_) | Self::Revalidatable)
    }

    /// Why, for `-vv`.
    fn reason(&self, status: StatusCode, headers: &HeaderMap) -> String {
        let cache_control = headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| "none".to_owned(), str::to_owned);
        match self {
            Self::NotStorable => format!(
                "not stored: not storable under RFC 9111 §3 (status {}, Cache-Control: {cache_control})",
                status.as_u16()
            ),
            Self::Fresh(ttl) => format!(
                "stored, fresh for {} s (Cache-Control: {cache_control}; heuristic freshness when none is given, §4.2.2)",
                ttl.as_secs()
            ),
            Self::Revalidatable => {
                "stored stale, to be revalidated with its validator (§4.3)".to_owned()
            }
            Self::Useless => {
                "not stored: no freshness lifetime (no max-age, Expires, or Last-Modified for a heuristic, \
                 RFC 9111 §4.2) and no validator to revalidate with (§4.3)"
                    .to_owned()
            }
        }
    }
}

/// The stored headers, updated by a 304's (RFC 9111 §4.3.4), except those
/// that describe the body the 304 did not send.
fn merge_not_modified(stored: &HeaderMap, fresh: &HeaderMap) -> HeaderMap {
    const KEEP: [HeaderName; 3] = [
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_RANGE,
    ];
    let mut merged = stored.clone();
    for name in fresh.keys() {
        if KEEP.contains(name) {
            continue;
        }
        merged.remove(name);
        for value in fresh.get_all(name) {
            merged.append(name.clone(), value.clone());
        }
    }
    merged
}

/// Where to store a response once its body has streamed through.
struct Store {
    key: String,
    /// Also stored here: the variant's own key, when the response varies.
    variant: Option<String>,
    policy: Option<CachePolicy>,
}

/// Sends the request to the origin; an unreachable origin becomes a 502.
async fn forward(
    shared: &Shared,
    req: Request<ProxyBody>,
) -> Result<Response<Incoming>, Response<ProxyBody>> {
    let target = req.uri().authority().map(ToString::to_string);
    let uri = req.uri().clone();
    let shown = SafeUri(&uri);
    match shared.client.request(req).await {
        Ok(response) => Ok(response),
        Err(err) => {
            shared.counters.bump(Counter::UpstreamErrors);
            let target = target.unwrap_or_default();
            let why = chain(&err);
            tracing::debug!("proxy: no response from the origin of {shown}; {why}");
            Err(error_response(
                StatusCode::BAD_GATEWAY,
                &format!("bugpack's proxy cannot get a response from {target}: {why}"),
            ))
        }
    }
}

/// Turns the origin's response into the client's: hop-by-hop headers out,
/// `Via` and `X-Cache` in, and the body teed into the cache when `store` says so.
fn respond(
    shared: &Arc<Shared>,
    response: Response<Incoming>,
    x_cache: Option<&'static str>,
    store: Option<Store>,
) -> Response<ProxyBody> {
    let received = SystemTime::now();
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = match store {
        Some(store) if fits_cache(&parts.headers) => {
            let status = parts.status;
            let headers = parts.headers.clone();
            let shared = Arc::clone(shared);
            Tee::new(
                body,
                MAX_CACHED_BODY,
                Box::new(move |body| {
                    let Some(cache) = &shared.cache else { return };
                    let entry = Entry {
                        status,
                        headers,
                        body,
                        stored_at: received,
                        policy: store.policy,
                    };
                    if let Some(variant) = &store.variant {
                        cache.insert(variant, entry.clone());
                    }
                    if cache.insert(&store.key, entry) {
                        shared.counters.bump(Counter::Stored);
                    }
                }),
            )
            .boxed()
        }
        _ => body.boxed(),
    };
    append_via(&mut parts.headers, parts.version);
    if let Some(value) = x_cache {
        parts
            .headers
            .insert(X_CACHE, HeaderValue::from_static(value));
    }
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, body)
}

/// A response declared bigger than the cache takes is not even buffered.
fn fits_cache(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_none_or(|len| len <= MAX_CACHED_BODY as u64)
}

/// A response served from the cache, with its `Age` and `X-Cache: HIT`.
fn hit(entry: &Entry, age_secs: u64) -> Response<ProxyBody> {
    let mut response = Response::new(full(entry.body.clone()));
    *response.status_mut() = entry.status;
    *response.headers_mut() = entry.headers.clone();
    let headers = response.headers_mut();
    headers.insert(header::AGE, HeaderValue::from(age_secs));
    append_via(headers, Version::HTTP_11);
    headers.insert(X_CACHE, HeaderValue::from_static("HIT"));
    response
}

/// A stored response for a client: whole, or a 304 when the client's own
/// conditional request shows it already has this one.
fn answer(entry: &Entry, age_secs: u64, asked: &HeaderMap) -> Response<ProxyBody> {
    if !rfc::not_modified(asked, &entry.headers) {
        if entry.status == StatusCode::OK {
            let len = entry.body.len() as u64;
            match rfc::byte_range(asked, &entry.headers, len) {
                Some(Ok((first, last))) => {
                    let mut response = hit(entry, age_secs);
                    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                    let (from, to) = (
                        usize::try_from(first).unwrap_or(usize::MAX),
                        usize::try_from(last).unwrap_or(usize::MAX),
                    );
                    *response.body_mut() = full(entry.body.slice(from..=to));
                    let headers = response.headers_mut();
                    headers.remove(header::CONTENT_LENGTH);
                    if let Ok(range) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}"))
                    {
                        headers.insert(header::CONTENT_RANGE, range);
                    }
                    return response;
                }
                Some(Err(())) => {
                    let mut response = error_response(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "the range is past the end of the stored body",
                    );
                    if let Ok(range) = HeaderValue::from_str(&format!("bytes */{len}")) {
                        response.headers_mut().insert(header::CONTENT_RANGE, range);
                    }
                    return response;
                }
                None => {}
            }
        }
        return hit(entry, age_secs);
    }
    let mut response = Response::new(empty());
    *response.status_mut() = rfc::NOT_MODIFIED;
    *response.headers_mut() = rfc::not_modified_headers(&entry.headers);
    let headers = response.headers_mut();
    headers.insert(header::AGE, HeaderValue::from(age_secs));
    append_via(headers, Version::HTTP_11);
    headers.insert(X_CACHE, HeaderValue::from_static("HIT"));
    response
}

/// The `Age` the origin (or a cache before it) already gave, in seconds.
fn origin_age(headers: &HeaderMap) -> u64 {
    headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `CONNECT host:port`: connect, answer 200, then splice bytes both ways
/// until either side closes. The tunnel's content is never looked at.
async fn tunnel(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<ProxyBody> {
    shared.counters.bump(Counter::Connects);
    let Some(authority) = req
        .uri()
        .authority()
        .filter(|a| a.port_u16().is_some())
        .cloned()
    else {
        return error_response(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority.as_str())).await {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(err)) => {
                shared.counters.bump(Counter::UpstreamErrors);
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    &format!("bugpack's proxy cannot connect to {authority}: {err}"),
                );
            }
            Err(_) => {
                shared.counters.bump(Counter::UpstreamErrors);
                return error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!("bugpack's proxy timed out connecting to {authority}"),
                );
            }
        };
    let _ = upstream.set_nodelay(true);
    let authority = without_userinfo(&authority).to_owned();
    if let Some(tls) = &shared.tls {
        // Only to know the host answers; the requests inside get their own
        // connections, through the client pool.
        drop(upstream);
        return intercept(shared, tls, req, authority);
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    Ok((up, down)) => tracing::debug!(
                        "proxy: tunnel to {authority} closed ({up} bytes up, {down} down)"
                    ),
                    Err(err) => tracing::debug!("proxy: tunnel to {authority} ended: {err}"),
                }
            }
            Err(err) => tracing::debug!("proxy: tunnel to {authority} never opened: {err}"),
        }
    });
    Response::new(empty())
}

/// An intercepted `CONNECT`: answers 200, then TLS with a certificate for
/// the tunnel's host, and serves the HTTPS requests inside as if they had
/// come in plain, with `https://host:port` URLs.
fn intercept(
    shared: &Arc<Shared>,
    tls: &Authority,
    req: Request<Incoming>,
    authority: String,
) -> Response<ProxyBody> {
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(host, _)| host);
    let config = match tls.server_config(host) {
        Ok(config) => config,
        Err(why) => return error_response(StatusCode::BAD_GATEWAY, &why),
    };
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!("proxy: tunnel to {authority} never opened: {err}");
                return;
            }
        };
        let accepting = tokio_rustls::TlsAcceptor::from(config).accept(TokioIo::new(upgraded));
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, accepting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::info!(
                    "proxy: the client refused the certificate for {authority} (does it trust the replay's CA?): {err}"
                );
                return;
            }
            Err(_) => return,
        };
        let service = service_fn(move |mut req: Request<Incoming>| {
            let shared = Arc::clone(&shared);
            let authority = authority.clone();
            async move {
                let path = req
                    .uri()
                    .path_and_query()
                    .map_or("/", http::uri::PathAndQuery::as_str)
                    .to_owned();
                match format!("https://{authority}{path}").parse() {
                    Ok(uri) => *req.uri_mut() = uri,
                    Err(_) => {
                        return Ok::<_, Infallible>(error_response(
                            StatusCode::BAD_REQUEST,
                            "a request target bugpack's proxy cannot read",
                        ));
                    }
                }
                Ok(handle(&shared, req).await)
            }
        });
        if let Err(err) = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(stream), service)
            .await
        {
            tracing::debug!("proxy: intercepted tunnel ended: {}", chain(&err));
        }
    });
    Response::new(empty())
}

/// A query parameter whose value is a credential, by its name.
fn secret_parameter(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    crate::redact::is_secret_name(name)
        || lower.contains("signature")
        || lower == "sig"
        || lower == "code"
}

/// `host:port` of an authority, without a `user:password@` before it.
fn without_userinfo(authority: &http::uri::Authority) -> &str {
    let text = authority.as_str();
    text.rsplit_once('@').map_or(text, |(_, host)| host)
}

/// Whether the authority names a port that is no TCP port (`:0`, `:99999`),
/// which `http` accepts and would only fail later, as a confusing 502.
fn has_bad_port(authority: &http::uri::Authority) -> bool {
    let host_port = authority.as_str().rsplit('@').next().unwrap_or_default();
    // After an IPv6 literal's `]`, if any: its colons are not a port's.
    let tail = host_port.rsplit(']').next().unwrap_or_default();
    tail.rsplit_once(':').is_some_and(|(_, port)| {
        !port.is_empty() && port.parse::<u16>().ok().is_none_or(|p| p == 0)
    })
}

/// Removes the hop-by-hop headers and every header the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Adds this proxy to `Via`, with the protocol version the message came in with.
fn append_via(headers: &mut HeaderMap, received: Version) {
    let value = if received == Version::HTTP_10 {
        "1.0 bugpack"
    } else {
        "1.1 bugpack"
    };
    headers.append(header::VIA, HeaderValue::from_static(value));
}

/// Whether a `Via` names this proxy already: forwarding again would loop.
fn came_through_us(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|hop| hop.split_whitespace().nth(1) == Some("bugpack"))
}

/// The request line and headers, for the cache policy, which outlives the body.
fn head_of<B>(req: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    *head.version_mut() = req.version();
    *head.headers_mut() = req.headers().clone();
    head
}

/// `status:CODE`'s answer, in place of the origin's.
fn injected(code: u16) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = error_response(
        status,
        &format!("bugpack's proxy answered {code} in place of the origin (proxy status:{code})"),
    );
    response
        .headers_mut()
        .insert(X_CACHE, HeaderValue::from_static("FAULT"));
    response
}

fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(full(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    append_via(headers, Version::HTTP_11);
    response
}

fn full(body: Bytes) -> ProxyBody {
    Full::new(body).map_err(|never| match never {}).boxed()
}

fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// An error and its causes on one line: hyper's top-level messages
/// ("client error (Connect)") say little without them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ports_are_told_from_ipv6_and_userinfo() {
        let bad = |a: &str| has_bad_port(&a.parse().unwrap());
        for ok in [
            "a",
            "a:80",
            "a:",
            "[::1]",
            "[::1]:8080",
            "u:p@a",
            "u:p@[::1]:1",
        ] {
            assert!(!bad(ok), "{ok}");
        }
        for wrong in ["a:0", "a:99999", "[::1]:65536", "u:p@a:x1"] {
            assert!(bad(wrong), "{wrong}");
        }
    }

    #[test]
    fn logged_urls_lose_their_credentials_only() {
        let safe = |u: &str| SafeUri(&u.parse().unwrap()).to_string();
        assert_eq!(
            safe("http://alice:hunter2@example.com:8080/a/b?page=2"),
            "http://[REDACTED:url-credentials]@example.com:8080/a/b?page=2"
        );
        assert_eq!(
            safe("http://h/x?page=2&access_token=abc&X-Amz-Signature=f00&q"),
            "http://h/x?page=2&access_token=[REDACTED:query]&X-Amz-Signature=[REDACTED:query]&q"
        );
        assert_eq!(safe("http://example.com/x"), "http://example.com/x");
        assert_eq!(safe("example.com:443"), "example.com:443");
        assert_eq!(
            safe("u:p@example.com:443"),
            "[REDACTED:url-credentials]@example.com:443"
        );
    }

    #[test]
    fn connection_named_headers_are_hop_by_hop_too() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close, X-Hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn only_our_own_via_is_a_loop() {
        let via = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::VIA, HeaderValue::from_static(v));
            came_through_us(&h)
        };
        assert!(via("1.0 squid, 1.1 bugpack"));
        assert!(via("1.1 bugpack (x)"));
        assert!(!via("1.1 bugpack-other, 1.1 squid"));
    }

    #[test]
    fn a_304_updates_headers_but_not_the_body_description() {
        let mut stored = HeaderMap::new();
        stored.insert("content-length", HeaderValue::from_static("5"));
        stored.insert("etag", HeaderValue::from_static("\"v1\""));
        stored.insert("x-old", HeaderValue::from_static("1"));
        let mut fresh = HeaderMap::new();
        fresh.insert("content-length", HeaderValue::from_static("0"));
        fresh.append("x-new", HeaderValue::from_static("a"));
        fresh.append("x-new", HeaderValue::from_static("b"));
        let merged = merge_not_modified(&stored, &fresh);
        assert_eq!(merged["content-length"], "5");
        assert_eq!(merged["x-old"], "1");
        assert_eq!(merged.get_all("x-new").iter().count(), 2);
    }
}
