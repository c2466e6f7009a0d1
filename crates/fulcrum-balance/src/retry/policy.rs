//! Which requests may be sent again, and which answers are worth it.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Decides which requests are retried (and hedged), and which responses
/// call for another attempt. Errors are decided by the layer: a failed
/// attempt ([`ErrorKind::Service`](crate::ErrorKind::Service),
/// [`ErrorKind::NotReady`](crate::ErrorKind::NotReady), a per-attempt timeout) is
/// retried, an error that no other endpoint would change
/// ([`ErrorKind::NoEndpoints`](crate::ErrorKind::NoEndpoints), a panic) is not.
///
/// Only requests that are safe to send twice should be retryable: reads,
/// idempotent writes, requests with an idempotency key.
pub trait RetryPolicy<Req, Res>: Clone + Send + Sync + 'static {
    /// A copy of `req` for another attempt, or `None` when it must not be
    /// sent again (not idempotent, a body that cannot be replayed).
    fn clone_request(&self, req: &Req) -> Option<Req>;

    /// Whether a response calls for another attempt elsewhere (a `503`,
    /// say). By default none does.
    fn retry_response(&self, _response: &Res) -> bool {
        false
    }
}

/// Every request is retryable, copied with `Clone`.
///
/// ```
/// use fulcrum_balance::retry::{RetryClone, RetryLayer};
///
/// let layer = RetryLayer::new(RetryClone);
/// # drop(layer);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryClone;

impl<Req: Clone, Res> RetryPolicy<Req, Res> for RetryClone {
    fn clone_request(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// A [`RetryPolicy`] from a closure that copies the requests that may be
/// retried; see [`retry_fn`].
#[derive(Clone, Copy, Debug)]
pub struct RetryFn<F>(F);

/// A [`RetryPolicy`] from a closure: `Some(copy)` for a request that may
/// be sent again, `None` for one that must not.
///
/// ```
/// use fulcrum_balance::retry::{retry_fn, RetryLayer};
///
/// #[derive(Clone)]
/// struct Query { sql: String, read_only: bool }
///
/// let layer = RetryLayer::new(retry_fn(|q: &Query| q.read_only.then(|| q.clone())));
/// # drop(layer);
/// ```
pub fn retry_fn<F, Req>(f: F) -> RetryFn<F>
where
    F: Fn(&Req) -> Option<Req>,
{
    RetryFn(f)
}

impl<F, Req, Res> RetryPolicy<Req, Res> for RetryFn<F>
where
    F: Fn(&Req) -> Option<Req> + Clone + Send + Sync + 'static,
{
    fn clone_request(&self, req: &Req) -> Option<Req> {
        (self.0)(req)
    }
}

/// Idempotent HTTP requests (`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`,
/// `DELETE`) with a body that can be cloned are retryable, on a failed
/// attempt or a `502`, `503` or `504` answer. (Feature `http`.)
///
/// ```
/// use fulcrum_balance::retry::{RetryIdempotent, RetryLayer};
///
/// let layer = RetryLayer::new(RetryIdempotent);
/// # drop(layer);
/// ```
#[cfg(feature = "http")]
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryIdempotent;

#[cfg(feature = "http")]
impl<B: Clone, R> RetryPolicy<http::Request<B>, http::Response<R>> for RetryIdempotent {
    fn clone_request(&self, req: &http::Request<B>) -> Option<http::Request<B>> {
        if !req.method().is_idempotent() {
            return None;
        }
        let mut copy = http::Request::new(req.body().clone());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }

    fn retry_response(&self, response: &http::Response<R>) -> bool {
        matches!(response.status().as_u16(), 502..=504)
    }
}

/// `clone_request`, with a panic caught: `Err` with its message.
pub(crate) fn guarded_clone<P, Req, Res>(policy: &P, req: &Req) -> Result<Option<Req>, String>
where
    P: RetryPolicy<Req, Res>,
{
    catch_unwind(AssertUnwindSafe(|| policy.clone_request(req)))
        .map_err(|panic| crate::balancer::error::panic_message(&*panic))
}

/// `retry_response`, with a panic taken as "no".
pub(crate) fn guarded_retry_response<P, Req, Res>(policy: &P, response: &Res) -> bool
where
    P: RetryPolicy<Req, Res>,
{
    catch_unwind(AssertUnwindSafe(|| policy.retry_response(response))).unwrap_or(false)
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    #[test]
    fn idempotent_http_requests_are_copied_whole() {
        let req = http::Request::put("http://orders/1")
            .header("x-id", "7")
            .extension(42u32)
            .body("body".to_owned())
            .unwrap();
        let copy =
            RetryPolicy::<_, http::Response<()>>::clone_request(&RetryIdempotent, &req).unwrap();
        assert_eq!(copy.method(), http::Method::PUT);
        assert_eq!(copy.uri(), req.uri());
        assert_eq!(copy.headers()["x-id"], "7");
        assert_eq!(copy.extensions().get::<u32>(), Some(&42));
        assert_eq!(copy.body(), "body");
        let post = http::Request::post("/").body(String::new()).unwrap();
        assert!(
            RetryPolicy::<_, http::Response<()>>::clone_request(&RetryIdempotent, &post).is_none()
        );
        let answer = |s: u16| http::Response::builder().status(s).body(()).unwrap();
        let retries = |s| {
            RetryPolicy::<http::Request<String>, _>::retry_response(&RetryIdempotent, &answer(s))
        };
        assert!(retries(503) && retries(502) && retries(504));
        assert!(!retries(500) && !retries(200) && !retries(429));
    }
}
