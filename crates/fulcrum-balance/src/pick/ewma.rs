use super::{power_of_two, Loads, PickContext, Picker, Policy};

/// Power of two choices on peak-EWMA latency: the default policy.
///
/// Two distinct endpoints are drawn at random and the one with the lower
/// cost `rtt_estimate × (in_flight + 1) / weight` wins. The latency estimate
/// is [`PeakEwma`](fulcrum_core::load::PeakEwma), fed by every response, with
/// failures recorded as a penalty so a fast-failing endpoint looks slow.
/// Latency-aware and load-aware at once, this is the policy that keeps tail
/// latency low when one endpoint degrades.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeakEwmaP2c;

impl PeakEwmaP2c {
    #[inline]
    fn cost(loads: &Loads<'_>, i: usize, now: u64) -> f64 {
        loads.rtt_estimate(i, now) * f64::from(loads.in_flight(i).saturating_add(1))
            / f64::from(loads.weight(i))
    }
}

impl Picker for PeakEwmaP2c {
    #[inline]
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        power_of_two(cx, true, |loads, a, b, now| {
            Self::cost(loads, a, now) <= Self::cost(loads, b, now)
        })
    }
}

impl Policy for PeakEwmaP2c {
    fn name(&self) -> &str {
        "ewma"
    }

    fn build(&self, _loads: &Loads<'_>) -> Box<dyn Picker> {
        Box::new(PeakEwmaP2c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::testing::Fixture;

    #[test]
    fn prefers_the_faster_endpoint() {
        let f = Fixture::equal(2);
        let now = fulcrum_core::time::now();
        f.slots[0].ewma.record(50_000_000, now);
        f.slots[1].ewma.record(5_000_000, now);
        assert_eq!(f.counts(&PeakEwmaP2c, 100, 1), vec![0, 100]);
    }

    #[test]
    fn weights_divide_the_cost() {
        let f = Fixture::weighted(&[10, 1]);
        let now = fulcrum_core::time::now();
        // 3x slower but 10x the weight: cheaper.
        f.slots[0].ewma.record(15_000_000, now);
        f.slots[1].ewma.record(5_000_000, now);
        assert_eq!(f.counts(&PeakEwmaP2c, 50, 2), vec![50, 0]);
    }
}
