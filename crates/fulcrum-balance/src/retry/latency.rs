//! A running latency percentile, for hedging "after the set's p95".

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Latencies in log-linear buckets (8 per power of two, so a bucket is at
/// most 12.5 % wide), from 1 µs to about 268 s. Lock-free: recording is two
/// relaxed additions; the percentile is recomputed every
/// [`RECOMPUTE_EVERY`] samples and read with one load. Counts are halved
/// past [`DECAY_AT`] samples, so the estimate follows a service whose
/// latency changes.
#[derive(Debug)]
pub(crate) struct LatencyPercentile {
    quantile: f64,
    buckets: Box<[AtomicU32]>,
    samples: AtomicU64,
    /// The current estimate in microseconds, 0 until [`MIN_SAMPLES`].
    estimate_us: AtomicU64,
}

const SUB: u64 = 8;
const SUB_BITS: u32 = 3;
const MAX_POW: u32 = 27;
const BUCKET_COUNT: usize = (SUB + (MAX_POW - SUB_BITS + 1) as u64 * SUB) as usize;
const RECOMPUTE_EVERY: u64 = 32;
const MIN_SAMPLES: u64 = 100;
const DECAY_AT: u64 = 20_000;

impl LatencyPercentile {
    /// An estimate of the `quantile` (in `(0, 1)`) of recorded latencies.
    pub(crate) fn new(quantile: f64) -> Self {
        LatencyPercentile {
            quantile,
            buckets: (0..BUCKET_COUNT).map(|_| AtomicU32::new(0)).collect(),
            samples: AtomicU64::new(0),
            estimate_us: AtomicU64::new(0),
        }
    }

    /// Records one latency, in nanoseconds.
    pub(crate) fn record(&self, nanos: u64) {
        let us = (nanos / 1000).max(1);
        self.buckets[index(us)].fetch_add(1, Ordering::Relaxed);
        let n = self.samples.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(RECOMPUTE_EVERY) || n == MIN_SAMPLES {
            self.recompute(n);
        }
    }

    /// The estimate, in nanoseconds, once enough latencies were recorded.
    pub(crate) fn get(&self) -> Option<u64> {
        match self.estimate_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(us * 1000),
        }
    }

    fn recompute(&self, samples: u64) {
        // On the stack: recomputing is on the request path.
        let mut counts = [0u64; BUCKET_COUNT];
        for (c, b) in counts.iter_mut().zip(self.buckets.iter()) {
            *c = u64::from(b.load(Ordering::Relaxed));
        }
        let total: u64 = counts.iter().sum();
        if total >= MIN_SAMPLES.min(samples) && samples >= MIN_SAMPLES {
            let rank = ((total as f64) * self.quantile).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    self.estimate_us.store(upper(i), Ordering::Relaxed);
                    break;
                }
            }
        }
        if total > DECAY_AT {
            for b in self.buckets.iter() {
                let _ = b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c / 2));
            }
        }
    }
}

/// The bucket of a latency in microseconds.
fn index(us: u64) -> usize {
    let us = us.min((1 << (MAX_POW + 1)) - 1);
    if us < SUB {
        return us as usize;
    }
    let pow = 63 - us.leading_zeros();
    let sub = (us >> (pow - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(pow - SUB_BITS) * SUB + sub) as usize
}

/// The largest latency (µs) in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let pow = (i - SUB) / SUB + u64::from(SUB_BITS);
    let sub = (i - SUB) % SUB;
    ((SUB + sub + 1) << (pow - u64::from(SUB_BITS))) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        for us in [1u64, 7, 8, 9, 15, 16, 100, 999, 1000, 12_345, 1 << 27] {
            let i = index(us);
            assert!(upper(i) >= us, "{us} in {i} ≤ {}", upper(i));
            assert!(i == 0 || upper(i - 1) < us, "{us}");
            assert!(
                upper(i) as f64 <= us as f64 * 1.125 + 1.0,
                "{us}: {}",
                upper(i)
            );
        }
        assert!(index(u64::MAX / 1000) < BUCKET_COUNT);
    }

    #[test]
    fn estimates_the_percentile_within_a_bucket() {
        let p = LatencyPercentile::new(0.95);
        assert_eq!(p.get(), None);
        // 1..=1000 ms, uniform: p95 is 950 ms.
        for ms in 1..=1000u64 {
            p.record(ms * 1_000_000);
        }
        let got = p.get().unwrap() as f64 / 1e6;
        assert!((950.0..=950.0 * 1.13).contains(&got), "{got}");
    }

    #[test]
    fn follows_a_change_in_latency() {
        let p = LatencyPercentile::new(0.5);
        for _ in 0..30_000 {
            p.record(1_000_000);
        }
        assert!(p.get().unwrap() < 1_200_000);
        for _ in 0..60_000 {
            p.record(10_000_000);
        }
        assert!(p.get().unwrap() >= 10_000_000);
    }
}
