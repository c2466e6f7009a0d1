use super::cost::{pending_le, power_of_two};
use super::{Loads, PickContext, Picker, Policy};

/// Power of two choices on in-flight requests per unit of weight.
///
/// Two distinct endpoints are drawn at random; the one with the lower
/// `(in_flight + 1) / weight` wins (the `+ 1` lets weights count even when
/// both are idle). Nearly all of least-connections' benefit at O(1) cost and
/// without herding every client onto the same least-loaded endpoint.
///
/// It does not read latency: an endpoint that fails fast finishes its
/// requests fast, looks idle and wins more pairs. Failures that take an
/// endpoint out of service (failed readiness, refused connections) still
/// stop its traffic; for errors returned quickly by a live endpoint, prefer
/// `ewma`, which counts them as slow.
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingP2c;

impl Picker for PendingP2c {
    #[inline]
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        power_of_two(cx, false, |loads, a, b, _| pending_le(loads, a, b))
    }
}

impl Policy for PendingP2c {
    fn name(&self) -> &str {
        "p2c"
    }

    fn uses_latency(&self) -> bool {
        false
    }

    fn build(&self, _loads: &Loads<'_>, _previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        Box::new(PendingP2c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::TestEndpoints;

    #[test]
    fn prefers_the_less_loaded() {
        let f = TestEndpoints::equal(2);
        f.add_in_flight(0, 5);
        assert_eq!(f.counts(&PendingP2c, 100, 3), vec![0, 100]);
    }

    #[test]
    fn never_picks_the_most_loaded_of_three() {
        let f = TestEndpoints::equal(3);
        f.add_in_flight(0, 1);
        f.add_in_flight(2, 9);
        let counts = f.counts(&PendingP2c, 3_000, 4);
        assert_eq!(counts[2], 0);
        // endpoint 1 (idle) wins every pair it is in: 2/3 of picks
        assert!(counts[1] > 1_800, "{counts:?}");
    }
}
