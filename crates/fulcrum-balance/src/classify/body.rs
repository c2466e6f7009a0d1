use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::{Completion, FailureKind, Outcome};

/// Reads trailers into an outcome (`None`: keep the one decided at the
/// headers).
pub type ClassifyTrailers = fn(&HeaderMap) -> Option<Outcome>;

pin_project! {
    /// A response body that holds its request's [`Completion`] and finishes
    /// it when the stream ends: with the outcome decided at the headers, or
    /// one read from the trailers; with [`FailureKind::Reset`] if the body
    /// fails; as cancelled if it is dropped before its end. Until then the
    /// request counts in its endpoint's in-flight load, and its latency
    /// runs.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        completion: Option<Completion>,
        outcome: Outcome,
        trailers: Option<ClassifyTrailers>,
        // Nothing more to read (an empty body): dropping it is its end.
        empty: bool,
    }

    impl<B> PinnedDrop for TrackedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped unfinished: cancelled, unless there was nothing to
            // read (a 204, a reply to HEAD) or the status already said the
            // request failed (a 503 whose body a retry did not read).
            if let Some(completion) = this.completion.take() {
                if *this.empty || matches!(this.outcome, Outcome::Failure(_) | Outcome::Overload { .. }) {
                    completion.finish(*this.outcome);
                }
            }
        }
    }
}

impl<B> fmt::Debug for TrackedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedBody")
            .field("completion", &self.completion)
            .field("outcome", &self.outcome)
            .finish()
    }
}

impl<B: Body> TrackedBody<B> {
    /// `inner`, finishing `completion` with `outcome` at its end.
    pub fn new(inner: B, mut completion: Completion, outcome: Outcome) -> Self {
        completion.mark_answered();
        TrackedBody {
            empty: inner.is_end_stream(),
            inner,
            completion: Some(completion),
            outcome,
            trailers: None,
        }
    }

    /// Reads the trailers, when the body has some, into the outcome.
    pub fn classify_trailers(mut self, classify: ClassifyTrailers) -> Self {
        self.trailers = Some(classify);
        self
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = std::task::ready!(this.inner.as_mut().poll_frame(cx));
        let finished = match &frame {
            Some(Ok(frame)) => match frame.trailers_ref() {
                Some(trailers) => Some(
                    this.trailers
                        .and_then(|classify| classify(trailers))
                        .unwrap_or(*this.outcome),
                ),
                // A reader may stop at `is_end_stream` without asking for
                // the end: the last data frame finishes the request.
                None => this.inner.is_end_stream().then_some(*this.outcome),
            },
            Some(Err(_)) => Some(Outcome::Failure(FailureKind::Reset)),
            None => Some(*this.outcome),
        };
        if let Some(outcome) = finished {
            if let Some(completion) = this.completion.take() {
                completion.finish(outcome);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
