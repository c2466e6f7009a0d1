use std::fmt;
use std::time::Duration;

use fulcrum_balance::classify::ClassifyHttp;
use fulcrum_balance::health::{ConfigError, HealthChecks, OutlierDetection};
use fulcrum_balance::key::{KeyExtractor, NoKey};
use fulcrum_balance::pick::{Policy, UnknownPolicy};
use fulcrum_balance::Balancer;
use fulcrum_core::Endpoint;
use fulcrum_discovery::TargetError;
use fulcrum_http::{ConnectionConfig, Connector, Protocol};
use http::Request;

use super::{Channel, RequestBody};

/// The balancer's builder as the channel configures it.
pub type BalanceBuilder<K> = fulcrum_balance::Builder<K, ClassifyHttp>;

/// Configures a [`Channel`]: where its endpoints come from, the policy,
/// connections and health. Every setting has a default;
/// [`target`](Self::target) (or [`endpoints`](Self::endpoints)) is the one
/// a channel needs.
///
/// ```no_run
/// use fulcrum_balance::health::HealthChecks;
/// use fulcrum_grpc::{Channel, GrpcHealthProbe};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let channel = Channel::builder()
///     .target("dns:///greeter.internal:50051").unwrap()
///     .policy("least-conn").unwrap()
///     .health_checks(HealthChecks::new(GrpcHealthProbe::new())).unwrap()
///     .build();
/// # drop(channel);
/// # }
/// ```
pub struct Builder<K = NoKey> {
    balance: BalanceBuilder<K>,
    connection: ConnectionConfig,
}

impl<K> fmt::Debug for Builder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("balance", &self.balance)
            .field("connection", &self.connection)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// The defaults: the `ewma` policy, one HTTP/2 connection per
    /// endpoint, a 1 s connect timeout, no timeout on calls.
    pub fn new() -> Self {
        Builder {
            balance: Balancer::builder().classify(ClassifyHttp),
            connection: ConnectionConfig::default().protocol(Protocol::Http2),
        }
    }
}

impl<K> Builder<K> {
    /// Endpoints from a target: `dns:///greeter.internal:50051`,
    /// `dns+srv:///_grpc._tcp.greeter.internal`, `10.0.0.1:50051,10.0.0.2:50051`.
    /// Calls carry the name resolved (`greeter.internal:50051`) as their
    /// `:authority`.
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

    /// The affinity key the hash policies read, for example
    /// [`Metadata`](crate::key::Metadata).
    pub fn key<K2>(self, key: K2) -> Builder<K2> {
        Builder {
            balance: self.balance.key(key),
            connection: self.connection,
        }
    }

    /// How long opening a connection may take before the endpoint counts
    /// as unavailable and the call moves to another (1 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.connect_timeout(timeout);
        self
    }

    /// How long a call may wait for its response headers; past it the
    /// call fails with `DEADLINE_EXCEEDED`. None by default (streams and
    /// long polls wait as long as they need; set per-call deadlines with
    /// `tonic::Request::set_timeout` for the server to enforce).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.request_timeout(timeout);
        self
    }

    /// The `:authority` of every call, instead of the name the endpoints
    /// were discovered by.
    pub fn authority(mut self, authority: &str) -> Result<Self, http::uri::InvalidUri> {
        self.connection = self.connection.authority(authority)?;
        Ok(self)
    }

    /// gRPC over TLS: the certificate is verified for the logical host,
    /// which is also the SNI; ALPN offers `h2` (feature `tls`; see
    /// `fulcrum_http::ConnectionConfig::tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<fulcrum_http::tls::rustls::ClientConfig>) -> Self {
        self.connection = self.connection.tls(config);
        self
    }

    /// Active health checks, for example
    /// `HealthChecks::new(GrpcHealthProbe::new())`.
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

    /// Builds the channel; its balancer's driver starts on the current
    /// tokio runtime (call it inside one).
    pub fn build(&self) -> Channel<K>
    where
        K: KeyExtractor<Request<RequestBody>>,
    {
        let connector = Connector::<RequestBody>::new(self.connection.clone());
        Channel::new(self.balance.build(connector))
    }
}
