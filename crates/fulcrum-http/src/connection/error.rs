use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A connection to an endpoint could not be made: refused, unreachable,
/// timed out, or closed by the server before its first request.
///
/// It fails the endpoint's readiness, so the request that asked for it was
/// never sent: the balancer takes the endpoint out of service for a
/// backoff and sends the request elsewhere. Its source is the
/// `std::io::Error`, which tells the kind.
#[derive(Clone, Debug)]
pub struct ConnectError {
    addr: SocketAddr,
    source: Arc<io::Error>,
}

impl ConnectError {
    pub(crate) fn io(addr: SocketAddr, source: io::Error) -> Self {
        ConnectError {
            addr,
            source: Arc::new(source),
        }
    }

    pub(crate) fn timed_out(addr: SocketAddr, after: Duration) -> Self {
        let message = format!("no connection within {after:?}");
        Self::io(addr, io::Error::new(io::ErrorKind::TimedOut, message))
    }

    pub(crate) fn handshake(addr: SocketAddr, error: hyper::Error) -> Self {
        Self::io(
            addr,
            io::Error::new(io::ErrorKind::ConnectionAborted, error),
        )
    }

    /// The TLS handshake failed (an untrusted certificate, a name
    /// mismatch, no common protocol).
    #[cfg(feature = "tls")]
    pub(crate) fn tls(addr: SocketAddr, error: io::Error) -> Self {
        let message = format!("TLS handshake failed: {error}");
        Self::io(addr, io::Error::new(error.kind(), message))
    }

    /// The address that could not be reached.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What went wrong, as the operating system said it.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "connect" as a word: the classifier reads it as a connect failure.
        write!(f, "could not connect to {}: {}", self.addr, self.source)
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// A request sent to an endpoint got no response headers within the
/// request timeout.
#[derive(Debug)]
pub struct RequestTimeout {
    pub(crate) addr: SocketAddr,
    pub(crate) after: Duration,
    pub(crate) source: io::Error,
}

impl RequestTimeout {
    pub(crate) fn new(addr: SocketAddr, after: Duration) -> Self {
        RequestTimeout {
            addr,
            after,
            source: io::Error::from(io::ErrorKind::TimedOut),
        }
    }
}

impl fmt::Display for RequestTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sent no response within {:?} (the request timeout)",
            self.addr, self.after
        )
    }
}

impl StdError for RequestTimeout {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fulcrum_balance::FailureKind;

    #[test]
    fn classified_by_kind() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let refused = ConnectError::io(addr, io::ErrorKind::ConnectionRefused.into());
        assert_eq!(FailureKind::of_error(&refused), FailureKind::Connect);
        let slow = ConnectError::timed_out(addr, Duration::from_millis(5));
        assert_eq!(FailureKind::of_error(&slow), FailureKind::Connect);
        assert!(slow.to_string().contains("127.0.0.1:1"), "{slow}");
        let late = RequestTimeout::new(addr, Duration::from_millis(5));
        assert_eq!(FailureKind::of_error(&late), FailureKind::Timeout);
    }
}
