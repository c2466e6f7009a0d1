//! [`GrpcHealthProbe`]: an active health check through the standard
//! `grpc.health.v1.Health` service.

mod watch;

use std::sync::Arc;
use std::time::Duration;

use fulcrum_balance::health::{Probe, ProbeFuture};
use fulcrum_core::{BoxError, Endpoint};
use fulcrum_http::connection::EndpointService;
use fulcrum_http::{ConnectionConfig, Connector, Protocol};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_service::Service;

use crate::channel::RequestBody;
use watch::Watches;

/// Healthy while the endpoint's `grpc.health.v1.Health` service says
/// `SERVING` for the service name (`""`, the whole server, by default).
///
/// * **Watch where the server supports it, else Check.** The first check
///   of an endpoint opens a `Watch` stream and keeps it; each later check
///   reads the last status the server pushed, without a round trip or a
///   new connection. A server that answers `Watch` with `UNIMPLEMENTED` is
///   asked with `Check`, each time on a fresh connection (and offered
///   `Watch` again every ten minutes). A watch that broke (the server went
///   away), or that sent no first status within the timeout, is opened
///   again by the next check, which fails if that fails. Watches of
///   endpoints no longer checked (for a minute, or three intervals) close.
/// * `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`, an error status, a
///   refused connection or no answer within the timeout (2 s; the
///   balancer also bounds each check by
///   [`HealthChecks::timeout`](fulcrum_balance::health::HealthChecks::timeout),
///   1 s by default) are all unhealthy; the balancer's rise / fall
///   thresholds decide when that takes the endpoint out.
/// * The check carries the endpoint's logical `:authority`, as calls do.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::health::HealthChecks;
/// use fulcrum_grpc::GrpcHealthProbe;
///
/// let probe = GrpcHealthProbe::new().service("greeter.Greeter");
/// let checks = HealthChecks::new(probe).interval(Duration::from_secs(2));
/// # drop(checks);
/// ```
#[derive(Clone, Debug)]
pub struct GrpcHealthProbe {
    service: String,
    watch: bool,
    timeout: Duration,
    connection: ConnectionConfig,
    watches: Arc<Watches>,
}

impl Default for GrpcHealthProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcHealthProbe {
    /// Checks the server as a whole (service name `""`), with `Watch`
    /// where supported.
    pub fn new() -> Self {
        let timeout = Duration::from_secs(2);
        GrpcHealthProbe {
            service: String::new(),
            watch: true,
            timeout,
            connection: ConnectionConfig::default()
                .protocol(Protocol::Http2)
                .connect_timeout(timeout),
            watches: Arc::default(),
        }
    }

    /// Checks one service by its full name (`greeter.Greeter`).
    pub fn service(mut self, name: &str) -> Self {
        self.service = name.to_owned();
        // Watches of another service are not this probe's.
        self.watches = Arc::default();
        self
    }

    /// Always `Check`, on a fresh connection each time, never `Watch`.
    pub fn check_only(mut self) -> Self {
        self.watch = false;
        self
    }

    /// How long one check may take (connecting included); slower is
    /// unhealthy.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.connection = self.connection.connect_timeout(timeout);
        self
    }

    /// Checks over TLS, verifying the certificate for the logical host, as
    /// the channel's calls do (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<fulcrum_http::tls::rustls::ClientConfig>) -> Self {
        self.connection = self.connection.tls(config);
        self.watches = Arc::default();
        self
    }

    /// The `:authority` every check sends, instead of the endpoint's name.
    pub fn authority(mut self, authority: &str) -> Result<Self, http::uri::InvalidUri> {
        self.connection = self.connection.authority(authority)?;
        self.watches = Arc::default();
        Ok(self)
    }
}

impl Probe for GrpcHealthProbe {
    fn probe(&self, endpoint: &Endpoint) -> ProbeFuture {
        let (endpoint, service, timeout) = (endpoint.clone(), self.service.clone(), self.timeout);
        let connection = self.connection.clone();
        let watched = self.watch.then(|| {
            self.watches
                .watch(&endpoint, &service, &connection, timeout)
        });
        Box::pin(async move {
            let addr = endpoint.addr();
            let verdict = async {
                if let Some(mut watched) = watched {
                    if let Some(verdict) = watched.status().await {
                        return verdict;
                    }
                }
                check(&endpoint, &service, &connection).await
            };
            tokio::time::timeout(timeout, verdict)
                .await
                .map_err(|_| -> BoxError {
                    format!("grpc.health.v1 on {addr}: no answer within {timeout:?}").into()
                })?
                .map_err(|e| format!("grpc.health.v1 on {addr}: {e}").into())
        })
    }

    fn name(&self) -> &'static str {
        "grpc"
    }
}

/// What a status reported for `service` means.
fn verdict(status: ServingStatus, service: &str) -> Result<(), String> {
    match status {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("{} is {}", describe(service), other.as_str_name())),
    }
}

fn describe(service: &str) -> String {
    if service.is_empty() {
        "the server".to_owned()
    } else {
        format!("service {service:?}")
    }
}

/// A client of the health service on a connection of its own.
fn client(
    endpoint: &Endpoint,
    connection: &ConnectionConfig,
) -> HealthClient<EndpointService<RequestBody>> {
    let mut connector = Connector::<RequestBody>::new(connection.clone());
    // The connector makes its service at once; connecting happens on the
    // client's first `ready`.
    let service = futures_util::FutureExt::now_or_never(connector.call(endpoint.clone()))
        .expect("the connector is ready at once")
        .unwrap_or_else(|never| match never {});
    HealthClient::new(service)
}

/// One `Check` on a fresh connection.
async fn check(
    endpoint: &Endpoint,
    service: &str,
    connection: &ConnectionConfig,
) -> Result<(), String> {
    let mut client = client(endpoint, connection);
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    match client.check(request).await {
        Ok(response) => verdict(response.into_inner().status(), service),
        Err(status) => Err(match status.code() {
            Code::NotFound => format!("{} is unknown to the server", describe(service)),
            Code::Unimplemented => {
                "the server does not implement grpc.health.v1.Health; check it with another \
                 probe (tcp, http)"
                    .to_owned()
            }
            _ => format!("Check failed: {status}"),
        }),
    }
}
