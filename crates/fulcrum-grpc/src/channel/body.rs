use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tonic::Status;

/// A response body from a [`Channel`](super::Channel): the call's messages
/// and its trailers.
///
/// The call stays in flight on its endpoint until this ends. A body that
/// breaks off (the connection was lost, the server reset the stream)
/// fails with `UNAVAILABLE`, the status gRPC clients retry on, never
/// `UNKNOWN`.
pub struct Body {
    inner: fulcrum_http::Body,
}

impl Body {
    pub(crate) fn new(inner: fulcrum_http::Body) -> Self {
        Body { inner }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").field("inner", &self.inner).finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(broken_off)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The status of a response that broke off half-way.
fn broken_off(error: hyper::Error) -> Status {
    let mut status = Status::unavailable(format!(
        "the response broke off: {}",
        crate::channel::status::chain(&error)
    ));
    status.set_source(Arc::new(error));
    status
}
