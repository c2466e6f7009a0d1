use std::fmt;

use fulcrum_core::BoxError;

use super::{Completion, FailureKind, Outcome};

/// Decides how a request ended, and when.
///
/// Set on the [`Builder`](crate::Builder) (so a [`BalanceLayer`](crate::BalanceLayer)
/// carries it). Called once per request with the inner service's result
/// and the request's [`Completion`]: finish the completion now with an
/// [`Outcome`], or move it into the response so that it finishes when the
/// response ends (see [`TrackedBody`](super::TrackedBody) with feature
/// `http`). `Response` is what the caller receives.
///
/// The classifier is cloned into every request's future: keep it cheap to
/// clone (a unit struct, or settings behind an `Arc`).
///
/// Why this shape (tower-http's `ClassifyResponse` + `ClassifyEos`, and
/// linkerd2-proxy's `Classify`, split classification in two steps over
/// `http` types): fulcrum's balancer serves any request and response type,
/// and the one step that every protocol shares is "here is the result, and
/// the handle that ends the request". HTTP's second step, at end of stream,
/// lives in the body that holds the handle.
pub trait Classify<Resp>: Clone + Send + Sync + 'static {
    /// What the caller receives.
    type Response;

    /// Classifies one result; must finish `completion` or hand it on.
    fn classify(
        &self,
        result: Result<Resp, BoxError>,
        completion: Completion,
    ) -> Result<Self::Response, BoxError>;
}

/// The default classifier: `Ok` is a success, `Err` a failure whose
/// [`FailureKind`] is read from the error's causes
/// ([`FailureKind::of_error`]); so a refused connection takes its endpoint
/// out of service whatever client made it.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassify;

impl<Resp> Classify<Resp> for DefaultClassify {
    type Response = Resp;

    #[inline]
    fn classify(
        &self,
        result: Result<Resp, BoxError>,
        completion: Completion,
    ) -> Result<Resp, BoxError> {
        match &result {
            Ok(_) => completion.finish(Outcome::Success),
            Err(e) => completion.finish(Outcome::Failure(FailureKind::of_error(&**e))),
        }
        result
    }
}

/// A classifier from a closure that reads the result and returns its
/// [`Outcome`]; the request finishes when the closure returns.
///
/// ```
/// use fulcrum_balance::classify::{classify_fn, FailureKind, Outcome};
///
/// let five_xx = classify_fn(|r: &Result<u16, _>| match r {
///     Ok(s) if *s >= 500 => Outcome::Failure(FailureKind::Server),
///     Ok(_) => Outcome::Success,
///     Err(e) => Outcome::Failure(FailureKind::of_error(&**e)),
/// });
/// # drop(five_xx);
/// ```
pub fn classify_fn<F, Resp>(f: F) -> ClassifyFn<F>
where
    F: Fn(&Result<Resp, BoxError>) -> Outcome,
{
    ClassifyFn { f }
}

/// See [`classify_fn`].
#[derive(Clone, Copy)]
pub struct ClassifyFn<F> {
    f: F,
}

impl<F> fmt::Debug for ClassifyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyFn").finish_non_exhaustive()
    }
}

impl<F, Resp> Classify<Resp> for ClassifyFn<F>
where
    F: Fn(&Result<Resp, BoxError>) -> Outcome + Clone + Send + Sync + 'static,
{
    type Response = Resp;

    fn classify(
        &self,
        result: Result<Resp, BoxError>,
        completion: Completion,
    ) -> Result<Resp, BoxError> {
        completion.finish((self.f)(&result));
        result
    }
}
