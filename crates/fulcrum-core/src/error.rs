//! Errors shared by every fulcrum crate.
//!
//! ```
//! use fulcrum_core::{BoxError, NoEndpoints, NoEndpointsReason};
//! use std::time::Duration;
//!
//! // Balancer errors box into tower's `BoxError`; the typed cause can be
//! // recovered by downcasting.
//! let e: BoxError = Box::new(NoEndpoints::new(
//!     "dns:///api.internal:80",
//!     NoEndpointsReason::NeverHadAny,
//!     Duration::from_secs(3),
//! ));
//! let typed = e.downcast_ref::<NoEndpoints>().unwrap();
//! assert_eq!(typed.reason(), NoEndpointsReason::NeverHadAny);
//! ```

use std::fmt;
use std::time::Duration;

/// A boxed error, as tower uses for errors of unknown type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a balancer had no endpoint to send a request to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoEndpointsReason {
    /// Discovery never produced a non-empty set.
    NeverHadAny,
    /// Discovery produced endpoints before, but its latest set is empty.
    SetBecameEmpty,
    /// There are endpoints, but every one is unavailable (not connected yet,
    /// failed readiness and backing off, or ejected by health checks).
    AllUnavailable,
    /// Discovery ended (or failed for good) and left nothing to serve;
    /// waiting cannot help.
    DiscoveryEnded,
    /// The request was routed to a subset (by label) with no endpoint that
    /// can serve, and the subset's fallback rule is to fail.
    SubsetEmpty,
}

impl NoEndpointsReason {
    fn explain(self) -> &'static str {
        match self {
            NoEndpointsReason::NeverHadAny => {
                "discovery has not produced any endpoint yet; check the target and that the \
                 resolver answers"
            }
            NoEndpointsReason::SetBecameEmpty => {
                "the endpoint set became empty; check that instances are registered"
            }
            NoEndpointsReason::AllUnavailable => {
                "every endpoint is unavailable (connecting, failing readiness or ejected); \
                 check the backends, or raise the readiness deadline"
            }
            NoEndpointsReason::DiscoveryEnded => {
                "discovery ended with no endpoint; fix the target or supply endpoints"
            }
            NoEndpointsReason::SubsetEmpty => {
                "no endpoint of the subset this request was routed to can serve, and the \
                 subset's fallback is to fail; check the endpoints' labels against the \
                 subset's selector, or give the subset a fallback"
            }
        }
    }
}

/// A request found no endpoint within the readiness deadline.
///
/// ```
/// use fulcrum_core::{NoEndpoints, NoEndpointsReason};
/// use std::time::Duration;
///
/// let e = NoEndpoints::new("dns:///api:80", NoEndpointsReason::SetBecameEmpty, Duration::from_secs(3));
/// assert!(e.to_string().contains("dns:///api:80"));
/// assert_eq!(e.reason(), NoEndpointsReason::SetBecameEmpty);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoEndpoints(Box<Details>);

/// Boxed: balancer errors travel in every response's `Result`, which must
/// stay small on the success path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Details {
    target: String,
    reason: NoEndpointsReason,
    waited: Duration,
    cause: Option<String>,
}

impl NoEndpoints {
    /// Builds the error for `target` (the balancer's name for its endpoints).
    pub fn new(target: impl Into<String>, reason: NoEndpointsReason, waited: Duration) -> Self {
        NoEndpoints(Box::new(Details {
            target: target.into(),
            reason,
            waited,
            cause: None,
        }))
    }

    /// Adds what discovery last reported (e.g. "the resolver 127.0.0.1:5353
    /// did not answer within 2s"), shown in the message.
    ///
    /// ```
    /// use fulcrum_core::{NoEndpoints, NoEndpointsReason};
    /// use std::time::Duration;
    ///
    /// let e = NoEndpoints::new("dns:///api:80", NoEndpointsReason::NeverHadAny, Duration::from_secs(3))
    ///     .with_cause("resolving `api` failed: SERVFAIL");
    /// assert!(e.to_string().contains("SERVFAIL"));
    /// assert_eq!(e.cause(), Some("resolving `api` failed: SERVFAIL"));
    /// ```
    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.0.cause = Some(cause.into());
        self
    }

    /// What discovery last reported, if it failed.
    pub fn cause(&self) -> Option<&str> {
        self.0.cause.as_deref()
    }

    /// Why there was no endpoint.
    pub fn reason(&self) -> NoEndpointsReason {
        self.0.reason
    }

    /// The target the balancer serves.
    pub fn target(&self) -> &str {
        &self.0.target
    }

    /// How long the request waited for an endpoint before giving up.
    pub fn waited(&self) -> Duration {
        self.0.waited
    }
}

impl fmt::Display for NoEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(f, "no endpoint for `{}`", d.target)?;
        if !d.waited.is_zero() {
            write!(f, " after waiting {:?}", d.waited)?;
        }
        write!(f, ": {}", d.reason.explain())?;
        if let Some(cause) = &d.cause {
            write!(f, " (last discovery error: {cause})")?;
        }
        Ok(())
    }
}

impl std::error::Error for NoEndpoints {}

/// An inner service's error that hands its request back because the
/// request was never sent: its connection closed before the request
/// could be written (the server's `GOAWAY`, or an idle connection the
/// server closed as it was picked).
///
/// A balancer that gets it from an endpoint's service sends the request
/// again, at once and without spending a retry: to the same endpoint
/// (whose service then reconnects) or another. The endpoint is not
/// penalised: a server recycling its connections is not failing. Return
/// it, boxed, as your service's error when your client gives the request
/// back (hyper's `try_send_request` does).
///
/// ```
/// use fulcrum_core::{BoxError, error::Unsent};
///
/// let error: BoxError = Unsent::new("GET /", "connection closed").into();
/// let unsent = error.downcast::<Unsent<&str>>().unwrap();
/// assert_eq!(unsent.into_parts().0, Some("GET /"));
/// ```
pub struct Unsent<Req> {
    // A mutex only to make the error `Sync`, as `BoxError` requires, for
    // requests that are `Send` but not `Sync` (streaming bodies): it is
    // never contended.
    request: std::sync::Mutex<Option<Req>>,
    source: BoxError,
}

impl<Req> Unsent<Req> {
    /// `request`, given back, and why it could not be sent.
    pub fn new(request: Req, source: impl Into<BoxError>) -> Self {
        Unsent {
            request: std::sync::Mutex::new(Some(request)),
            source: source.into(),
        }
    }

    /// The request, and why it could not be sent.
    pub fn into_parts(self) -> (Option<Req>, BoxError) {
        let request = self
            .request
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (request, self.source)
    }
}

impl<Req> fmt::Debug for Unsent<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsent")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<Req> fmt::Display for Unsent<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the request was not sent: its connection closed first; it is safe to send again",
        )
    }
}

impl<Req> std::error::Error for Unsent<Req> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
