use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use fulcrum_core::Endpoint;
use tower_service::Service;

/// Makes each endpoint's inner service with a closure.
///
/// ```
/// use fulcrum_balance::make_fn;
/// use fulcrum_core::Endpoint;
///
/// // e.g. a client pinned to the endpoint's address
/// let make = make_fn(|ep: &Endpoint| ep.addr());
/// # drop(make);
/// ```
pub fn make_fn<F, S>(f: F) -> MakeFn<F>
where
    F: FnMut(&Endpoint) -> S,
{
    MakeFn { f }
}

/// A `tower::Service<Endpoint>` from a closure; see [`make_fn`].
#[derive(Clone)]
pub struct MakeFn<F> {
    f: F,
}

impl<F> fmt::Debug for MakeFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MakeFn").finish_non_exhaustive()
    }
}

impl<F, S> Service<Endpoint> for MakeFn<F>
where
    F: FnMut(&Endpoint) -> S,
{
    type Response = S;
    type Error = Infallible;
    type Future = std::future::Ready<Result<S, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, endpoint: Endpoint) -> Self::Future {
        std::future::ready(Ok((self.f)(&endpoint)))
    }
}
