use super::hashed::{identities, picker, HashOptions, HashTable};
use super::{Loads, Picker, Policy};
use crate::key::mix64;

/// Weighted rendezvous (highest-random-weight) hashing.
///
/// Every endpoint scores each key, `weight / -ln(u)` with `u` uniform from
/// `mix64(key ^ endpoint)`; the highest score wins, and the next highest
/// are the fallbacks, in order. Removing an endpoint moves only its keys;
/// weights are exact in expectation. O(n) per pick: for up to a few hundred
/// endpoints, or when a natural fallback order matters most.
///
/// ```
/// let policy = fulcrum_balance::pick::Rendezvous::default();
/// # drop(policy);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Rendezvous {
    options: HashOptions,
}

impl Rendezvous {
    /// Balance factor and fallback policy.
    pub fn options(mut self, options: HashOptions) -> Self {
        self.options = options;
        self
    }
}

#[derive(Debug)]
pub(crate) struct Scores {
    hashes: Box<[u64]>,
    weights: Box<[f64]>,
}

impl Scores {
    pub(crate) fn new(endpoints: &[(u64, u32)]) -> Scores {
        Scores {
            hashes: endpoints.iter().map(|&(h, _)| h).collect(),
            weights: endpoints
                .iter()
                .map(|&(_, w)| f64::from(w.max(1)))
                .collect(),
        }
    }

    /// Score of endpoint `i` for `key`; ties are broken by identity.
    ///
    /// `u` is strictly inside (0, 1): 52 random bits plus a half, exactly
    /// representable. The logarithm is libm's pure-Rust one, not the
    /// platform's, so every machine computes the same scores bit for bit.
    #[inline]
    fn score(&self, key: u64, i: usize) -> (f64, u64) {
        let h = self.hashes[i];
        let u = ((mix64(key ^ h) >> 12) as f64 + 0.5) / (1u64 << 52) as f64;
        (self.weights[i] / -libm::log(u), h)
    }
}

/// Endpoints by descending score: each step is a scan for the best score
/// below the previous one.
pub(crate) struct Descending<'a> {
    scores: &'a Scores,
    key: u64,
    below: Option<(f64, u64)>,
    left: usize,
}

impl Iterator for Descending<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut best: Option<(usize, (f64, u64))> = None;
        for i in 0..self.scores.hashes.len() {
            let s = self.scores.score(self.key, i);
            let under = self
                .below
                .is_none_or(|b| s.0 < b.0 || (s.0 == b.0 && s.1 < b.1));
            let better = best.is_none_or(|(_, b)| s.0 > b.0 || (s.0 == b.0 && s.1 > b.1));
            if under && better {
                best = Some((i, s));
            }
        }
        let (i, s) = best?;
        self.below = Some(s);
        Some(i)
    }
}

impl HashTable for Scores {
    type Order<'a> = Descending<'a>;

    fn order(&self, key: u64) -> Descending<'_> {
        Descending {
            scores: self,
            key,
            below: None,
            left: self.hashes.len(),
        }
    }
}

impl Policy for Rendezvous {
    fn picks_by_key(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        "rendezvous"
    }

    fn build(&self, loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        picker(
            Scores::new(&identities(loads)),
            loads,
            &self.options,
            previous,
        )
    }

    fn uses_latency(&self) -> bool {
        self.options.uses_latency()
    }

    fn tracks_total_load(&self) -> bool {
        self.options.tracks_total_load()
    }
}
