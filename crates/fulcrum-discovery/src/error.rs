//! Discovery errors.

use std::fmt;

/// Why a resolution produced no endpoint set.
///
/// Discovery keeps serving the last good set through all of these (unless
/// configured otherwise for authoritative empty answers); the error is
/// reported so that it can be seen in stats and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The resolver could not answer: unreachable, timed out, refused, or
    /// answered with a server failure.
    Resolve {
        /// The name being resolved.
        name: String,
        /// What the resolver reported.
        reason: String,
    },
    /// The name does not exist (NXDOMAIN) or has no records of the type asked.
    NoRecords {
        /// The name being resolved.
        name: String,
        /// True for NXDOMAIN, false for a name with no such records.
        nxdomain: bool,
    },
    /// The SRV records say the service is decidedly not available there
    /// (a single record whose target is `.`, RFC 2782).
    NotAvailable {
        /// The SRV name.
        name: String,
    },
    /// The resolver could not be set up (e.g. no readable system configuration).
    Config(String),
    /// One part of a composite target failed (its last good set stays in
    /// use; the other parts serve as usual).
    Part {
        /// The part, as a target.
        target: String,
        /// What went wrong with it.
        error: Box<DiscoveryError>,
    },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::Resolve { name, reason } => write!(
                f,
                "resolving `{name}` failed: {reason}; check that the resolver is reachable and answers for this name"
            ),
            DiscoveryError::NoRecords {
                name,
                nxdomain: true,
            } => write!(
                f,
                "`{name}` does not exist (NXDOMAIN); check the name and the zone"
            ),
            DiscoveryError::NoRecords {
                name,
                nxdomain: false,
            } => write!(
                f,
                "`{name}` has no records of the requested type; check that instances are registered"
            ),
            DiscoveryError::NotAvailable { name } => write!(
                f,
                "the SRV records of `{name}` say the service is not available there (target `.`)"
            ),
            DiscoveryError::Config(reason) => write!(
                f,
                "cannot set up the DNS resolver: {reason}; name a resolver in the target \
                 (dns://IP:PORT/…) or fix /etc/resolv.conf"
            ),
            DiscoveryError::Part { target, error } => write!(f, "part `{target}`: {error}"),
        }
    }
}

impl std::error::Error for DiscoveryError {}
