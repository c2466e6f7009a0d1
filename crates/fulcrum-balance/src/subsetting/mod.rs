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
//! * [`Subsetting::deterministic`]: for a client that knows its dense
//!   coordinate and the number of clients (a StatefulSet ordinal and its
//!   replicas, a shard index and count), as Finagle's deterministic
//!   aperture does. Every client computes the same assignment: each
//!   endpoint takes, in turn, the clients that score highest for it by
//!   rendezvous hashing among those not yet full (at most 1.1 × their
//!   share), so every endpoint has exactly as many clients as any other,
//!   and a change of the set moves few connections. (Google's rounds over
//!   a shuffle, from the SRE book, are as even but reshuffle on every
//!   change.) Subsets differ in size by up to 10 %, so each client also
//!   weighs its endpoints (their weights × a balancing factor, × 1000)
//!   so that equal demand from every client loads every endpoint
//!   equally. The hashing is fulcrum's own, so clients of different
//!   versions and platforms agree. It costs `O(clients × endpoints)`
//!   hashing per change of the set (about 3 ms for 1000 × 1000), on the
//!   blocking pool. Every endpoint keeps at least one client: with fewer
//!   clients than `endpoints / size`, subsets grow to about
//!   `endpoints / clients`. The weights are scaled (× 1000): a
//!   [`Manager`](crate::Manager) weight override replaces one, so give it
//!   in the same scale (stats show the scaled weights).
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

/// The most clients deterministic subsetting takes.
const MAX_CLIENTS: u64 = 1 << 20;

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
    /// The client's dense coordinate, and how many clients there are.
    Deterministic { index: u64, clients: u64 },
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
    /// of `clients` (0, 1, … `clients - 1` across the clients of this
    /// service): each endpoint gets as many clients as any other, and the
    /// same load from equal demand. A client's subset holds `size`
    /// endpoints on average, at most 10 % more. An error when `size` or
    /// `clients` is 0, or `index` is not below `clients`.
    ///
    /// ```
    /// use fulcrum_balance::subsetting::Subsetting;
    ///
    /// let s = Subsetting::deterministic(7, 300, 20).unwrap();
    /// assert!(Subsetting::deterministic(7, 5, 20).is_err());
    /// # drop(s);
    /// ```
    pub fn deterministic(index: u64, clients: u64, size: usize) -> Result<Self, SubsettingError> {
        if clients > MAX_CLIENTS {
            return Err(SubsettingError(
                "more than 2^20 clients: deterministic subsetting hashes every client \
                 against every endpoint; use rendezvous subsetting at this scale",
            ));
        }
        if index >= clients {
            return Err(SubsettingError(
                "the client's index must be below the number of clients (coordinates \
                 run 0, 1, … clients - 1)",
            ));
        }
        Self::new(Method::Deterministic { index, clients }, size)
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

    /// This client's subset of `set`: about [`size`](Self::size)
    /// endpoints of each tier (exactly `size` with rendezvous), in the
    /// set's order. A tier's standbys (weight 0, which serve only when
    /// nothing else of their tier can) are all kept, and do not count in
    /// its size. With deterministic subsetting, each weight is multiplied
    /// by the endpoint's balancing factor × 1000.
    pub fn select(&self, set: &EndpointSet) -> EndpointSet {
        let all = set.as_slice();
        let mut tiers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        let mut keep = vec![false; set.len()];
        // Balancing factors (mean 1 in a subset), where weighed.
        let mut factor: Vec<Option<f64>> = vec![None; set.len()];
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
            let hashes: Vec<u64> = tier.iter().map(|&i| endpoint_hash(all[i].addr())).collect();
            let chosen = match self.method {
                Method::Rendezvous(client) => rendezvous::choose(client, &hashes, self.size),
                Method::Deterministic { index, clients } => {
                    let mine = deterministic::assign(clients, &hashes, self.size)
                        .swap_remove(index as usize);
                    let count = mine.len() as f64;
                    mine.iter()
                        .for_each(|&(k, w)| factor[tier[k]] = Some(w * count));
                    mine.into_iter().map(|(k, _)| k).collect()
                }
            };
            chosen.into_iter().for_each(|k| keep[tier[k]] = true);
        }
        EndpointSet::new(
            set.iter()
                .zip(keep)
                .zip(factor)
                .filter(|((_, keep), _)| *keep)
                .map(|((e, _), factor)| match factor {
                    None => e.clone(),
                    Some(f) => {
                        let w = (f64::from(e.weight()) * f * 1000.0).round();
                        e.clone()
                            .with_weight(w.clamp(1.0, f64::from(u32::MAX)) as u32)
                    }
                }),
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
            Subsetting::deterministic(5, 10, 3).unwrap(),
        ] {
            let mine = subsetting.select(&set);
            let backups = mine.iter().filter(|e| e.priority() == 1).count();
            let primaries = mine.len() - backups;
            assert_eq!(backups, 2, "{subsetting:?}");
            // Deterministic subsets hold `size` on average, at most 10 % more.
            assert!((1..=4).contains(&primaries), "{subsetting:?}");
        }
        assert!(Subsetting::rendezvous("a", 0).is_err());
        assert!(Subsetting::deterministic(0, 1 << 21, 3).is_err());
        assert!(Subsetting::deterministic(3, 3, 3).is_err());
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
