//! An adapter to `tower::discover::Discover`, so fulcrum's discovery also
//! feeds tower's own balancer (feature `tower`, on by default).
//!
//! ```
//! use std::convert::Infallible;
//! use fulcrum_discovery::Discovery;
//! use tower::{balance::p2c::Balance, load::CompleteOnResponse, load::PendingRequestsDiscover};
//! use tower::{service_fn, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let discover = Discovery::new("127.0.0.1:8080,127.0.0.1:8081").unwrap().into_discover(|ep: &_| {
//!     let addr = fulcrum_core::Endpoint::addr(ep);
//!     service_fn(move |_: ()| async move { Ok::<_, Infallible>(addr) })
//! });
//! let mut balance = Balance::new(PendingRequestsDiscover::new(discover, CompleteOnResponse::default()));
//! let addr = balance.ready().await.unwrap().call(()).await.unwrap();
//! assert_eq!(addr.ip().to_string(), "127.0.0.1");
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use fulcrum_core::Endpoint;
use futures_core::Stream;
use tower::discover::Change;

use crate::{Discovery, EndpointStream};

/// Endpoint-set changes as `tower::discover::Change`s, keyed by address.
///
/// Each new endpoint (or one whose identity changed) is inserted with a
/// service made by the closure; each endpoint gone from the set is removed.
/// tower's balancer has no priority tiers, so only the most preferred tier
/// of the set is passed on. Discovery errors are
/// logged, not passed on: tower's balancer treats a discovery error as
/// fatal, and fulcrum's discovery keeps the last good set anyway.
pub struct ServiceDiscover<F, S> {
    stream: EndpointStream,
    make: F,
    known: HashMap<SocketAddr, Endpoint>,
    pending: VecDeque<Change<SocketAddr, S>>,
}

// Services are only moved, never pinned, so the adapter is `Unpin` whatever
// `S` is.
impl<F: Unpin, S> Unpin for ServiceDiscover<F, S> {}

impl<F, S> fmt::Debug for ServiceDiscover<F, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDiscover")
            .field("known", &self.known.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Discovery {
    /// This discovery as a `tower::discover::Discover`, making each
    /// endpoint's service with `make`.
    pub fn into_discover<F, S>(self, make: F) -> ServiceDiscover<F, S>
    where
        F: FnMut(&Endpoint) -> S,
    {
        ServiceDiscover {
            stream: self.stream().0,
            make,
            known: HashMap::new(),
            pending: VecDeque::new(),
        }
    }
}

impl<F, S> Stream for ServiceDiscover<F, S>
where
    F: FnMut(&Endpoint) -> S + Unpin,
{
    type Item = Result<Change<SocketAddr, S>, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(change) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(change)));
            }
            match Pin::new(&mut this.stream).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "discovery failed; tower keeps the last endpoints");
                }
                Poll::Ready(Some(Ok(set))) => {
                    // tower's balancer knows no tiers: hand it the most
                    // preferred one (SRV priority), as fulcrum's does.
                    let tier = fulcrum_core::serving_tier(set.iter().map(|e| (e.priority(), true)));
                    let mut next = HashMap::with_capacity(set.len());
                    for ep in set.iter().filter(|e| Some(e.priority()) == tier) {
                        // tower ignores weights: only a new identity needs a
                        // new service.
                        let known = this.known.get(&ep.addr());
                        if !known.is_some_and(|k| k.same_identity(ep)) {
                            let svc = (this.make)(ep);
                            this.pending.push_back(Change::Insert(ep.addr(), svc));
                        }
                        next.insert(ep.addr(), ep.clone());
                    }
                    for addr in this.known.keys() {
                        if !next.contains_key(addr) {
                            this.pending.push_back(Change::Remove(*addr));
                        }
                    }
                    this.known = next;
                }
            }
        }
    }
}
