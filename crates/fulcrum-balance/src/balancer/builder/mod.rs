//! The [`Builder`]: a balancer's settings, checked as they are given, and
//! the build that starts its driver. Where endpoints come from is in
//! `source`, health settings in `health`.

mod health;
mod locality;
mod source;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fulcrum_core::load::EwmaConfig;
use fulcrum_core::{BoxError, Endpoint};
use tokio::sync::oneshot;
use tower_service::Service;

use super::config::{Backoff, Settings};
use super::driver::Driver;
use super::shared::Shared;
use super::Balancer;
use crate::classify::{CancelledAs, DefaultClassify};
use crate::control::Control;
use crate::health::ConfigError;
use crate::key::NoKey;
use crate::pick::{self, Policy, UnknownPolicy};
use crate::subset::{Routed, Subsets};
use source::Source;

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

    /// Records this balancer's and its endpoints' counters and gauges
    /// through the `metrics` facade every `interval` (10 s is typical;
    /// at least 100 ms), under the label `balancer` = the
    /// [`target`](Self::target) name (feature `metrics`; see
    /// [`metrics`](crate::metrics) for the names). The request path is
    /// untouched: the driver reads the counters requests already update.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fulcrum_balance::Balancer;
    ///
    /// let builder = Balancer::builder()
    ///     .target("orders")
    ///     .export_metrics(Duration::from_secs(10));
    /// # drop(builder);
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(mut self, interval: Duration) -> Self {
        self.settings.metrics_every = Some(interval);
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
    pub fn key<K2>(mut self, key: K2) -> Builder<K2, C> {
        if !self.settings.subsets.is_empty() {
            // The routes live in the extractor this one replaces: keeping
            // the subsets would show them in stats while no request is
            // routed.
            tracing::warn!(
                "Builder::key called after Builder::subsets: the subsets are dropped; \
                 call key first, then subsets"
            );
            self.settings.subsets = Arc::new([]);
        }
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
    /// with [`key`](Self::key), which must therefore be set first: a later
    /// `key` replaces the routes too, and drops the subsets (with a
    /// warning logged). Names
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
    /// [`ErrorKind::NoEndpoints`](super::ErrorKind::NoEndpoints) or
    /// [`ErrorKind::NotReady`](super::ErrorKind::NotReady), and, when nothing was
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

    /// Seeds the randomness of pickers and backoff jitter, for reproducible
    /// runs. By default a random seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = Some(seed);
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
            // Nearest-region routing measures every region's latency,
            // whatever the policy.
            s.policy.uses_latency() || s.nearest_region.is_some(),
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
        let run = driver.run();
        #[cfg(feature = "metrics")]
        let run = {
            let (every, shared) = (s.metrics_every, Arc::downgrade(&shared));
            async move {
                match every {
                    // Ends with the driver.
                    Some(every) => {
                        let export = std::pin::pin!(crate::metrics::export(shared, every));
                        let run = std::pin::pin!(run);
                        futures_util::future::select(run, export).await;
                    }
                    None => run.await,
                }
            }
        };
        *shared
            .pending_driver
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::pin(run));
        shared.start_driver();
        Balancer::from_shared(shared, self.key.clone(), self.classify.clone())
    }
}
