use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{Loads, PickContext, Picker, Policy};

/// Strict rotation over the ready endpoints, shared by every clone of the
/// balancer (one atomic counter). Ignores weights and load by design; use
/// `weighted-round-robin` for weights.
///
/// The rotation continues across membership changes instead of restarting at
/// the first endpoint, so frequent updates do not overload it.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    next: Arc<AtomicUsize>,
}

impl Picker for RoundRobin {
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

    fn build(&self, _loads: &Loads<'_>) -> Box<dyn Picker> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::testing::Fixture;

    #[test]
    fn rotates_exactly() {
        let f = Fixture::equal(4);
        let picks = f.picks(&RoundRobin::default(), 12, 0);
        assert_eq!(picks, vec![0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn rotation_continues_across_rebuilds() {
        let policy = RoundRobin::default();
        let f = Fixture::equal(3);
        assert_eq!(f.picks(&policy, 2, 0), vec![0, 1]);
        assert_eq!(f.picks(&policy, 2, 0), vec![2, 0]);
    }
}
