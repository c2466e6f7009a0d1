//! The [`Balancer`] handle and its `Service` implementation: where a
//! request is picked.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum_core::BoxError;
use tower_service::Service;

use super::error::Error;
use super::future::{ResponseFuture, Routing};
use super::shared::{Current, Shared};
use super::wait::{self, OwnWait};
use super::Builder;
use crate::classify::{Classify, DefaultClassify, UNTIMED};
use crate::key::{KeyExtractor, NoKey};
use crate::pick::Tried;
use crate::stats::{Counts, Stats};

/// A load balancer over endpoints, as a `tower::Service<Req>`.
///
/// Built by [`Balancer::builder`]; see the [module docs](super) for the
/// guarantees. `S` is the inner service made per endpoint, `K` the key
/// extractor and `C` the classifier set on the builder.
///
/// Each clone caches the snapshot it last used, to check it is current
/// with one atomic load. An idle clone therefore keeps that snapshot, and
/// the services of endpoints removed since, until its next request; drop
/// clones you no longer use.
pub struct Balancer<S, K = NoKey, C = DefaultClassify> {
    shared: Arc<Shared<S>>,
    /// This clone's copy of the current snapshot.
    snapshot: Current<S>,
    id: u64,
    rng: fastrand::Rng,
    waiting: Option<wait::Waiting>,
    /// When `poll_ready` began waiting for the request `call` sends next:
    /// the request's readiness deadline counts from there.
    waited_since: Option<tokio::time::Instant>,
    key: Arc<K>,
    classify: C,
    /// Time every request (the policy reads latency), or one in
    /// [`UNTIMED_STRIDE`] (counted by `tick`) for stats and health.
    time_all: bool,
    tick: u32,
}

/// For policies that do not read latency, one request in this many is timed.
const UNTIMED_STRIDE: u32 = 16;

impl Balancer<()> {
    /// Starts configuring a balancer; see [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// One line from a target to a balancer with the default policy (`ewma`):
    /// endpoints from `target` (a static list, `dns:///host:port`, or
    /// `dns+srv:///_service._proto.domain`, see `fulcrum_discovery::Target`),
    /// one inner service per endpoint from `make`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use fulcrum_balance::{make_fn, Balancer};
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut lb = Balancer::from_target(
    ///     "127.0.0.1:8080,127.0.0.1:8081",
    ///     make_fn(|ep: &fulcrum_core::Endpoint| {
    ///         let addr = ep.addr();
    ///         service_fn(move |_: ()| async move { Ok::<_, Infallible>(addr) })
    ///     }),
    /// )
    /// .unwrap();
    /// let addr = lb.ready().await.unwrap().call(()).await.unwrap();
    /// assert_eq!(addr.ip().to_string(), "127.0.0.1");
    /// # }
    /// ```
    #[cfg(feature = "discovery")]
    pub fn from_target<M>(
        target: &str,
        make: M,
    ) -> Result<Balancer<M::Response>, fulcrum_discovery::TargetError>
    where
        M: Service<fulcrum_core::Endpoint> + Send + 'static,
        M::Future: Send + 'static,
        M::Error: Into<BoxError>,
        M::Response: Clone + Send + Sync + 'static,
    {
        Ok(Builder::new().discover_target(target)?.build(make))
    }
}

impl<S, K, C> Balancer<S, K, C> {
    pub(crate) fn from_shared(shared: Arc<Shared<S>>, key: Arc<K>, classify: C) -> Self {
        let (id, rng) = shared.new_id();
        let time_all = shared.time_all;
        Balancer {
            snapshot: Current::new(&shared),
            shared,
            id,
            rng,
            waiting: None,
            waited_since: None,
            key,
            classify,
            time_all,
            tick: 0,
        }
    }

    /// A handle to drain, disable, enable and re-weight endpoints at
    /// runtime ([`Manager`](crate::balancer::Manager)).
    pub fn manager(&self) -> crate::balancer::Manager {
        crate::balancer::Manager::new(self.shared.commands.clone())
    }

    /// A point-in-time view of every endpoint: state, load, counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// What [`call`](Service::call) needs to send a request: for the retry
    /// layer's further attempts.
    pub(crate) fn parts(&self) -> (Arc<Shared<S>>, Arc<K>, C)
    where
        C: Clone,
    {
        (self.shared.clone(), self.key.clone(), self.classify.clone())
    }

    /// The balancer's counts (publishes, members, ready, warming, draining):
    /// O(1), unlike [`stats`](Self::stats), which lists every endpoint.
    pub fn counts(&self) -> Counts {
        let snap = self.shared.snapshot.load();
        Counts {
            version: snap.version,
            members: snap.members.len(),
            ready: snap.ready.len(),
            warming: snap.warming,
            draining: snap.draining.len(),
        }
    }

    /// Waits until the service of every endpoint in the current set has
    /// been made (or failed to be), up to `timeout`; afterwards every
    /// request is picked among all of them. Call it after building a
    /// balancer to start with warm connections and, for the hash policies,
    /// with the same key → endpoint map as every other client from the
    /// first request. Before discovery's first answer there is no set yet:
    /// it waits for one. "The current set" is the one the driver has
    /// applied: a set sent through an [`Updater`](crate::Updater) a moment
    /// ago may not be applied yet.
    ///
    /// ```
    /// # use std::{convert::Infallible, time::Duration};
    /// # use fulcrum_balance::{make_fn, Balancer};
    /// # use fulcrum_core::Endpoint;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lb = Balancer::builder()
    ///     .policy_name("maglev").unwrap()
    ///     .endpoints((0..100).map(|i| Endpoint::new(([10, 0, 0, 1], 1000 + i).into())))
    ///     .build(make_fn(|_: &Endpoint| tower::service_fn(|()| async { Ok::<_, Infallible>(()) })));
    /// lb.ready_all(Duration::from_secs(1)).await.unwrap();
    /// assert_eq!(lb.stats().ready, 100);
    /// # }
    /// ```
    pub async fn ready_all(&self, timeout: Duration) -> Result<(), Error> {
        self.shared.start_driver();
        wait::all_made(&self.shared, timeout.min(super::builder::MAX_TIMEOUT)).await
    }
}

impl<S, K, C> Balancer<S, K, C> {
    /// `poll_ready` when it may have to wait.
    #[cold]
    #[inline(never)]
    fn poll_ready_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.start_driver();
        let Balancer {
            shared,
            snapshot,
            waiting,
            id,
            ..
        } = self;
        let since = std::task::ready!(wait::poll_wait(shared, *id, waiting, cx, || {
            snapshot.load(shared).check(&shared.control)
        }))?;
        self.waited_since = since;
        Poll::Ready(Ok(()))
    }
}

impl<S, K, C: Clone> Clone for Balancer<S, K, C> {
    fn clone(&self) -> Self {
        Balancer::from_shared(self.shared.clone(), self.key.clone(), self.classify.clone())
    }
}

impl<S, K, C> Drop for Balancer<S, K, C> {
    fn drop(&mut self) {
        wait::end_wait(&self.shared, self.id, &mut self.waiting);
    }
}

impl<S, K, C> fmt::Debug for Balancer<S, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snap = self.shared.snapshot.load();
        f.debug_struct("Balancer")
            .field("target", &self.shared.target)
            .field("policy", &self.shared.policy_name)
            .field("ready", &snap.ready.len())
            .field("members", &snap.members.len())
            .finish()
    }
}

impl<S, K, C, Req> Service<Req> for Balancer<S, K, C>
where
    Req: 'static,
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    K: KeyExtractor<Req>,
    C: Classify<S::Response>,
{
    type Response = C::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The fast path: not waiting, and something to pick.
        if self.waiting.is_none() {
            let snap = self.snapshot.load(&self.shared);
            if snap.ready.len() > self.shared.control.down_in(snap.version) && !snap.stopped {
                return Poll::Ready(Ok(()));
            }
        }
        self.poll_ready_slow(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.call_avoiding(req, None)
    }
}

impl<S, K, C> Balancer<S, K, C> {
    /// `call`, for a request that avoids the endpoints in `tried` (a retry
    /// or a hedge).
    #[inline]
    pub(crate) fn call_avoiding<Req>(
        &mut self,
        req: Req,
        tried: Option<&Tried>,
    ) -> ResponseFuture<S, Req, C>
    where
        S: Service<Req> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        K: KeyExtractor<Req>,
        C: Classify<S::Response>,
    {
        // A wait abandoned by a dropped `ready()` ends here, not later with
        // a stale deadline.
        if self.waiting.is_some() {
            wait::end_wait(&self.shared, self.id, &mut self.waiting);
        }
        let waited_since = self.waited_since.take();
        let key = match catch_unwind(AssertUnwindSafe(|| self.key.key(&req))) {
            Ok(key) => key,
            Err(panic) => {
                return ResponseFuture::failed(
                    Error::panicked("key extractor", panic),
                    self.classify.clone(),
                )
            }
        };
        let subset = match catch_unwind(AssertUnwindSafe(|| self.key.subset(&req))) {
            Ok(subset) => subset,
            Err(panic) => {
                return ResponseFuture::failed(
                    Error::panicked("subset route", panic),
                    self.classify.clone(),
                )
            }
        };
        let snap = self.snapshot.load(&self.shared);
        // An index, not a `Picked`: the future takes what it needs from the
        // snapshot directly, without an intermediate copy.
        let picked = match tried {
            None => snap.choose_index(&mut self.rng, key, subset),
            Some(tried) => snap.choose_index_avoiding(&mut self.rng, key, subset, tried),
        };
        let routing = Routing { key, subset, tried };
        match picked {
            Some((i, now)) => {
                let start = match now {
                    Some(now) => now,
                    None if self.time_all => fulcrum_core::time::now(),
                    None => {
                        self.tick = self.tick.wrapping_add(1);
                        if self.tick.is_multiple_of(UNTIMED_STRIDE) {
                            fulcrum_core::time::now()
                        } else {
                            UNTIMED
                        }
                    }
                };
                ResponseFuture::dispatch(
                    (snap, i),
                    req,
                    start,
                    self.classify.clone(),
                    self.rng.u64(..),
                    routing,
                    waited_since,
                )
            }
            None => {
                // Nothing to pick: the set changed since `poll_ready` (or it
                // was not called). The request waits for an endpoint, as
                // `poll_ready` would have, instead of failing.
                let wait = OwnWait::new(self.shared.clone(), waited_since);
                ResponseFuture::waiting(req, wait, self.classify.clone(), self.rng.u64(..), routing)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::task::Waker;

    #[tokio::test]
    async fn waiters_that_give_up_or_drop_leave_no_trace() {
        let (_tx, rx) = crate::channel(fulcrum_core::EndpointSet::empty());
        let lb = Balancer::builder()
            .ready_timeout(Duration::from_millis(5))
            .updates(rx)
            .build(crate::make_fn(|_: &fulcrum_core::Endpoint| {
                tower::service_fn(|()| async { Ok::<_, Infallible>(()) })
            }));
        for _ in 0..50 {
            let mut clone = lb.clone();
            let result = std::future::poll_fn(|cx| clone.poll_ready(cx)).await;
            assert!(result.is_err());
        }
        // The balancer now fails fast: nothing registers.
        for _ in 0..50 {
            let mut clone = lb.clone();
            let mut cx = Context::from_waker(Waker::noop());
            assert!(clone.poll_ready(&mut cx).is_ready());
        }
        assert_eq!(lb.shared.waiter_count(), 0);
    }
}
