use super::cost::{pending_le, power_of_two};
use super::{Loads, PickContext, Picker, Policy};

/// Power of two choices on peak-EWMA latency: the default policy.
///
/// Two distinct endpoints are drawn at random and the one with the lower
/// cost `latency × (in_flight + 1) / weight` wins. The latency is
/// [`PeakEwma`](fulcrum_core::load::PeakEwma), fed by every response, with
/// failures recorded as a penalty so a fast-failing endpoint looks slow.
/// Latency-aware and load-aware at once, this is the policy that keeps tail
/// latency low when one endpoint degrades.
///
/// **Endpoints without a latency sample** (new, or re-admitted after being
/// out of service) are scored as fast as the endpoint they are compared
/// with, so they compete on load alone and win their fair share until their
/// first response gives them a latency of their own. (A fixed seed such as
/// 30 ms would starve them once their peers answer faster; a seed of zero
/// would flood them.) A new endpoint that turns out slow takes at most
/// about its fair share of the in-flight requests before its first,
/// slow, sample replaces the assumption.
///
/// **Costs within 25 % of each other are a tie**, won by the endpoint with
/// fewer requests in flight per unit of weight (and, if that is equal too,
/// by either at random). Latency samples are noisy, and peak-sensitive
/// estimates turn noise into lasting differences: the endpoint that
/// happened to see the slowest recent sample would otherwise lose every
/// pair for seconds when load is light (sequential calls, where nothing is
/// ever in flight at pick time). Real differences — a slow endpoint, a
/// loaded one — are far larger (on a quiet machine the 99th percentile of
/// samples is already 20 % above the median).
#[derive(Clone, Copy, Debug, Default)]
pub struct PeakEwmaP2c;

/// Costs closer than this ratio are a tie.
const TIE: f64 = 1.25;

impl PeakEwmaP2c {
    /// Whether `a` costs no more than `b`.
    #[inline]
    fn a_wins(loads: &Loads<'_>, a: usize, b: usize, now: u64) -> bool {
        let (la, lb) = match (loads.latency(a, now), loads.latency(b, now)) {
            (Some(la), Some(lb)) => (la, lb),
            (Some(l), None) | (None, Some(l)) => (l, l),
            (None, None) => (1.0, 1.0),
        };
        let cost = |latency: f64, i: usize| {
            latency * f64::from(loads.in_flight(i).saturating_add(1)) / f64::from(loads.weight(i))
        };
        let (ca, cb) = (cost(la, a), cost(lb, b));
        if ca * TIE < cb {
            true
        } else if cb * TIE < ca {
            false
        } else {
            pending_le(loads, a, b)
        }
    }
}

impl Picker for PeakEwmaP2c {
    #[inline]
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        power_of_two(cx, true, Self::a_wins)
    }
}

impl Policy for PeakEwmaP2c {
    fn name(&self) -> &str {
        "ewma"
    }

    fn build(&self, _loads: &Loads<'_>, _previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        Box::new(PeakEwmaP2c)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pick::TestEndpoints;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn prefers_the_faster_endpoint() {
        let f = TestEndpoints::equal(2);
        f.record_latency(0, 50 * MS);
        f.record_latency(1, 5 * MS);
        assert_eq!(f.counts(&PeakEwmaP2c, 100, 1), vec![0, 100]);
    }

    #[test]
    fn weights_divide_the_cost() {
        let f = TestEndpoints::weighted(&[10, 1]);
        // 3x slower but 10x the weight: cheaper.
        f.record_latency(0, 15 * MS);
        f.record_latency(1, 5 * MS);
        assert_eq!(f.counts(&PeakEwmaP2c, 50, 2), vec![50, 0]);
    }

    #[test]
    fn latencies_within_the_noise_share_the_load() {
        let f = TestEndpoints::equal(2);
        f.record_latency(0, Duration::from_micros(1_950));
        f.record_latency(1, Duration::from_micros(2_000));
        let counts = f.counts(&PeakEwmaP2c, 1_000, 5);
        assert!(counts.iter().all(|&c| c > 400), "{counts:?}");
        // ...but a real difference decides.
        f.record_latency(1, Duration::from_micros(2_500));
        assert_eq!(f.counts(&PeakEwmaP2c, 100, 6), vec![100, 0]);
    }

    #[test]
    fn an_endpoint_without_a_sample_takes_its_share() {
        // Three endpoints answered in 1 ms; a fourth has not answered yet.
        let f = TestEndpoints::equal(4);
        for i in 0..3 {
            f.record_latency(i, MS);
        }
        let counts = f.counts(&PeakEwmaP2c, 4_000, 3);
        // Compared on load alone (all idle), it wins half of its pairs: 25 %.
        assert!((800..1_200).contains(&counts[3]), "{counts:?}");
    }

    #[test]
    fn an_endpoint_without_a_sample_still_competes_on_load() {
        let f = TestEndpoints::equal(2);
        f.record_latency(0, MS);
        f.add_in_flight(1, 3);
        // Busier, and with no sample: it loses to the idle, measured endpoint.
        assert_eq!(f.counts(&PeakEwmaP2c, 100, 4), vec![100, 0]);
    }
}
