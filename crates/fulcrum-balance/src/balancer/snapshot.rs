//! The immutable view every request reads, rebuilt by the driver on each
//! change and swapped atomically.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use fulcrum_core::NoEndpointsReason;

use crate::control::Control;
use crate::key::mix64;
use crate::pick::{pick_ramped, Loads, PickContext, Picker, Tried};
use crate::slot::Slot;

pub(crate) struct Snapshot<S> {
    /// Pickable endpoints; picker indices point here.
    pub(crate) ready: Box<[Arc<Slot>]>,
    pub(crate) weights: Box<[u32]>,
    pub(crate) services: Box<[S]>,
    /// The generation of each service in `services` (see `Slot::install`).
    pub(crate) generations: Box<[u32]>,
    /// Shared with the next snapshot when the ready set did not change.
    pub(crate) picker: Arc<dyn Picker>,
    /// When several tiers serve (one spills over to the next): each one's
    /// range of `ready`, share and picker; `picker` is then unused.
    pub(crate) tiers: Option<Box<[TierPick]>>,
    /// The serving tiers' priorities and shares in millionths (for stats).
    pub(crate) tier_shares: Box<[(u32, u32)]>,
    /// How many times the set of serving tiers changed.
    pub(crate) tier_changes: u64,
    /// Total requests in flight, when the policy reads it.
    pub(crate) total: Option<Arc<AtomicU64>>,
    /// Every endpoint in the current set, whatever its state (for stats).
    pub(crate) members: Box<[Arc<Slot>]>,
    /// Removed endpoints still finishing requests (for stats).
    pub(crate) draining: Box<[Arc<Slot>]>,
    /// Members whose service is still being made.
    pub(crate) warming: usize,
    /// Discovery has produced a set (possibly empty).
    pub(crate) has_set: bool,
    /// Why `ready` is empty, when it is.
    pub(crate) empty_reason: NoEndpointsReason,
    /// Nothing to serve and nothing will come: fail without waiting.
    pub(crate) terminal: bool,
    /// The driver has stopped: every request fails at once.
    pub(crate) stopped: bool,
    pub(crate) discovery_error: Option<Arc<str>>,
    pub(crate) version: u64,
    /// Too few healthy endpoints: ejected ones serve too.
    pub(crate) panic: bool,
    /// Some serving endpoint is in slow start (and some is not).
    pub(crate) ramping: bool,
    /// ... and the policy does not pick by key: a pick that lands on a
    /// ramping endpoint may be picked again.
    pub(crate) repick_ramping: bool,
    /// Set when its picker panicked on a request.
    pub(crate) picker_panicked: std::sync::atomic::AtomicBool,
}

/// One of several serving tiers: a range of the ready endpoints with a
/// picker of its own, taking the requests whose draw falls below `below`.
pub(crate) struct TierPick {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) below: u64,
    pub(crate) picker: Arc<dyn Picker>,
}

/// What a snapshot says to a waiter.
pub(crate) enum Check {
    /// Some endpoint can take a request.
    Ready,
    /// Nothing to serve and nothing will come: fail now.
    Hopeless(NoEndpointsReason),
    /// Nothing yet: wait.
    Wait(NoEndpointsReason),
    /// The driver stopped: fail now.
    Stopped,
}

/// How many times a pick is retried when the chosen endpoint has just
/// become unavailable, before falling back to a scan.
const PICK_ATTEMPTS: u32 = 3;

/// How many times the policy is asked for an endpoint not yet tried
/// before one is taken from a scan.
const AVOID_ATTEMPTS: u64 = 3;

/// What a pick hands a request: the endpoint, and a clone of its service.
pub(crate) struct Picked<S> {
    pub(crate) slot: Arc<Slot>,
    /// The generation of `service` (see `Slot::install`).
    pub(crate) generation: u32,
    pub(crate) service: S,
    /// The clock reading the picker took, if any (reused as the dispatch time).
    pub(crate) now: Option<u64>,
    /// The balancer keeps a total in-flight count (the same as
    /// `slot.total.is_some()`, read here from the snapshot so that a request
    /// does not touch the slot's second cache line for it).
    pub(crate) counts_total: bool,
}

impl<S> Snapshot<S> {
    /// Whether a request can be served now.
    pub(crate) fn check(&self, control: &Control) -> Check {
        if self.stopped {
            Check::Stopped
        } else if self.ready.len() > control.down_in(self.version) {
            Check::Ready
        } else if self.terminal {
            Check::Hopeless(self.empty_reason)
        } else {
            Check::Wait(self.empty_reason)
        }
    }

    /// Picks a ready, active endpoint: its index and the clock reading the
    /// picker took, if any.
    #[inline]
    pub(crate) fn choose_index(
        &self,
        rng: &mut fastrand::Rng,
        key: Option<u64>,
    ) -> Option<(usize, Option<u64>)> {
        let n = self.ready.len();
        if n == 0 {
            return None;
        }
        let serves = |i: usize| self.ready[i].serves(self.generations[i]);
        // With tiers spilling over, a draw picks the tier, then its picker
        // the endpoint (indices are the tier's own).
        let (start, end, picker) = match &self.tiers {
            None => (0, n, &*self.picker),
            Some(tiers) => {
                let draw = rng.u64(..);
                let tier = tiers
                    .iter()
                    .find(|t| draw < t.below)
                    .unwrap_or(&tiers[tiers.len() - 1]);
                (tier.start, tier.end, &*tier.picker)
            }
        };
        let loads = Loads::new(&self.ready[start..end], &self.weights[start..end])
            .with_total(self.total.as_deref())
            .with_ramping(self.ramping);
        let mut cx = PickContext::new(loads, rng, key);
        for _ in 0..PICK_ATTEMPTS {
            // A picker is user code: if it panics, the request is picked
            // below instead of failing (and the driver logs it once).
            let pick = || {
                if self.repick_ramping {
                    pick_ramped(picker, &mut cx)
                } else {
                    picker.pick(&mut cx)
                }
            };
            match catch_unwind(AssertUnwindSafe(pick)) {
                Ok(Some(i)) if start + i < end && serves(start + i) => {
                    return Some((start + i, cx.clock_read()))
                }
                Ok(_) => {}
                Err(panic) => {
                    if !self
                        .picker_panicked
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        tracing::error!(
                            panic = %crate::balancer::error::panic_message(&*panic),
                            "the policy's picker panicked; picking any serving endpoint \
                             instead (logged once per endpoint set)"
                        );
                    }
                    break;
                }
            }
        }
        // The picker kept choosing endpoints that went down (or were made
        // again) since this snapshot was built, or offered nothing: take
        // any endpoint still serving.
        let now = cx.clock_read();
        let start = rng.usize(..n);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| serves(i))
            .map(|i| (i, now))
    }
}

impl<S: Clone> Snapshot<S> {
    /// Picks a ready, active endpoint and clones its service.
    #[inline]
    pub(crate) fn choose(&self, rng: &mut fastrand::Rng, key: Option<u64>) -> Option<Picked<S>> {
        let (i, now) = self.choose_index(rng, key)?;
        Some(self.picked(i, now))
    }

    fn picked(&self, i: usize, now: Option<u64>) -> Picked<S> {
        Picked {
            slot: self.ready[i].clone(),
            generation: self.generations[i],
            service: self.services[i].clone(),
            now,
            counts_total: self.total.is_some(),
        }
    }

    /// Picks as [`choose`](Self::choose) does, but not an endpoint in
    /// `tried` while another serves: the policy picks again (a keyed one
    /// with the key re-hashed, so every client moves a key the same way),
    /// then any serving endpoint not tried is taken. When every serving
    /// endpoint has been tried, one of them is picked again rather than
    /// failing the request.
    pub(crate) fn choose_avoiding(
        &self,
        rng: &mut fastrand::Rng,
        key: Option<u64>,
        tried: &Tried,
    ) -> Option<Picked<S>> {
        if tried.is_empty() {
            return self.choose(rng, key);
        }
        let fresh = |i: usize| !tried.contains(self.ready[i].addr_hash);
        let mut first = None;
        for attempt in 0..AVOID_ATTEMPTS {
            let key = key.map(|k| if attempt == 0 { k } else { mix64(k ^ attempt) });
            let (i, now) = self.choose_index(rng, key)?;
            if fresh(i) {
                return Some(self.picked(i, now));
            }
            first.get_or_insert((i, now));
        }
        let n = self.ready.len();
        let open = |i: &usize| fresh(*i) && self.ready[*i].serves(self.generations[*i]);
        let found = match key {
            // Highest random weight: the same endpoint in every client,
            // whatever the order of its set.
            Some(k) => (0..n)
                .filter(open)
                .max_by_key(|&i| mix64(k ^ self.ready[i].addr_hash)),
            None => {
                let start = rng.usize(..n);
                (0..n).map(|k| (start + k) % n).find(open)
            }
        };
        found
            .map(|i| self.picked(i, None))
            .or_else(|| first.map(|(i, now)| self.picked(i, now)))
    }
}

/// A picker with nothing to offer, for snapshots with no endpoint.
#[derive(Debug)]
pub(crate) struct NoPicker;

impl Picker for NoPicker {
    fn pick(&self, _cx: &mut PickContext<'_>) -> Option<usize> {
        None
    }
}

impl<S> Snapshot<S> {
    /// The snapshot of a balancer with no endpoint yet.
    pub(crate) fn initial() -> Self {
        Snapshot {
            ready: Box::new([]),
            weights: Box::new([]),
            services: Box::new([]),
            generations: Box::new([]),
            picker: Arc::new(NoPicker),
            tiers: None,
            tier_shares: Box::new([]),
            tier_changes: 0,
            total: None,
            members: Box::new([]),
            draining: Box::new([]),
            warming: 0,
            has_set: false,
            empty_reason: NoEndpointsReason::NeverHadAny,
            terminal: false,
            stopped: false,
            discovery_error: None,
            version: 0,
            panic: false,
            ramping: false,
            repick_ramping: false,
            picker_panicked: Default::default(),
        }
    }

    /// What requests see once the driver has stopped: nothing to pick, and
    /// a typed error at once.
    pub(crate) fn stopped(last: &Snapshot<S>) -> Self {
        Snapshot {
            stopped: true,
            members: last.members.clone(),
            draining: last.draining.clone(),
            discovery_error: last.discovery_error.clone(),
            version: last.version + 1,
            tier_changes: last.tier_changes,
            ..Snapshot::initial()
        }
    }
}
