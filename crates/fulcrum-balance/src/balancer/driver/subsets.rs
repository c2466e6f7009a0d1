//! Subsets in the snapshot: each subset balanced as a set of its own (its
//! members' tiers, spill-over and panic threshold, by the pure
//! `hosts::serving`), its serving endpoints with a picker of their own, and
//! where each subset's requests go (the pure `subset::resolve`).

use std::sync::Arc;

use super::hosts::{serving, Host, Serving, Thresholds};
use super::publish::build_picker;
use super::ready::Tiered;
use super::tiers::tier_pickers;
use super::{Driver, Maker};
use crate::balancer::snapshot::{NoPicker, SubsetPick};
use crate::pick::{Picker, Policy};
use crate::slot::{EndpointState, Slot};
use crate::stats::{SubsetRoute, SubsetStats};
use crate::subset::resolve::{resolve, Census, RouteTo};
use crate::subset::SubsetRule;

/// Which of a subset's members would take its requests, decided among its
/// members alone.
pub(super) struct SubsetServing {
    /// Member indices in tier order, with their effective weights.
    pub(super) endpoints: Vec<(usize, u32)>,
    /// Each serving tier's priority and share (millionths).
    pub(super) tiers: Vec<(u32, u32)>,
    /// Its members (indices into the hosts).
    pub(super) members: Vec<usize>,
    /// It serves only what the set's panic mode put back.
    pub(super) panic: bool,
    pub(super) census: Census,
}

/// One subset balanced among its own members (`members`, indices into
/// `hosts`; `making` of them still being made): its tiers spill over by its
/// own health, with the balancer's `overprovisioning` factor. It has no
/// panic mode of its own (its floor and fallback decide when it stops
/// serving): with no healthy member it offers only those the set's panic
/// mode put back (in `set`), as a last resort.
pub(super) fn subset_serving(
    hosts: &[Host],
    members: &[usize],
    making: usize,
    set: &Serving,
    overprovisioning: f64,
) -> SubsetServing {
    let own: Vec<Host> = members.iter().map(|&i| hosts[i]).collect();
    let healthy = own
        .iter()
        .filter(|h| !h.disabled && h.available && h.healthy)
        .count();
    let (endpoints, tiers): (Vec<(usize, u32)>, _) = if healthy > 0 {
        let thresholds = Thresholds {
            panic: 0.0,
            overprovisioning,
        };
        let chosen = serving(&own, &thresholds);
        let endpoints = chosen.endpoints.iter().map(|&(k, w)| (members[k], w));
        (endpoints.collect(), chosen.tiers)
    } else {
        let mut mine = vec![false; hosts.len()];
        for &i in members {
            mine[i] = true;
        }
        let endpoints = set.endpoints.iter().copied().filter(|&(i, _)| mine[i]);
        (endpoints.collect(), set.tiers.clone())
    };
    let census = Census {
        members: members.len(),
        healthy,
        available: endpoints.len(),
        // Members awaiting their first probe are warming up too: the
        // subset waits for them rather than fail.
        warming: making + own.iter().filter(|h| h.awaits_probe).count(),
    };
    SubsetServing {
        endpoints,
        tiers,
        members: members.to_vec(),
        panic: healthy == 0,
        census,
    }
}

/// A picker (or tiers) for each subset that takes requests (`None` for
/// the others) over its endpoints in `slots` (the snapshot's `ready`). A
/// picker is carried over from `previous` when the subset's endpoints and
/// weights did not change; with several of its tiers serving, each tier
/// gets its picker, drawn with the tier's share.
pub(super) fn subset_picks(
    policy: &dyn Policy,
    chosen: &[Option<Tiered>],
    slots: &[Arc<Slot>],
    previous: &[Option<SubsetPick>],
) -> Box<[Option<SubsetPick>]> {
    chosen
        .iter()
        .enumerate()
        .map(|(j, choice)| {
            let choice = choice.as_ref().filter(|c| !c.index.is_empty())?;
            let index = choice.index.clone();
            let ready: Box<[Arc<Slot>]> =
                index.iter().map(|&i| slots[i as usize].clone()).collect();
            let own_weights = choice.weights.clone();
            if choice.ranges.len() > 1 {
                let tiers = tier_pickers(policy, &ready, &own_weights, &choice.ranges);
                return Some(SubsetPick {
                    index,
                    ready,
                    weights: own_weights,
                    picker: Arc::new(NoPicker),
                    tiers: Some(tiers),
                });
            }
            let before = previous.get(j).and_then(Option::as_ref);
            let unchanged = before.is_some_and(|b| {
                b.tiers.is_none()
                    && b.weights == own_weights
                    && b.ready.len() == ready.len()
                    && b.ready
                        .iter()
                        .zip(ready.iter())
                        .all(|(a, b)| Arc::ptr_eq(a, b))
            });
            let picker = match before {
                Some(b) if unchanged => b.picker.clone(),
                Some(b) => build_picker(policy, &ready, &own_weights, &*b.picker),
                None => build_picker(policy, &ready, &own_weights, &NoPicker as &dyn Picker),
            };
            Some(SubsetPick {
                index,
                ready,
                weights: own_weights,
                picker,
                tiers: None,
            })
        })
        .collect()
}

/// What the driver decided for subsets at one publish.
pub(super) struct SubsetRoutes {
    /// Whether each subset takes requests (its own, or others' by their
    /// fallback).
    pub(super) takes: Vec<bool>,
    pub(super) routes: Box<[RouteTo]>,
    pub(super) stats: Arc<[SubsetStats]>,
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// Each subset balanced as a set of its own, from `hosts` (one per
    /// member) and what the set serves.
    pub(super) fn serve_subsets(&self, hosts: &[Host], set: &Serving) -> Vec<SubsetServing> {
        self.subsets
            .iter()
            .map(|rule| {
                let members: Vec<usize> = (0..hosts.len())
                    .filter(|&i| rule.selector.matches(&self.members.at(i).slot.endpoint))
                    .collect();
                let making = members
                    .iter()
                    .filter(|&&i| self.members.at(i).slot.state() == EndpointState::Warming)
                    .count();
                subset_serving(
                    hosts,
                    &members,
                    making,
                    set,
                    self.thresholds.overprovisioning,
                )
            })
            .collect()
    }

    /// Where each subset's requests go now, given what each would serve
    /// with. Counts and logs each change.
    pub(super) fn route_subsets(&mut self, own: &[SubsetServing]) -> SubsetRoutes {
        let rules = self.subsets.clone();
        let census: Vec<Census> = own.iter().map(|o| o.census).collect();
        let routes = resolve(&rules, &census);
        let takes = (0..rules.len())
            .map(|j| routes.contains(&RouteTo::Subset(j)))
            .collect();
        for (j, (&now, rule)) in routes.iter().zip(rules.iter()).enumerate() {
            let before = self.subset_routes.get(j).copied();
            let settling =
                |r: Option<RouteTo>| matches!(r, None | Some(RouteTo::Nowhere { warming: true }));
            // Until a subset has served its own requests once (its
            // endpoints are still being made at start), moves are not
            // changes.
            let served = self.subset_served.get(j).copied().unwrap_or(false);
            if before == Some(now) || !served || settling(before) || settling(Some(now)) {
                continue;
            }
            self.subset_changes += 1;
            if now == RouteTo::Subset(j) {
                tracing::info!(subset = %rule.name, "subset serves its own requests again");
            } else {
                tracing::warn!(
                    subset = %rule.name,
                    selector = %rule.selector,
                    members = census[j].members,
                    healthy = census[j].healthy,
                    to = ?describe(&rules, j, now),
                    "subset cannot serve: its requests follow its fallback"
                );
            }
        }
        self.subset_served.resize(rules.len(), false);
        for (j, &to) in routes.iter().enumerate() {
            self.subset_served[j] |= to == RouteTo::Subset(j);
        }
        self.subset_routes = routes.clone();
        let stats = rules
            .iter()
            .enumerate()
            .map(|(j, rule)| SubsetStats {
                name: rule.name.clone(),
                members: census[j].members,
                healthy: census[j].healthy,
                routed_to: describe(&rules, j, routes[j]),
            })
            .collect();
        SubsetRoutes {
            takes,
            routes: routes.into(),
            stats,
        }
    }
}

/// Where subset `j`'s requests go, as stats name it.
fn describe(rules: &[SubsetRule], j: usize, to: RouteTo) -> SubsetRoute {
    match to {
        RouteTo::Subset(i) if i == j => SubsetRoute::Own,
        RouteTo::Subset(i) => SubsetRoute::Subset(rules[i].name.clone()),
        RouteTo::Any => SubsetRoute::AnyEndpoint,
        RouteTo::Nowhere { .. } => SubsetRoute::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::driver::hosts::test_host as host;
    use crate::pick::TestEndpoints;
    use std::ops::Range;

    fn choice(e: &TestEndpoints, index: &[u32], ranges: &[(Range<usize>, u32)]) -> Tiered {
        Tiered {
            index: index.into(),
            weights: index.iter().map(|&i| e.weights[i as usize]).collect(),
            ranges: ranges.to_vec(),
        }
    }

    fn whole(n: usize) -> Vec<(Range<usize>, u32)> {
        vec![(0..n, 1_000_000)]
    }

    fn picks(
        e: &TestEndpoints,
        chosen: &[Tiered],
        previous: &[Option<SubsetPick>],
    ) -> Box<[Option<SubsetPick>]> {
        let chosen: Vec<Option<Tiered>> = chosen.iter().cloned().map(Some).collect();
        subset_picks(&crate::pick::RoundRobin, &chosen, &e.slots, previous)
    }

    /// Three primaries (0..3) and a replica (3) in tier 0, a backup
    /// replica (4): the replicas subset is members 3 and 4.
    fn set_of(replica_healthy: bool, backup_healthy: bool) -> Vec<Host> {
        vec![
            host(0, true),
            host(0, true),
            host(0, true),
            host(0, replica_healthy),
            host(1, backup_healthy),
        ]
    }

    #[test]
    fn a_subset_spills_to_its_own_backup_tier() {
        let hosts = set_of(false, true);
        let set = serving(&hosts, &Thresholds::default());
        assert_eq!(set.tiers, vec![(0, 1_000_000)], "the set keeps tier 0");
        let own = subset_serving(&hosts, &[3, 4], 0, &set, 1.4);
        assert_eq!(own.endpoints, vec![(4, 1)]);
        assert_eq!(own.tiers, vec![(1, 1_000_000)]);
        assert_eq!((own.census.healthy, own.census.available), (1, 1));
        // Both healthy: its own tier 0.
        let hosts = set_of(true, true);
        let set = serving(&hosts, &Thresholds::default());
        let own = subset_serving(&hosts, &[3, 4], 0, &set, 1.4);
        assert_eq!(own.endpoints, vec![(3, 1)]);
    }

    #[test]
    fn a_subset_with_no_healthy_member_has_no_panic_of_its_own() {
        // The set is healthy enough: nothing to offer, the fallback decides.
        let hosts = set_of(false, false);
        let set = serving(&hosts, &Thresholds::default());
        assert!(!set.panic);
        let own = subset_serving(&hosts, &[3, 4], 0, &set, 1.4);
        assert!(own.endpoints.is_empty());
        assert_eq!((own.census.healthy, own.census.available), (0, 0));
        // The set in panic put its members back: the last resort.
        let hosts = [host(0, false), host(0, false), host(0, true)];
        let set = serving(&hosts, &Thresholds::default());
        assert!(set.panic);
        let own = subset_serving(&hosts, &[0, 1], 0, &set, 1.4);
        assert_eq!(own.endpoints, vec![(0, 1), (1, 1)]);
        assert_eq!((own.census.healthy, own.census.available), (0, 2));
    }

    #[test]
    fn members_being_made_or_awaiting_a_probe_are_warming() {
        let mut hosts = set_of(false, false);
        hosts[4].awaits_probe = true;
        hosts[4].available = false;
        let set = serving(&hosts, &Thresholds::default());
        let own = subset_serving(&hosts, &[3, 4], 1, &set, 1.4);
        assert_eq!(own.census.warming, 2);
    }

    #[test]
    fn a_subsets_picker_is_carried_over_while_its_endpoints_stay() {
        let e = TestEndpoints::equal(3);
        let (one, two) = (choice(&e, &[1], &whole(1)), choice(&e, &[0, 2], &whole(2)));
        let first = picks(&e, &[one.clone(), two.clone()], &[]);
        assert_eq!(first[1].as_ref().unwrap().ready.len(), 2);
        let again = picks(&e, &[one.clone(), two], &first);
        assert!(Arc::ptr_eq(
            &again[1].as_ref().unwrap().picker,
            &first[1].as_ref().unwrap().picker
        ));
        let changed = picks(&e, &[one, choice(&e, &[0, 1, 2], &whole(3))], &first);
        assert!(!Arc::ptr_eq(
            &changed[1].as_ref().unwrap().picker,
            &first[1].as_ref().unwrap().picker
        ));
        assert!(picks(&e, &[choice(&e, &[], &[])], &[])[0].is_none());
    }

    #[test]
    fn a_subset_with_two_serving_tiers_draws_each_with_its_share() {
        let e = TestEndpoints::equal(4);
        let both = picks(
            &e,
            &[choice(&e, &[1, 3], &[(0..1, 700_000), (1..2, 300_000)])],
            &[],
        );
        let t = both[0].as_ref().unwrap().tiers.as_ref().unwrap();
        assert_eq!((t[0].start, t[0].end), (0, 1));
        assert_eq!((t[1].start, t[1].end), (1, 2));
        let split = t[0].below as f64 / u64::MAX as f64;
        assert!((split - 0.7).abs() < 1e-9, "{split}");
        // One serving tier: one picker, no tiers.
        assert!(picks(&e, &[choice(&e, &[2, 3], &whole(2))], &[])[0]
            .as_ref()
            .unwrap()
            .tiers
            .is_none());
    }
}
