//! A TCP server on a thread of its own, with a current-thread tokio
//! runtime, stopped when dropped: the shape the fault proxy and the TLS
//! terminator share.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

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
    /// Binds `listen` (port 0 for a free one) and runs `serve(listener,
    /// stop)` on a thread named `name-PORT` until `stop` resolves, which
    /// dropping the handle makes it do.
    pub(crate) fn spawn<F, Fut>(listen: SocketAddr, name: &str, serve: F) -> io::Result<Self>
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
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
        let thread = thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, stopped)))?;
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
