use super::{pending_le, Loads, PickContext, Picker, Policy};

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
        let loads = cx.loads();
        let mut best = start;
        for k in 1..n {
            let i = (start + k) % n;
            if !pending_le(loads, best, i) {
                best = i;
            }
        }
        Some(best)
    }
}

impl Policy for LeastConn {
    fn name(&self) -> &str {
        "least-conn"
    }

    fn uses_latency(&self) -> bool {
        false
    }

    fn build(&self, _loads: &Loads<'_>) -> Box<dyn Picker> {
        Box::new(LeastConn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::testing::Fixture;

    #[test]
    fn picks_the_exact_minimum() {
        let f = Fixture::equal(5);
        for (i, load) in [4, 3, 1, 5, 2].into_iter().enumerate() {
            for _ in 0..load {
                f.slots[i].in_flight.enter();
            }
        }
        assert_eq!(f.counts(&LeastConn, 200, 5), vec![0, 0, 200, 0, 0]);
    }

    #[test]
    fn weight_scales_the_load() {
        let f = Fixture::weighted(&[1, 4]);
        // 1/1 vs (4+1)/4: endpoint 0 is idle, but 2 per unit of weight beats 1.25? no: 1.0 < 1.25
        for _ in 0..4 {
            f.slots[1].in_flight.enter();
        }
        assert_eq!(f.counts(&LeastConn, 10, 6), vec![10, 0]);
        f.slots[0].in_flight.enter();
        // now 2/1 vs 5/4: the heavier endpoint wins
        assert_eq!(f.counts(&LeastConn, 10, 7), vec![0, 10]);
    }

    #[test]
    fn ties_are_shared() {
        let f = Fixture::equal(4);
        let counts = f.counts(&LeastConn, 4_000, 8);
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
