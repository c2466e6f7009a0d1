//! What a picker sees: the ready endpoints' live load ([`Loads`]) and one
//! pick's inputs ([`PickContext`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fulcrum_core::Endpoint;

use crate::slot::{Slot, RAMP_FULL};

/// Read-only view of the ready endpoints and their live load.
///
/// Build one for a unit test of your own picker with
/// [`TestEndpoints::loads`](super::TestEndpoints::loads).
#[derive(Clone, Copy)]
pub struct Loads<'a> {
    slots: &'a [Arc<Slot>],
    weights: &'a [u32],
    total: Option<&'a AtomicU64>,
    ramping: bool,
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
            ramping: false,
        }
    }

    /// Some endpoint is in slow start (see [`admits_key`](Self::admits_key)).
    pub(crate) fn with_ramping(mut self, ramping: bool) -> Self {
        self.ramping = ramping;
        self
    }

    /// Whether some endpoint is in slow start
    /// ([`SlowStart`](crate::health::SlowStart)) while others are not.
    #[inline]
    pub fn ramping(&self) -> bool {
        self.ramping
    }

    /// The slow-start share of the endpoint at `i`, in `(0, 1]`: 1 unless
    /// it is ramping up.
    #[inline]
    pub fn slow_start(&self, i: usize) -> f64 {
        if !self.ramping {
            return 1.0;
        }
        f64::from(self.slots[i].ramp.load(Ordering::Relaxed)) / f64::from(RAMP_FULL)
    }

    /// Whether the endpoint at `i` takes a request with this key during
    /// its slow start: it does when the key's hash with the endpoint falls
    /// below its share, so the same keys arrive first in every client, and
    /// a key that has arrived stays while the share grows. Always true when
    /// nothing ramps. Hash pickers skip the endpoints that do not admit a
    /// key, as they skip those that are down.
    #[inline]
    pub fn admits_key(&self, i: usize, key: u64) -> bool {
        !self.ramping || self.admits(i, crate::key::mix64(key ^ self.slots[i].addr_hash))
    }

    /// Whether the endpoint at `i` takes a request, given a uniformly
    /// random `draw`: with the probability of its slow-start share.
    #[inline]
    pub(crate) fn admits(&self, i: usize, draw: u64) -> bool {
        let ramp = self.slots[i].ramp.load(Ordering::Relaxed);
        ramp >= RAMP_FULL || ((draw >> 48) as u32) < ramp
    }

    pub(crate) fn with_total(mut self, total: Option<&'a AtomicU64>) -> Self {
        self.total = total;
        self
    }

    /// Requests in flight to all endpoints of the balancer, if the policy
    /// asked for it ([`Policy::tracks_total_load`](super::Policy::tracks_total_load)).
    #[inline]
    pub fn total_in_flight(&self) -> Option<u64> {
        self.total.map(|t| t.load(Ordering::Relaxed))
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
    /// time `now` (from [`PickContext::now`]); `None` until the endpoint has
    /// answered (since it was added, or re-admitted after being out of
    /// service). A picker must not starve an endpoint for having no
    /// estimate: the built-in `ewma` scores it as fast as the endpoint it is
    /// compared with.
    #[inline]
    pub fn latency(&self, i: usize, now: u64) -> Option<f64> {
        self.slots[i].ewma.sampled_estimate(now)
    }
}

/// Everything a [`Picker`](super::Picker) may look at for one pick.
///
/// ```
/// use fulcrum_balance::pick::{PickContext, Picker, Policy, RoundRobin, TestEndpoints};
///
/// let endpoints = TestEndpoints::equal(3);
/// let picker = RoundRobin.build(&endpoints.loads(), None);
/// let mut rng = fastrand::Rng::with_seed(1);
/// let mut cx = PickContext::new(endpoints.loads(), &mut rng, None);
/// assert_eq!(picker.pick(&mut cx), Some(0));
/// ```
#[derive(Debug)]
pub struct PickContext<'a> {
    loads: Loads<'a>,
    rng: &'a mut fastrand::Rng,
    key: Option<u64>,
    now: Option<u64>,
}

impl<'a> PickContext<'a> {
    /// A pick over `loads` with randomness from `rng` and an optional
    /// affinity key.
    pub fn new(loads: Loads<'a>, rng: &'a mut fastrand::Rng, key: Option<u64>) -> Self {
        PickContext {
            loads,
            rng,
            key,
            now: None,
        }
    }

    /// The clock reading taken during this pick, if any (the balancer reuses
    /// it as the request's dispatch time).
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
