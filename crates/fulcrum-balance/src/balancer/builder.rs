use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use fulcrum_core::load::EwmaConfig;
use fulcrum_core::{BoxError, Endpoint, EndpointSet, NoEndpointsReason};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::sync::{oneshot, Notify};
use tower_service::Service;

use super::driver::Driver;
use super::{Balancer, Shared, Snapshot};
use crate::pick::{self, Loads, Policy, UnknownPolicy};
use crate::updates::{BoxUpdates, Updates};

/// Exponential backoff with jitter for endpoints that failed readiness or
/// could not be made: `base × 2^(n-1)`, capped at `max`, each delay drawn
/// uniformly from its upper half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    pub(crate) fn delay(&self, failures: u32, rng: &mut fastrand::Rng) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << exp).min(self.max);
        let half = full / 2;
        half + half.mul_f64(rng.f64())
    }
}

#[derive(Clone)]
enum Source {
    None,
    Static(EndpointSet),
    Updates(Updates),
    /// A one-shot stream: the first balancer built takes it.
    Stream(Arc<Mutex<Option<BoxUpdates>>>),
    /// A fresh discovery stream for each balancer built.
    #[cfg(feature = "discovery")]
    Discovery(fulcrum_discovery::Discovery),
}

impl Source {
    /// The update stream, and how to ask the source for an early refresh
    /// (discovery re-resolves, rate-limited, when endpoints fail).
    fn into_updates(self) -> (BoxUpdates, Option<RefreshFn>) {
        let updates = match self {
            Source::None => futures_util::stream::empty().boxed(),
            Source::Static(set) => futures_util::stream::iter([Ok(set)]).boxed(),
            Source::Updates(updates) => updates.into_stream(),
            #[cfg(feature = "discovery")]
            Source::Discovery(discovery) => {
                let (stream, handle) = discovery.stream();
                let refresh: RefreshFn = Arc::new(move || handle.refresh());
                let stream = stream.map(|r| r.map_err(BoxError::from)).boxed();
                return (stream, Some(refresh));
            }
            Source::Stream(slot) => match slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(stream) => stream,
                None => futures_util::stream::iter([Err(BoxError::from(
                    "this discovery stream was already used by another balancer; \
                     use `Builder::updates` (clonable) to feed several balancers",
                ))])
                .boxed(),
            },
        };
        (updates, None)
    }
}

/// Asks the endpoint source to look again (e.g. a DNS re-resolve).
pub(crate) type RefreshFn = Arc<dyn Fn() + Send + Sync>;

/// Configures and builds a [`Balancer`] (or, through [`BalanceLayer`](super::BalanceLayer),
/// a layer).
///
/// ```
/// # use std::time::Duration;
/// use fulcrum_balance::{Balancer, pick::PendingP2c};
///
/// let builder = Balancer::builder()
///     .target("orders")
///     .policy(PendingP2c)
///     .ready_timeout(Duration::from_secs(1))
///     .seed(42);
/// # drop(builder);
/// ```
#[derive(Clone)]
pub struct Builder {
    target: String,
    policy: Arc<dyn Policy>,
    ready_timeout: Duration,
    ewma: EwmaConfig,
    backoff: Backoff,
    seed: Option<u64>,
    source: Source,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("target", &self.target)
            .field("policy", &self.policy.name())
            .field("ready_timeout", &self.ready_timeout)
            .field("ewma", &self.ewma)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Defaults: policy `ewma`, readiness deadline 3 s, EWMA 10 s / 30 ms, no endpoints.
    pub fn new() -> Self {
        Builder {
            target: "static".to_owned(),
            policy: Arc::new(pick::PeakEwmaP2c),
            ready_timeout: Duration::from_secs(3),
            ewma: EwmaConfig::default(),
            backoff: Backoff::default(),
            seed: None,
            source: Source::None,
        }
    }

    /// A name for the endpoints (a discovery target, a service name), used in
    /// errors and stats.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    /// The picking policy.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// A built-in policy by name (see [`pick::POLICY_NAMES`]).
    pub fn policy_name(mut self, name: &str) -> Result<Self, UnknownPolicy> {
        self.policy = pick::by_name(name)?;
        Ok(self)
    }

    /// A shared policy (e.g. from [`pick::by_name`]).
    pub fn policy_arc(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// How long `poll_ready` waits for an endpoint before failing with
    /// [`Error::NoEndpoints`](super::Error::NoEndpoints). Zero fails at once.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Peak-EWMA settings for every endpoint.
    pub fn ewma(mut self, ewma: EwmaConfig) -> Self {
        self.ewma = ewma;
        self
    }

    /// Backoff for endpoints that fail readiness or cannot be made.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Seeds the randomness of pickers and backoff jitter, for reproducible
    /// runs. By default a random seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A fixed set of endpoints.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.source = Source::Static(endpoints.into_iter().collect());
        self
    }

    /// Endpoint sets from an [`Updater`](crate::Updater) channel. Clonable:
    /// several balancers (or a layer applied many times) can share it.
    pub fn updates(mut self, updates: Updates) -> Self {
        self.source = Source::Updates(updates);
        self
    }

    /// Endpoint sets from any stream (e.g. a discovery crate's). Errors are
    /// reported in stats while the last good set is kept. When the stream
    /// ends, the last set stays. One stream feeds one balancer.
    pub fn discover<D, E>(mut self, stream: D) -> Self
    where
        D: Stream<Item = Result<EndpointSet, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let stream: BoxUpdates = stream.map(|r| r.map_err(Into::into)).boxed();
        self.source = Source::Stream(Arc::new(Mutex::new(Some(stream))));
        self
    }

    /// Endpoints from a target string: a static list, `dns:///host:port`
    /// (A/AAAA) or `dns+srv:///_service._proto.domain` (SRV), re-resolved by
    /// TTL (see `fulcrum_discovery`). Also names the balancer after it.
    ///
    /// ```
    /// let builder = fulcrum_balance::Balancer::builder()
    ///     .discover_target("dns+srv://127.0.0.1:5353/_http._tcp.api.internal")
    ///     .unwrap();
    /// let err = fulcrum_balance::Balancer::builder().discover_target("dns:///api").unwrap_err();
    /// assert!(err.to_string().contains("needs a port"));
    /// # drop(builder);
    /// ```
    #[cfg(feature = "discovery")]
    pub fn discover_target(self, target: &str) -> Result<Self, fulcrum_discovery::TargetError> {
        Ok(self.discovery(fulcrum_discovery::Discovery::new(target)?))
    }

    /// Endpoints from a configured [`Discovery`](fulcrum_discovery::Discovery).
    /// Each balancer built gets its own discovery stream.
    #[cfg(feature = "discovery")]
    pub fn discovery(mut self, discovery: fulcrum_discovery::Discovery) -> Self {
        self.target = discovery.target().to_string();
        self.source = Source::Discovery(discovery);
        self
    }

    /// Builds the balancer. `make` makes the inner service of each endpoint:
    /// a closure through [`make_fn`](super::make_fn), or any
    /// `tower::Service<Endpoint>` (a `MakeService`).
    ///
    /// The driver is spawned on the current tokio runtime (which needs its
    /// time driver, as `#[tokio::main]` provides). Built outside a runtime,
    /// the driver starts on the balancer's first `poll_ready`.
    pub fn build<Req, M>(&self, make: M) -> Balancer<M::Response, Req>
    where
        M: Service<Endpoint> + Send + 'static,
        M::Future: Send + 'static,
        M::Error: Into<BoxError>,
        M::Response: Service<Req> + Clone + Send + Sync + 'static,
    {
        let (stop_tx, stop_rx) = oneshot::channel();
        let notify = Arc::new(Notify::new());
        let empty: Snapshot<M::Response> = Snapshot {
            ready: Box::new([]),
            down: Default::default(),
            weights: Box::new([]),
            services: Box::new([]),
            generations: Box::new([]),
            picker: self.policy.build(&Loads::new(&[], &[])),
            total: None,
            members: Box::new([]),
            draining: Box::new([]),
            empty_reason: NoEndpointsReason::NeverHadAny,
            terminal: false,
            discovery_error: None,
            version: 0,
        };
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(empty),
            target: self.target.as_str().into(),
            policy_name: self.policy.name().to_owned(),
            ready_timeout: self.ready_timeout,
            time_all: self.policy.uses_latency(),
            notify_driver: notify.clone(),
            waiters: Mutex::new(Default::default()),
            pending_driver: Mutex::new(None),
            driver_started: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            seed,
            _stop: stop_tx,
        });
        let (updates, refresh) = self.source.clone().into_updates();
        let driver = Driver::new(
            Arc::downgrade(&shared),
            notify,
            stop_rx,
            make,
            updates,
            refresh,
            self.policy.clone(),
            self.ewma.clone(),
            self.backoff,
            seed,
        );
        *shared
            .pending_driver
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::pin(driver.run()));
        shared.start_driver();
        Balancer::from_shared(shared)
    }
}
