//! Subsets in the snapshot: each subset's serving endpoints with a picker
//! of their own, and where each subset's requests go (the decision is the
//! pure `subset::resolve`).

use std::ops::Range;
use std::sync::Arc;

use super::publish::build_picker;
use super::tiers::tier_pickers;
use super::{Driver, Maker};
use crate::balancer::snapshot::{NoPicker, SubsetPick};
use crate::pick::{Picker, Policy};
use crate::slot::{EndpointState, Slot};
use crate::stats::{SubsetRoute, SubsetStats};
use crate::subset::resolve::{healthy_only, resolve, Census, RouteTo};
use crate::subset::SubsetRule;

/// A picker (or tiers) for each subset given the positions in `slots`
/// (the snapshot's `ready`) that take its requests; `None` for the others.
/// A picker is carried over from `previous` when the subset's endpoints
/// and weights did not change; with several tiers serving, each tier the
/// subset has endpoints in gets its picker, drawn with the tier's share.
pub(super) fn subset_picks(
    policy: &dyn Policy,
    chosen: &[Option<Box<[u32]>>],
    slots: &[Arc<Slot>],
    weights: &[u32],
    ranges: &[(Range<usize>, u32)],
    previous: &[Option<SubsetPick>],
) -> Box<[Option<SubsetPick>]> {
    chosen
        .iter()
        .enumerate()
        .map(|(j, index)| {
            let index = index.clone().filter(|index| !index.is_empty())?;
            let ready: Box<[Arc<Slot>]> =
                index.iter().map(|&i| slots[i as usize].clone()).collect();
            let own_weights: Box<[u32]> = index.iter().map(|&i| weights[i as usize]).collect();
            // The tiers' ranges, in the subset's own positions.
            let mut local: Vec<(Range<usize>, u32)> = Vec::new();
            for (range, share) in ranges {
                let start = index.partition_point(|&i| (i as usize) < range.start);
                let end = index.partition_point(|&i| (i as usize) < range.end);
                if start < end {
                    local.push((start..end, *share));
                }
            }
            if local.len() > 1 {
                let tiers = tier_pickers(policy, &ready, &own_weights, &local);
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
    /// For each subset that takes requests, the positions in the serving
    /// set of the endpoints that take them.
    pub(super) chosen: Vec<Option<Box<[u32]>>>,
    pub(super) routes: Box<[RouteTo]>,
    pub(super) stats: Arc<[SubsetStats]>,
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// Where each subset's requests go now, given the serving `slots` and
    /// which of them are `healthy`, and which endpoints take them. Counts
    /// and logs each change.
    pub(super) fn route_subsets(&mut self, slots: &[Arc<Slot>], healthy: &[bool]) -> Routing {
        let rules = self.subsets.clone();
        let mut matched = Vec::with_capacity(rules.len());
        let census: Vec<Census> = rules
            .iter()
            .map(|rule| {
                let all: Vec<u32> = (0..slots.len())
                    .filter(|&i| rule.selector.matches(&slots[i].endpoint))
                    .map(|i| i as u32)
                    .collect();
                let mut census = Census {
                    healthy: all.iter().filter(|&&i| healthy[i as usize]).count(),
                    available: all.len(),
                    ..Census::default()
                };
                for m in self.members.iter() {
                    if rule.selector.matches(&m.slot.endpoint) {
                        census.members += 1;
                        census.warming += usize::from(m.slot.state() == EndpointState::Warming);
                    }
                }
                matched.push(all);
                census
            })
            .collect();
        let routes = resolve(&rules, &census);
        let chosen = matched
            .into_iter()
            .enumerate()
            .map(|(j, all)| {
                if !routes.contains(&RouteTo::Subset(j)) {
                    return None;
                }
                Some(if healthy_only(&census[j]) {
                    all.into_iter().filter(|&i| healthy[i as usize]).collect()
                } else {
                    all.into()
                })
            })
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
            chosen,
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

    fn picks(
        e: &TestEndpoints,
        chosen: &[&[u32]],
        ranges: &[(Range<usize>, u32)],
        previous: &[Option<SubsetPick>],
    ) -> Box<[Option<SubsetPick>]> {
        let chosen: Vec<Option<Box<[u32]>>> = chosen.iter().map(|c| Some((*c).into())).collect();
        subset_picks(
            &crate::pick::RoundRobin,
            &chosen,
            &e.slots,
            &e.weights,
            ranges,
            previous,
        )
    }

    #[test]
    fn a_subsets_picker_is_carried_over_while_its_endpoints_stay() {
        let e = TestEndpoints::equal(3);
        let first = picks(&e, &[&[1], &[0, 2]], &[(0..3, 1_000_000)], &[]);
        assert_eq!(first[1].as_ref().unwrap().ready.len(), 2);
        let again = picks(&e, &[&[1], &[0, 2]], &[(0..3, 1_000_000)], &first);
        assert!(Arc::ptr_eq(
            &again[1].as_ref().unwrap().picker,
            &first[1].as_ref().unwrap().picker
        ));
        let changed = picks(&e, &[&[1], &[0, 1, 2]], &[(0..3, 1_000_000)], &first);
        assert!(!Arc::ptr_eq(
            &changed[1].as_ref().unwrap().picker,
            &first[1].as_ref().unwrap().picker
        ));
        assert!(picks(&e, &[&[]], &[(0..3, 1_000_000)], &[])[0].is_none());
    }

    #[test]
    fn a_subset_keeps_the_tiers_it_has_endpoints_in() {
        // Tier 0 = positions 0..2, tier 1 = 2..4.
        let e = TestEndpoints::equal(4);
        let tiers = [(0..2, 700_000), (2..4, 300_000)];
        let both = picks(&e, &[&[1, 3]], &tiers, &[]);
        let t = both[0].as_ref().unwrap().tiers.as_ref().unwrap();
        assert_eq!((t[0].start, t[0].end), (0, 1));
        assert_eq!((t[1].start, t[1].end), (1, 2));
        let split = t[0].below as f64 / u64::MAX as f64;
        assert!((split - 0.7).abs() < 1e-9, "{split}");
        // Endpoints in one tier only: one picker, no tiers.
        assert!(picks(&e, &[&[2, 3]], &tiers, &[])[0]
            .as_ref()
            .unwrap()
            .tiers
            .is_none());
    }
}
