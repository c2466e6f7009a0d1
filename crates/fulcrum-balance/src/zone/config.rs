//! What users configure for zone-aware routing.

use fulcrum_core::Locality;

/// Zone-aware routing for a client in zone [`zone`](ZoneAware::zone); see
/// the [module docs](crate::zone) for the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneAware {
    zone: String,
    min_endpoints: usize,
}

/// Envoy's default `min_cluster_size`.
const MIN_ENDPOINTS: usize = 6;

impl ZoneAware {
    /// Routing for a client in `zone`.
    pub fn new(zone: impl Into<String>) -> Self {
        ZoneAware {
            zone: zone.into(),
            min_endpoints: MIN_ENDPOINTS,
        }
    }

    /// Routing for the zone in `FULCRUM_ZONE`, if it is set.
    pub fn from_env() -> Option<Self> {
        Self::for_locality(&Locality::from_env())
    }

    /// Routing for `locality`'s zone, if it has one.
    pub fn for_locality(locality: &Locality) -> Option<Self> {
        locality.zone().map(Self::new)
    }

    /// Below this many endpoints in a tier, requests go to the whole tier
    /// (6 by default).
    pub fn min_endpoints(mut self, n: usize) -> Self {
        self.min_endpoints = n;
        self
    }

    /// The client's zone.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// See [`min_endpoints`](Self::min_endpoints).
    pub fn min(&self) -> usize {
        self.min_endpoints
    }
}
