use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{previous_as, Loads, PickContext, Picker, Policy};

/// Largest rotation table; weights whose sum (after dividing by their gcd)
/// exceeds it are scaled down proportionally, keeping every endpoint ≥ 1.
const MAX_CYCLE: u64 = 1 << 16;

/// Weighted round robin with smooth interleaving.
///
/// One cycle holds each endpoint exactly `weight` times (weights divided by
/// their gcd), spread as evenly as possible: endpoint `i`'s turns sit at
/// positions `(k + φᵢ) / weightᵢ` of the cycle, with golden-ratio phases `φᵢ`
/// so that light endpoints fall between the heavy one's turns instead of
/// clumping. Weights 5,1,1 give `A B A A A C A`: never more than three `A` in a
/// row, also across cycles (pingora's list expansion gives 5 in a row, and
/// nginx's smooth WRR 4 across a cycle boundary).
///
/// The cycle is precomputed when the ready set changes and walked with one
/// atomic counter per balancer (shared by its clones), so a pick is O(1)
/// and lock-free.
#[derive(Clone, Copy, Debug, Default)]
pub struct WeightedRoundRobin;

#[derive(Debug)]
struct Cycle {
    order: Box<[u32]>,
    next: Arc<AtomicUsize>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The smooth order of one cycle for these weights (each ≥ 1).
pub(crate) fn smooth_cycle(weights: &[u32]) -> Vec<u32> {
    let g = weights.iter().fold(0, |g, &w| gcd(g, u64::from(w))).max(1);
    let mut reduced: Vec<u64> = weights.iter().map(|&w| u64::from(w) / g).collect();
    let total: u64 = reduced.iter().sum();
    if total > MAX_CYCLE {
        for w in &mut reduced {
            *w = ((*w as f64) * MAX_CYCLE as f64 / total as f64)
                .round()
                .max(1.0) as u64;
        }
    }
    const GOLDEN: f64 = 0.618_033_988_749_894_8;
    let mut turns: Vec<(f64, u32)> = Vec::with_capacity(reduced.iter().sum::<u64>() as usize);
    for (i, &w) in reduced.iter().enumerate() {
        let phase = ((i + 1) as f64 * GOLDEN).fract();
        for k in 0..w {
            turns.push(((k as f64 + phase) / w as f64, i as u32));
        }
    }
    turns.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    turns.into_iter().map(|(_, i)| i).collect()
}

impl Picker for Cycle {
    #[inline]
    fn pick(&self, _cx: &mut PickContext<'_>) -> Option<usize> {
        if self.order.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.order.len();
        Some(self.order[turn] as usize)
    }
}

impl Policy for WeightedRoundRobin {
    fn name(&self) -> &str {
        "weighted-round-robin"
    }

    fn uses_latency(&self) -> bool {
        false
    }

    fn build(&self, loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        let weights: Vec<u32> = (0..loads.len()).map(|i| loads.weight(i)).collect();
        let next = previous_as::<Cycle>(previous)
            .map(|p| p.next.clone())
            .unwrap_or_default();
        Box::new(Cycle {
            order: smooth_cycle(&weights).into(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::TestEndpoints;

    fn longest_run(seq: &[usize], of: usize) -> usize {
        let (mut best, mut run) = (0, 0);
        for &x in seq {
            run = if x == of { run + 1 } else { 0 };
            best = best.max(run);
        }
        best
    }

    #[test]
    fn five_one_one_is_smooth_and_exact() {
        let f = TestEndpoints::weighted(&[5, 1, 1]);
        // 10 cycles, read straight across cycle boundaries
        let picks = f.picks(&WeightedRoundRobin, 70, 0);
        for cycle in picks.chunks(7) {
            let mut counts = [0; 3];
            cycle.iter().for_each(|&i| counts[i] += 1);
            assert_eq!(counts, [5, 1, 1]);
        }
        // 5 turns among 7 with 2 others: 3 in a row is the least possible
        assert_eq!(longest_run(&picks, 0), 3, "{picks:?}");
    }

    #[test]
    fn proportions_are_exact_for_uneven_weights() {
        let weights = [3, 7, 1, 9];
        let f = TestEndpoints::weighted(&weights);
        let counts = f.counts(&WeightedRoundRobin, 20 * 50, 0);
        assert_eq!(counts, vec![150, 350, 50, 450]);
    }

    #[test]
    fn equal_weights_visit_everyone_once_per_cycle() {
        let f = TestEndpoints::equal(5);
        let picks = f.picks(&WeightedRoundRobin, 10, 0);
        let mut first: Vec<_> = picks[..5].to_vec();
        first.sort();
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        assert_eq!(picks[..5], picks[5..]);
    }

    #[test]
    fn huge_weights_are_scaled_to_a_bounded_cycle() {
        let order = smooth_cycle(&[1_000_000, 999_999, 3]);
        assert!(order.len() as u64 <= MAX_CYCLE + 3);
        assert!(order.contains(&2));
        let zeros = order.iter().filter(|&&i| i == 0).count();
        let ones = order.iter().filter(|&&i| i == 1).count();
        assert!(zeros.abs_diff(ones) <= 1);
    }
}
