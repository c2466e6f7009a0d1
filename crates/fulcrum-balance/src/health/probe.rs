//! The [`Probe`] trait, and the TCP-connect probe that ships with it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fulcrum_core::{BoxError, Endpoint};

/// What a probe returns: resolves to `Ok` if the endpoint is healthy.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// An active health check of one endpoint: the driver calls it on an
/// interval (see [`HealthChecks`](super::HealthChecks)) whether or not
/// requests flow, bounds it with a timeout, and counts an error, a timeout
/// or a panic as a failed probe.
///
/// Implemented for closures, so a check is one line:
///
/// ```
/// use fulcrum_balance::health::{Probe, ProbeFuture};
/// use fulcrum_core::Endpoint;
///
/// let probe = |endpoint: &Endpoint| -> ProbeFuture {
///     let port = endpoint.addr().port();
///     Box::pin(async move {
///         if port == 0 { Err("port 0 never answers".into()) } else { Ok(()) }
///     })
/// };
/// # fn is_probe(_: impl Probe) {}
/// is_probe(probe);
/// ```
pub trait Probe: Send + Sync + 'static {
    /// Checks `endpoint` once.
    fn probe(&self, endpoint: &Endpoint) -> ProbeFuture;

    /// A short name for logs and stats (`"tcp"`, `"http"`, `"grpc"`).
    fn name(&self) -> &'static str {
        "custom"
    }
}

impl<F> Probe for F
where
    F: Fn(&Endpoint) -> ProbeFuture + Send + Sync + 'static,
{
    fn probe(&self, endpoint: &Endpoint) -> ProbeFuture {
        self(endpoint)
    }
}

impl<P: Probe + ?Sized> Probe for Arc<P> {
    fn probe(&self, endpoint: &Endpoint) -> ProbeFuture {
        (**self).probe(endpoint)
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

/// Healthy if a TCP connection to the endpoint's address can be opened;
/// the connection is closed at once. It tells a listening process from a
/// dead one, not a working one from a broken one: a probe that asks the
/// service itself (an HTTP `GET /health`, gRPC's health service) tells
/// more. Any async closure is a [`Probe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnect;

impl Probe for TcpConnect {
    fn probe(&self, endpoint: &Endpoint) -> ProbeFuture {
        let addr = endpoint.addr();
        Box::pin(async move {
            tokio::net::TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| BoxError::from(format!("TCP connect to {addr} failed: {e}")))
        })
    }

    fn name(&self) -> &'static str {
        "tcp"
    }
}
