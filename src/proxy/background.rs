//! A TCP server on a thread of its own, with a current-thread tokio
//! runtime, that hands each accepted connection to a task and is stopped
//! when dropped: the shape the fault proxy and the TLS terminator share.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// A running server; dropping it stops it and joins its thread.
pub(crate) struct Background {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Background")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Background {
    /// Binds `listen` (port 0 for a free one) and, on a thread named
    /// `name-PORT`, runs `on_connection(stream, peer)` as a task of its own
    /// for each connection, in accept order, until the handle is dropped;
    /// then every connection still open is closed.
    pub(crate) fn spawn<F, Fut>(
        listen: SocketAddr,
        name: &str,
        on_connection: F,
    ) -> io::Result<Self>
    where
        F: FnMut(TcpStream, SocketAddr) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let what = name.to_owned();
        let thread = thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || runtime.block_on(accept(listener, stopped, on_connection, &what)))?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(addr = %self.addr, "a background server's thread panicked");
        }
    }
}

/// The accept loop: until `stop`, each connection becomes a task; a failed
/// accept (out of file descriptors and the like) is waited out, never fatal.
async fn accept<F, Fut>(
    listener: TcpListener,
    mut stop: oneshot::Receiver<()>,
    mut on_connection: F,
    name: &str,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(on_connection(stream, peer));
                }
                Err(err) => {
                    tracing::warn!("{name} cannot accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}
