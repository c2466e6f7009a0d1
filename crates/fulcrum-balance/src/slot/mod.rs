//! One endpoint's live state, shared by the driver, the pickers and every
//! in-flight request to it.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use fulcrum_core::load::{EwmaConfig, InFlight, PeakEwma};
use fulcrum_core::Endpoint;
use serde::Serialize;

use crate::classify::CancelledAs;
use crate::control::Control;

/// Where an endpoint is in its life cycle.
///
/// `Warming → Active ⇄ Unavailable`, `Active ⇄ Ejected`, `Active ⇄
/// Unhealthy`, and `→ Draining → gone` when discovery removes it. Only
/// discovery removes an endpoint; failures only make it unavailable for a
/// backoff (its service failed), eject it for a while (it answers, but
/// fails more than its peers), or hold it out until its probe passes.
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
    /// Ejected by outlier detection: its service is kept, but it takes no
    /// new requests (unless the tier is in panic) until re-admitted.
    Ejected,
    /// Down by its active health check: its service is kept, but it takes
    /// no new requests (unless the tier is in panic) until its probe
    /// passes again.
    Unhealthy,
    /// Disabled (or drained) through the balancer's
    /// [`Manager`](crate::balancer::Manager): its service is kept, but it
    /// takes no new requests, even in panic, until enabled.
    Disabled,
}

impl EndpointState {
    fn from_bits(v: u32) -> Self {
        match v & STATE_MASK {
            0 => EndpointState::Warming,
            1 => EndpointState::Active,
            2 => EndpointState::Unavailable,
            3 => EndpointState::Draining,
            4 => EndpointState::Ejected,
            5 => EndpointState::Unhealthy,
            _ => EndpointState::Disabled,
        }
    }
}

/// The low bits of [`Slot::state`] hold the [`EndpointState`], the rest the
/// generation of the endpoint's service (bumped each time a new one is
/// made), so that a request still holding an old service cannot knock a
/// freshly made one out of service.
const STATE_MASK: u32 = 0xFF;

/// No manual weight in [`Slot::weight_override`].
pub(crate) const NO_WEIGHT_OVERRIDE: u32 = u32::MAX;

/// A slow-start share of 1 in [`Slot::ramp`].
pub(crate) const RAMP_FULL: u32 = 1 << 16;

const GENERATION_SHIFT: u32 = 8;

/// `repr(C)` with the fields every pick and request touch first: behind
/// the `Arc`'s two counts, state, in-flight count and the latency estimate's
/// hot half fill one 64-byte cache line.
#[repr(C)]
pub(crate) struct Slot {
    /// `generation << 8 | EndpointState`.
    state: AtomicU32,
    /// Two streaks a success ends, in one word so that a success reads one
    /// word (see [`mark_ready`](Self::mark_ready)): the low half counts
    /// consecutive times taken out of service (the backoff exponent), the
    /// high half consecutive failures (outlier detection).
    streaks: AtomicU64,
    /// In flight, and (packed in the same word) finished: see [`InFlight`].
    pub(crate) in_flight: InFlight,
    pub(crate) ewma: PeakEwma,
    /// The balancer's total in-flight count, when its policy reads it
    /// (bounded-load hashing); requests touch it only then.
    pub(crate) total: Option<Arc<AtomicU64>>,
    pub(crate) failures: AtomicU64,
    /// Dispatches whose service failed readiness: never sent (counted in
    /// `failures` too).
    pub(crate) not_sent: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    /// Cancelled before any answer, when outlier detection counts those.
    pub(crate) abandoned: AtomicU64,
    pub(crate) overloads: AtomicU64,
    /// Until when (clock nanoseconds, see `fulcrum_core::time`) it said it
    /// is overloaded; 0 if it never did.
    pub(crate) overloaded_until: AtomicU64,
    /// The version of the snapshot that lists it as ready (see
    /// [`Control::down`]).
    pub(crate) ready_in: AtomicU64,
    pub(crate) endpoint: Endpoint,
    /// How often outlier detection ejected it, and why the last time.
    pub(crate) ejections: AtomicU64,
    pub(crate) ejection_reason: AtomicU32,
    /// Active health checks: the verdict (0 not probed, 1 healthy, 2
    /// unhealthy) and the probes passed and failed.
    probe_verdict: AtomicU32,
    pub(crate) probes_passed: AtomicU64,
    pub(crate) probes_failed: AtomicU64,
    /// Slow start: its share now, in units of [`RAMP_FULL`] (set by the
    /// driver while it ramps), and a hash of its address that decides
    /// which keys it takes meanwhile.
    pub(crate) ramp: AtomicU32,
    pub(crate) addr_hash: u64,
    /// What its manager set (for stats; the driver keeps the overrides).
    pub(crate) disabled: AtomicBool,
    pub(crate) weight_override: AtomicU32,
    /// Configured weight and priority; discovery may change them in place.
    pub(crate) weight: AtomicU32,
    pub(crate) priority: AtomicU32,
    /// The balancer's shared state, type-erased: a request whose endpoint
    /// fails readiness upgrades it to pick another endpoint. Weak, so
    /// in-flight requests do not keep a dropped balancer alive.
    pub(crate) owner: Weak<dyn Any + Send + Sync>,
    pub(crate) control: Arc<Control>,
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
        control: Arc<Control>,
        total: Option<Arc<AtomicU64>>,
    ) -> Self {
        Slot {
            addr_hash: crate::key::endpoint_hash(endpoint.addr()),
            cancelled: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            overloads: AtomicU64::new(0),
            overloaded_until: AtomicU64::new(0),
            ready_in: AtomicU64::new(0),
            control,
            weight: AtomicU32::new(endpoint.weight()),
            priority: AtomicU32::new(endpoint.priority()),
            endpoint,
            in_flight: InFlight::default(),
            ewma: PeakEwma::new(ewma),
            failures: AtomicU64::new(0),
            not_sent: AtomicU64::new(0),
            state: AtomicU32::new(EndpointState::Warming as u32),
            streaks: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            ejection_reason: AtomicU32::new(0),
            probe_verdict: AtomicU32::new(0),
            probes_passed: AtomicU64::new(0),
            probes_failed: AtomicU64::new(0),
            ramp: AtomicU32::new(RAMP_FULL),
            disabled: AtomicBool::new(false),
            weight_override: AtomicU32::new(NO_WEIGHT_OVERRIDE),
            total,
            owner,
        }
    }

    /// A slot outside any balancer, active: for measuring and testing pickers.
    pub(crate) fn detached(endpoint: Endpoint, ewma: &EwmaConfig) -> Self {
        let owner: Weak<dyn Any + Send + Sync> = Weak::<()>::new();
        let control = Arc::new(Control::new(
            CancelledAs::default(),
            std::time::Duration::from_secs(3),
        ));
        let slot = Slot::new(endpoint, ewma, owner, control, None);
        slot.set_state(EndpointState::Active);
        slot
    }

    #[inline]
    pub(crate) fn state(&self) -> EndpointState {
        EndpointState::from_bits(self.state.load(Ordering::Acquire))
    }

    /// Whether the service of `generation` takes requests: the endpoint is
    /// active and has not been made again since.
    #[inline]
    pub(crate) fn serves(&self, generation: u32) -> bool {
        self.state.load(Ordering::Acquire)
            == (generation << GENERATION_SHIFT) | EndpointState::Active as u32
    }

    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.state.load(Ordering::Acquire) & STATE_MASK == EndpointState::Active as u32
    }

    /// The generation of the endpoint's current service.
    #[inline]
    pub(crate) fn generation(&self) -> u32 {
        self.state.load(Ordering::Acquire) >> GENERATION_SHIFT
    }

    /// Driver: sets the state, keeping the generation.
    pub(crate) fn set_state(&self, state: EndpointState) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some((v & !STATE_MASK) | state as u32)
            });
    }

    /// Driver: a new service was made; it is active, in a new generation.
    pub(crate) fn install(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                let generation = (v >> GENERATION_SHIFT).wrapping_add(1);
                Some((generation << GENERATION_SHIFT) | EndpointState::Active as u32)
            });
    }

    /// Request path: the service of `generation` failed readiness. True if
    /// this call took the endpoint out of service (the driver must be told);
    /// false if it already was, or if the failing service is an old one.
    #[cfg(test)]
    pub(crate) fn mark_not_ready(&self, generation: u32) -> bool {
        self.take_down(generation) == Some(EndpointState::Active)
    }

    /// Moves the service of `generation` from active or held out (an
    /// ejected or unhealthy endpoint's broken service must be made afresh
    /// too) to unavailable; the state it was in, if this call moved it.
    fn take_down(&self, generation: u32) -> Option<EndpointState> {
        let down = (generation << GENERATION_SHIFT) | EndpointState::Unavailable as u32;
        let moved = [
            EndpointState::Active,
            EndpointState::Ejected,
            EndpointState::Unhealthy,
            EndpointState::Disabled,
        ]
        .into_iter()
        .find(|&from| {
            let from_bits = (generation << GENERATION_SHIFT) | from as u32;
            self.state
                .compare_exchange(from_bits, down, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        });
        if moved.is_some() {
            self.streaks.fetch_add(1, Ordering::Relaxed);
        }
        moved
    }

    /// Request path: the service of `generation` failed (readiness, or a
    /// refused connection). Takes the endpoint out of service and tells the
    /// driver, which backs it off and asks discovery to look again. True if
    /// this call took it out.
    pub(crate) fn take_out_of_service(&self, generation: u32) -> bool {
        let Some(was) = self.take_down(generation) else {
            return false;
        };
        if was == EndpointState::Active {
            // It was pickable in the current snapshot.
            self.control
                .count_down(self.ready_in.load(Ordering::Acquire));
        }
        self.control.notify_driver.notify_one();
        true
    }

    /// Request path: the endpoint served a request; its streak of being
    /// taken out of service is over. (A successful `poll_ready` does not
    /// count: clients that are always ready would reset the backoff of an
    /// endpoint that refuses every connection.)
    #[inline]
    pub(crate) fn mark_ready(&self) {
        if self.streaks.load(Ordering::Relaxed) != 0 {
            self.streaks.store(0, Ordering::Relaxed);
        }
    }

    /// Consecutive times taken out of service.
    pub(crate) fn not_ready_streak(&self) -> u32 {
        self.streaks.load(Ordering::Relaxed) as u32
    }

    /// Driver: its service could not be made; the new streak.
    pub(crate) fn bump_not_ready_streak(&self) -> u32 {
        (self.streaks.fetch_add(1, Ordering::Relaxed) as u32).wrapping_add(1)
    }

    /// Request path: one more failure in a row; the new count.
    #[inline]
    pub(crate) fn count_failure(&self) -> u32 {
        ((self.streaks.fetch_add(1 << 32, Ordering::Relaxed) >> 32) as u32).wrapping_add(1)
    }

    /// Failures in a row.
    pub(crate) fn failures_in_a_row(&self) -> u32 {
        (self.streaks.load(Ordering::Relaxed) >> 32) as u32
    }

    /// Driver: the failure streak is forgiven (it was ejected for it).
    pub(crate) fn forget_failures(&self) {
        self.streaks
            .fetch_and(u64::from(u32::MAX), Ordering::Relaxed);
    }

    /// Driver: ejects the endpoint if it is active. True if it was.
    pub(crate) fn eject(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & STATE_MASK == EndpointState::Active as u32)
                    .then_some((v & !STATE_MASK) | EndpointState::Ejected as u32)
            })
            .is_ok()
    }

    /// Driver: re-admits the endpoint if it is held out (ejected,
    /// unhealthy or disabled). True if it was.
    pub(crate) fn readmit(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                is_held_out(v).then_some((v & !STATE_MASK) | EndpointState::Active as u32)
            })
            .is_ok()
    }

    /// Driver: holds the endpoint out of service as `state` (ejected,
    /// unhealthy or disabled) if it is active or already held out.
    pub(crate) fn hold_out(&self, state: EndpointState) {
        debug_assert!(matches!(
            state,
            EndpointState::Ejected | EndpointState::Unhealthy | EndpointState::Disabled
        ));
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & STATE_MASK == EndpointState::Active as u32 || is_held_out(v))
                    .then_some((v & !STATE_MASK) | state as u32)
            });
    }

    /// Driver: the probe's verdict, for stats.
    pub(crate) fn set_probe_verdict(&self, healthy: bool) {
        self.probe_verdict
            .store(if healthy { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Its probe's verdict, if it is probed.
    pub(crate) fn probe_verdict(&self) -> Option<bool> {
        match self.probe_verdict.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }
}

fn is_held_out(state: u32) -> bool {
    let s = state & STATE_MASK;
    s == EndpointState::Ejected as u32
        || s == EndpointState::Unhealthy as u32
        || s == EndpointState::Disabled as u32
}

#[cfg(test)]
mod tests;
