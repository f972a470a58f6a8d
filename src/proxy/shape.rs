//! The HTTP faults that change a response on its way to the client:
//! `truncate:BYTES` ends its body early, `drop-header:NAME` removes a
//! header. (`status:CODE[:P]` answers in place of the origin and
//! `stale:SECS` is a cache; both are decided before the origin is asked.)

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderName};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};

use super::Mode;
use super::server::{ProxyBody, Shared};
use super::stats::Counter;

/// Applies the mode's response fault, if it has one.
pub(super) fn response(
    shared: &Arc<Shared>,
    mut response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    match shared.mode() {
        Mode::Truncate { bytes } => {
            let left = *bytes;
            response.map(|body| {
                Cut {
                    inner: body,
                    left,
                    on_cut: Some(Arc::clone(shared)),
                }
                .boxed()
            })
        }
        Mode::DropHeader { name } => {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                return response;
            };
            if response.headers_mut().remove(&name).is_some() {
                shared.counters().bump(Counter::Faulted);
            }
            if name == header::CONTENT_LENGTH {
                // An exact size hint would make hyper write the length back.
                return response.map(|body| {
                    Cut {
                        inner: body,
                        left: u64::MAX,
                        on_cut: None,
                    }
                    .boxed()
                });
            }
            response
        }
        _ => response,
    }
}

/// A body that ends after `left` more bytes, and never says how long it is.
struct Cut {
    inner: ProxyBody,
    left: u64,
    /// Told (once) when the body is cut.
    on_cut: Option<Arc<Shared>>,
}

impl Body for Cut {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
        };
        let len = data.len() as u64;
        if len > self.left {
            data.truncate(usize::try_from(self.left).unwrap_or(usize::MAX));
            if let Some(shared) = self.on_cut.take() {
                shared.counters().bump(Counter::Faulted);
                tracing::info!("proxy: cut a response body short (truncate)");
            }
        }
        self.left = self.left.saturating_sub(len);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0 || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
