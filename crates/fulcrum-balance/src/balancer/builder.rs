use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fulcrum_core::load::EwmaConfig;
use fulcrum_core::{BoxError, Endpoint, EndpointSet};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tower_service::Service;

use super::config::{Backoff, RefreshFn, Settings};
use super::driver::Driver;
use super::shared::Shared;
use super::Balancer;
use crate::classify::{CancelledAs, DefaultClassify};
use crate::control::Control;
use crate::health::{ConfigError, HealthChecks, OutlierDetection, SlowStart};
use crate::key::NoKey;
use crate::pick::{self, Policy, UnknownPolicy};
use crate::subset::{Routed, Subsets};
use crate::updates::{BoxUpdates, Updates};

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

/// Timeouts are capped at a year: "no limit" (`Duration::MAX`) is a year.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 86_400);

/// Configures and builds a [`Balancer`] (or, through
/// [`BalanceLayer`](super::BalanceLayer), a layer).
///
/// `K` is the key extractor ([`key`](Builder::key)) and `C` the classifier
/// ([`classify`](Builder::classify)); both are carried by every balancer
/// built.
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
pub struct Builder<K = NoKey, C = DefaultClassify> {
    settings: Settings,
    source: Source,
    key: Arc<K>,
    classify: C,
}

impl<K, C: Clone> Clone for Builder<K, C> {
    fn clone(&self) -> Self {
        Builder {
            settings: self.settings.clone(),
            source: self.source.clone(),
            key: self.key.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<K, C> fmt::Debug for Builder<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("Builder")
            .field("target", &s.target)
            .field("policy", &s.policy.name())
            .field("ready_timeout", &s.ready_timeout)
            .field("make_timeout", &s.make_timeout)
            .field("ewma", &s.ewma)
            .field("backoff", &s.backoff)
            .field("cancelled", &s.cancelled)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Defaults: policy `ewma`, readiness deadline 3 s, make timeout 10 s,
    /// [`EwmaConfig::default`] (latency decay 1 s, failure memory 10 s), no
    /// key extractor, [`DefaultClassify`], no endpoints.
    pub fn new() -> Self {
        Builder {
            settings: Settings::default(),
            source: Source::None,
            key: Arc::new(NoKey),
            classify: DefaultClassify,
        }
    }
}

impl<K, C> Builder<K, C> {
    /// A name for the endpoints (a discovery target, a service name), used in
    /// errors and stats.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.settings.target = target.into();
        self
    }

    /// The picking policy.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.settings.policy = Arc::new(policy);
        self
    }

    /// A built-in policy by name (see [`pick::policy_names`]).
    pub fn policy_name(mut self, name: &str) -> Result<Self, UnknownPolicy> {
        self.settings.policy = pick::by_name(name)?;
        Ok(self)
    }

    /// A shared policy (e.g. from [`pick::by_name`]).
    pub fn policy_arc(mut self, policy: Arc<dyn Policy>) -> Self {
        self.settings.policy = policy;
        self
    }

    /// How requests are keyed for the hash policies (`ring-hash`, `maglev`,
    /// `rendezvous`) and [`Sticky`](crate::pick::Sticky): equal keys go to
    /// the same endpoint. Without one (or when it returns `None`) requests
    /// go to the hash policy's fallback picker. A closure
    /// `Fn(&Req) -> Option<u64>` is an extractor; see [`key`](crate::key).
    ///
    /// ```
    /// # use fulcrum_balance::{Balancer, key::hash_bytes};
    /// let builder = Balancer::builder()
    ///     .policy_name("maglev").unwrap()
    ///     .key(|req: &String| Some(hash_bytes(req.as_bytes())));
    /// # drop(builder);
    /// ```
    pub fn key<K2>(self, key: K2) -> Builder<K2, C> {
        Builder {
            settings: self.settings,
            source: self.source,
            key: Arc::new(key),
            classify: self.classify,
        }
    }

    /// Routes requests to subsets of the endpoints by their labels (reads
    /// to replicas, writes to the primary), each with a fallback rule; see
    /// [`subset`](crate::subset). Keys still come from the extractor set
    /// with [`key`](Self::key), which must therefore be set first. Names
    /// that do not resolve, fallbacks that loop and floors outside 0–100
    /// are an error here.
    ///
    /// ```
    /// use fulcrum_balance::subset::{Fallback, Selector, Subset, Subsets};
    /// use fulcrum_balance::Balancer;
    ///
    /// let err = Balancer::builder()
    ///     .subsets(
    ///         Subsets::new()
    ///             .subset(Subset::new("replicas", Selector::label("role", "replica"))
    ///                 .fallback(Fallback::subset("primary")))
    ///             .route("replicas", |read: &bool| *read),
    ///     )
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("`primary`, which is not a subset"), "{err}");
    /// ```
    pub fn subsets<Req>(
        mut self,
        subsets: Subsets<Req>,
    ) -> Result<Builder<Routed<K, Req>, C>, ConfigError> {
        let (rules, routes) = subsets.validate()?;
        self.settings.subsets = rules.into();
        Ok(Builder {
            settings: self.settings,
            source: self.source,
            key: Arc::new(Routed {
                key: self.key,
                routes: routes.into(),
            }),
            classify: self.classify,
        })
    }

    /// How responses are classified, and when a request is finished (see
    /// [`classify`](crate::classify)). By default [`DefaultClassify`]: `Ok`
    /// is a success, `Err` a failure.
    pub fn classify<C2>(self, classify: C2) -> Builder<K, C2> {
        Builder {
            settings: self.settings,
            source: self.source,
            key: self.key,
            classify,
        }
    }

    /// How long a request may wait for an endpoint before it is sent: for
    /// one to be pickable (`poll_ready`, or a `call` that found none), then
    /// for its service to be ready (an endpoint gets a third of it before
    /// the request moves on). Past it, requests fail with
    /// [`Error::NoEndpoints`](super::Error::NoEndpoints) or
    /// [`Error::NotReady`](super::Error::NotReady), and, when nothing was
    /// pickable, the balancer fails new requests at once until an endpoint
    /// is back. Zero fails at once. 3 s by default.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.settings.ready_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// How long making one endpoint's service may take (10 s by default);
    /// past it the make counts as failed and is retried after the backoff.
    pub fn make_timeout(mut self, timeout: Duration) -> Self {
        self.settings.make_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// How many requests may wait for an endpoint at once (10 000 by
    /// default); more fail at once.
    pub fn max_waiters(mut self, max: usize) -> Self {
        self.settings.max_waiters = max;
        self
    }

    /// What a cancelled request counts as ([`CancelledAs::Slow`] by default).
    pub fn cancelled(mut self, cancelled: CancelledAs) -> Self {
        self.settings.cancelled = cancelled;
        self
    }

    /// Peak-EWMA settings for every endpoint.
    pub fn ewma(mut self, ewma: EwmaConfig) -> Self {
        self.settings.ewma = ewma;
        self
    }

    /// Backoff for endpoints that fail readiness, refuse connections or
    /// cannot be made.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Passive outlier detection ([`OutlierDetection::default`]: on, with
    /// Envoy's and gRPC's defaults); [`OutlierDetection::disabled`] turns
    /// it off. Settings that cannot work are an error here.
    ///
    /// ```
    /// use fulcrum_balance::{health::OutlierDetection, Balancer};
    /// use std::time::Duration;
    ///
    /// let err = Balancer::builder()
    ///     .outlier_detection(OutlierDetection::default().interval(Duration::ZERO))
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid outlier detection interval: is zero; give it a positive duration");
    /// ```
    pub fn outlier_detection(mut self, outliers: OutlierDetection) -> Result<Self, ConfigError> {
        outliers.validate()?;
        if let Some(slow_start) = &self.settings.slow_start {
            window_within_ejection(slow_start, &outliers)?;
        }
        self.settings.outliers = outliers;
        Ok(self)
    }

    /// The panic threshold, in percent (50 by default): when fewer than
    /// this share of a tier's endpoints are healthy (not ejected, service
    /// made), every endpoint of the tier with a service serves, ejected or
    /// not. 0 turns panic mode off.
    pub fn panic_threshold(mut self, percent: f64) -> Result<Self, ConfigError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(ConfigError::percent("panic threshold", percent));
        }
        self.settings.panic_threshold = percent;
        Ok(self)
    }

    /// Active health checks: the driver probes every endpoint on an
    /// interval and holds out those whose probe fails ([`HealthChecks`];
    /// off by default). Settings that cannot work are an error here.
    ///
    /// ```
    /// use fulcrum_balance::{health::HealthChecks, Balancer};
    ///
    /// let err = Balancer::builder()
    ///     .health_checks(HealthChecks::tcp_connect().rise(0))
    ///     .unwrap_err();
    /// assert_eq!(err.setting(), "probe rise");
    /// ```
    pub fn health_checks(mut self, checks: HealthChecks) -> Result<Self, ConfigError> {
        checks.validate()?;
        self.settings.checks = Some(checks);
        Ok(self)
    }

    /// Slow start ([`SlowStart`]; off by default): endpoints that start
    /// serving (added, or back in service) ramp up their share over a
    /// window, under every policy. A window longer than the longest
    /// outlier ejection is an error: an endpoint ejected again while it
    /// ramps would never reach its share.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fulcrum_balance::{health::SlowStart, Balancer};
    ///
    /// let err = Balancer::builder()
    ///     .slow_start(SlowStart::new(Duration::from_secs(600)))
    ///     .unwrap_err();
    /// assert_eq!(err.setting(), "slow start window");
    /// ```
    pub fn slow_start(mut self, slow_start: SlowStart) -> Result<Self, ConfigError> {
        slow_start.validate()?;
        window_within_ejection(&slow_start, &self.settings.outliers)?;
        self.settings.slow_start = Some(slow_start);
        Ok(self)
    }

    /// Seeds the randomness of pickers and backoff jitter, for reproducible
    /// runs. By default a random seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = Some(seed);
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
        self.settings.target = discovery.target().to_string();
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
    pub fn build<M>(&self, make: M) -> Balancer<M::Response, K, C>
    where
        M: Service<Endpoint> + Send + 'static,
        M::Future: Send + 'static,
        M::Error: Into<BoxError>,
        M::Response: Clone + Send + Sync + 'static,
        C: Clone,
    {
        let s = &self.settings;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (commands_tx, commands_rx) = tokio::sync::mpsc::unbounded_channel();
        let control = Arc::new(Control::new(s.cancelled, s.ready_timeout).outliers(&s.outliers));
        let seed = s.seed.unwrap_or_else(|| fastrand::u64(..));
        let shared = Arc::new(Shared::new(
            control.clone(),
            &s.target,
            s.policy.name(),
            s.ready_timeout,
            s.max_waiters,
            s.policy.uses_latency(),
            seed,
            stop_tx,
            commands_tx,
        ));
        let (updates, refresh) = self.source.clone().into_updates();
        let driver = Driver::new(
            Arc::downgrade(&shared),
            control,
            stop_rx,
            make,
            updates,
            refresh,
            commands_rx,
            s,
            seed,
        );
        *shared
            .pending_driver
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::pin(driver.run()));
        shared.start_driver();
        Balancer::from_shared(shared, self.key.clone(), self.classify.clone())
    }
}

/// A slow-start window must fit within the longest ejection.
fn window_within_ejection(
    slow_start: &SlowStart,
    outliers: &OutlierDetection,
) -> Result<(), ConfigError> {
    if outliers.enabled && slow_start.window > outliers.max_ejection {
        return Err(ConfigError::invalid(
            "slow start window",
            format!(
                "{:?} is longer than the longest outlier ejection ({:?}); shorten the window \
                 or raise OutlierDetection::max_ejection",
                slow_start.window, outliers.max_ejection
            ),
        ));
    }
    Ok(())
}
