//! Subsets in the snapshot: each subset balanced as a set of its own (its
//! members' tiers, spill-over and panic threshold, by the pure
//! `hosts::serving`), its serving endpoints with a picker of their own, and
//! where each subset's requests go (the pure `subset::resolve`).

use std::sync::Arc;

use super::hosts::{serving, Host};
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
    pub(super) census: Census,
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
pub(super) struct Routing {
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
    /// member): the endpoints that would take its requests, and its census.
    pub(super) fn serve_subsets(&self, hosts: &[Host]) -> Vec<SubsetServing> {
        self.subsets
            .iter()
            .map(|rule| {
                let members: Vec<usize> = (0..hosts.len())
                    .filter(|&i| rule.selector.matches(&self.members.at(i).slot.endpoint))
                    .collect();
                let own: Vec<Host> = members.iter().map(|&i| hosts[i]).collect();
                let chosen = serving(&own, &self.thresholds);
                let census = Census {
                    members: members.len(),
                    healthy: own
                        .iter()
                        .filter(|h| !h.disabled && h.available && h.healthy)
                        .count(),
                    available: chosen.endpoints.len(),
                    warming: members
                        .iter()
                        .filter(|&&i| self.members.at(i).slot.state() == EndpointState::Warming)
                        .count(),
                };
                SubsetServing {
                    endpoints: chosen
                        .endpoints
                        .into_iter()
                        .map(|(k, weight)| (members[k], weight))
                        .collect(),
                    tiers: chosen.tiers,
                    census,
                }
            })
            .collect()
    }

    /// Where each subset's requests go now, given what each would serve
    /// with. Counts and logs each change.
    pub(super) fn route_subsets(&mut self, own: &[SubsetServing]) -> Routing {
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
        Routing {
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
