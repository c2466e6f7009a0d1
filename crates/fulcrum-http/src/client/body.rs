use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use fulcrum_balance::classify::TrackedBody;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// A response body from a [`Client`](crate::Client).
///
/// Its request stays in flight on its endpoint, and its latency runs,
/// until the body has been read to its end; a body dropped unread counts
/// as a cancelled request. A body that fails half-way (the server reset
/// the connection) is a [`Reset`](fulcrum_balance::FailureKind::Reset)
/// failure for its endpoint.
pub struct Body {
    inner: TrackedBody<Incoming>,
}

impl Body {
    /// Wraps a tracked response body (as the balancer returns it).
    pub fn new(inner: TrackedBody<Incoming>) -> Self {
        Body { inner }
    }

    /// Reads the whole body.
    pub async fn bytes(self) -> Result<Bytes, hyper::Error> {
        Ok(self.collect().await?.to_bytes())
    }

    /// Reads the whole body as text (invalid UTF-8 replaced).
    pub async fn text(self) -> Result<String, hyper::Error> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").field("inner", &self.inner).finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
