use super::cost::least_loaded;
use super::{Loads, PickContext, Picker, Policy};

/// Least connections: the exact minimum of `(in_flight + 1) / weight`, by a
/// full scan of the ready endpoints.
///
/// The classic nginx / HAProxy behaviour. O(n) per pick; prefer `p2c` above a
/// few hundred endpoints or with many independent clients (which all see the
/// same minimum and herd onto it). Ties are broken by starting the scan at a
/// random endpoint, so equal endpoints share the load.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastConn;

impl Picker for LeastConn {
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        let n = cx.loads().len();
        if n == 0 {
            return None;
        }
        let start = cx.random_below(n);
        least_loaded(cx.loads(), start)
    }
}

impl Policy for LeastConn {
    fn name(&self) -> &str {
        "least-conn"
    }

    fn uses_latency(&self) -> bool {
        false
    }

    fn build(&self, _loads: &Loads<'_>, _previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        Box::new(LeastConn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::TestEndpoints;

    #[test]
    fn picks_the_exact_minimum() {
        let f = TestEndpoints::equal(5);
        for (i, load) in [4, 3, 1, 5, 2].into_iter().enumerate() {
            f.add_in_flight(i, load);
        }
        assert_eq!(f.counts(&LeastConn, 200, 5), vec![0, 0, 200, 0, 0]);
    }

    #[test]
    fn weight_scales_the_load() {
        let f = TestEndpoints::weighted(&[1, 4]);
        // idle at weight 1 (1/1) beats 4 in flight at weight 4 (5/4)
        f.add_in_flight(1, 4);
        assert_eq!(f.counts(&LeastConn, 10, 6), vec![10, 0]);
        // now 2/1 against 5/4: the heavier endpoint wins
        f.add_in_flight(0, 1);
        assert_eq!(f.counts(&LeastConn, 10, 7), vec![0, 10]);
    }

    #[test]
    fn ties_are_shared() {
        let f = TestEndpoints::equal(4);
        let counts = f.counts(&LeastConn, 4_000, 8);
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn skips_endpoints_out_of_service() {
        let f = TestEndpoints::equal(3);
        f.add_in_flight(0, 5);
        f.add_in_flight(2, 5);
        f.take_down(1);
        let counts = f.counts(&LeastConn, 100, 9);
        assert_eq!(counts[1], 0, "{counts:?}");
    }
}
