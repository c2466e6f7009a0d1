//! Endpoints with load you set by hand, to unit-test a picker without a
//! balancer.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use fulcrum_core::load::EwmaConfig;
use fulcrum_core::Endpoint;

use super::{Loads, PickContext, Policy};
use crate::slot::{EndpointState, Slot};

/// A set of ready endpoints whose in-flight counts, latencies and
/// availability a test sets, and helpers to run a policy's picker over them.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::pick::{PeakEwmaP2c, TestEndpoints};
///
/// let endpoints = TestEndpoints::equal(2);
/// endpoints.record_latency(0, Duration::from_millis(50));
/// endpoints.record_latency(1, Duration::from_millis(5));
/// assert_eq!(endpoints.counts(&PeakEwmaP2c, 100, 1), vec![0, 100]);
/// ```
#[derive(Debug)]
pub struct TestEndpoints {
    pub(crate) slots: Vec<Arc<Slot>>,
    pub(crate) weights: Vec<u32>,
    /// Total in flight, as a balancer keeps it for bounded load.
    pub(crate) total: AtomicU64,
}

impl TestEndpoints {
    /// These endpoints, all active, with their weights (0 counts as 1).
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        let slots: Vec<Arc<Slot>> = endpoints
            .into_iter()
            .map(|ep| Arc::new(Slot::detached(ep, &EwmaConfig::default())))
            .collect();
        let weights = slots.iter().map(|s| s.endpoint.weight().max(1)).collect();
        TestEndpoints {
            slots,
            weights,
            total: AtomicU64::new(0),
        }
    }

    /// `n` endpoints of weight 1 (127.0.0.1:10000, :10001, …).
    pub fn equal(n: usize) -> Self {
        Self::weighted(&vec![1; n])
    }

    /// One endpoint per weight (127.0.0.1:10000, :10001, …).
    pub fn weighted(weights: &[u32]) -> Self {
        Self::new(weights.iter().enumerate().map(|(i, &w)| {
            let addr = SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16));
            Endpoint::new(addr).with_weight(w)
        }))
    }

    /// Endpoints 10.0.x.y:80 numbered `ids`, all of weight 1: removing an id
    /// leaves the others' identities unchanged (for hashing tests).
    pub fn numbered(ids: impl IntoIterator<Item = u16>) -> Self {
        Self::new(
            ids.into_iter()
                .map(|i| Endpoint::new(SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 80)))),
        )
    }

    /// The view a picker gets.
    pub fn loads(&self) -> Loads<'_> {
        Loads::new(&self.slots, &self.weights).with_total(Some(&self.total))
    }

    /// The address of endpoint `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.slots[i].endpoint.addr()
    }

    /// Counts `n` more requests in flight to endpoint `i`.
    pub fn add_in_flight(&self, i: usize, n: u32) {
        for _ in 0..n {
            self.slots[i].in_flight.enter();
            self.total
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Records a response from endpoint `i` that took `latency`, now.
    pub fn record_latency(&self, i: usize, latency: Duration) {
        let now = fulcrum_core::time::now();
        self.slots[i]
            .ewma
            .record(latency.as_nanos().min(u128::from(u64::MAX)) as u64, now);
    }

    /// Takes endpoint `i` out of service, as a failed readiness check would
    /// (its [`Loads::is_active`] becomes false).
    pub fn take_down(&self, i: usize) {
        self.slots[i].set_state(EndpointState::Unavailable);
    }

    /// Picks `count` times with a fixed seed (and no key) and returns the
    /// indices.
    pub fn picks(&self, policy: &dyn Policy, count: usize, seed: u64) -> Vec<usize> {
        let picker = policy.build(&self.loads(), None);
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..count)
            .map(|_| {
                let mut cx = PickContext::new(self.loads(), &mut rng, None);
                picker.pick(&mut cx).expect("a pick")
            })
            .collect()
    }

    /// How many of `count` picks (see [`picks`](Self::picks)) each endpoint got.
    pub fn counts(&self, policy: &dyn Policy, count: usize, seed: u64) -> Vec<usize> {
        let mut counts = vec![0; self.slots.len()];
        for i in self.picks(policy, count, seed) {
            counts[i] += 1;
        }
        counts
    }

    /// The endpoint each key maps to.
    pub fn owners(&self, policy: &dyn Policy, keys: impl Iterator<Item = u64>) -> Vec<SocketAddr> {
        let picker = policy.build(&self.loads(), None);
        let mut rng = fastrand::Rng::with_seed(0);
        keys.map(|k| {
            let mut cx = PickContext::new(self.loads(), &mut rng, Some(k));
            self.addr(picker.pick(&mut cx).expect("a pick"))
        })
        .collect()
    }
}
