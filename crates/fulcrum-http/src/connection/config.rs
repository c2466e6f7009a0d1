use std::time::Duration;

use http::uri::Authority;

/// Which HTTP version a client speaks to every endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: a pool of connections per endpoint, one request at a
    /// time on each, kept alive between requests.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (h2c on plain TCP): one connection per
    /// endpoint, requests multiplexed on it.
    Http2,
}

/// How connections to endpoints are made and kept.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_http::{ConnectionConfig, Protocol};
///
/// let config = ConnectionConfig::default()
///     .protocol(Protocol::Http2)
///     .connect_timeout(Duration::from_millis(500))
///     .request_timeout(Duration::from_secs(5))
///     .authority("orders.internal:8080")
///     .unwrap();
/// # drop(config);
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    pub(crate) protocol: Protocol,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle: usize,
    pub(crate) authority: Option<Authority>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            protocol: Protocol::Http1,
            connect_timeout: Duration::from_secs(1),
            request_timeout: None,
            idle_timeout: Duration::from_secs(90),
            max_idle: 64,
            authority: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ConnectionConfig {
    /// HTTP/1.1 (the default) or HTTP/2.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// How long a TCP connect (and, for HTTP/2, its handshake) may take
    /// (1 s by default). A connection that cannot be made in time fails
    /// its endpoint's readiness: the request was never sent and moves to
    /// another endpoint. The balancer gives one endpoint at most a third of
    /// its readiness deadline (3 s by default, so 1 s); a longer connect
    /// timeout needs a longer `ready_timeout`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a request may wait for its response headers once sent (no
    /// limit by default). A request that runs out fails as a
    /// [`Timeout`](fulcrum_balance::FailureKind::Timeout); its endpoint's
    /// outlier detection counts it.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// How long an HTTP/1 connection may sit unused in the pool before it
    /// is closed (90 s by default), counted from the start of its last
    /// request.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// At most this many HTTP/1 connections kept per endpoint between
    /// requests (64 by default); more can be open while requests run.
    pub fn max_idle_per_endpoint(mut self, max: usize) -> Self {
        self.max_idle = max;
        self
    }

    /// The `Host` (HTTP/1) or `:authority` (HTTP/2) every request carries
    /// unless it names its own. Without it, a request carries the name its
    /// endpoint was discovered by (`orders.internal:8080` for
    /// `dns:///orders.internal:8080`), or the endpoint's address for a
    /// static list.
    pub fn authority(mut self, authority: &str) -> Result<Self, http::uri::InvalidUri> {
        self.authority = Some(authority.parse()?);
        Ok(self)
    }

    /// Connects with TLS (HTTPS, or gRPC over TLS), configured by
    /// `config` (feature `tls`).
    ///
    /// The server's certificate is verified for the logical host — the
    /// host of the [authority](Self::authority) requests carry, such as
    /// `orders.internal` — which is also the SNI, while the connection goes
    /// to the picked address. ALPN offers `h2` or `http/1.1` to match the
    /// [protocol](Self::protocol) (replacing what `config` offers). A failed
    /// handshake (an unknown certificate, a name mismatch) is a connect
    /// failure: the request moves to another endpoint.
    ///
    /// ```
    /// # fn der() -> Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>> { vec![] }
    /// use fulcrum_http::{tls, ConnectionConfig};
    ///
    /// let roots = der(); // your CA's certificates
    /// let config = ConnectionConfig::default().tls(tls::client_config(roots).unwrap());
    /// # drop(config);
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}
