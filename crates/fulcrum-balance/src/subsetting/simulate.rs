//! What a subsetting does to a population of clients, computed rather than
//! deployed: connections, clients and requests per endpoint, and churn
//! when endpoints are removed. `fulcrum simulate subsetting` prints it,
//! for every method side by side.
//!
//! Requests are counted under equal demand: every client sends the same
//! amount, spread over its subset equally (by its balancing weights with
//! [`Method::Deterministic`]).
//!
//! ```
//! use fulcrum_balance::subsetting::simulate::{simulate, Method, Scenario};
//!
//! let report = simulate(&Scenario {
//!     method: Method::Deterministic,
//!     clients: 100,
//!     endpoints: 20,
//!     subset: 5,
//!     remove_percent: 10.0,
//!     seed: 1,
//! })
//! .unwrap();
//! assert_eq!(report.connections, 500);
//! assert_eq!((report.per_endpoint.min, report.per_endpoint.max), (25, 25));
//! assert!(report.requests.max < 1.01);
//! ```

use std::fmt;
use std::net::SocketAddr;

use super::{deterministic, rendezvous};
use crate::key::{endpoint_hash, hash_bytes, mix64};

/// Which subsetting the clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// No subsetting: every client to every endpoint.
    None,
    /// Random subsetting as gRPC's A68 specifies it: each client draws a
    /// random seed at start and keeps the endpoints that score highest
    /// for it by rendezvous hashing (seeds drawn from the scenario's).
    Random,
    /// [`Subsetting::rendezvous`](super::Subsetting::rendezvous), clients
    /// named `client-0`, `client-1`, ….
    Rendezvous,
    /// [`Subsetting::deterministic`](super::Subsetting::deterministic),
    /// clients at coordinates 0, 1, …, spreading demand by their
    /// balancing weights.
    Deterministic,
}

impl Method {
    /// Every method, in the order the table shows them.
    pub const ALL: [Method; 4] = [
        Method::None,
        Method::Random,
        Method::Rendezvous,
        Method::Deterministic,
    ];

    /// The method's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Random => "random",
            Method::Rendezvous => "rendezvous",
            Method::Deterministic => "deterministic",
        }
    }
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
    /// Endpoints per client (on average, for deterministic subsetting).
    pub subset: usize,
    /// Percentage of the endpoints removed, for the churn.
    pub remove_percent: f64,
    /// Seeds the random subsetting's client seeds and which endpoints are
    /// removed.
    pub seed: u64,
}

/// The largest `clients × endpoints` simulated: a few seconds of work on
/// one core (each pair is one hash, twice with churn).
pub const MAX_PAIRS: u64 = 200_000_000;

/// The most endpoints simulated.
pub const MAX_ENDPOINTS: usize = 1 << 20;

/// The most `clients × subset` with balancing weights (they are all kept
/// in memory at once).
pub const MAX_WEIGHED: u64 = 10_000_000;

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

/// The least and most requests any endpoint gets, each divided by the
/// mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratios {
    /// Least / mean.
    pub min: f64,
    /// Most / mean.
    pub max: f64,
}

/// What removing endpoints did to the clients' subsets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Churn {
    /// Endpoints removed.
    pub removed: usize,
    /// Connections that changed endpoint.
    pub moved: u64,
    /// ... of which had to: their endpoint was removed.
    pub forced: u64,
    /// The share of each client's subset that changed, on average (0–1).
    pub per_client: f64,
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
    /// Requests per endpoint under equal client demand.
    pub requests: Ratios,
    /// After removing `remove_percent` of the endpoints (none at 0).
    pub churn: Option<Churn>,
}

/// Simulates `scenario`: every client's subset of a synthetic set, then
/// again after the removal. Memory grows with the endpoints only (but for
/// [`Method::Deterministic`], which keeps every subset).
pub fn simulate(scenario: &Scenario) -> Result<Report, ScenarioError> {
    let Scenario {
        method,
        clients,
        endpoints,
        subset,
        remove_percent,
        seed,
    } = *scenario;
    check(scenario)?;
    let before: Vec<u64> = (0..endpoints).map(|k| endpoint_hash(address(k))).collect();
    let removing =
        ((endpoints as f64 * remove_percent / 100.0).round() as usize).min(endpoints - 1);
    // The endpoints removed: the first `removing` in an order drawn from
    // the seed.
    let mut order: Vec<usize> = (0..endpoints).collect();
    order.sort_by_key(|&k| mix64(seed ^ mix64(k as u64 + 1)));
    let mut removed = vec![false; endpoints];
    order[..removing].iter().for_each(|&k| removed[k] = true);
    let after: Vec<u64> = (0..endpoints)
        .filter(|&k| !removed[k])
        .map(|k| before[k])
        .collect();
    let mut old = Subsets::new(method, &before, subset, clients, seed);
    let mut new = (removing > 0).then(|| Subsets::new(method, &after, subset, clients, seed));
    let mut counts = vec![0u64; endpoints];
    let mut load = vec![0.0f64; endpoints];
    let (mut moved, mut forced, mut changed) = (0u64, 0u64, 0.0f64);
    for client in 0..clients {
        let mine = old.next(client);
        for &(k, w) in &mine {
            counts[k] += 1;
            load[k] += w;
        }
        let Some(new) = &mut new else {
            continue;
        };
        let mut kept: Vec<u64> = new.next(client).iter().map(|&(k, _)| after[k]).collect();
        kept.sort_unstable();
        let mut lost = 0;
        for &(k, _) in &mine {
            if kept.binary_search(&before[k]).is_err() {
                lost += 1;
                forced += u64::from(removed[k]);
            }
        }
        moved += lost;
        changed += lost as f64 / mine.len().max(1) as f64;
    }
    let connections: u64 = counts.iter().sum();
    let mean_load = clients as f64 / endpoints as f64;
    let (min_load, max_load) = load
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &l| (lo.min(l), hi.max(l)));
    Ok(Report {
        connections,
        full_mesh: clients * endpoints as u64,
        per_endpoint: Spread {
            min: counts.iter().copied().min().unwrap_or(0),
            mean: connections as f64 / endpoints as f64,
            max: counts.iter().copied().max().unwrap_or(0),
        },
        requests: Ratios {
            min: min_load / mean_load,
            max: max_load / mean_load,
        },
        churn: (removing > 0).then_some(Churn {
            removed: removing,
            moved,
            forced,
            per_client: changed / clients as f64,
        }),
    })
}

fn check(scenario: &Scenario) -> Result<(), ScenarioError> {
    let &Scenario {
        method,
        clients,
        endpoints,
        subset,
        remove_percent,
        ..
    } = scenario;
    for (what, value) in [
        ("clients", clients),
        ("endpoints", endpoints as u64),
        ("subset", subset as u64),
    ] {
        if value == 0 {
            return Err(ScenarioError(format!("{what} must be at least 1")));
        }
    }
    if subset > endpoints {
        return Err(ScenarioError(format!(
            "a subset of {subset} is more than the {endpoints} endpoints; give at most {endpoints}"
        )));
    }
    if endpoints > MAX_ENDPOINTS {
        return Err(ScenarioError(format!(
            "{endpoints} endpoints is more than the {MAX_ENDPOINTS} simulated; the spread \
             depends on clients per endpoint, so simulate a proportional smaller fleet"
        )));
    }
    if !(0.0..100.0).contains(&remove_percent) {
        return Err(ScenarioError(format!(
            "removing {remove_percent} % is not a percentage below 100; give a value in [0, 100)"
        )));
    }
    if clients.saturating_mul(endpoints as u64) > MAX_PAIRS {
        return Err(ScenarioError(format!(
            "{clients} clients × {endpoints} endpoints is more than {MAX_PAIRS} pairs to \
             score; simulate a proportional smaller fleet (the spread depends on clients \
             per endpoint, clients × subset / endpoints)"
        )));
    }
    if method == Method::Deterministic && clients.saturating_mul(subset as u64) > MAX_WEIGHED {
        return Err(ScenarioError(format!(
            "{clients} clients × a subset of {subset} is more than the {MAX_WEIGHED} \
             weights kept at once; simulate a proportional smaller fleet"
        )));
    }
    Ok(())
}

/// Each client's subset of a fixed set of endpoints, client after client:
/// positions in the set, with the share of the client's demand each gets.
struct Subsets<'a> {
    method: Method,
    hashes: &'a [u64],
    size: usize,
    seed: u64,
    /// Deterministic: every client's, computed at once.
    weighed: Vec<Vec<(usize, f64)>>,
}

impl<'a> Subsets<'a> {
    fn new(method: Method, hashes: &'a [u64], size: usize, clients: u64, seed: u64) -> Self {
        let weighed = match method {
            Method::Deterministic => deterministic::assign(clients, hashes, size),
            _ => Vec::new(),
        };
        Subsets {
            method,
            hashes,
            size,
            seed,
            weighed,
        }
    }

    /// Client `c`'s subset (clients are asked for in order).
    fn next(&mut self, c: u64) -> Vec<(usize, f64)> {
        let equal = |chosen: Vec<usize>| {
            let share = 1.0 / chosen.len().max(1) as f64;
            chosen.into_iter().map(|k| (k, share)).collect()
        };
        match self.method {
            Method::None => equal((0..self.hashes.len()).collect()),
            Method::Random => {
                let client = mix64(self.seed ^ mix64(c.wrapping_add(0xA68)));
                equal(rendezvous::choose(client, self.hashes, self.size))
            }
            Method::Rendezvous => {
                let client = hash_bytes(format!("client-{c}").as_bytes());
                equal(rendezvous::choose(client, self.hashes, self.size))
            }
            Method::Deterministic => std::mem::take(&mut self.weighed[c as usize]),
        }
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
            remove_percent: 1.0,
            seed: 7,
        }
    }

    /// The issue's numbers: 1000 clients × 1000 endpoints, subsets of 20,
    /// 1 % of the endpoints removed.
    #[test]
    fn deterministic_subsetting_is_even_and_churns_little() {
        let r = simulate(&scenario(Method::Deterministic, 1000, 1000, 20)).unwrap();
        assert_eq!(r.connections, 20_000, "2 % of the full mesh");
        assert_eq!((r.per_endpoint.min, r.per_endpoint.max), (20, 20));
        assert!(r.requests.max <= 1.01 && r.requests.min >= 0.99, "{r:?}");
        let churn = r.churn.unwrap();
        assert_eq!(churn.removed, 10);
        assert!(churn.per_client <= 0.02, "{churn:?}");
    }

    #[test]
    fn random_and_rendezvous_spread_within_the_binomial() {
        for method in [Method::Random, Method::Rendezvous] {
            let r = simulate(&scenario(method, 1000, 1000, 20)).unwrap();
            assert_eq!(r.connections, 20_000);
            // Binomial(1000, 0.02): mean 20, σ ≈ 4.4.
            let max = r.per_endpoint.max as f64 / r.per_endpoint.mean;
            assert!(max > 1.3 && max < 2.5, "{method:?}: {r:?}");
            let churn = r.churn.unwrap();
            // Only the connections to removed endpoints move.
            assert_eq!(churn.moved, churn.forced, "{method:?}: {churn:?}");
        }
        let none = simulate(&scenario(Method::None, 100, 50, 20)).unwrap();
        assert_eq!(none.connections, none.full_mesh);
        assert!((none.requests.max - 1.0).abs() < 1e-9);
    }

    #[test]
    fn scenarios_that_cannot_work_are_refused() {
        let bad = |s: Scenario| simulate(&s).unwrap_err().to_string();
        assert!(bad(scenario(Method::Rendezvous, 10, 5, 6)).contains("more than the 5 endpoints"));
        assert_eq!(
            bad(scenario(Method::Rendezvous, 0, 5, 1)),
            "clients must be at least 1"
        );
        assert!(
            bad(scenario(Method::Rendezvous, 1, 2_000_000, 1)).contains("endpoints is more than")
        );
        for remove in [100.0, f64::NAN, -1.0] {
            let mut s = scenario(Method::Rendezvous, 10, 5, 1);
            s.remove_percent = remove;
            assert!(bad(s).contains("not a percentage"), "{remove}");
        }
        assert!(bad(scenario(Method::Rendezvous, 1_000_000, 1_000, 5)).contains("pairs"));
        assert!(bad(scenario(Method::Deterministic, 100_000, 1_000, 200)).contains("weights"));
    }
}
