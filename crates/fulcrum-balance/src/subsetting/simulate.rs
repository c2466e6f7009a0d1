//! What a subsetting does to a population of clients, computed rather than
//! deployed: connections, clients per endpoint, and churn when endpoints
//! are replaced. `fulcrum simulate subsetting` prints it.
//!
//! ```
//! use fulcrum_balance::subsetting::simulate::{simulate, Method, Scenario};
//!
//! let report = simulate(&Scenario {
//!     method: Method::Deterministic,
//!     clients: 100,
//!     endpoints: 20,
//!     subset: 5,
//!     churn_percent: 10.0,
//! })
//! .unwrap();
//! assert_eq!(report.connections, 500);
//! assert_eq!((report.per_endpoint.min, report.per_endpoint.max), (25, 25));
//! ```

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;

use super::{deterministic, rendezvous};
use crate::key::{endpoint_hash, hash_bytes};

/// Which subsetting the clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// [`Subsetting::rendezvous`](super::Subsetting::rendezvous), clients
    /// named `client-0`, `client-1`, ….
    Rendezvous,
    /// [`Subsetting::deterministic`](super::Subsetting::deterministic),
    /// clients at coordinates 0, 1, ….
    Deterministic,
}

/// A population to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// How the clients choose.
    pub method: Method,
    /// How many clients.
    pub clients: u64,
    /// How many endpoints.
    pub endpoints: usize,
    /// Endpoints per client.
    pub subset: usize,
    /// Percentage of the endpoints replaced by new ones, for the churn.
    pub churn_percent: f64,
}

/// The largest `clients × endpoints` simulated (a few seconds of work).
pub const MAX_PAIRS: u64 = 200_000_000;

/// A scenario that cannot be simulated, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError(String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// Minimum, mean and maximum of clients per endpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The fewest clients of any endpoint.
    pub min: u64,
    /// Clients per endpoint on average.
    pub mean: f64,
    /// The most clients of any endpoint.
    pub max: u64,
}

/// What replacing endpoints did to the clients' connections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Churn {
    /// Endpoints replaced.
    pub replaced: usize,
    /// Connections that changed endpoint.
    pub moved: u64,
    /// ... of which had to: their endpoint was removed.
    pub forced: u64,
}

/// The outcome of a [`Scenario`].
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Client–endpoint connections in all.
    pub connections: u64,
    /// Connections without subsetting (every client to every endpoint).
    pub full_mesh: u64,
    /// Clients per endpoint.
    pub per_endpoint: Spread,
    /// After replacing `churn_percent` of the endpoints (none at 0).
    pub churn: Option<Churn>,
}

/// Simulates `scenario`: every client's subset of a synthetic set, then
/// again after the replacement.
pub fn simulate(scenario: &Scenario) -> Result<Report, ScenarioError> {
    let Scenario {
        method,
        clients,
        endpoints,
        subset,
        churn_percent,
    } = *scenario;
    if clients == 0 || endpoints == 0 || subset == 0 {
        return Err(ScenarioError(
            "clients, endpoints and subset must each be at least 1".into(),
        ));
    }
    if subset > endpoints {
        return Err(ScenarioError(format!(
            "a subset of {subset} is more than the {endpoints} endpoints; give at most {endpoints}"
        )));
    }
    if !(0.0..=100.0).contains(&churn_percent) {
        return Err(ScenarioError(format!(
            "churn {churn_percent} is not a percentage; give a value between 0 and 100"
        )));
    }
    if clients.saturating_mul(endpoints as u64) > MAX_PAIRS {
        return Err(ScenarioError(format!(
            "{clients} clients × {endpoints} endpoints is more than {MAX_PAIRS} pairs to \
             score; simulate fewer clients (the spread depends on clients per endpoint)"
        )));
    }
    let before: Vec<SocketAddr> = (0..endpoints).map(address).collect();
    let subsets = subsets_of(method, clients, &before, subset);
    let mut counts = vec![0u64; endpoints];
    for chosen in &subsets {
        for &k in chosen {
            counts[k] += 1;
        }
    }
    let connections: u64 = counts.iter().sum();
    let per_endpoint = Spread {
        min: counts.iter().copied().min().unwrap_or(0),
        mean: connections as f64 / endpoints as f64,
        max: counts.iter().copied().max().unwrap_or(0),
    };
    let replaced = ((endpoints as f64 * churn_percent / 100.0).round() as usize).min(endpoints);
    let churn = (replaced > 0).then(|| {
        // Every `endpoints / replaced`-th endpoint leaves; as many new ones
        // (addresses never used before) join.
        let step = endpoints / replaced;
        let removed: HashSet<usize> = (0..replaced).map(|r| r * step).collect();
        let mut after: Vec<SocketAddr> = (0..endpoints)
            .filter(|k| !removed.contains(k))
            .map(|k| before[k])
            .collect();
        after.extend((0..replaced).map(|r| address(endpoints + r)));
        let again = subsets_of(method, clients, &after, subset);
        let (mut moved, mut forced) = (0, 0);
        for (old, new) in subsets.iter().zip(&again) {
            let new: HashSet<SocketAddr> = new.iter().map(|&k| after[k]).collect();
            for &k in old {
                if !new.contains(&before[k]) {
                    moved += 1;
                    forced += u64::from(removed.contains(&k));
                }
            }
        }
        Churn {
            replaced,
            moved,
            forced,
        }
    });
    Ok(Report {
        connections,
        full_mesh: clients * endpoints as u64,
        per_endpoint,
        churn,
    })
}

/// Every client's subset (positions in `addrs`).
fn subsets_of(method: Method, clients: u64, addrs: &[SocketAddr], size: usize) -> Vec<Vec<usize>> {
    match method {
        Method::Rendezvous => {
            let hashes: Vec<u64> = addrs.iter().copied().map(endpoint_hash).collect();
            (0..clients)
                .map(|c| {
                    let client = hash_bytes(format!("client-{c}").as_bytes());
                    rendezvous::choose(client, &hashes, size)
                })
                .collect()
        }
        Method::Deterministic => (0..clients)
            .map(|c| deterministic::choose(c, addrs, size))
            .collect(),
    }
}

/// The synthetic address of endpoint `k`.
fn address(k: usize) -> SocketAddr {
    let k = k as u32;
    SocketAddr::from(([10, (k >> 16) as u8, (k >> 8) as u8, k as u8], 8080))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(method: Method, clients: u64, endpoints: usize, subset: usize) -> Scenario {
        Scenario {
            method,
            clients,
            endpoints,
            subset,
            churn_percent: 10.0,
        }
    }

    #[test]
    fn deterministic_subsetting_spreads_clients_evenly() {
        let r = simulate(&scenario(Method::Deterministic, 1000, 100, 10)).unwrap();
        assert_eq!(r.connections, 10_000);
        assert_eq!(r.full_mesh, 100_000);
        assert_eq!((r.per_endpoint.min, r.per_endpoint.max), (100, 100));
    }

    #[test]
    fn rendezvous_spreads_within_the_binomial_and_churns_little() {
        let r = simulate(&scenario(Method::Rendezvous, 1000, 100, 10)).unwrap();
        assert_eq!(r.connections, 10_000);
        // Binomial(1000, 0.1): mean 100, σ ≈ 9.5.
        assert!(
            r.per_endpoint.min >= 55 && r.per_endpoint.max <= 145,
            "{r:?}"
        );
        let churn = r.churn.unwrap();
        assert_eq!(churn.replaced, 10);
        // The connections to removed endpoints move, and a few more to
        // fill the new endpoints: well under twice the forced moves.
        assert!(
            churn.forced > 0 && churn.moved < 2 * churn.forced,
            "{churn:?}"
        );
        let d = simulate(&scenario(Method::Deterministic, 1000, 100, 10)).unwrap();
        let d = d.churn.unwrap();
        assert!(
            d.moved > 3 * churn.moved,
            "deterministic reshuffles: {d:?} vs {churn:?}"
        );
    }

    #[test]
    fn scenarios_that_cannot_work_are_refused() {
        let bad = |s: Scenario| simulate(&s).unwrap_err().to_string();
        assert!(bad(scenario(Method::Rendezvous, 10, 5, 6)).contains("more than the 5 endpoints"));
        assert!(bad(scenario(Method::Rendezvous, 0, 5, 1)).contains("at least 1"));
        let mut s = scenario(Method::Rendezvous, 10, 5, 1);
        s.churn_percent = 150.0;
        assert!(bad(s).contains("not a percentage"));
        assert!(bad(scenario(Method::Rendezvous, 1_000_000, 1_000, 5)).contains("pairs"));
    }
}
