//! How discovery refreshes, and what it does with empty answers.

use std::time::Duration;

use crate::LocalityMap;

/// What to do when the DNS answers, authoritatively, that there is nothing
/// (NXDOMAIN, or no records of the type asked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnEmpty {
    /// Keep serving the last good set and report the error (the default: a
    /// zone being edited should not take a service down).
    #[default]
    KeepLast,
    /// Publish an empty set: requests then fail with `NoEndpoints`.
    Empty,
}

/// How discovery refreshes.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_discovery::{DiscoveryConfig, OnEmpty};
///
/// let config = DiscoveryConfig {
///     min_ttl: Duration::from_secs(1),
///     on_empty: OnEmpty::Empty,
///     ..DiscoveryConfig::default()
/// };
/// # drop(config);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoveryConfig {
    /// Re-resolve no sooner than this after an answer, whatever its TTL.
    pub min_ttl: Duration,
    /// Re-resolve no later than this, whatever the TTL.
    pub max_ttl: Duration,
    /// Each wait is spread uniformly by ± this fraction, so that many
    /// clients do not query in lockstep.
    pub jitter: f64,
    /// After a resolver error, wait `error_backoff × 2^(n-1)` (capped at
    /// `max_ttl`) before trying again.
    pub error_backoff: Duration,
    /// Early re-resolves ([`RefreshHandle::refresh`](crate::RefreshHandle::refresh)) happen at most this often.
    pub min_refresh_interval: Duration,
    /// Authoritative empty answers.
    pub on_empty: OnEmpty,
    /// How long one resolution of the target may take, all queries
    /// included: A and AAAA, or SRV and the addresses of its targets, over
    /// UDP and TCP, with the system resolver's search domains and
    /// nameservers. A resolution still unanswered by then fails with
    /// [`DiscoveryError::Resolve`](crate::DiscoveryError::Resolve) (naming the resolver), and is tried
    /// again after [`error_backoff`](Self::error_backoff).
    pub query_timeout: Duration,
    /// Places endpoints that discovery found without a zone or region
    /// (by address range or host name); empty by default.
    pub locality: LocalityMap,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            min_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(300),
            jitter: 0.1,
            error_backoff: Duration::from_secs(1),
            min_refresh_interval: Duration::from_secs(1),
            on_empty: OnEmpty::KeepLast,
            query_timeout: Duration::from_secs(2),
            locality: LocalityMap::default(),
        }
    }
}
