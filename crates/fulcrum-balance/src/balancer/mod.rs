//! The [`Balancer`]: a `tower::Service` that picks an endpoint per request.
//!
//! * **Picks in `call`, with the request visible.** `poll_ready` only says
//!   that some endpoint is available; `call` picks against the current
//!   snapshot of ready endpoints (see [`pick`](crate::pick)).
//! * **Clone it freely.** Clones share one state. The request path reads an
//!   atomically swapped snapshot, updates per-endpoint atomics, takes no lock
//!   and allocates nothing.
//! * **A background driver** (spawned on the current tokio runtime by the
//!   [`Builder`], stopped when the last clone is dropped) applies endpoint-set
//!   updates, makes one inner service per endpoint, and re-admits endpoints
//!   after a backoff — whether or not requests flow.
//! * **Zero endpoints never hang.** `poll_ready` waits up to the readiness
//!   deadline (3 s by default), is woken the moment an endpoint appears, and
//!   otherwise fails with [`Error::NoEndpoints`] naming the reason.
//! * **Removed endpoints drain:** their in-flight requests finish; they take
//!   no new ones.
//! * **An inner service that fails readiness** makes its endpoint unavailable
//!   for a backoff; the request moves to another endpoint (it was not sent),
//!   and after the backoff the endpoint's service is made afresh.
//!
//! ```
//! use std::convert::Infallible;
//! use fulcrum_balance::{make_fn, Balancer};
//! use fulcrum_core::Endpoint;
//! use tower::{service_fn, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let endpoints = ["127.0.0.1:8080", "127.0.0.1:8081"].map(|a| Endpoint::new(a.parse().unwrap()));
//! // One inner service per endpoint; a real one would be an HTTP or gRPC client.
//! let make = make_fn(|ep: &Endpoint| {
//!     let addr = ep.addr();
//!     service_fn(move |req: String| async move { Ok::<_, Infallible>(format!("{addr} <- {req}")) })
//! });
//! let mut balancer = Balancer::builder()
//!     .target("my-service")
//!     .policy_name("round-robin")
//!     .unwrap()
//!     .endpoints(endpoints)
//!     .build(make);
//!
//! let a = balancer.ready().await.unwrap().call("one".into()).await.unwrap();
//! let b = balancer.ready().await.unwrap().call("two".into()).await.unwrap();
//! assert_ne!(a[..14], b[..14]); // round robin: two different endpoints
//! assert_eq!(balancer.stats().endpoints.len(), 2);
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arc_swap::cache::Cache;
use arc_swap::ArcSwap;
use fulcrum_core::NoEndpointsReason;
use tokio::sync::{oneshot, Notify};
use tower_service::Service;

use crate::key::KeyExtractor;
use crate::pick::{Loads, PickContext, Picker};
use crate::slot::Slot;
use crate::stats::{EndpointStats, Stats};

mod builder;
mod driver;
mod error;
mod future;
mod layer;
mod make;
mod wait;

pub use builder::{Backoff, Builder};
pub use error::Error;
pub use future::ResponseFuture;
pub use layer::BalanceLayer;
pub use make::{make_fn, MakeFn};

/// Whether a finished request counts as a success or a failure for the
/// endpoint's load metrics. A failure records the EWMA failure penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint did its job.
    Success,
    /// The endpoint failed (e.g. an error, a 5xx, `UNAVAILABLE`).
    Failure,
}

/// Decides the [`Outcome`] of a response. The default counts `Err` as a
/// failure; the HTTP and gRPC integrations also count 5xx / `UNAVAILABLE`.
pub type Classifier<Resp, E> = fn(&Result<Resp, E>) -> Outcome;

fn errors_are_failures<Resp, E>(result: &Result<Resp, E>) -> Outcome {
    if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

/// The immutable view every request reads: rebuilt by the driver on each
/// change and swapped atomically.
pub(crate) struct Snapshot<S> {
    /// Pickable endpoints; picker indices point here.
    pub(crate) ready: Box<[Arc<Slot>]>,
    /// How many of `ready` requests have taken out of service since this
    /// snapshot was published (the driver's next snapshot leaves them out).
    /// While `down == ready.len()` there is nothing to pick: `poll_ready`
    /// waits instead of letting `call` fail.
    pub(crate) down: std::sync::atomic::AtomicUsize,
    pub(crate) weights: Box<[u32]>,
    pub(crate) services: Box<[S]>,
    /// The generation of each service in `services` (see `Slot::install`).
    pub(crate) generations: Box<[u32]>,
    pub(crate) picker: Box<dyn Picker>,
    /// Total requests in flight, when the policy reads it.
    pub(crate) total: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Every endpoint in the current set, whatever its state (for stats).
    pub(crate) members: Box<[Arc<Slot>]>,
    /// Removed endpoints still finishing requests (for stats).
    pub(crate) draining: Box<[Arc<Slot>]>,
    /// Why `ready` is empty, when it is.
    pub(crate) empty_reason: NoEndpointsReason,
    /// Nothing to serve and nothing will come: fail without waiting.
    pub(crate) terminal: bool,
    pub(crate) discovery_error: Option<Arc<str>>,
    pub(crate) version: u64,
}

/// How many times a pick is retried when the chosen endpoint has just
/// become unavailable, before falling back to a scan.
const PICK_ATTEMPTS: u32 = 3;

impl<S> Snapshot<S> {
    /// Picks a ready, active endpoint. Returns its index and the clock
    /// reading the picker took, if any (reused as the dispatch time).
    #[inline]
    pub(crate) fn choose(
        &self,
        rng: &mut fastrand::Rng,
        key: Option<u64>,
    ) -> Option<(usize, Option<u64>)> {
        let n = self.ready.len();
        if n == 0 {
            return None;
        }
        let loads = Loads::new(&self.ready, &self.weights).with_total(self.total.as_deref());
        let mut cx = PickContext::new(loads, rng, key);
        for attempt in 0..PICK_ATTEMPTS {
            cx.set_attempt(attempt);
            if let Some(i) = self.picker.pick(&mut cx) {
                if i < n && self.ready[i].is_active() {
                    return Some((i, cx.clock_read()));
                }
            }
        }
        // The picker kept choosing endpoints that went down since this
        // snapshot was built (or offered nothing): take any active one.
        let now = cx.clock_read();
        let start = rng.usize(..n);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.ready[i].is_active())
            .map(|i| (i, now))
    }
}

/// What a pick hands a request: the endpoint, and a clone of its service.
pub(crate) struct Picked<S> {
    pub(crate) slot: Arc<Slot>,
    /// The generation of `service` (see `Slot::install`).
    pub(crate) generation: u32,
    pub(crate) service: S,
}

impl<S: Clone> Snapshot<S> {
    #[inline]
    pub(crate) fn take(&self, i: usize) -> Picked<S> {
        Picked {
            slot: self.ready[i].clone(),
            generation: self.generations[i],
            service: self.services[i].clone(),
        }
    }
}

pub(crate) type DriverFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// State shared by every clone of a balancer (and, weakly, by its driver and
/// its in-flight requests).
pub(crate) struct Shared<S> {
    pub(crate) snapshot: ArcSwap<Snapshot<S>>,
    pub(crate) target: Arc<str>,
    pub(crate) policy_name: String,
    pub(crate) ready_timeout: Duration,
    /// The policy reads latency: time every request.
    pub(crate) time_all: bool,
    /// Request path → driver: an endpoint failed readiness.
    pub(crate) notify_driver: Arc<Notify>,
    /// Balancers waiting in `poll_ready` for an endpoint. Touched only when
    /// there is none, never on the request path.
    waiters: Mutex<HashMap<u64, Waker>>,
    /// The driver, until it is spawned (builder outside a runtime).
    pending_driver: Mutex<Option<DriverFuture>>,
    driver_started: AtomicBool,
    next_id: AtomicU64,
    seed: u64,
    /// Dropped with the last balancer; the driver then stops.
    _stop: oneshot::Sender<()>,
}

impl<S> Shared<S> {
    fn start_driver(&self) {
        if self.driver_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut pending = self
            .pending_driver
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(driver) = pending.take() {
            handle.spawn(driver);
            self.driver_started.store(true, Ordering::Release);
        }
    }

    fn register_waiter(&self, id: u64, waker: &Waker) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        match waiters.get_mut(&id) {
            Some(w) => w.clone_from(waker),
            None => {
                waiters.insert(id, waker.clone());
            }
        }
    }

    fn unregister_waiter(&self, id: u64) {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, waker) in waiters {
            waker.wake();
        }
    }

    fn new_rng(&self) -> (u64, fastrand::Rng) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // splitmix64 of (seed, id): independent, reproducible streams per clone
        let mut z = self.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (id, fastrand::Rng::with_seed(z ^ (z >> 31)))
    }
}

/// A load balancer over endpoints, as a `tower::Service<Req>`.
///
/// Built by [`Balancer::builder`]; see the [module docs](self) for the
/// guarantees. `S` is the inner service made per endpoint.
pub struct Balancer<S, Req>
where
    S: Service<Req>,
{
    shared: Arc<Shared<S>>,
    /// This clone's view of the snapshot: checking it is current costs one
    /// relaxed atomic load, where a fresh `ArcSwap` load costs a fence.
    /// (An idle clone keeps the snapshot it last used until its next call.)
    snapshot: Cache<SnapshotRef<S>, Arc<Snapshot<S>>>,
    id: u64,
    rng: fastrand::Rng,
    waiting: Option<wait::Waiting>,
    classify: Classifier<S::Response, S::Error>,
    key: Option<Arc<dyn KeyExtractor<Req>>>,
    /// Time every request (the policy reads latency), or one in
    /// [`UNTIMED_STRIDE`] (counted by `tick`) for stats and health.
    time_all: bool,
    tick: u32,
    _req: PhantomData<fn(Req)>,
}

/// For policies that do not read latency, one request in this many is timed.
const UNTIMED_STRIDE: u32 = 16;

/// Lets an `arc_swap::Cache` reach the snapshot through the shared state.
struct SnapshotRef<S>(Arc<Shared<S>>);

impl<S> std::ops::Deref for SnapshotRef<S> {
    type Target = ArcSwap<Snapshot<S>>;
    fn deref(&self) -> &Self::Target {
        &self.0.snapshot
    }
}

/// Stands in for the inner service type where none is known yet, so that
/// `Balancer::builder()` needs no type annotations. Never constructed.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Unconfigured {}

impl Service<()> for Unconfigured {
    type Response = ();
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<(), std::convert::Infallible>>;
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match *self {}
    }
    fn call(&mut self, _req: ()) -> Self::Future {
        match *self {}
    }
}

impl Balancer<Unconfigured, ()> {
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
    pub fn from_target<Req, M>(
        target: &str,
        make: M,
    ) -> Result<Balancer<M::Response, Req>, fulcrum_discovery::TargetError>
    where
        M: Service<fulcrum_core::Endpoint> + Send + 'static,
        M::Future: Send + 'static,
        M::Error: Into<fulcrum_core::BoxError>,
        M::Response: Service<Req> + Clone + Send + Sync + 'static,
    {
        Ok(Builder::new().discover_target(target)?.build(make))
    }
}

impl<S, Req> Balancer<S, Req>
where
    S: Service<Req>,
{
    pub(crate) fn from_shared(shared: Arc<Shared<S>>) -> Self {
        let (id, rng) = shared.new_rng();
        let time_all = shared.time_all;
        Balancer {
            snapshot: Cache::new(SnapshotRef(shared.clone())),
            shared,
            id,
            rng,
            waiting: None,
            classify: errors_are_failures::<S::Response, S::Error>,
            key: None,
            time_all,
            tick: 0,
            _req: PhantomData,
        }
    }

    /// Replaces the response classifier (by default, `Err` is a failure).
    ///
    /// ```
    /// # use fulcrum_balance::{Balancer, Outcome};
    /// fn server_errors(r: &Result<u16, std::convert::Infallible>) -> Outcome {
    ///     match r {
    ///         Ok(status) if *status >= 500 => Outcome::Failure,
    ///         _ => Outcome::Success,
    ///     }
    /// }
    /// # fn wire(b: Balancer<tower::util::BoxService<(), u16, std::convert::Infallible>, ()>) {
    /// let b = b.with_classifier(server_errors);
    /// # }
    /// ```
    pub fn with_classifier(mut self, classify: Classifier<S::Response, S::Error>) -> Self {
        self.classify = classify;
        self
    }

    /// Sets how requests are keyed for the hash policies (`ring-hash`,
    /// `maglev`, `rendezvous`): equal keys go to the same endpoint. Without
    /// an extractor (or when it returns `None`) requests go to the hash
    /// policy's fallback picker.
    ///
    /// ```
    /// # use fulcrum_balance::{Balancer, key::hash_bytes};
    /// # fn wire(b: Balancer<tower::util::BoxService<String, u16, std::convert::Infallible>, String>) {
    /// let b = b.with_key_extractor(|req: &String| Some(hash_bytes(req.as_bytes())));
    /// # }
    /// ```
    pub fn with_key_extractor(mut self, key: impl KeyExtractor<Req>) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// A point-in-time view of every endpoint: state, load, counters.
    pub fn stats(&self) -> Stats {
        let snap = self.shared.snapshot.load();
        let now = fulcrum_core::time::now();
        Stats {
            target: self.shared.target.to_string(),
            policy: self.shared.policy_name.clone(),
            version: snap.version,
            ready: snap.ready.iter().filter(|s| s.is_active()).count(),
            discovery_error: snap.discovery_error.as_deref().map(str::to_owned),
            endpoints: snap
                .members
                .iter()
                .chain(snap.draining.iter())
                .map(|slot| EndpointStats::read(slot, now))
                .collect(),
        }
    }
}

impl<S, Req> Clone for Balancer<S, Req>
where
    S: Service<Req>,
{
    fn clone(&self) -> Self {
        let (id, rng) = self.shared.new_rng();
        Balancer {
            snapshot: Cache::new(SnapshotRef(self.shared.clone())),
            shared: self.shared.clone(),
            id,
            rng,
            waiting: None,
            classify: self.classify,
            key: self.key.clone(),
            time_all: self.time_all,
            tick: 0,
            _req: PhantomData,
        }
    }
}

impl<S, Req> Drop for Balancer<S, Req>
where
    S: Service<Req>,
{
    fn drop(&mut self) {
        wait::end_wait(&self.shared, self.id, &mut self.waiting);
    }
}

impl<S, Req> fmt::Debug for Balancer<S, Req>
where
    S: Service<Req>,
{
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

impl<S, Req> Service<Req> for Balancer<S, Req>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<fulcrum_core::BoxError>,
    Req: 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.start_driver();
        let Balancer {
            shared,
            snapshot,
            waiting,
            id,
            ..
        } = self;
        wait::poll_wait(shared, *id, waiting, cx, || snapshot.load().check())
            .map_err(Error::NoEndpoints)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = self.key.as_deref().and_then(|k| k.key(&req));
        let snap = self.snapshot.load();
        match snap.choose(&mut self.rng, key) {
            Some((i, now)) => {
                let start = match now {
                    Some(now) => now,
                    None if self.time_all => fulcrum_core::time::now(),
                    None => {
                        self.tick = self.tick.wrapping_add(1);
                        if self.tick.is_multiple_of(UNTIMED_STRIDE) {
                            fulcrum_core::time::now()
                        } else {
                            future::UNTIMED
                        }
                    }
                };
                ResponseFuture::dispatch(
                    snap.take(i),
                    req,
                    start,
                    self.classify,
                    self.rng.u64(..),
                    key,
                )
            }
            None => {
                // Nothing to pick: the set changed since `poll_ready` (or it
                // was not called). The request waits for an endpoint, as
                // `poll_ready` would have, instead of failing.
                let (id, _) = self.shared.new_rng();
                let wait = wait::CallWait {
                    shared: self.shared.clone(),
                    id,
                    waiting: None,
                };
                ResponseFuture::waiting(req, wait, self.classify, self.rng.u64(..), key)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[tokio::test]
    async fn waiters_that_give_up_or_drop_leave_no_trace() {
        let (_tx, rx) = crate::channel(fulcrum_core::EndpointSet::empty());
        let lb = Balancer::builder()
            .ready_timeout(Duration::from_millis(5))
            .updates(rx)
            .build::<(), _>(crate::make_fn(|_: &fulcrum_core::Endpoint| {
                tower::service_fn(|()| async { Ok::<_, Infallible>(()) })
            }));
        for _ in 0..50 {
            let mut clone = lb.clone();
            let result = std::future::poll_fn(|cx| clone.poll_ready(cx)).await;
            assert!(result.is_err());
        }
        for _ in 0..50 {
            let mut clone = lb.clone();
            // polled once (registers), then dropped while waiting
            let mut cx = Context::from_waker(Waker::noop());
            assert!(clone.poll_ready(&mut cx).is_pending());
        }
        let waiters = lb.shared.waiters.lock().unwrap().len();
        assert_eq!(waiters, 0);
    }
}
