use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use fulcrum_core::{BoxError, NoEndpoints};

/// Why a request through a [`Balancer`](crate::Balancer) failed: what
/// happened is its [`kind`](Error::kind).
///
/// `Display` says what happened and what to do; the underlying error, if
/// any, is the [`source`](std::error::Error::source) (not repeated in the
/// message, so a printed chain shows each cause once).
///
/// One pointer wide, so that the error does not make every `Result` a
/// request passes through large: `Result<(), Error>` (from `poll_ready`)
/// comes back in a register, as does the result of a small response. A
/// 56-byte error made each of those a memory copy on every request, even
/// when nothing failed.
///
/// ```
/// # use fulcrum_balance::{Error, ErrorKind};
/// fn is_retryable(e: &Error) -> bool {
///     // nothing reached a backend in these cases
///     matches!(e.kind(), ErrorKind::NoEndpoints(_) | ErrorKind::NotReady { .. })
/// }
/// assert_eq!(std::mem::size_of::<Result<(), Error>>(), std::mem::size_of::<usize>());
/// ```
pub struct Error {
    kind: Box<ErrorKind>,
}

impl Error {
    /// What happened.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What happened, by value (to take the source out, say).
    pub fn into_kind(self) -> ErrorKind {
        *self.kind
    }

    /// The endpoint involved, if any.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        match *self.kind {
            ErrorKind::NotReady { endpoint, .. } | ErrorKind::Service { endpoint, .. } => {
                Some(endpoint)
            }
            ErrorKind::TimedOut { endpoint, .. } => endpoint,
            _ => None,
        }
    }

    pub(crate) fn panicked(what: &'static str, payload: Box<dyn std::any::Any + Send>) -> Self {
        ErrorKind::Panicked {
            what,
            message: panic_message(&*payload),
        }
        .into()
    }

    pub(crate) fn driver_stopped() -> Self {
        ErrorKind::DriverStopped.into()
    }
}

/// What made a request through a [`Balancer`](crate::Balancer) fail: see
/// [`Error::kind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No endpoint became available within the readiness deadline.
    NoEndpoints(NoEndpoints),
    /// The chosen endpoint's service failed readiness (or stayed not ready
    /// past its share of the deadline), and the request could not move to
    /// another endpoint: none was available, or it had moved 3 times, or
    /// its readiness deadline ran out. The request was not sent.
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
    /// The balancer's background driver has stopped (its runtime shut
    /// down, or it failed): the balancer can no longer follow its endpoints,
    /// so it serves no request. Build a new balancer.
    DriverStopped,
    /// Code given to the balancer (a key extractor, a classifier) panicked
    /// while handling this request; the request was not sent, or its
    /// response was lost.
    Panicked {
        /// Which piece of code.
        what: &'static str,
        /// The panic's message.
        message: String,
    },
    /// An attempt had no answer within the retry layer's per-attempt
    /// timeout ([`RetryLayer::per_try_timeout`](crate::retry::RetryLayer::per_try_timeout)),
    /// and no other attempt was allowed (attempts or budget spent).
    TimedOut {
        /// The endpoint of the last attempt, if it had one.
        endpoint: Option<SocketAddr>,
        /// The per-attempt timeout.
        after: Duration,
    },
    /// [`Balancer::ready_all`](crate::Balancer::ready_all) ran out of time
    /// before every endpoint's service was made.
    WarmingUp {
        /// Endpoints whose service was made (or failed to be).
        made: usize,
        /// Endpoints in the set.
        total: usize,
        /// How long it waited.
        waited: Duration,
    },
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".to_owned())
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::NoEndpoints(e) => e.fmt(f),
            ErrorKind::NotReady { endpoint, .. } => write!(
                f,
                "endpoint {endpoint} was not ready and the request could not move to another \
                 endpoint (none was available, or its moves or its readiness deadline ran out); \
                 it was not sent and is safe to retry"
            ),
            ErrorKind::Service { endpoint, .. } => {
                write!(f, "request to endpoint {endpoint} failed")
            }
            ErrorKind::DriverStopped => f.write_str(
                "the balancer's driver has stopped (its tokio runtime shut down or it failed); \
                 build a new balancer",
            ),
            ErrorKind::Panicked { what, message } => write!(
                f,
                "the {what} panicked ({message}); fix it to return normally"
            ),
            ErrorKind::TimedOut {
                endpoint: Some(endpoint),
                after,
            } => write!(
                f,
                "endpoint {endpoint} did not answer within the per-attempt timeout of {after:?}, \
                 and no other attempt was allowed (attempts or retry budget spent)"
            ),
            ErrorKind::TimedOut {
                endpoint: None,
                after,
            } => write!(
                f,
                "no endpoint answered within the per-attempt timeout of {after:?}, and no other \
                 attempt was allowed (attempts or retry budget spent)"
            ),
            ErrorKind::WarmingUp {
                made,
                total,
                waited,
            } => write!(
                f,
                "{made} of {total} endpoints were ready after waiting {waited:?}; \
                 the others are still connecting (check them, or wait longer)"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            ErrorKind::NoEndpoints(e) => e.source(),
            ErrorKind::NotReady { source, .. } | ErrorKind::Service { source, .. } => {
                Some(&**source)
            }
            _ => None,
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            kind: Box::new(kind),
        }
    }
}

impl From<NoEndpoints> for Error {
    fn from(e: NoEndpoints) -> Self {
        ErrorKind::NoEndpoints(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cause, in order, as a chain printer shows them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            out += &format!(": {c}");
            cause = c.source();
        }
        out
    }

    #[test]
    fn a_printed_chain_shows_each_cause_once() {
        let e = Error::from(ErrorKind::Service {
            endpoint: ([127, 0, 0, 1], 80).into(),
            source: "connection refused".into(),
        });
        assert_eq!(
            chain(&e),
            "request to endpoint 127.0.0.1:80 failed: connection refused"
        );
        let e = Error::from(ErrorKind::NotReady {
            endpoint: ([127, 0, 0, 1], 80).into(),
            source: "pool closed".into(),
        });
        assert_eq!(chain(&e).matches("pool closed").count(), 1);
        let e = Error::from(NoEndpoints::new(
            "t",
            fulcrum_core::NoEndpointsReason::NeverHadAny,
            Duration::from_secs(1),
        ));
        assert_eq!(chain(&e), e.to_string());
    }
}
