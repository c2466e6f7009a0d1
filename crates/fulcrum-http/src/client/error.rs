use std::error::Error as StdError;
use std::fmt;

/// What a [`Client`](crate::Client)'s convenience methods fail with.
#[derive(Debug)]
pub enum Error {
    /// The URI given could not be parsed.
    InvalidUri(http::Error),
    /// The balancer could not get an answer: no endpoint, every endpoint
    /// failed, a connect or request timeout, the server's error.
    Balancer(fulcrum_balance::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUri(e) => write!(
                f,
                "invalid request URI ({e}); give a path such as /orders?id=1, \
                 or an absolute URI such as http://orders.internal/orders"
            ),
            Error::Balancer(e) => e.fmt(f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::InvalidUri(e) => Some(e),
            Error::Balancer(e) => e.source(),
        }
    }
}

impl From<fulcrum_balance::Error> for Error {
    fn from(e: fulcrum_balance::Error) -> Self {
        Error::Balancer(e)
    }
}
