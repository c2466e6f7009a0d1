//! [`HttpProbe`]: an active health check that asks the service itself.

use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::Bytes;
use fulcrum_balance::health::{Probe, ProbeFuture};
use fulcrum_core::{BoxError, Endpoint};
use http::header::{CONNECTION, HOST, USER_AGENT};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty};

use crate::connection::connect::{connect, Sender};

/// Healthy when `GET path` answers with a status in the expected range
/// (`200..=399` by default) within the timeout (2 s by default).
///
/// Each check opens its own HTTP/1.1 connection and closes it, so a probe
/// never waits behind requests and tells a dead endpoint from a busy one.
/// It sends the endpoint's discovered name as `Host` (or the one set with
/// [`host`](Self::host)). The balancer runs it on an interval with jitter
/// and rise / fall thresholds; see
/// [`HealthChecks`](fulcrum_balance::health::HealthChecks).
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::health::HealthChecks;
/// use fulcrum_http::HttpProbe;
///
/// let probe = HttpProbe::get("/healthz").status(200..=299).timeout(Duration::from_millis(500));
/// let checks = HealthChecks::new(probe).interval(Duration::from_secs(2));
/// # drop(checks);
/// ```
#[derive(Clone, Debug)]
pub struct HttpProbe {
    path: Uri,
    healthy: RangeInclusive<u16>,
    timeout: Duration,
    host: Option<HeaderValue>,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<crate::tls::rustls::ClientConfig>>,
}

impl HttpProbe {
    /// Checks with `GET path` (`/health`, `/healthz?full=1`). A path that
    /// is not a valid URI path is checked as `/`, with a warning.
    pub fn get(path: &str) -> Self {
        let path = path.parse::<Uri>().unwrap_or_else(|e| {
            tracing::warn!(path, error = %e, "invalid health-check path; checking / instead");
            Uri::from_static("/")
        });
        HttpProbe {
            path,
            healthy: 200..=399,
            timeout: Duration::from_secs(2),
            host: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The statuses that mean healthy.
    pub fn status(mut self, healthy: RangeInclusive<u16>) -> Self {
        self.healthy = healthy;
        self
    }

    /// How long one check may take; slower is unhealthy.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks over HTTPS, verifying the certificate for the `Host` the
    /// check sends (feature `tls`; see
    /// [`ConnectionConfig::tls`](crate::ConnectionConfig::tls)).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<crate::tls::rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The `Host` every check sends, instead of the endpoint's name.
    pub fn host(mut self, host: &str) -> Result<Self, http::header::InvalidHeaderValue> {
        self.host = Some(HeaderValue::from_str(host)?);
        Ok(self)
    }
}

impl Probe for HttpProbe {
    fn probe(&self, endpoint: &Endpoint) -> ProbeFuture {
        let addr = endpoint.addr();
        let host = self.host.clone().unwrap_or_else(|| {
            let name = endpoint
                .authority()
                .map(str::to_owned)
                .unwrap_or_else(|| addr.to_string());
            HeaderValue::from_str(&name).unwrap_or_else(|_| HeaderValue::from_static("localhost"))
        });
        let (path, healthy, timeout) = (self.path.clone(), self.healthy.clone(), self.timeout);
        #[cfg(feature = "tls")]
        let tls = match (&self.tls, host.to_str().ok().and_then(|h| h.parse().ok())) {
            (Some(config), Some(authority)) => Some(crate::connection::TlsTarget::new(
                config,
                crate::Protocol::Http1,
                &authority,
            )),
            (Some(_), None) => {
                let host = host.clone();
                return Box::pin(async move {
                    Err(format!("{host:?} cannot name a TLS server; set the probe's host").into())
                });
            }
            (None, _) => None,
        };
        #[cfg(not(feature = "tls"))]
        let tls = None;
        Box::pin(async move {
            let check = async {
                let connected =
                    connect::<Empty<Bytes>>(addr, crate::Protocol::Http1, timeout, tls).await?;
                let Sender::Http1(mut sender) = connected else {
                    return Err(BoxError::from("asked for an HTTP/1.1 connection"));
                };
                let request = Request::get(path.clone())
                    .header(HOST, host)
                    .header(CONNECTION, "close")
                    .header(USER_AGENT, "fulcrum-health-check")
                    .body(Empty::new())?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                // Read the (small) body so the server sees a clean exchange.
                let _ = response.into_body().collect().await;
                Ok::<_, BoxError>(status)
            };
            let status = tokio::time::timeout(timeout, check)
                .await
                .map_err(|_| format!("GET {path} on {addr}: no answer within {timeout:?}"))?
                .map_err(|e| format!("GET {path} on {addr}: {e}"))?;
            if healthy.contains(&status.as_u16()) {
                Ok(())
            } else {
                Err(format!(
                    "GET {path} on {addr} answered {status}, expected {}..={}",
                    healthy.start(),
                    healthy.end()
                )
                .into())
            }
        })
    }

    fn name(&self) -> &'static str {
        "http"
    }
}
