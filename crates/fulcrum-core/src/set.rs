use std::collections::HashSet;
use std::sync::Arc;

use crate::Endpoint;

/// A whole set of endpoints, as discovery last saw it.
///
/// Discovery always hands the balancer whole sets; the balancer diffs them
/// against what it has. An address that appears more than once is one
/// endpoint: the first occurrence wins and later ones are dropped (counted by
/// [`duplicates`](EndpointSet::duplicates) so a caller can report them).
///
/// Cloning is cheap (the endpoints are shared). Two sets are equal when they
/// hold the same endpoints in the same order; the duplicate count is not
/// compared.
///
/// ```
/// use fulcrum_core::{Endpoint, EndpointSet};
///
/// let a: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
/// let set = EndpointSet::new([Endpoint::new(a).with_weight(2), Endpoint::new(a)]);
/// assert_eq!(set.len(), 1);
/// assert_eq!(set.duplicates(), 1);
/// assert_eq!(set.iter().next().unwrap().weight(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct EndpointSet {
    endpoints: Arc<[Endpoint]>,
    duplicates: usize,
}

impl EndpointSet {
    /// Builds a set, dropping repeated addresses (first occurrence wins).
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        let mut seen = HashSet::new();
        let mut duplicates = 0;
        let endpoints: Vec<Endpoint> = endpoints
            .into_iter()
            .filter(|ep| {
                let fresh = seen.insert(ep.addr());
                duplicates += usize::from(!fresh);
                fresh
            })
            .collect();
        EndpointSet {
            endpoints: endpoints.into(),
            duplicates,
        }
    }

    /// The empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Number of distinct endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// True when there is no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// How many repeated addresses were dropped when the set was built.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// The endpoints, in the order discovery gave them.
    pub fn iter(&self) -> std::slice::Iter<'_, Endpoint> {
        self.endpoints.iter()
    }

    /// The endpoints as a slice.
    pub fn as_slice(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

impl PartialEq for EndpointSet {
    fn eq(&self, other: &Self) -> bool {
        self.endpoints == other.endpoints
    }
}

impl Eq for EndpointSet {}

impl FromIterator<Endpoint> for EndpointSet {
    fn from_iter<I: IntoIterator<Item = Endpoint>>(iter: I) -> Self {
        EndpointSet::new(iter)
    }
}

impl<'a> IntoIterator for &'a EndpointSet {
    type Item = &'a Endpoint;
    type IntoIter = std::slice::Iter<'a, Endpoint>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
