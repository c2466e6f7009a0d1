//! Pickers: how one endpoint is chosen per request.
//!
//! A [`Policy`] is the configuration ("P2C on peak EWMA"); whenever the set of
//! ready endpoints changes, the balancer's driver calls [`Policy::build`] to
//! make a [`Picker`], a plain data structure that is then read, lock-free, by
//! every request until the next change. Per-request load (in-flight counts,
//! latency estimates) is read through [`Loads`] at pick time.
//!
//! | name | policy | per pick |
//! |---|---|---|
//! | `ewma` (default) | [`PeakEwmaP2c`]: P2C on `rtt × (in_flight + 1) / weight` | O(1) |
//! | `p2c` | [`PendingP2c`]: P2C on `(in_flight + 1) / weight` | O(1) |
//! | `least-conn` | [`LeastConn`]: exact minimum of `(in_flight + 1) / weight` | O(n) |
//! | `round-robin` | [`RoundRobin`]: strict rotation | O(1) |
//! | `weighted-round-robin` | [`WeightedRoundRobin`]: smooth interleaving by weight | O(1) |
//! | `random` | [`Random`]: uniform | O(1) |
//! | `weighted-random` | [`WeightedRandom`]: alias table | O(1) |
//! | `ring-hash` | [`RingHash`]: consistent hashing on a ring, points ∝ weight | O(log n) |
//! | `maglev` | [`Maglev`]: Maglev lookup table (65537 entries), weighted | O(1) |
//! | `rendezvous` | [`Rendezvous`]: weighted highest-random-weight | O(n) |
//!
//! The hash pickers send requests with the same key (see
//! [`key`](crate::key)) to the same endpoint in every client, fall back in
//! their own order when that endpoint is down or over its load bound
//! ([`HashOptions::balance_factor`]), and send requests without a key to a
//! fallback policy (`ewma` by default). [`Sticky`] keeps sessions on the
//! endpoint they were first placed on, whatever policy placed them.
//!
//! # Writing your own
//!
//! ```
//! use fulcrum_balance::pick::{Loads, PickContext, Picker, Policy};
//!
//! /// Always the first endpoint with nothing in flight, else a random one.
//! #[derive(Debug)]
//! struct FirstIdle;
//!
//! impl Picker for FirstIdle {
//!     fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
//!         let n = cx.loads().len();
//!         (0..n)
//!             .find(|&i| cx.loads().in_flight(i) == 0)
//!             .or_else(|| (n > 0).then(|| cx.random_below(n)))
//!     }
//! }
//!
//! impl Policy for FirstIdle {
//!     fn name(&self) -> &str {
//!         "first-idle"
//!     }
//!     fn build(&self, _loads: &Loads<'_>) -> Box<dyn Picker> {
//!         Box::new(FirstIdle)
//!     }
//! }
//!
//! let balancer_builder = fulcrum_balance::Balancer::builder().policy(FirstIdle);
//! # drop(balancer_builder);
//! ```

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use fulcrum_core::Endpoint;

use crate::slot::Slot;

mod ewma;
mod hashed;
mod least_conn;
mod maglev;
mod measure;
mod p2c;
mod random;
mod rendezvous;
mod ring_hash;
mod round_robin;
mod sticky;
mod weighted_random;
mod weighted_round_robin;

#[cfg(test)]
mod hash_tests;

pub use ewma::PeakEwmaP2c;
pub use hashed::HashOptions;
pub use least_conn::LeastConn;
pub use maglev::Maglev;
pub use measure::{measure, Measurement};
pub use p2c::PendingP2c;
pub use random::Random;
pub use rendezvous::Rendezvous;
pub use ring_hash::RingHash;
pub use round_robin::RoundRobin;
pub use sticky::Sticky;
pub use weighted_random::WeightedRandom;
pub use weighted_round_robin::WeightedRoundRobin;

/// A load-balancing policy: builds a [`Picker`] for a set of ready endpoints.
pub trait Policy: Send + Sync + fmt::Debug + 'static {
    /// The policy's name, as used on the command line and in stats.
    fn name(&self) -> &str;

    /// Builds the picker for these endpoints. Called by the driver, off the
    /// request path, each time the ready set or a weight changes.
    fn build(&self, loads: &Loads<'_>) -> Box<dyn Picker>;

    /// Whether this policy reads latency ([`Loads::rtt_estimate`]). If so,
    /// every request is timed (two clock reads). If not, the balancer times
    /// one request in 16 per handle, enough for stats and health, and saves
    /// most of the clock cost (~20 ns per request on a VM). Failures are
    /// recorded either way. Defaults to `true`, the safe choice.
    fn uses_latency(&self) -> bool {
        true
    }

    /// Whether this policy reads [`Loads::total_in_flight`] (bounded-load
    /// hashing does). Only then does the balancer keep that count, which
    /// costs a shared atomic update per request.
    fn tracks_total_load(&self) -> bool {
        false
    }
}

/// Chooses one endpoint per request. Must be cheap, must not block, and must
/// not allocate: it runs on every request.
pub trait Picker: Send + Sync + fmt::Debug + 'static {
    /// The index (into [`PickContext::loads`]) of the endpoint to use, or
    /// `None` if this picker has nothing to offer. An index out of range is
    /// ignored by the balancer.
    ///
    /// [`PickContext::attempt`] is 0 on the first try; the balancer asks again
    /// with a higher attempt when the endpoint it got has just become
    /// unavailable, so an ordered picker should move to its next candidate.
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize>;
}

/// Read-only view of the ready endpoints and their live load.
#[derive(Clone, Copy)]
pub struct Loads<'a> {
    slots: &'a [Arc<Slot>],
    weights: &'a [u32],
    total: Option<&'a AtomicU64>,
}

impl fmt::Debug for Loads<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().map(|s| s.endpoint.addr()))
            .finish()
    }
}

impl<'a> Loads<'a> {
    pub(crate) fn new(slots: &'a [Arc<Slot>], weights: &'a [u32]) -> Self {
        debug_assert_eq!(slots.len(), weights.len());
        Loads {
            slots,
            weights,
            total: None,
        }
    }

    pub(crate) fn with_total(mut self, total: Option<&'a AtomicU64>) -> Self {
        self.total = total;
        self
    }

    /// Requests in flight to all endpoints of the balancer, if the policy
    /// asked for it ([`Policy::tracks_total_load`]).
    #[inline]
    pub fn total_in_flight(&self) -> Option<u64> {
        self.total
            .map(|t| t.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether the endpoint at `i` takes requests right now. (The ready set
    /// is rebuilt when this changes; in between, a picker that keeps an
    /// order of its own should skip endpoints for which this is false.)
    #[inline]
    pub fn is_active(&self, i: usize) -> bool {
        self.slots[i].is_active()
    }

    /// Number of ready endpoints.
    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no endpoint is ready.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The endpoint at `i`.
    #[inline]
    pub fn endpoint(&self, i: usize) -> &'a Endpoint {
        &self.slots[i].endpoint
    }

    /// The effective weight at `i`, always ≥ 1. (Weight-0 standbys only
    /// appear when no positive-weight endpoint is ready; they then count 1.)
    #[inline]
    pub fn weight(&self, i: usize) -> u32 {
        self.weights[i]
    }

    /// Requests in flight to the endpoint at `i`.
    #[inline]
    pub fn in_flight(&self, i: usize) -> u32 {
        self.slots[i].in_flight.get()
    }

    /// Peak-EWMA latency estimate of the endpoint at `i`, in nanoseconds, at
    /// time `now` (from [`PickContext::now`]).
    #[inline]
    pub fn rtt_estimate(&self, i: usize, now: u64) -> f64 {
        self.slots[i].ewma.estimate(now)
    }
}

/// Everything a [`Picker`] may look at for one pick.
#[derive(Debug)]
pub struct PickContext<'a> {
    loads: Loads<'a>,
    rng: &'a mut fastrand::Rng,
    key: Option<u64>,
    attempt: u32,
    now: Option<u64>,
}

impl<'a> PickContext<'a> {
    pub(crate) fn new(loads: Loads<'a>, rng: &'a mut fastrand::Rng, key: Option<u64>) -> Self {
        PickContext {
            loads,
            rng,
            key,
            attempt: 0,
            now: None,
        }
    }

    pub(crate) fn set_attempt(&mut self, attempt: u32) {
        self.attempt = attempt;
    }

    /// Whether the clock was read during this pick (so the caller can reuse it).
    pub(crate) fn clock_read(&self) -> Option<u64> {
        self.now
    }

    /// The ready endpoints and their load.
    #[inline]
    pub fn loads(&self) -> &Loads<'a> {
        &self.loads
    }

    /// The request's affinity key, if a key extractor produced one.
    #[inline]
    pub fn key(&self) -> Option<u64> {
        self.key
    }

    /// 0 for the first try; higher when the balancer asks again.
    #[inline]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A uniformly random number in `0..n`. `n` must be at least 1.
    #[inline]
    pub fn random_below(&mut self, n: usize) -> usize {
        self.rng.usize(..n)
    }

    /// A random `u64`.
    #[inline]
    pub fn random_u64(&mut self) -> u64 {
        self.rng.u64(..)
    }

    /// The time now ([`fulcrum_core::time::now`]), read at most once per pick.
    #[inline]
    pub fn now(&mut self) -> u64 {
        *self.now.get_or_insert_with(fulcrum_core::time::now)
    }

    /// Two distinct random indices, for power-of-two-choices pickers. With a
    /// single endpoint both are 0.
    ///
    /// Both come from one 64-bit draw, each half scaled into range by a
    /// multiply-shift; the bias is below `n / 2^32`, negligible for any
    /// endpoint count.
    #[inline]
    pub fn two_random(&mut self) -> (usize, usize) {
        let n = self.loads.len();
        if n < 2 {
            return (0, 0);
        }
        let r = self.rng.u64(..);
        let a = (((r & 0xFFFF_FFFF) * n as u64) >> 32) as usize;
        let mut b = (((r >> 32) * (n as u64 - 1)) >> 32) as usize;
        if b >= a {
            b += 1;
        }
        (a, b)
    }
}

/// The names of the built-in policies, as accepted by [`by_name`].
pub const POLICY_NAMES: &[&str] = &[
    "ewma",
    "p2c",
    "least-conn",
    "round-robin",
    "weighted-round-robin",
    "random",
    "weighted-random",
    "ring-hash",
    "maglev",
    "rendezvous",
];

/// A built-in policy by its name (see [`POLICY_NAMES`]).
///
/// ```
/// let p = fulcrum_balance::pick::by_name("least-conn").unwrap();
/// assert_eq!(p.name(), "least-conn");
/// let err = fulcrum_balance::pick::by_name("fastest").unwrap_err();
/// assert!(err.to_string().contains("round-robin"));
/// ```
pub fn by_name(name: &str) -> Result<Arc<dyn Policy>, UnknownPolicy> {
    Ok(match name {
        "ewma" => Arc::new(PeakEwmaP2c),
        "p2c" => Arc::new(PendingP2c),
        "least-conn" => Arc::new(LeastConn),
        "round-robin" => Arc::new(RoundRobin::default()),
        "weighted-round-robin" => Arc::new(WeightedRoundRobin::default()),
        "random" => Arc::new(Random),
        "weighted-random" => Arc::new(WeightedRandom),
        "ring-hash" => Arc::new(RingHash::default()),
        "maglev" => Arc::new(Maglev::default()),
        "rendezvous" => Arc::new(Rendezvous::default()),
        other => return Err(UnknownPolicy(other.to_owned())),
    })
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
    Ok(match name {
        "ring-hash" => Arc::new(RingHash::default().options(options)),
        "maglev" => Arc::new(Maglev::default().options(options)),
        "rendezvous" => Arc::new(Rendezvous::default().options(options)),
        other => by_name(other)?,
    })
}

/// [`by_name`] was given a name it does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPolicy(String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown policy `{}`; choose one of: {}",
            self.0,
            POLICY_NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownPolicy {}

/// Power of two choices: two distinct random endpoints, the one for which
/// `a_wins(loads, a, b, now)` holds, else the other. `now` is read only when
/// `with_clock` (latency-aware costs need it).
#[inline]
pub(crate) fn power_of_two(
    cx: &mut PickContext<'_>,
    with_clock: bool,
    a_wins: impl Fn(&Loads<'_>, usize, usize, u64) -> bool,
) -> Option<usize> {
    match cx.loads().len() {
        0 => None,
        1 => Some(0),
        _ => {
            let (a, b) = cx.two_random();
            let now = if with_clock { cx.now() } else { 0 };
            Some(if a_wins(cx.loads(), a, b, now) { a } else { b })
        }
    }
}

/// `(in_flight_a + 1) / weight_a <= (in_flight_b + 1) / weight_b`, without
/// division. The `+ 1` makes weights count on idle endpoints too.
#[inline]
pub(crate) fn pending_le(loads: &Loads<'_>, a: usize, b: usize) -> bool {
    let ca = u64::from(loads.in_flight(a)) + 1;
    let cb = u64::from(loads.in_flight(b)) + 1;
    ca * u64::from(loads.weight(b)) <= cb * u64::from(loads.weight(a))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builds `Loads` over detached slots for picker unit tests.
    use super::*;
    use fulcrum_core::load::EwmaConfig;

    pub(crate) struct Fixture {
        pub(crate) slots: Vec<Arc<Slot>>,
        pub(crate) weights: Vec<u32>,
        /// Total in flight, as the balancer keeps it for bounded load.
        pub(crate) total: AtomicU64,
    }

    impl Fixture {
        pub(crate) fn weighted(weights: &[u32]) -> Self {
            let slots = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| {
                    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16));
                    Arc::new(Slot::detached(
                        Endpoint::new(addr).with_weight(w),
                        &EwmaConfig::default(),
                    ))
                })
                .collect();
            Fixture {
                slots,
                weights: weights.to_vec(),
                total: AtomicU64::new(0),
            }
        }

        /// Endpoints 10.0.x.y:80 numbered `ids`, all of weight 1: removing
        /// an id leaves the others' identities unchanged.
        pub(crate) fn numbered(ids: impl IntoIterator<Item = u16>) -> Self {
            let slots: Vec<Arc<Slot>> = ids
                .into_iter()
                .map(|i| {
                    let addr = std::net::SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 80));
                    Arc::new(Slot::detached(Endpoint::new(addr), &EwmaConfig::default()))
                })
                .collect();
            let weights = vec![1; slots.len()];
            Fixture {
                slots,
                weights,
                total: AtomicU64::new(0),
            }
        }

        /// The endpoint (address) each key maps to.
        pub(crate) fn owners(
            &self,
            policy: &dyn Policy,
            keys: impl Iterator<Item = u64>,
        ) -> Vec<std::net::SocketAddr> {
            let picker = policy.build(&self.loads());
            let mut rng = fastrand::Rng::with_seed(0);
            keys.map(|k| {
                let mut cx = PickContext::new(self.loads(), &mut rng, Some(k));
                self.slots[picker.pick(&mut cx).expect("a pick")]
                    .endpoint
                    .addr()
            })
            .collect()
        }

        pub(crate) fn equal(n: usize) -> Self {
            Self::weighted(&vec![1; n])
        }

        pub(crate) fn loads(&self) -> Loads<'_> {
            Loads::new(&self.slots, &self.weights).with_total(Some(&self.total))
        }

        /// Picks `count` times with a fixed seed and returns the indices.
        pub(crate) fn picks(&self, policy: &dyn Policy, count: usize, seed: u64) -> Vec<usize> {
            let picker = policy.build(&self.loads());
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..count)
                .map(|_| {
                    let mut cx = PickContext::new(self.loads(), &mut rng, None);
                    picker.pick(&mut cx).expect("a pick")
                })
                .collect()
        }

        pub(crate) fn counts(&self, policy: &dyn Policy, count: usize, seed: u64) -> Vec<usize> {
            let mut counts = vec![0; self.slots.len()];
            for i in self.picks(policy, count, seed) {
                counts[i] += 1;
            }
            counts
        }
    }
}
