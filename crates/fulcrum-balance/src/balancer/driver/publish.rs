//! Publishing: from the members' state to the snapshot requests read.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::hosts::{serving, Host};
use super::manual::Override;
use super::ready::{tiered, Gathered, Tiered};
use super::subsets::subset_picks;
use super::zones::{groups, ZoneRouting};
use super::{Driver, Maker};
use crate::balancer::error::panic_message;
use crate::balancer::snapshot::{NoPicker, Snapshot};
use crate::pick::{Loads, Picker, Policy, Random};
use crate::slot::{EndpointState, Slot, NO_WEIGHT_OVERRIDE};

/// Rebuilds run on the blocking pool when the last one took longer than
/// this, or the set has at least [`BLOCKING_SET`] endpoints, so that a
/// large table (a Maglev table for 10 000 endpoints) never stalls the
/// runtime the balancer shares with its callers.
pub(super) const BLOCKING_BUILD: Duration = Duration::from_millis(2);
pub(super) const BLOCKING_SET: usize = 256;

/// After a rebuild that took `t`, the next publish waits `SPACING × t`
/// (at most [`MAX_SPACING`]): rebuilding then takes at most 1/SPACING of a
/// core, however fast endpoints come and go.
const SPACING: u32 = 4;
const MAX_SPACING: Duration = Duration::from_millis(100);

/// Builds a picker, never panicking: a policy that panics is replaced by
/// `random` for this set, with an error logged.
pub(super) fn build_picker(
    policy: &dyn Policy,
    slots: &[Arc<Slot>],
    weights: &[u32],
    previous: &dyn Picker,
) -> Arc<dyn Picker> {
    let loads = Loads::new(slots, weights);
    match catch_unwind(AssertUnwindSafe(|| policy.build(&loads, Some(previous)))) {
        Ok(picker) => Arc::from(picker),
        Err(panic) => {
            tracing::error!(
                policy = policy.name(),
                panic = %panic_message(&*panic),
                "the policy panicked building its picker; picking at random until the set changes"
            );
            Arc::from(Random.build(&loads, None))
        }
    }
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// Logs entering and leaving panic mode.
    fn note_panic(&mut self, panic: bool) {
        if panic != self.panic {
            self.panic = panic;
            if panic {
                tracing::warn!(
                    threshold = self.thresholds.panic,
                    "too few healthy endpoints: panic mode, every available endpoint serves"
                );
            } else {
                tracing::info!("enough healthy endpoints again: panic mode over");
            }
        }
    }

    /// The manual override of a member's address (a member re-added by
    /// discovery inherits it).
    fn override_of(&self, slot: &Slot) -> Override {
        self.overrides
            .get(&slot.endpoint.addr())
            .copied()
            .unwrap_or_default()
    }

    /// Why member `index` is held out of service, if it is: disabled,
    /// ejected or down by its probe (in that order).
    pub(super) fn held_out_as(&self, index: usize) -> Option<EndpointState> {
        let m = self.members.at(index);
        if self.override_of(&m.slot).disabled {
            Some(EndpointState::Disabled)
        } else if m.ejection.is_ejected() {
            Some(EndpointState::Ejected)
        } else if !m.verdict.is_healthy() {
            Some(EndpointState::Unhealthy)
        } else {
            None
        }
    }

    /// Whether a pending change may be published now.
    pub(super) fn may_publish(&self) -> bool {
        let waiting = self.publish_after.is_some_and(|at| Instant::now() < at);
        // With nothing left to serve (every endpoint of the published set
        // gone or down), a change is published at once.
        !waiting
            || self.shared.upgrade().is_some_and(|s| {
                let snap = s.snapshot.load();
                !snap.ready.iter().any(|slot| slot.is_active())
            })
    }

    /// Builds and swaps in a new snapshot. False once every balancer is gone.
    pub(super) async fn publish(&mut self) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        self.dirty = false;
        let hosts: Vec<Host> = self
            .members
            .iter()
            .map(|m| {
                let state = m.slot.state();
                let o = self.override_of(&m.slot);
                // Mirrored in the slot for stats.
                m.slot.disabled.store(o.disabled, Ordering::Relaxed);
                m.slot
                    .weight_override
                    .store(o.weight.unwrap_or(NO_WEIGHT_OVERRIDE), Ordering::Relaxed);
                Host {
                    priority: m.slot.priority.load(Ordering::Relaxed),
                    weight: o
                        .weight
                        .unwrap_or_else(|| m.slot.weight.load(Ordering::Relaxed)),
                    available: !m.verdict.awaits_first_probe()
                        && m.service.is_some()
                        && matches!(
                            state,
                            EndpointState::Active
                                | EndpointState::Ejected
                                | EndpointState::Unhealthy
                                | EndpointState::Disabled
                        ),
                    healthy: m.is_healthy(),
                    disabled: o.disabled,
                    awaits_probe: m.verdict.awaits_first_probe(),
                }
            })
            .collect();
        // Nearest-region routing: each tier's regions become sub-tiers by
        // rank, so that spill-over carries requests to the next-nearest.
        // Panic is decided on the set's own tiers (a region's sub-tier is
        // no tier of its own there): in panic, regions are not ranked.
        let (region_ids, region_names) = self.region_ids();
        let mut hosts = hosts;
        let mut ranked = super::regions::Ranked::default();
        let mut serving = serving(&hosts, &self.thresholds);
        if let Some(regions) = self.regions.as_ref().filter(|_| !serving.panic) {
            let explore = match self.policy.picks_by_key() {
                // A key's requests stay on its endpoint.
                true => 0.0,
                false => regions.config.explore_share(),
            };
            ranked = self.rank_hosts(&mut hosts, &region_ids, &region_names);
            let by_region = super::hosts::serving(&hosts, &self.thresholds);
            serving = super::regions::explore(by_region, &hosts, explore);
        }
        let (tier_view, region_stats) =
            self.region_view(&serving, &hosts, &ranked, &region_ids, &region_names);
        let (zones, zone_names) = self.zone_ids();
        let by_zone = self.zone_aware.as_ref().map(|z| ZoneRouting {
            local: zone_names
                .iter()
                .position(|name| name == z.zone())
                .map(|i| i as u32),
            min_endpoints: z.min(),
        });
        self.note_panic(serving.panic);
        self.note_tiers(&tier_view);
        // Each subset is balanced as a set of its own (its members' tiers,
        // spill-over and panic threshold): decided first, gathered after.
        let own = self.serve_subsets(&hosts, &serving);
        let routing = self.route_subsets(&own);
        // The set's serving endpoints come first in `ready` (its picker and
        // tiers cover them), then those only a subset's tiers reach.
        // Each tier's endpoints are split by zone when zone-aware routing
        // applies: every group is a range drawn with its share.
        let mut gathered = Gathered::new(hosts.len());
        let members = &self.members;
        let parts: Vec<Option<(u32, u32)>> = {
            let marks = self.members.iter().map(|m| m.slot.endpoint.traffic_share());
            let marks: Vec<_> = marks.collect();
            if marks.iter().any(Option::is_some) {
                marks
            } else {
                Vec::new()
            }
        };
        let set_groups = groups(&serving, &hosts, &zones, &parts, None, by_zone);
        let ranges = tiered(
            set_groups.endpoints.iter().copied(),
            &set_groups.shares,
            |i, w| gathered.add(i, members.at(i), w),
        )
        .ranges;
        let zone_stats = self.zone_stats(&set_groups, &zone_names);
        let global = gathered.slots.len();
        let chosen: Vec<Option<Tiered>> = own
            .iter()
            .zip(&routing.takes)
            .map(|(own, &takes)| {
                takes.then(|| {
                    let own_serving = super::hosts::Serving {
                        endpoints: own.endpoints.clone(),
                        tiers: own.tiers.clone(),
                        panic: own.panic,
                    };
                    let own_groups = groups(
                        &own_serving,
                        &hosts,
                        &zones,
                        &parts,
                        Some(&own.members),
                        by_zone,
                    );
                    tiered(own_groups.endpoints, &own_groups.shares, |i, w| {
                        gathered.add(i, members.at(i), w)
                    })
                })
            })
            .collect();
        let serves: Vec<bool> = (0..hosts.len()).map(|i| gathered.has(i)).collect();
        let Gathered {
            slots,
            weights,
            services,
            generations,
            ..
        } = gathered;
        // An ejected or unhealthy endpoint serves only in panic: its state
        // says whether requests may pick it.
        for (i, &serves) in serves.iter().enumerate() {
            let slot = &self.members.at(i).slot;
            match self.held_out_as(i) {
                Some(state) if !serves => slot.hold_out(state),
                _ => {
                    slot.readmit();
                }
            }
        }
        self.update_ramps(&serves);
        let ramping = self.shares_limited(&serves);
        self.ever_served |= !slots.is_empty();
        let slots: Arc<[Arc<Slot>]> = slots.into();
        let weights: Arc<[u32]> = weights.into();

        let previous = shared.snapshot.load_full();
        let mut rebuilt = false;
        // Several ranges (tiers spilling over, zones, regions): a picker
        // each, built off the runtime when large, and spaced like any
        // rebuild.
        let tiers = if ranges.len() > 1 {
            rebuilt = true;
            Some(self.range_pickers(&slots, &weights, &ranges, global).await)
        } else {
            None
        };
        let (was, now) = (&previous.ready[..previous.set_len], &slots[..global]);
        let unchanged = !previous.stopped
            && tiers.is_none()
            && previous.tiers.is_none()
            && was.len() == now.len()
            && previous.weights[..previous.set_len] == weights[..global]
            && was.iter().zip(now).all(|(a, b)| Arc::ptr_eq(a, b));
        let picker = if unchanged {
            previous.picker.clone()
        } else if tiers.is_some() {
            // Each tier has its picker; a later single tier starts afresh.
            Arc::new(NoPicker) as Arc<dyn Picker>
        } else {
            // Later publishes are spaced after an expensive rebuild.
            rebuilt = true;
            let started = std::time::Instant::now();
            let picker = if self.last_build > BLOCKING_BUILD || global >= BLOCKING_SET {
                let (policy, owned_slots, owned_weights, prev) = (
                    self.policy.clone(),
                    slots.clone(),
                    weights.clone(),
                    previous.picker.clone(),
                );
                let build = tokio::task::spawn_blocking(move || {
                    build_picker(
                        &*policy,
                        &owned_slots[..global],
                        &owned_weights[..global],
                        &*prev,
                    )
                });
                match build.await {
                    Ok(picker) => picker,
                    Err(_) => build_picker(
                        &*self.policy,
                        &slots[..global],
                        &weights[..global],
                        &*previous.picker,
                    ),
                }
            } else {
                build_picker(
                    &*self.policy,
                    &slots[..global],
                    &weights[..global],
                    &*previous.picker,
                )
            };
            self.last_build = started.elapsed();
            picker
        };
        let subsets_started = std::time::Instant::now();
        let built = if self.subsets.is_empty() {
            Some(Box::new([]) as Box<[_]>)
        } else if self.last_build > BLOCKING_BUILD || slots.len() >= BLOCKING_SET {
            let (policy, owned_chosen, owned_slots, prev) = (
                self.policy.clone(),
                chosen.clone(),
                slots.clone(),
                previous.clone(),
            );
            let build = tokio::task::spawn_blocking(move || {
                subset_picks(&*policy, &owned_chosen, &owned_slots, &prev.subsets)
            });
            build.await.ok()
        } else {
            None
        };
        // Inline when small, or when the blocking pool's build failed.
        let subset_picks = built
            .unwrap_or_else(|| subset_picks(&*self.policy, &chosen, &slots, &previous.subsets));
        if !self.subsets.is_empty() {
            // Subsets' pickers count as rebuilding too.
            let took = subsets_started.elapsed();
            self.last_build = if rebuilt {
                self.last_build + took
            } else {
                took
            };
            rebuilt |= took > BLOCKING_BUILD;
        }
        if rebuilt {
            let spacing = (self.last_build * SPACING).min(MAX_SPACING);
            self.publish_after =
                (spacing > Duration::from_millis(1)).then(|| Instant::now() + spacing);
        }

        self.version += 1;
        let version = self.version;
        for slot in slots.iter() {
            slot.ready_in.store(version, Ordering::Release);
        }
        let warming = self
            .members
            .iter()
            .filter(|m| m.slot.state() == EndpointState::Warming)
            .count();
        let has_ready = !slots.is_empty();
        let ready_count = slots.len();
        let terminal = self.discovered.ended && self.members.is_empty();
        shared.publish(Snapshot {
            ready: slots.iter().cloned().collect(),
            set_len: global,
            weights: weights.iter().copied().collect(),
            services: services.into(),
            generations: generations.into(),
            picker,
            tiers,
            tier_shares: tier_view.into(),
            tier_changes: self.tier_changes,
            subsets: subset_picks,
            routes: routing.routes,
            subset_stats: routing.stats,
            subset_changes: self.subset_changes,
            zone_stats: zone_stats.map(Box::new),
            region_stats: region_stats.map(Box::new),
            total: self.total.clone(),
            members: self.members.iter().map(|m| m.slot.clone()).collect(),
            draining: self.draining.clone().into(),
            warming,
            has_set: self.discovered.has_set,
            empty_reason: self.empty_reason(),
            terminal,
            stopped: false,
            discovery_error: self.discovered.error.clone(),
            version,
            panic: self.panic,
            ramping,
            repick_ramping: ramping && !self.policy.picks_by_key(),
            picker_panicked: Default::default(),
        });
        self.control.published(version);
        self.answer_after_publish();
        if has_ready {
            self.control.fail_fast.store(false, Ordering::SeqCst);
        }
        shared.wake_waiters();
        tracing::trace!(
            version,
            ready = ready_count,
            members = self.members.len(),
            "published"
        );
        true
    }
}
