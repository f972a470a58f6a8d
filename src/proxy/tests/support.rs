//! Test fixtures: an origin server (hyper) whose routes exercise each cache
//! rule, a TCP echo server for tunnels, and a raw HTTP/1.1 client that writes
//! absolute-form requests byte by byte, so the tests see exactly what goes
//! over the wire.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::proxy::{Config, Mode, Proxy};

/// How long any test read or write may block before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy in `mode` on a free loopback port, seed 1, in-memory cache.
pub(super) fn proxy(mode: Mode) -> Proxy {
    proxy_seeded(mode, 1)
}

pub(super) fn proxy_seeded(mode: Mode, seed: u64) -> Proxy {
    let config = Config {
        mode,
        seed,
        cache_dir: None,
        tls: None,
    };
    Proxy::start(config, loopback()).unwrap()
}

pub(super) fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// One request the origin received.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

#[derive(Debug, Default)]
struct OriginState {
    seen: Mutex<Vec<Seen>>,
    counts: Mutex<HashMap<String, u64>>,
    connections: AtomicU64,
}

/// An origin server on its own thread. Routes:
///
/// - `/echo`: 200, the request body back (any method)
/// - `/chunked`: 200, `first,second,third` in three chunks, no length
/// - `/hop`: 200 with hop-by-hop response headers that must not get through
/// - `/nostore`: 200, `Cache-Control: no-store`, `Pragma`, `Expires: 0`, `Vary: *`
/// - `/notfound`: 404
/// - `/maxage`: 200, `max-age=60`
/// - `/private`: 200, `private, max-age=60`, with an `ETag`
/// - `/lastmod`: 200 with only a `Last-Modified` two days old
/// - `/etag`: 200 `ETag: "v1"`, `no-cache`; 304 when `If-None-Match` has it
/// - `/big`: 200, 9 MiB with a length; `/bigchunked`: the same, chunked
///
/// Every body that is not an echo ends in `n=<how many requests this path got>`,
/// so a test can tell the origin's answer from the cache's.
#[derive(Debug)]
pub(super) struct Origin {
    pub(super) addr: SocketAddr,
    state: Arc<OriginState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

pub(super) const BIG: usize = 9 * 1024 * 1024;

impl Origin {
    pub(super) fn start() -> Self {
        let listener = TcpListener::bind(loopback()).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OriginState::default());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let thread = thread::spawn({
            let state = Arc::clone(&state);
            move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                state.connections.fetch_add(1, Ordering::SeqCst);
                                let state = Arc::clone(&state);
                                tokio::spawn(async move {
                                    let service = service_fn(move |req| {
                                        let state = Arc::clone(&state);
                                        async move { Ok::<_, Infallible>(route(&state, req).await) }
                                    });
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many requests `path` got.
    pub(super) fn count(&self, path: &str) -> u64 {
        self.state
            .counts
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub(super) fn last_seen(&self) -> Seen {
        self.seen().pop().expect("the origin saw a request")
    }

    /// TCP connections the origin accepted.
    pub(super) fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type OriginBody = BoxBody<Bytes, Infallible>;

async fn route(state: &OriginState, req: Request<Incoming>) -> Response<OriginBody> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let n = {
        let mut counts = state.counts.lock().unwrap();
        let n = counts.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let tagged = |name: &str| full(format!("{name} n={n}"));
    let two_days_ago = SystemTime::now() - Duration::from_hours(48);
    let builder = Response::builder();
    let response = match path.as_str() {
        "/echo" => builder.body(full(body)),
        "/chunked" => builder.body(
            Chunks(
                [&b"first,"[..], b"second,", b"third"]
                    .map(Bytes::from_static)
                    .into(),
            )
            .boxed(),
        ),
        "/hop" => builder
            .header("connection", "x-private-hop")
            .header("x-private-hop", "secret")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic realm=x")
            .header("x-end-to-end", "kept")
            .body(tagged("hop")),
        "/nostore" => builder
            .header("cache-control", "no-store, no-cache, must-revalidate")
            .header("pragma", "no-cache")
            .header("expires", "0")
            .header("vary", "*")
            .body(tagged("nostore")),
        "/notfound" => builder
            .status(StatusCode::NOT_FOUND)
            .body(tagged("notfound")),
        "/maxage" => builder
            .header("cache-control", "max-age=60")
            .body(tagged("maxage")),
        "/private" => builder
            .header("cache-control", "private, max-age=60")
            .header("etag", "\"p1\"")
            .body(tagged("private")),
        "/lastmod" => builder
            .header("last-modified", httpdate::fmt_http_date(two_days_ago))
            .body(tagged("lastmod")),
        "/etag" => {
            let matches = parts
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("\"v1\""));
            let builder = builder
                .header("etag", "\"v1\"")
                .header("cache-control", "no-cache");
            if matches {
                builder.status(StatusCode::NOT_MODIFIED).body(empty())
            } else {
                builder.body(tagged("etag"))
            }
        }
        // Answers a revalidation 304 without the validator it stored.
        "/etag-lost" if parts.headers.contains_key("if-none-match") => builder
            .status(StatusCode::NOT_MODIFIED)
            .header("cache-control", "no-cache")
            .body(empty()),
        "/etag-lost" => builder
            .header("etag", "\"v2\"")
            .header("cache-control", "no-cache")
            .body(tagged("etag-lost")),
        // Fresh by max-age, but already older than that, as a float.
        "/old-age" => builder
            .header("cache-control", "max-age=3600")
            .header("age", "7200.0")
            .body(tagged("old-age")),
        "/tagged" => builder
            .header("cache-control", "max-age=60")
            .header("etag", "\"t1\"")
            .body(tagged("tagged")),
        // A POST that made the resource /tagged names.
        "/items" => builder
            .status(StatusCode::CREATED)
            .header("location", "/tagged")
            .body(tagged("items")),
        "/vary" => builder
            .header("cache-control", "max-age=60")
            .header("vary", "Foo")
            .body(tagged("vary")),
        "/shouty" => builder
            .header("cache-control", "max-age=60, NO-CACHE")
            .body(tagged("shouty")),
        "/cookie" => builder
            .header("cache-control", "max-age=60")
            .header("set-cookie", "session=a")
            .body(tagged("cookie")),
        "/big" => builder.body(full(vec![b'x'; BIG])),
        "/bigchunked" => builder.body(
            Chunks(
                (0..9)
                    .map(|_| Bytes::from(vec![b'x'; 1024 * 1024]))
                    .collect(),
            )
            .boxed(),
        ),
        _ => builder
            .status(StatusCode::NOT_FOUND)
            .body(tagged("unknown")),
    };
    response.unwrap()
}

fn full(body: impl Into<Bytes>) -> OriginBody {
    Full::new(body.into()).boxed()
}

fn empty() -> OriginBody {
    full(Bytes::new())
}

/// A body of several frames and no known length: hyper sends it chunked.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// A TCP server that echoes every byte back, for CONNECT tunnels.
pub(super) fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let _ = io::copy(&mut reader, &mut stream);
            });
        }
    });
    addr
}

/// A response as the raw client read it.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive client connection to a proxy.
#[derive(Debug)]
pub(super) struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub(super) fn open(proxy: SocketAddr) -> Self {
        let stream = TcpStream::connect(proxy).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Self {
            reader: BufReader::new(stream),
        }
    }

    /// The socket, for a tunnel (nothing may be left unread in the buffer).
    pub(super) fn into_stream(self) -> TcpStream {
        assert!(self.reader.buffer().is_empty(), "bytes past the response");
        self.reader.into_inner()
    }

    pub(super) fn write(&mut self, raw: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(raw)
    }

    /// Writes a raw request and reads one response.
    pub(super) fn send(&mut self, raw: &[u8]) -> io::Result<Reply> {
        self.write(raw)?;
        self.read_reply()
    }

    /// GET `url` (absolute form) with its Host header.
    pub(super) fn get(&mut self, url: &str) -> Reply {
        self.send(get_request(url, "").as_bytes()).unwrap()
    }

    pub(super) fn read_reply(&mut self) -> io::Result<Reply> {
        self.read_reply_to(false)
    }

    /// Sends a CONNECT request: a 2xx answer to it has no body.
    pub(super) fn connect(&mut self, target: SocketAddr) -> io::Result<Reply> {
        self.write(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())?;
        self.read_reply_to(true)
    }

    fn read_reply_to(&mut self, connect: bool) -> io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').unwrap();
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 304
            || status == 204
            || (100..200).contains(&status)
            || (connect && (200..300).contains(&status))
        {
            return Ok(reply);
        }
        if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).map_err(io::Error::other)?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                reply.body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().map_err(io::Error::other)?;
            reply.body = vec![0; len];
            self.reader.read_exact(&mut reply.body)?;
        } else {
            self.reader.read_to_end(&mut reply.body)?;
        }
        Ok(reply)
    }
}

/// A GET in absolute form with `Host`, plus `extra` header lines (each ending in CRLF).
pub(super) fn get_request(url: &str, extra: &str) -> String {
    format!(
        "GET {url} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n",
        host_of(url)
    )
}

pub(super) fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
}

/// GET through `proxy` on a connection of its own.
pub(super) fn get(proxy: &Proxy, url: &str) -> Reply {
    Conn::open(proxy.addr()).get(url)
}
