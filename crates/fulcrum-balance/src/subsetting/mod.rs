//! Deterministic subsetting: each client connects to a subset of the
//! endpoints instead of all of them, chosen so that every endpoint gets
//! close to the same number of clients, with no coordination between
//! clients and little change when the set changes.
//!
//! Not to be confused with [`subset`](crate::subset), which routes requests
//! to endpoints by label: subsetting decides which endpoints this client
//! uses at all, before any routing or picking. At scale (thousands of
//! clients, hundreds of endpoints) a full mesh is the next wall: every
//! connection costs memory, health checks and TLS handshakes on both
//! sides.
//!
//! Two methods:
//!
//! * [`Subsetting::rendezvous`]: for a client known by any id (a pod name,
//!   a host name). Each client keeps the `size` endpoints that score
//!   highest for it by rendezvous hashing. An endpoint added or removed
//!   moves only the clients that pick it (about `size / N` of them), and
//!   every client agrees on nothing but the hash. The number of clients
//!   per endpoint is binomial: its spread narrows as clients grow.
//! * [`Subsetting::deterministic`]: for a client that knows a dense
//!   coordinate (a StatefulSet ordinal, a shard index). Google's
//!   deterministic subsetting (the SRE book, "Load Balancing in the
//!   Datacenter"): clients are dealt in rounds of `N / size`, each round
//!   over its own shuffle of the sorted endpoints, so when `N` is a
//!   multiple of `size` each endpoint gets the same number of clients,
//!   within one. A change of the set changes the shuffles: far more churn
//!   than rendezvous. The shuffle is fulcrum's own (not a library's), so
//!   clients of different versions and platforms agree.
//!
//! Subsetting applies per tier (SRV priority, backup endpoints): a backup
//! tier keeps `size` endpoints of its own, so spill-over still works. A
//! tier with at most `size` endpoints is kept whole, and standbys (weight
//! 0) are always kept. Weights do not change how many clients an endpoint
//! gets.
//!
//! What subsetting leaves out, the balancer does not see: stats, health
//! checks, the [`Manager`](crate::Manager) and [subset](crate::subset)
//! rules see only this client's endpoints (a label subset with one member
//! in a large set is empty for most clients: route such requests with
//! subsets and no subsetting, or give the rare members a tier of their
//! own).
//!
//! `fulcrum simulate subsetting --clients C --endpoints N --subset K`
//! prints connections, the per-endpoint spread and the churn of either
//! method (see [`simulate`]), to size subsets before deploying them.
//!
//! ```
//! use fulcrum_balance::subsetting::Subsetting;
//! use fulcrum_core::{Endpoint, EndpointSet};
//!
//! let set = EndpointSet::new((0..20).map(|i| Endpoint::new(([10, 0, 0, i], 80).into())));
//! let mine = Subsetting::rendezvous("pod-7", 5).unwrap().select(&set);
//! assert_eq!(mine.len(), 5);
//! // The same client keeps the same endpoints, whatever the order.
//! let reversed = EndpointSet::new(set.iter().rev().cloned());
//! let again = Subsetting::rendezvous("pod-7", 5).unwrap().select(&reversed);
//! let addrs = |s: &EndpointSet| {
//!     let mut a: Vec<_> = s.iter().map(|e| e.addr()).collect();
//!     a.sort();
//!     a
//! };
//! assert_eq!(addrs(&mine), addrs(&again));
//! ```

mod deterministic;
mod rendezvous;
pub mod simulate;

use std::collections::BTreeMap;
use std::fmt;

use fulcrum_core::EndpointSet;

use crate::key::{endpoint_hash, hash_bytes};

/// How a client chooses its subset of the endpoints (see the
/// [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subsetting {
    method: Method,
    size: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Method {
    /// The client id's hash.
    Rendezvous(u64),
    /// The client's dense coordinate.
    Deterministic(u64),
}

/// A subsetting that cannot work (a size of 0, an empty client id), and
/// what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsettingError(&'static str);

impl fmt::Display for SubsettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SubsettingError {}

impl Subsetting {
    /// Rendezvous subsetting for the client known as `client_id`: each
    /// client keeps the `size` endpoints of each tier that score highest
    /// for it. An error when `size` is 0 or the id is empty (every client
    /// with an unset id would pick the same endpoints).
    pub fn rendezvous(client_id: &str, size: usize) -> Result<Self, SubsettingError> {
        if client_id.is_empty() {
            return Err(SubsettingError(
                "an empty client id would give every client without one the same \
                 endpoints; give each client its own id (a pod or host name)",
            ));
        }
        Self::new(Method::Rendezvous(hash_bytes(client_id.as_bytes())), size)
    }

    /// Deterministic subsetting for the client at dense coordinate `index`
    /// (0, 1, 2, … across the clients of this service): when the tier's
    /// endpoint count is a multiple of `size`, each endpoint gets the same
    /// number of clients, within one (otherwise each round leaves a few
    /// out, at random). An error when `size` is 0.
    pub fn deterministic(index: u64, size: usize) -> Result<Self, SubsettingError> {
        Self::new(Method::Deterministic(index), size)
    }

    fn new(method: Method, size: usize) -> Result<Self, SubsettingError> {
        if size == 0 {
            return Err(SubsettingError(
                "a subset of 0 endpoints would leave the client with none; give a size of \
                 at least 1",
            ));
        }
        Ok(Subsetting { method, size })
    }

    /// The number of endpoints kept per tier.
    pub fn size(&self) -> usize {
        self.size
    }

    /// This client's subset of `set`: up to [`size`](Self::size)
    /// endpoints of each tier, in the set's order. A tier's standbys
    /// (weight 0, which serve only when nothing else of their tier can)
    /// are all kept, and do not count in its size.
    pub fn select(&self, set: &EndpointSet) -> EndpointSet {
        let all = set.as_slice();
        let mut tiers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        let mut keep = vec![false; set.len()];
        for (i, e) in all.iter().enumerate() {
            if e.weight() == 0 {
                keep[i] = true;
            } else {
                tiers.entry(e.priority()).or_default().push(i);
            }
        }
        for tier in tiers.into_values() {
            if tier.len() <= self.size {
                tier.iter().for_each(|&i| keep[i] = true);
                continue;
            }
            let addrs = tier.iter().map(|&i| all[i].addr());
            let chosen = match self.method {
                Method::Rendezvous(client) => {
                    let hashes: Vec<u64> = addrs.map(endpoint_hash).collect();
                    rendezvous::choose(client, &hashes, self.size)
                }
                Method::Deterministic(index) => {
                    deterministic::choose(index, &addrs.collect::<Vec<_>>(), self.size)
                }
            };
            chosen.into_iter().for_each(|k| keep[tier[k]] = true);
        }
        EndpointSet::new(
            set.iter()
                .zip(keep)
                .filter(|(_, keep)| *keep)
                .map(|(e, _)| e.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fulcrum_core::Endpoint;

    #[test]
    fn each_tier_keeps_a_subset_of_its_own() {
        let primaries = (0..6).map(|i| Endpoint::new(([10, 0, 0, i], 80).into()));
        let backups = (0..2).map(|i| Endpoint::new(([10, 0, 1, i], 80).into()).with_priority(1));
        let set = EndpointSet::new(primaries.chain(backups));
        for subsetting in [
            Subsetting::rendezvous("a", 3).unwrap(),
            Subsetting::deterministic(5, 3).unwrap(),
        ] {
            let mine = subsetting.select(&set);
            let backups = mine.iter().filter(|e| e.priority() == 1).count();
            assert_eq!((mine.len(), backups), (5, 2), "{subsetting:?}");
        }
        assert!(Subsetting::rendezvous("a", 0).is_err());
        assert!(Subsetting::rendezvous("", 3).is_err());
    }

    #[test]
    fn standbys_are_kept_and_do_not_take_a_place() {
        let active = (0..6).map(|i| Endpoint::new(([10, 0, 0, i], 80).into()));
        let standby = Endpoint::new(([10, 0, 2, 1], 80).into()).with_weight(0);
        let set = EndpointSet::new(active.chain([standby]));
        let mine = Subsetting::rendezvous("b", 3).unwrap().select(&set);
        assert_eq!(mine.len(), 4);
        assert_eq!(mine.iter().filter(|e| e.weight() == 0).count(), 1);
    }
}
