//! One endpoint's live state, shared by the driver, the pickers and every
//! in-flight request to it.

use std::any::Any;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Weak;

use fulcrum_core::load::{EwmaConfig, InFlight, PeakEwma};
use fulcrum_core::Endpoint;
use serde::Serialize;

/// Where an endpoint is in its life cycle.
///
/// `Warming → Active ⇄ Unavailable`, and `→ Draining → gone` when discovery
/// removes it. Only discovery removes an endpoint; failures only make it
/// unavailable for a backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndpointState {
    /// Its service is being made (connecting).
    Warming,
    /// Takes requests.
    Active,
    /// Its service failed readiness or could not be made; backing off
    /// before it is made again.
    Unavailable,
    /// Removed by discovery; finishing its in-flight requests, taking no new ones.
    Draining,
}

impl EndpointState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => EndpointState::Warming,
            1 => EndpointState::Active,
            2 => EndpointState::Unavailable,
            _ => EndpointState::Draining,
        }
    }
}

/// `repr(C)` with the fields every request touches first, so that with the
/// `Arc` counts in front of them a pick reads as few cache lines as possible.
#[repr(C)]
pub(crate) struct Slot {
    pub(crate) ewma: PeakEwma,
    /// In flight, and (packed in the same word) finished: see [`InFlight`].
    pub(crate) in_flight: InFlight,
    state: AtomicU8,
    pub(crate) failures: AtomicU64,
    pub(crate) endpoint: Endpoint,
    /// Configured weight and priority; discovery may change them in place.
    pub(crate) weight: AtomicU32,
    pub(crate) priority: AtomicU32,
    /// Consecutive readiness failures, for the backoff exponent.
    pub(crate) not_ready_streak: AtomicU32,
    /// The balancer's shared state, type-erased: a request whose endpoint
    /// fails readiness upgrades it to pick another endpoint. Weak, so
    /// in-flight requests do not keep a dropped balancer alive.
    pub(crate) owner: Weak<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("endpoint", &self.endpoint)
            .field("state", &self.state())
            .field("in_flight", &self.in_flight.get())
            .finish()
    }
}

impl Slot {
    pub(crate) fn new(
        endpoint: Endpoint,
        ewma: &EwmaConfig,
        owner: Weak<dyn Any + Send + Sync>,
    ) -> Self {
        Slot {
            weight: AtomicU32::new(endpoint.weight()),
            priority: AtomicU32::new(endpoint.priority()),
            endpoint,
            in_flight: InFlight::default(),
            ewma: PeakEwma::new(ewma),
            failures: AtomicU64::new(0),
            state: AtomicU8::new(EndpointState::Warming as u8),
            not_ready_streak: AtomicU32::new(0),
            owner,
        }
    }

    #[cfg(test)]
    pub(crate) fn detached(endpoint: Endpoint, ewma: &EwmaConfig) -> Self {
        let owner: Weak<dyn Any + Send + Sync> = Weak::<()>::new();
        let slot = Slot::new(endpoint, ewma, owner);
        slot.set_state(EndpointState::Active);
        slot
    }

    #[inline]
    pub(crate) fn state(&self) -> EndpointState {
        EndpointState::from_u8(self.state.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.state.load(Ordering::Acquire) == EndpointState::Active as u8
    }

    pub(crate) fn set_state(&self, state: EndpointState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Request path: the service failed readiness. True if this call moved
    /// it from active to unavailable (so the driver must be told).
    pub(crate) fn mark_not_ready(&self) -> bool {
        self.not_ready_streak.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.state
            .compare_exchange(
                EndpointState::Active as u8,
                EndpointState::Unavailable as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Request path: the service was ready; the readiness streak is over.
    #[inline]
    pub(crate) fn mark_ready(&self) {
        if self.not_ready_streak.load(Ordering::Relaxed) != 0 {
            self.not_ready_streak.store(0, Ordering::Relaxed);
        }
    }
}
