//! Serving tiers in the snapshot: one picker per tier when a tier spills
//! over to the next (the shares come from the pure `hosts::serving`).

use std::ops::Range;
use std::sync::Arc;

use super::publish::{build_picker, BLOCKING_BUILD, BLOCKING_SET};
use super::{Driver, Maker};
use crate::balancer::snapshot::{NoPicker, TierPick};
use crate::pick::Policy;
use crate::slot::Slot;

/// One picker per tier over its range of `slots`, each drawn with its
/// share (millionths). Fresh pickers: a rotation or session table spans
/// one tier's indices, so none is carried over.
pub(super) fn tier_pickers(
    policy: &dyn Policy,
    slots: &[Arc<Slot>],
    weights: &[u32],
    ranges: &[(Range<usize>, u32)],
) -> Box<[TierPick]> {
    let total: u64 = ranges.iter().map(|(_, share)| u64::from(*share)).sum();
    let mut cumulative = 0u64;
    ranges
        .iter()
        .map(|(range, share)| {
            cumulative += u64::from(*share);
            let below = if cumulative >= total {
                u64::MAX
            } else {
                ((u128::from(cumulative) << 64) / u128::from(total.max(1))) as u64
            };
            TierPick {
                start: range.start,
                end: range.end,
                below,
                picker: build_picker(
                    policy,
                    &slots[range.clone()],
                    &weights[range.clone()],
                    &NoPicker,
                ),
            }
        })
        .collect()
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// [`tier_pickers`] for `ranges` of the snapshot's endpoints, built on
    /// the blocking pool when large (`global`: the set's endpoints) or
    /// when the last build was slow; the time taken becomes the last
    /// build's, which spaces the next publish.
    pub(super) async fn range_pickers(
        &mut self,
        slots: &Arc<[Arc<Slot>]>,
        weights: &Arc<[u32]>,
        ranges: &[(Range<usize>, u32)],
        global: usize,
    ) -> Box<[TierPick]> {
        let started = std::time::Instant::now();
        let off_runtime = self.last_build > BLOCKING_BUILD || global >= BLOCKING_SET;
        let built = if off_runtime {
            let (policy, slots, weights, ranges) = (
                self.policy.clone(),
                slots.clone(),
                weights.clone(),
                ranges.to_vec(),
            );
            tokio::task::spawn_blocking(move || tier_pickers(&*policy, &slots, &weights, &ranges))
                .await
                .ok()
        } else {
            None
        };
        let pickers = built.unwrap_or_else(|| tier_pickers(&*self.policy, slots, weights, ranges));
        self.last_build = started.elapsed();
        pickers
    }

    /// Counts and logs a change of the serving tiers.
    pub(super) fn note_tiers(&mut self, tiers: &[(u32, u32)]) {
        let priorities: Vec<u32> = tiers.iter().map(|&(p, _)| p).collect();
        if priorities == self.serving_tiers {
            return;
        }
        if !self.serving_tiers.is_empty() && !priorities.is_empty() {
            self.tier_changes += 1;
            tracing::info!(
                from = ?self.serving_tiers,
                to = ?tiers,
                "serving tiers changed (priority, share in millionths)"
            );
        }
        self.serving_tiers = priorities;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::TestEndpoints;

    #[test]
    fn each_tier_is_drawn_with_its_share() {
        let endpoints = TestEndpoints::equal(3);
        let tiers = tier_pickers(
            &crate::pick::RoundRobin,
            &endpoints.slots,
            &endpoints.weights,
            &[(0..2, 700_000), (2..3, 300_000)],
        );
        assert_eq!(tiers.len(), 2);
        let split = tiers[0].below as f64 / u64::MAX as f64;
        assert!((split - 0.7).abs() < 1e-9, "{split}");
        assert_eq!(tiers[1].below, u64::MAX);
        assert_eq!((tiers[1].start, tiers[1].end), (2, 3));
    }
}
