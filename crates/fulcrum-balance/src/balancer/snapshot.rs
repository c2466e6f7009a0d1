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
use crate::stats::SubsetStats;
use crate::subset::resolve::RouteTo;
use crate::subset::SubsetId;

pub(crate) struct Snapshot<S> {
    /// Pickable endpoints; picker indices point here. The first `set_len`
    /// are the set's (its picker and tiers cover them); any after serve only
    /// subsets, whose own tiers reach further. (`poll_ready` cannot know a
    /// request's route: it counts them all; a request with no route that
    /// then finds nothing to pick waits in its future, bounded by the
    /// readiness deadline.)
    pub(crate) ready: Box<[Arc<Slot>]>,
    pub(crate) set_len: usize,
    pub(crate) weights: Box<[u32]>,
    pub(crate) services: Box<[S]>,
    /// The generation of each service in `services` (see `Slot::install`).
    pub(crate) generations: Box<[u32]>,
    /// Shared with the next snapshot when the ready set did not change.
    pub(crate) picker: Arc<dyn Picker>,
    /// When several tiers serve (one spills over to the next): each one's
    /// range of `ready`, share and picker; `picker` is then unused.
    pub(crate) tiers: Option<Box<[TierPick]>>,
    // The fields a request reads come first (rustc keeps the declared
    // order among fields of one alignment): the cold ones after them stay
    // off the request's cache lines.
    /// Where each subset's requests go now (see `subset::resolve`).
    pub(crate) routes: Box<[RouteTo]>,
    /// Each subset's endpoints, by the subset's index, when any serves.
    pub(crate) subsets: Box<[Option<SubsetPick>]>,
    /// Total requests in flight, when the policy reads it.
    pub(crate) total: Option<Arc<AtomicU64>>,
    /// The serving tiers' priorities and shares in millionths (for stats).
    pub(crate) tier_shares: Box<[(u32, u32)]>,
    /// How many times the set of serving tiers changed.
    pub(crate) tier_changes: u64,
    /// The subsets as stats show them.
    pub(crate) subset_stats: Arc<[SubsetStats]>,
    /// How many times some subset's requests changed destination.
    pub(crate) subset_changes: u64,
    /// Where zone-aware routing sends requests (for stats).
    pub(crate) zone_stats: Option<Box<crate::stats::ZoneStats>>,
    /// Where nearest-region routing sends requests (for stats).
    pub(crate) region_stats: Option<Box<crate::stats::RegionStats>>,
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

/// A subset's serving endpoints: their positions in the snapshot's
/// `ready`, with a picker of their own (and tiers, when several serve).
pub(crate) struct SubsetPick {
    pub(crate) index: Box<[u32]>,
    pub(crate) ready: Box<[Arc<Slot>]>,
    pub(crate) weights: Box<[u32]>,
    pub(crate) picker: Arc<dyn Picker>,
    pub(crate) tiers: Option<Box<[TierPick]>>,
}

/// The endpoints a request is picked among: the whole serving set, or a
/// subset of it.
struct View<'a> {
    ready: &'a [Arc<Slot>],
    weights: &'a [u32],
    picker: &'a dyn Picker,
    tiers: Option<&'a [TierPick]>,
    /// A subset's positions in the snapshot's `ready`.
    index: Option<&'a [u32]>,
    total: Option<&'a AtomicU64>,
}

impl View<'_> {
    /// The snapshot's position of the view's endpoint `i`.
    #[inline]
    fn global(&self, i: usize) -> usize {
        match self.index {
            None => i,
            Some(index) => index[i] as usize,
        }
    }
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

    /// [`check`](Self::check) for a request routed to `subset`: a subset
    /// that routes nowhere fails the request at once, or makes it wait
    /// while one of its endpoints is still being made.
    pub(crate) fn check_for(&self, control: &Control, subset: Option<SubsetId>) -> Check {
        match self.check(control) {
            Check::Ready => {
                match subset.and_then(|SubsetId(id)| self.routes.get(usize::from(id))) {
                    Some(RouteTo::Nowhere { warming: false }) => {
                        Check::Hopeless(NoEndpointsReason::SubsetEmpty)
                    }
                    Some(RouteTo::Nowhere { warming: true }) => {
                        Check::Wait(NoEndpointsReason::SubsetEmpty)
                    }
                    _ => Check::Ready,
                }
            }
            other => other,
        }
    }

    /// The endpoints a request routed to `subset` is picked among; `None`
    /// when its subset routes nowhere now.
    #[inline]
    fn view(&self, subset: Option<SubsetId>) -> Option<View<'_>> {
        let all = View {
            ready: &self.ready[..self.set_len],
            weights: &self.weights[..self.set_len],
            picker: &*self.picker,
            tiers: self.tiers.as_deref(),
            index: None,
            total: self.total.as_deref(),
        };
        let Some(SubsetId(id)) = subset else {
            return Some(all);
        };
        match self.routes.get(usize::from(id)) {
            None | Some(RouteTo::Any) => Some(all),
            Some(RouteTo::Nowhere { .. }) => None,
            Some(&RouteTo::Subset(i)) => {
                let s = self.subsets.get(i)?.as_ref()?;
                Some(View {
                    ready: &s.ready,
                    weights: &s.weights,
                    picker: &*s.picker,
                    tiers: s.tiers.as_deref(),
                    index: Some(&s.index),
                    // A total over the whole set would loosen a subset's
                    // load bound: a bounded-load picker sums the subset's
                    // own.
                    total: None,
                })
            }
        }
    }

    /// Picks a ready, active endpoint for a request routed to `subset`:
    /// its index and the clock reading the picker took, if any.
    #[inline]
    pub(crate) fn choose_index(
        &self,
        rng: &mut fastrand::Rng,
        key: Option<u64>,
        subset: Option<SubsetId>,
    ) -> Option<(usize, Option<u64>)> {
        let view = self.view(subset)?;
        let n = view.ready.len();
        if n == 0 {
            return None;
        }
        let serves = |i: usize| {
            let g = view.global(i);
            self.ready[g].serves(self.generations[g])
        };
        // With tiers spilling over, a draw picks the tier, then its picker
        // the endpoint (indices are the tier's own).
        let (start, end, picker) = match view.tiers {
            None => (0, n, view.picker),
            Some(tiers) => {
                let draw = rng.u64(..);
                let tier = tiers
                    .iter()
                    .find(|t| draw < t.below)
                    .unwrap_or(&tiers[tiers.len() - 1]);
                (tier.start, tier.end, &*tier.picker)
            }
        };
        let loads = Loads::new(&view.ready[start..end], &view.weights[start..end])
            .with_total(view.total)
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
                    return Some((view.global(start + i), cx.clock_read()))
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
            .map(|i| (view.global(i), now))
    }
}

impl<S: Clone> Snapshot<S> {
    /// Picks a ready, active endpoint and clones its service.
    #[inline]
    pub(crate) fn choose(
        &self,
        rng: &mut fastrand::Rng,
        key: Option<u64>,
        subset: Option<SubsetId>,
    ) -> Option<Picked<S>> {
        let (i, now) = self.choose_index(rng, key, subset)?;
        Some(self.picked(i, now))
    }

    /// Whether a request to `ready[i]` counts in the set's total in flight
    /// (bounded load): only the set's endpoints do, as the set's picker
    /// sums only their weights.
    #[inline]
    pub(crate) fn counts_total(&self, i: usize) -> bool {
        self.total.is_some() && i < self.set_len
    }

    fn picked(&self, i: usize, now: Option<u64>) -> Picked<S> {
        Picked {
            slot: self.ready[i].clone(),
            generation: self.generations[i],
            service: self.services[i].clone(),
            now,
            counts_total: self.counts_total(i),
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
        subset: Option<SubsetId>,
        tried: &Tried,
    ) -> Option<Picked<S>> {
        let (i, now) = self.choose_index_avoiding(rng, key, subset, tried)?;
        Some(self.picked(i, now))
    }

    /// [`choose_avoiding`](Self::choose_avoiding), as the endpoint's index
    /// in `ready` and the picker's clock reading.
    pub(crate) fn choose_index_avoiding(
        &self,
        rng: &mut fastrand::Rng,
        key: Option<u64>,
        subset: Option<SubsetId>,
        tried: &Tried,
    ) -> Option<(usize, Option<u64>)> {
        if tried.is_empty() {
            return self.choose_index(rng, key, subset);
        }
        let fresh = |i: usize| !tried.contains(self.ready[i].addr_hash);
        let mut first = None;
        for attempt in 0..AVOID_ATTEMPTS {
            let key = key.map(|k| if attempt == 0 { k } else { mix64(k ^ attempt) });
            let (i, now) = self.choose_index(rng, key, subset)?;
            if fresh(i) {
                return Some((i, now));
            }
            first.get_or_insert((i, now));
        }
        // Scan the request's own endpoints (its subset's, if routed).
        let view = self.view(subset)?;
        let n = view.ready.len();
        let open = |g: &usize| fresh(*g) && self.ready[*g].serves(self.generations[*g]);
        let found = match key {
            // Highest random weight: the same endpoint in every client,
            // whatever the order of its set.
            Some(k) => (0..n)
                .map(|i| view.global(i))
                .filter(open)
                .max_by_key(|&g| mix64(k ^ self.ready[g].addr_hash)),
            None => {
                let start = rng.usize(..n.max(1));
                (0..n).map(|k| view.global((start + k) % n)).find(open)
            }
        };
        found.map(|i| (i, None)).or(first)
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
            set_len: 0,
            weights: Box::new([]),
            services: Box::new([]),
            generations: Box::new([]),
            picker: Arc::new(NoPicker),
            tiers: None,
            tier_shares: Box::new([]),
            tier_changes: 0,
            subsets: Box::new([]),
            routes: Box::new([]),
            subset_stats: Arc::new([]),
            subset_changes: 0,
            zone_stats: None,
            region_stats: None,
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
            subset_stats: last.subset_stats.clone(),
            subset_changes: last.subset_changes,
            ..Snapshot::initial()
        }
    }
}
