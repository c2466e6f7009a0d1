use super::{Loads, PickContext, Picker, Policy};

/// Random in proportion to weight, O(1) per pick with Vose's alias table.
///
/// The table is integer (no float rounding): each slot holds a threshold in
/// `0..total_weight` and an alias, so the pick distribution is exact.
#[derive(Clone, Copy, Debug, Default)]
pub struct WeightedRandom;

#[derive(Debug)]
struct AliasTable {
    total: u64,
    threshold: Box<[u64]>,
    alias: Box<[u32]>,
}

impl AliasTable {
    fn new(loads: &Loads<'_>) -> Self {
        let n = loads.len();
        let total: u64 = (0..n).map(|i| u64::from(loads.weight(i))).sum();
        // Scaled so that an average slot holds exactly `total`.
        let mut scaled: Vec<u64> = (0..n)
            .map(|i| u64::from(loads.weight(i)) * n as u64)
            .collect();
        let mut threshold = vec![total; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < total);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            threshold[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= total - scaled[s];
            if scaled[l] < total {
                large.pop();
                small.push(l);
            }
        }
        AliasTable {
            total,
            threshold: threshold.into(),
            alias: alias.into(),
        }
    }
}

impl Picker for AliasTable {
    #[inline]
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        let n = self.threshold.len();
        if n == 0 || cx.loads().len() != n {
            return None;
        }
        let i = cx.random_below(n);
        let r = cx.random_u64() % self.total;
        Some(if r < self.threshold[i] {
            i
        } else {
            self.alias[i] as usize
        })
    }
}

impl Policy for WeightedRandom {
    fn name(&self) -> &str {
        "weighted-random"
    }

    fn uses_latency(&self) -> bool {
        false
    }

    fn build(&self, loads: &Loads<'_>, _previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        Box::new(AliasTable::new(loads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::TestEndpoints;

    /// Chi-square goodness of fit over 100k picks. With 4 degrees of freedom
    /// the 99.9th percentile is 18.47.
    #[test]
    fn matches_weights_within_chi_square_bound() {
        let weights = [1, 2, 3, 4, 10];
        let f = TestEndpoints::weighted(&weights);
        let total: u32 = weights.iter().sum();
        let picks = 100_000;
        for seed in [11, 12, 13] {
            let counts = f.counts(&WeightedRandom, picks, seed);
            let chi2: f64 = counts
                .iter()
                .zip(weights)
                .map(|(&o, w)| {
                    let e = picks as f64 * f64::from(w) / f64::from(total);
                    (o as f64 - e).powi(2) / e
                })
                .sum();
            assert!(chi2 < 18.47, "seed {seed}: chi2 {chi2} counts {counts:?}");
        }
    }

    #[test]
    fn a_dominant_weight_is_exact() {
        let f = TestEndpoints::weighted(&[1_000_000, 1]);
        let counts = f.counts(&WeightedRandom, 10_000, 14);
        assert!(counts[1] <= 2, "{counts:?}");
    }
}
