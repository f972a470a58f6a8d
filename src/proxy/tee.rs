//! A response body that streams to the client while keeping a copy for the
//! cache, up to a limit.
//!
//! The client never waits for the copy: frames pass through as they arrive.
//! The copy is handed over only when the body ended cleanly; a body that
//! errors, is dropped half-read, or outgrows the limit is never stored.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Called once with the whole body when it ended cleanly within the limit.
pub(crate) type OnComplete = Box<dyn FnOnce(Bytes) + Send + Sync>;

/// See the module documentation.
pub(crate) struct Tee {
    inner: Incoming,
    /// `None` once the copy was abandoned or handed over.
    copy: Option<BytesMut>,
    limit: usize,
    on_complete: Option<OnComplete>,
}

impl fmt::Debug for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tee")
            .field("copied", &self.copy.as_ref().map(BytesMut::len))
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Tee {
    pub(crate) fn new(inner: Incoming, limit: usize, on_complete: OnComplete) -> Self {
        let mut tee = Self {
            inner,
            copy: Some(BytesMut::new()),
            limit,
            on_complete: Some(on_complete),
        };
        // hyper may never poll a body that says it is already over (an empty
        // one): hand the copy over now.
        tee.complete_if_ended();
        tee
    }

    fn complete_if_ended(&mut self) {
        if self.inner.is_end_stream()
            && let (Some(copy), Some(done)) = (self.copy.take(), self.on_complete.take())
        {
            done(copy.freeze());
        }
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let (Some(data), Some(copy)) = (frame.data_ref(), this.copy.as_mut()) {
                    if copy.len() + data.len() > this.limit {
                        this.copy = None;
                    } else {
                        copy.extend_from_slice(data);
                    }
                }
                // hyper stops polling once a body reports its end, so the
                // last data frame may be the last call we get.
                this.complete_if_ended();
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                this.copy = None;
                Poll::Ready(Some(Err(err)))
            }
            None => {
                if let (Some(copy), Some(done)) = (this.copy.take(), this.on_complete.take()) {
                    done(copy.freeze());
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
