//! The built-in policies by name, as the command line and configuration
//! files name them.

use std::fmt;
use std::sync::Arc;

use super::{
    HashOptions, LeastConn, Maglev, PeakEwmaP2c, PendingP2c, Policy, Random, Rendezvous, RingHash,
    RoundRobin, WeightedRandom, WeightedRoundRobin,
};

/// Makes a built-in policy with hash options (ignored by the policies that
/// do not hash).
type MakePolicy = fn(HashOptions) -> Arc<dyn Policy>;

/// Each built-in policy: its name and how to make it.
const POLICIES: &[(&str, MakePolicy)] = &[
    ("ewma", |_| Arc::new(PeakEwmaP2c)),
    ("p2c", |_| Arc::new(PendingP2c)),
    ("least-conn", |_| Arc::new(LeastConn)),
    ("round-robin", |_| Arc::new(RoundRobin)),
    ("weighted-round-robin", |_| Arc::new(WeightedRoundRobin)),
    ("random", |_| Arc::new(Random)),
    ("weighted-random", |_| Arc::new(WeightedRandom)),
    ("ring-hash", |o| Arc::new(RingHash::default().options(o))),
    ("maglev", |o| Arc::new(Maglev::default().options(o))),
    ("rendezvous", |o| Arc::new(Rendezvous::default().options(o))),
];

/// The names of the built-in policies, as accepted by [`by_name`].
///
/// ```
/// let names: Vec<&str> = fulcrum_balance::pick::policy_names().collect();
/// assert_eq!(names[0], "ewma");
/// assert!(names.contains(&"maglev"));
/// ```
pub fn policy_names() -> impl Iterator<Item = &'static str> {
    POLICIES.iter().map(|&(name, _)| name)
}

/// A built-in policy by its name (see [`policy_names`]).
///
/// ```
/// let p = fulcrum_balance::pick::by_name("least-conn").unwrap();
/// assert_eq!(p.name(), "least-conn");
/// let err = fulcrum_balance::pick::by_name("fastest").unwrap_err();
/// assert!(err.to_string().contains("round-robin"));
/// ```
pub fn by_name(name: &str) -> Result<Arc<dyn Policy>, UnknownPolicy> {
    by_name_with(name, HashOptions::default())
}

/// A built-in policy by name, with hash options (for `ring-hash`, `maglev`
/// and `rendezvous`; ignored by the others), e.g. a balance factor from a
/// `--balance-factor` flag.
///
/// ```
/// use fulcrum_balance::pick::{by_name_with, HashOptions};
///
/// let p = by_name_with("maglev", HashOptions::default().balance_factor(1.25)).unwrap();
/// assert!(p.tracks_total_load());
/// ```
pub fn by_name_with(name: &str, options: HashOptions) -> Result<Arc<dyn Policy>, UnknownPolicy> {
    POLICIES
        .iter()
        .find(|&&(known, _)| known == name)
        .map(|&(_, make)| make(options))
        .ok_or_else(|| UnknownPolicy(name.to_owned()))
}

/// [`by_name`] was given a name it does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPolicy(String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown policy `{}`; choose one of: ", self.0)?;
        for (i, name) in policy_names().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownPolicy {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_the_policy_of_that_name() {
        for name in policy_names() {
            assert_eq!(by_name(name).unwrap().name(), name);
        }
    }
}
