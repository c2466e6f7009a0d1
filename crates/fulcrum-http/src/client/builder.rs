use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fulcrum_balance::classify::ClassifyHttp;
use fulcrum_balance::health::{ConfigError, HealthChecks, OutlierDetection};
use fulcrum_balance::key::{KeyExtractor, NoKey};
use fulcrum_balance::pick::{Policy, UnknownPolicy};
use fulcrum_balance::retry::{Hedging, RetryBudget, RetryConfigError, RetryLayer};
use fulcrum_balance::subset::{Routed, Subsets};
use fulcrum_balance::Balancer;
use fulcrum_core::{BoxError, Endpoint};
use fulcrum_discovery::TargetError;
use http::Request;
use tower_layer::Layer;

use super::retry::Idempotent;
use super::Client;
use crate::connection::{ConnectionConfig, Connector, Protocol};

/// The balancer's builder as the client configures it.
pub type BalanceBuilder<K> = fulcrum_balance::Builder<K, ClassifyHttp>;

/// Configures a [`Client`]: where its endpoints come from, the policy,
/// connections, health and retries. Every setting has a default;
/// [`target`](Self::target) (or [`endpoints`](Self::endpoints)) is the one
/// a client needs.
///
/// ```no_run
/// use std::time::Duration;
/// use fulcrum_balance::health::HealthChecks;
/// use fulcrum_http::{Client, HttpProbe, Protocol};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client: Client = Client::builder()
///     .target("dns:///orders.internal:8080").unwrap()
///     .policy("least-conn").unwrap()
///     .protocol(Protocol::Http2)
///     .request_timeout(Duration::from_secs(2))
///     .health_checks(HealthChecks::new(HttpProbe::get("/health"))).unwrap()
///     .retries(3).unwrap()
///     .build();
/// # drop(client);
/// # }
/// ```
pub struct Builder<K = NoKey> {
    balance: BalanceBuilder<K>,
    connection: ConnectionConfig,
    max_attempts: u32,
    per_try_timeout: Option<Duration>,
    hedging: Option<Hedging>,
    budget: Option<Arc<RetryBudget>>,
}

impl<K> fmt::Debug for Builder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("balance", &self.balance)
            .field("connection", &self.connection)
            .field("max_attempts", &self.max_attempts)
            .field("per_try_timeout", &self.per_try_timeout)
            .field("hedging", &self.hedging)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// The defaults: the `ewma` policy, HTTP/1.1, a 1 s connect timeout,
    /// no request timeout, no retries.
    pub fn new() -> Self {
        Builder {
            balance: Balancer::builder().classify(ClassifyHttp),
            connection: ConnectionConfig::default(),
            max_attempts: 1,
            per_try_timeout: None,
            hedging: None,
            budget: None,
        }
    }
}

impl<K> Builder<K> {
    /// Endpoints from a target: `dns:///orders.internal:8080`,
    /// `dns+srv:///_http._tcp.orders.internal`, `10.0.0.1:80,10.0.0.2:80`
    /// (see `fulcrum_discovery::Target` for every form). Requests carry the
    /// name resolved (`orders.internal:8080`) as their `Host`.
    pub fn target(mut self, target: &str) -> Result<Self, TargetError> {
        self.balance = self.balance.discover_target(target)?;
        Ok(self)
    }

    /// A fixed set of endpoints.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.balance = self.balance.endpoints(endpoints);
        self
    }

    /// The policy by name (`ewma`, the default, `p2c`, `least-conn`,
    /// `round-robin`, `weighted-round-robin`, `random`, `weighted-random`,
    /// `ring-hash`, `maglev`, `rendezvous`, `sticky`).
    pub fn policy(mut self, name: &str) -> Result<Self, UnknownPolicy> {
        self.balance = self.balance.policy_name(name)?;
        Ok(self)
    }

    /// A policy value: a configured one, or your own.
    pub fn policy_value(mut self, policy: impl Policy) -> Self {
        self.balance = self.balance.policy(policy);
        self
    }

    /// The affinity key the hash policies read (see [`crate::key`]).
    pub fn key<K2>(self, key: K2) -> Builder<K2> {
        Builder {
            balance: self.balance.key(key),
            connection: self.connection,
            max_attempts: self.max_attempts,
            per_try_timeout: self.per_try_timeout,
            hedging: self.hedging,
            budget: self.budget,
        }
    }

    /// Routes requests to subsets of the endpoints chosen by label: reads
    /// to replicas, writes to the primary, each subset with a fallback
    /// (see `fulcrum_balance::subset`). `B` is the request body type the
    /// client will be built for.
    ///
    /// ```no_run
    /// use bytes::Bytes;
    /// use fulcrum_balance::subset::{Fallback, Selector, Subset, Subsets};
    /// use fulcrum_http::Client;
    /// use http::{Method, Request};
    /// use http_body_util::Full;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// type Req = Request<Full<Bytes>>;
    /// let client = Client::builder()
    ///     .target("10.0.0.1:80;role=primary,10.0.0.2:80;role=replica")?
    ///     .subsets(
    ///         Subsets::new()
    ///             .subset(Subset::new("primary", Selector::label("role", "primary")))
    ///             .subset(
    ///                 Subset::new("replicas", Selector::label("role", "replica"))
    ///                     .fallback(Fallback::subset("primary")),
    ///             )
    ///             .route("replicas", |r: &Req| r.method() == Method::GET)
    ///             .route("primary", |r: &Req| r.method() != Method::GET),
    ///     )?
    ///     .build::<Full<Bytes>>();
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn subsets<B>(
        self,
        subsets: Subsets<Request<B>>,
    ) -> Result<Builder<Routed<K, Request<B>>>, ConfigError> {
        Ok(Builder {
            balance: self.balance.subsets(subsets)?,
            connection: self.connection,
            max_attempts: self.max_attempts,
            per_try_timeout: self.per_try_timeout,
            hedging: self.hedging,
            budget: self.budget,
        })
    }

    /// Every connection setting at once.
    pub fn connection(mut self, config: ConnectionConfig) -> Self {
        self.connection = config;
        self
    }

    /// HTTP/1.1 (the default) or HTTP/2.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.connection = self.connection.protocol(protocol);
        self
    }

    /// See [`ConnectionConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.connect_timeout(timeout);
        self
    }

    /// See [`ConnectionConfig::request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.request_timeout(timeout);
        self
    }

    /// See [`ConnectionConfig::authority`].
    pub fn authority(mut self, authority: &str) -> Result<Self, http::uri::InvalidUri> {
        self.connection = self.connection.authority(authority)?;
        Ok(self)
    }

    /// HTTPS: see [`ConnectionConfig::tls`] (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<crate::tls::rustls::ClientConfig>) -> Self {
        self.connection = self.connection.tls(config);
        self
    }

    /// Active health checks, for example
    /// `HealthChecks::new(HttpProbe::get("/health"))`.
    pub fn health_checks(mut self, checks: HealthChecks) -> Result<Self, ConfigError> {
        self.balance = self.balance.health_checks(checks)?;
        Ok(self)
    }

    /// Passive outlier detection (see `OutlierDetection`).
    pub fn outlier_detection(mut self, outliers: OutlierDetection) -> Result<Self, ConfigError> {
        self.balance = self.balance.outlier_detection(outliers)?;
        Ok(self)
    }

    /// Any other balancer setting (slow start, panic threshold, backoff,
    /// readiness deadline, …).
    pub fn configure(mut self, f: impl FnOnce(BalanceBuilder<K>) -> BalanceBuilder<K>) -> Self {
        self.balance = f(self.balance);
        self
    }

    /// Attempts per idempotent request, the first included (1, the
    /// default, to 8), each on an endpoint not yet tried, within the retry
    /// budget. Requests whose connection could not be made move to another
    /// endpoint without this.
    pub fn retries(mut self, max_attempts: u32) -> Result<Self, RetryConfigError> {
        RetryLayer::new(()).max_attempts(max_attempts)?;
        self.max_attempts = max_attempts;
        Ok(self)
    }

    /// How long one attempt may wait for its response before it is
    /// retried elsewhere (with [`retries`](Self::retries)).
    pub fn per_try_timeout(mut self, timeout: Duration) -> Result<Self, RetryConfigError> {
        RetryLayer::new(()).per_try_timeout(timeout)?;
        self.per_try_timeout = Some(timeout);
        Ok(self)
    }

    /// Hedges slow idempotent requests on a second endpoint.
    pub fn hedging(mut self, hedging: Hedging) -> Self {
        self.hedging = Some(hedging);
        self
    }

    /// The budget retries and hedges spend (20 % of requests plus 10 a
    /// second by default).
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(Arc::new(budget));
        self
    }

    /// Builds the client; its balancer's driver starts on the current tokio
    /// runtime (call it inside one). `B` is the request body type, `Full<Bytes>`
    /// by default.
    pub fn build<B>(&self) -> Client<B, K>
    where
        B: http_body::Body + Clone + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
        K: KeyExtractor<Request<B>>,
    {
        let balancer = self
            .balance
            .build(Connector::<B>::new(self.connection.clone()));
        let retrying = self.max_attempts > 1 || self.hedging.is_some();
        let mut layer = RetryLayer::new(Idempotent { enabled: retrying })
            .max_attempts(self.max_attempts)
            .expect("checked by `retries`");
        if let Some(timeout) = self.per_try_timeout {
            layer = layer
                .per_try_timeout(timeout)
                .expect("checked by `per_try_timeout`");
        }
        if let Some(hedging) = self.hedging {
            layer = layer.hedging(hedging);
        }
        if let Some(budget) = &self.budget {
            layer = layer.shared_budget(budget.clone());
        }
        Client::new(layer.layer(balancer))
    }
}
