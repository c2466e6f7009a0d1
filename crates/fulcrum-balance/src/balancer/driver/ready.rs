//! The endpoints a snapshot can pick, as publishing gathers them: the set's
//! serving endpoints first (what the set's own picker and tiers cover),
//! then those that serve only some subset (its own tiers reach further).

use std::ops::Range;
use std::sync::Arc;

use super::members::Member;
use crate::slot::Slot;

/// The snapshot's `ready` endpoints and what goes with them, in step.
pub(super) struct Gathered<S> {
    pub(super) slots: Vec<Arc<Slot>>,
    pub(super) weights: Vec<u32>,
    pub(super) services: Vec<S>,
    pub(super) generations: Vec<u32>,
    /// Each member's position in `slots`, once gathered.
    position: Vec<Option<u32>>,
}

impl<S: Clone> Gathered<S> {
    pub(super) fn new(members: usize) -> Self {
        Gathered {
            slots: Vec::new(),
            weights: Vec::new(),
            services: Vec::new(),
            generations: Vec::new(),
            position: vec![None; members],
        }
    }

    /// Member `i` (once) at `weight`: its position, or `None` while it has
    /// no service.
    pub(super) fn add(&mut self, i: usize, member: &Member<S>, weight: u32) -> Option<u32> {
        if let Some(at) = self.position[i] {
            return Some(at);
        }
        let service = member.service.as_ref()?;
        let at = self.slots.len() as u32;
        self.slots.push(member.slot.clone());
        self.weights.push(weight);
        self.services.push(service.clone());
        self.generations.push(member.slot.generation());
        self.position[i] = Some(at);
        Some(at)
    }

    /// Whether member `i` was gathered.
    pub(super) fn has(&self, i: usize) -> bool {
        self.position[i].is_some()
    }
}

/// Endpoints in tier order: their positions in the snapshot's `ready`,
/// their weights, and each tier's range of them with its share
/// (millionths).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Tiered {
    pub(super) index: Box<[u32]>,
    pub(super) weights: Box<[u32]>,
    pub(super) ranges: Vec<(Range<usize>, u32)>,
}

/// [`Tiered`] for endpoints given in group order (member index, weight,
/// group: a tier, or a tier's zone), with each group's share from
/// `shares` (group, millionths). Endpoints `add` refuses are left out.
pub(super) fn tiered(
    endpoints: impl IntoIterator<Item = (usize, u32, u32)>,
    shares: &[(u32, u32)],
    mut add: impl FnMut(usize, u32) -> Option<u32>,
) -> Tiered {
    let (mut index, mut weights) = (Vec::new(), Vec::new());
    let mut ranges: Vec<(Range<usize>, u32)> = Vec::new();
    let mut last_priority = None;
    for (i, weight, priority) in endpoints {
        let Some(at) = add(i, weight) else {
            continue;
        };
        let share = shares
            .iter()
            .find(|&&(p, _)| p == priority)
            .map_or(0, |&(_, share)| share);
        match ranges.last_mut() {
            Some((range, _)) if last_priority == Some(priority) => range.end += 1,
            _ => ranges.push((index.len()..index.len() + 1, share)),
        }
        last_priority = Some(priority);
        index.push(at);
        weights.push(weight);
    }
    Tiered {
        index: index.into(),
        weights: weights.into(),
        ranges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_ranges_of_the_endpoints_added() {
        // Member 2 has no service: left out, its tier's range closes up.
        let endpoints = [(0, 1, 0), (2, 1, 0), (1, 3, 0), (3, 1, 1)];
        let t = tiered(endpoints, &[(0, 700_000), (1, 300_000)], |i, _| {
            (i != 2).then_some(10 + i as u32)
        });
        assert_eq!(&t.index[..], [10, 11, 13]);
        assert_eq!(&t.weights[..], [1, 3, 1]);
        assert_eq!(t.ranges, vec![(0..2, 700_000), (2..3, 300_000)]);
    }
}
