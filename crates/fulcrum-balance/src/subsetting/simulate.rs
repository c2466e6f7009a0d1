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

/// The largest `clients × endpoints` simulated: a few seconds of work on
/// one core (each pair is one hash, twice with churn).
pub const MAX_PAIRS: u64 = 200_000_000;

/// The most endpoints simulated.
pub const MAX_ENDPOINTS: usize = 1 << 20;

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
/// again after the replacement. Memory grows with the endpoints only:
/// each client's subsets are compared and dropped.
pub fn simulate(scenario: &Scenario) -> Result<Report, ScenarioError> {
    let Scenario {
        method,
        clients,
        endpoints,
        subset,
        churn_percent,
    } = *scenario;
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
    if !(0.0..=100.0).contains(&churn_percent) {
        return Err(ScenarioError(format!(
            "churn {churn_percent} is not a percentage; give a value between 0 and 100"
        )));
    }
    if clients.saturating_mul(endpoints as u64) > MAX_PAIRS {
        return Err(ScenarioError(format!(
            "{clients} clients × {endpoints} endpoints is more than {MAX_PAIRS} pairs to \
             score; simulate a proportional smaller fleet (the spread depends on clients \
             per endpoint, clients × subset / endpoints)"
        )));
    }
    let before: Vec<SocketAddr> = (0..endpoints).map(address).collect();
    let replaced = ((endpoints as f64 * churn_percent / 100.0).round() as usize).min(endpoints);
    // Every `endpoints / replaced`-th endpoint leaves; as many new ones
    // (addresses never used before) join.
    let mut removed = vec![false; endpoints];
    if let Some(step) = endpoints.checked_div(replaced) {
        (0..replaced).for_each(|r| removed[r * step] = true);
    }
    let mut after: Vec<SocketAddr> = (0..endpoints)
        .filter(|&k| !removed[k])
        .map(|k| before[k])
        .collect();
    after.extend((0..replaced).map(|r| address(endpoints + r)));
    let old = Chooser::new(method, &before, subset);
    let new = (replaced > 0).then(|| Chooser::new(method, &after, subset));
    let mut counts = vec![0u64; endpoints];
    let (mut moved, mut forced) = (0u64, 0u64);
    for client in 0..clients {
        let mine = old.choose(client);
        mine.iter().for_each(|&k| counts[k] += 1);
        let Some(new) = &new else {
            continue;
        };
        let mut kept: Vec<SocketAddr> = new.choose(client).iter().map(|&k| after[k]).collect();
        kept.sort_unstable();
        for &k in &mine {
            if kept.binary_search(&before[k]).is_err() {
                moved += 1;
                forced += u64::from(removed[k]);
            }
        }
    }
    let connections: u64 = counts.iter().sum();
    Ok(Report {
        connections,
        full_mesh: clients * endpoints as u64,
        per_endpoint: Spread {
            min: counts.iter().copied().min().unwrap_or(0),
            mean: connections as f64 / endpoints as f64,
            max: counts.iter().copied().max().unwrap_or(0),
        },
        churn: (replaced > 0).then_some(Churn {
            replaced,
            moved,
            forced,
        }),
    })
}

/// One client's subset of a fixed set of endpoints, by client number.
struct Chooser<'a> {
    method: Method,
    addrs: &'a [SocketAddr],
    hashes: Vec<u64>,
    size: usize,
}

impl<'a> Chooser<'a> {
    fn new(method: Method, addrs: &'a [SocketAddr], size: usize) -> Self {
        let hashes = match method {
            Method::Rendezvous => addrs.iter().copied().map(endpoint_hash).collect(),
            Method::Deterministic => Vec::new(),
        };
        Chooser {
            method,
            addrs,
            hashes,
            size,
        }
    }

    /// Positions in the set of the subset of client `c` (named
    /// `client-{c}`, or at coordinate `c`).
    fn choose(&self, c: u64) -> Vec<usize> {
        match self.method {
            Method::Rendezvous => {
                let client = hash_bytes(format!("client-{c}").as_bytes());
                rendezvous::choose(client, &self.hashes, self.size)
            }
            Method::Deterministic => deterministic::choose(c, self.addrs, self.size),
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
        assert_eq!(
            bad(scenario(Method::Rendezvous, 0, 5, 1)),
            "clients must be at least 1"
        );
        assert!(
            bad(scenario(Method::Rendezvous, 1, 2_000_000, 1)).contains("endpoints is more than")
        );
        for churn in [150.0, f64::NAN, -1.0] {
            let mut s = scenario(Method::Rendezvous, 10, 5, 1);
            s.churn_percent = churn;
            assert!(bad(s).contains("not a percentage"), "{churn}");
        }
        assert!(bad(scenario(Method::Rendezvous, 1_000_000, 1_000, 5)).contains("pairs"));
    }
}
