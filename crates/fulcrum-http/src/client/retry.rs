use fulcrum_balance::retry::{RetryIdempotent, RetryPolicy};
use http::{Request, Response};

/// The client's retry policy: idempotent requests (`GET`, `HEAD`, `PUT`,
/// `DELETE`, `OPTIONS`, `TRACE`) are retried and hedged when the client
/// was built with retries or hedging; other methods never are, and
/// without retries nothing is copied at all.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Idempotent {
    pub(crate) enabled: bool,
}

impl<B: Clone, R> RetryPolicy<Request<B>, Response<R>> for Idempotent {
    fn clone_request(&self, req: &Request<B>) -> Option<Request<B>> {
        if !self.enabled {
            return None;
        }
        <RetryIdempotent as RetryPolicy<Request<B>, Response<R>>>::clone_request(
            &RetryIdempotent,
            req,
        )
    }

    /// A gateway's failure (`502`, `504`) or an unavailable endpoint
    /// (`503` without `Retry-After`) is worth another endpoint; a `500`
    /// (the application's own error) or a `503` / `429` with `Retry-After`
    /// (load shed on purpose) is not.
    fn retry_response(&self, response: &Response<R>) -> bool {
        match response.status().as_u16() {
            502 | 504 => true,
            503 => !response.headers().contains_key(http::header::RETRY_AFTER),
            _ => false,
        }
    }
}
