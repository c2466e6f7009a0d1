use std::fmt;
use std::net::SocketAddr;

use fulcrum_core::{BoxError, NoEndpoints};

/// Why a request through a [`Balancer`](crate::Balancer) failed.
///
/// ```
/// # use fulcrum_balance::Error;
/// fn is_retryable(e: &Error) -> bool {
///     // nothing reached a backend in these cases
///     matches!(e, Error::NoEndpoints(_) | Error::NotReady { .. })
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No endpoint became available within the readiness deadline.
    NoEndpoints(NoEndpoints),
    /// The chosen endpoint's service failed readiness, and no other endpoint
    /// was available to take the request instead. The request was not sent.
    NotReady {
        /// The last endpoint tried.
        endpoint: SocketAddr,
        /// Its readiness error.
        source: BoxError,
    },
    /// The endpoint's service returned an error for this request.
    Service {
        /// The endpoint that served the request.
        endpoint: SocketAddr,
        /// The service's error.
        source: BoxError,
    },
}

impl Error {
    /// The endpoint involved, if any.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        match self {
            Error::NoEndpoints(_) => None,
            Error::NotReady { endpoint, .. } | Error::Service { endpoint, .. } => Some(*endpoint),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoEndpoints(e) => e.fmt(f),
            Error::NotReady { endpoint, source } => write!(
                f,
                "endpoint {endpoint} failed readiness ({source}) and no other endpoint was \
                 available; the request was not sent and is safe to retry"
            ),
            Error::Service { endpoint, source } => {
                write!(f, "request to endpoint {endpoint} failed: {source}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NoEndpoints(e) => Some(e),
            Error::NotReady { source, .. } | Error::Service { source, .. } => Some(&**source),
        }
    }
}

impl From<NoEndpoints> for Error {
    fn from(e: NoEndpoints) -> Self {
        Error::NoEndpoints(e)
    }
}
