use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{previous_as, Loads, PickContext, Picker, Policy};

/// Strict rotation over the ready endpoints. Ignores weights and load by
/// design; use `weighted-round-robin` for weights.
///
/// One atomic counter per balancer, shared by its clones (two balancers
/// built from one builder rotate independently). The rotation continues
/// across membership changes instead of restarting at the first endpoint,
/// so frequent updates do not overload it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

/// The picker: the balancer's rotation counter.
#[derive(Debug)]
struct Rotation {
    next: Arc<AtomicUsize>,
}

impl Picker for Rotation {
    #[inline]
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        let n = cx.loads().len();
        if n == 0 {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % n)
    }
}

impl Policy for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn uses_latency(&self) -> bool {
        false
    }

    fn build(&self, _loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        let next = previous_as::<Rotation>(previous)
            .map(|p| p.next.clone())
            .unwrap_or_default();
        Box::new(Rotation { next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::TestEndpoints;

    fn picks(f: &TestEndpoints, picker: &dyn Picker, count: usize) -> Vec<usize> {
        let mut rng = fastrand::Rng::with_seed(0);
        (0..count)
            .map(|_| picker.pick(&mut PickContext::new(f.loads(), &mut rng, None)))
            .map(Option::unwrap)
            .collect()
    }

    #[test]
    fn rotates_exactly() {
        let f = TestEndpoints::equal(4);
        let picks = f.picks(&RoundRobin, 12, 0);
        assert_eq!(picks, vec![0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn rotation_continues_across_rebuilds_of_one_balancer_only() {
        let f = TestEndpoints::equal(3);
        let first = RoundRobin.build(&f.loads(), None);
        assert_eq!(picks(&f, &*first, 2), vec![0, 1]);
        let rebuilt = RoundRobin.build(&f.loads(), Some(&*first));
        assert_eq!(picks(&f, &*rebuilt, 2), vec![2, 0]);
        // Another balancer from the same policy value starts its own rotation.
        let other = RoundRobin.build(&f.loads(), None);
        assert_eq!(picks(&f, &*other, 2), vec![0, 1]);
    }
}
