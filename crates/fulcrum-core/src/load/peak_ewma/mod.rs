use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Settings of a [`PeakEwma`].
///
/// The failure penalty (1 s) is what a failed request counts as, so an
/// endpoint that fails fast looks slow, not fast.
///
/// Two memories: latency decays with a 1 s time constant, a failure with
/// 10 s (Finagle, Linkerd and tower use 10 s for both). A peak-sensitive
/// estimate takes any slow sample at once; with a 10 s memory, one outlier
/// (a scheduler hiccup, a GC pause) made an idle endpoint lose every
/// comparison for seconds at light load, when no in-flight count balances
/// it. With 1 s a lone outlier fades in about a second, a slow endpoint is
/// re-probed by one request every few seconds, and an endpoint that failed
/// is still avoided for tens of seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct EwmaConfig {
    /// Time constant of the decay of a latency estimate: after `decay`
    /// without samples it has fallen to 1/e of its value. Also the time
    /// constant with which faster samples blend in.
    pub decay: Duration,
    /// Time constant of the decay of an estimate set by a failure, until
    /// the next successful sample.
    pub failure_decay: Duration,
    /// What [`PeakEwma::estimate`] reports before the first sample (for
    /// stats and custom pickers). The built-in `ewma` policy does not rank
    /// an endpoint by it: an endpoint without a sample is scored as fast as
    /// the endpoint it is compared with (see `fulcrum_balance::pick::PeakEwmaP2c`),
    /// since any fixed guess either starves new endpoints (too high) or
    /// floods them (too low).
    pub seed_rtt: Duration,
    /// The sample a failure records (or the current estimate, if higher).
    pub failure_penalty: Duration,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        EwmaConfig {
            decay: Duration::from_secs(1),
            failure_decay: Duration::from_secs(10),
            seed_rtt: Duration::from_millis(30),
            failure_penalty: Duration::from_secs(1),
        }
    }
}

/// Timestamps are kept in units of 2^20 ns (~1.05 ms) in 30 bits, so the
/// estimate, its timestamp and two flags fit one `AtomicU64` and update
/// with one CAS (no lock, no torn pairs). 30 bits of such units span 13 days
/// (a gap of more than that is read modulo 13 days). With a 1 s decay a
/// 1 ms step changes the blend weight by 1e-3, far below the noise of any
/// latency sample.
const UNIT_SHIFT: u32 = 20;
/// The stamp's bits.
const STAMP_MASK: u32 = 0x3FFF_FFFF;
/// The estimate was set by a failure (it decays with the failure decay).
const FAILED: u32 = 0x8000_0000;
/// The last sample jumped above the estimate it met (a second jump in a row
/// becomes the estimate).
const JUMPED: u32 = 0x4000_0000;
/// A sample above this many times the estimate is a jump: taken only when
/// the sample before jumped too.
const JUMP: f64 = 1.5;
/// A stamp up to this many units (~1 s) *ahead* of the reader's clock comes
/// from a racing writer that read the clock a moment later: no time passed.
const RACE_WINDOW: u32 = 1 << 10;
/// The state before the first sample. Never a real state: its estimate bits
/// are a NaN.
const UNSAMPLED: u64 = u64::MAX;

/// A peak-sensitive exponentially weighted moving average of latency.
///
/// Semantics (Finagle's, made independent of how often it is read):
///
/// * Before the first sample the estimate is the seed RTT. The first sample
///   *replaces* the seed: blending a measurement with a made-up number at a
///   10 s time constant would let the guess dominate for seconds.
/// * Between samples the estimate decays toward zero:
///   `e(t) = e(t0) · exp(-(t - t0)/decay)`, or with `failure_decay` when a
///   failure set it. An endpoint that was slow once is eventually tried
///   again; one that failed, much later.
/// * A sample `r` at time `t`: let `d = e(t)`. If `r > d` the estimate
///   becomes `r` (the peak); else it becomes `d + r · (1 - exp(-Δt/decay))`.
///   Except for a *jump* (`r > 1.5 d`): it becomes the estimate only if
///   the sample before jumped too, and is blended in otherwise. One
///   outlier (a scheduler hiccup, a GC pause on the caller) would otherwise
///   make an endpoint look several times slower for as long as the decay
///   takes to forget it; an endpoint that has really slowed down shows it
///   on its next response. Failures and lower bounds are taken at once.
/// * Reading ([`estimate`](PeakEwma::estimate)) never mutates. (In Finagle and
///   tower every read is a zero sample, so a busy picker drags estimates down
///   faster than an idle one; here the result depends only on the samples.)
///
/// All times are nanoseconds on one monotonic clock, e.g.
/// [`time::now`](crate::time::now).
///
/// ```
/// use fulcrum_core::load::{EwmaConfig, PeakEwma};
///
/// let ms = 1_000_000u64;
/// let e = PeakEwma::new(&EwmaConfig::default());
/// assert_eq!(e.estimate(0), 30.0 * ms as f64); // the seed
/// e.record(5 * ms, 100 * ms);
/// e.record(100 * ms, 150 * ms); // one jump: an outlier, blended in
/// assert!(e.estimate(150 * ms) < 10.0 * ms as f64);
/// e.record(100 * ms, 200 * ms); // two in a row: the peak is taken
/// assert!(e.estimate(200 * ms) >= 99.0 * ms as f64);
/// // a second later it has decayed to about 1/e
/// let later = e.estimate(1_200 * ms) / ms as f64;
/// assert!((later - 36.8).abs() < 0.5, "{later}");
/// ```
#[derive(Debug)]
#[repr(C)]
pub struct PeakEwma {
    // Read on every estimate first, so that with an owner's hot fields in
    // front they share one cache line; the seed and penalty are cold.
    state: AtomicU64,
    /// `-1 / decay`, with decay in timestamp units.
    neg_inv_decay: f64,
    /// `-1 / failure_decay`, likewise.
    neg_inv_failure_decay: f64,
    seed_ns: f64,
    penalty_ns: f64,
}

/// Packs an estimate, its stamp and its flags (`FAILED`, `ABOVE`).
#[inline]
fn pack(estimate_ns: f64, stamp: u32, flags: u32) -> u64 {
    (u64::from((estimate_ns as f32).to_bits()) << 32) | u64::from((stamp & STAMP_MASK) | flags)
}

/// `(estimate, stamp, set by a failure)`.
#[inline]
fn unpack(state: u64) -> (f64, u32, bool) {
    let low = state as u32;
    (
        f64::from(f32::from_bits((state >> 32) as u32)),
        low & STAMP_MASK,
        low & FAILED != 0,
    )
}

/// Whether the last sample jumped above the estimate it met.
#[inline]
fn jumped(state: u64) -> bool {
    state as u32 & JUMPED != 0
}

/// What a sample is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A response's latency: a jump is taken only after another.
    Latency,
    /// A lower bound on a latency (a request abandoned after that long):
    /// a fact, taken at once.
    AtLeast,
    /// A failure: taken at once, remembered with the failure decay.
    Failure,
}

#[inline]
fn units(now_ns: u64) -> u32 {
    (now_ns >> UNIT_SHIFT) as u32 & STAMP_MASK
}

fn neg_inv(decay: Duration) -> f64 {
    -1.0 / (decay.as_nanos() as f64 / f64::from(1u32 << UNIT_SHIFT)).max(1.0)
}

impl PeakEwma {
    /// A fresh estimator holding the seed RTT.
    pub fn new(config: &EwmaConfig) -> Self {
        PeakEwma {
            state: AtomicU64::new(UNSAMPLED),
            seed_ns: config.seed_rtt.as_nanos() as f64,
            penalty_ns: config.failure_penalty.as_nanos() as f64,
            neg_inv_decay: neg_inv(config.decay),
            neg_inv_failure_decay: neg_inv(config.failure_decay),
        }
    }

    /// `exp(-Δt/decay)` between a stored stamp and now; a stamp slightly in
    /// the future (a racing writer read the clock later) counts as no time.
    #[inline]
    fn weight(&self, stamp: u32, now: u32, failed: bool) -> f64 {
        let dt = now.wrapping_sub(stamp) & STAMP_MASK;
        if dt == 0 || dt > STAMP_MASK - RACE_WINDOW {
            1.0
        } else if failed {
            (f64::from(dt) * self.neg_inv_failure_decay).exp()
        } else {
            (f64::from(dt) * self.neg_inv_decay).exp()
        }
    }

    /// The latency estimate in nanoseconds at time `now_ns`. Does not mutate.
    #[inline]
    pub fn estimate(&self, now_ns: u64) -> f64 {
        let state = self.state.load(Ordering::Relaxed);
        if state == UNSAMPLED {
            return self.seed_ns;
        }
        let (estimate, stamp, failed) = unpack(state);
        estimate * self.weight(stamp, units(now_ns), failed)
    }

    /// The estimate at `now_ns`, or `None` before the first sample (where
    /// [`estimate`](Self::estimate) reports the seed). Does not mutate.
    #[inline]
    pub fn sampled_estimate(&self, now_ns: u64) -> Option<f64> {
        let state = self.state.load(Ordering::Relaxed);
        if state == UNSAMPLED {
            return None;
        }
        let (estimate, stamp, failed) = unpack(state);
        Some(estimate * self.weight(stamp, units(now_ns), failed))
    }

    /// The estimate as it stood right after the last sample, and how long
    /// ago (in nanoseconds) that sample came, when it was a latency (not a
    /// failure). For a caller that summarises latency over time (fulcrum's
    /// nearest-region routing): a recent sample is news, an old one is
    /// not, and a failure says nothing of how far the endpoint is.
    ///
    /// ```
    /// use fulcrum_core::load::{EwmaConfig, PeakEwma};
    ///
    /// let ms = 1_000_000u64;
    /// let e = PeakEwma::new(&EwmaConfig::default());
    /// assert_eq!(e.last_latency(0), None);
    /// e.record(20 * ms, 100 * ms);
    /// let (estimate, age) = e.last_latency(600 * ms).unwrap();
    /// assert_eq!(estimate, 20.0 * ms as f64);
    /// assert!((450 * ms..=550 * ms).contains(&age), "{age}");
    /// e.record_failure(700 * ms);
    /// assert_eq!(e.last_latency(700 * ms), None);
    /// ```
    pub fn last_latency(&self, now_ns: u64) -> Option<(f64, u64)> {
        let state = self.state.load(Ordering::Relaxed);
        if state == UNSAMPLED {
            return None;
        }
        let (estimate, stamp, failed) = unpack(state);
        if failed {
            return None;
        }
        let age = units(now_ns).wrapping_sub(stamp) & STAMP_MASK;
        let age = if age > STAMP_MASK - RACE_WINDOW {
            0
        } else {
            age
        };
        Some((estimate, u64::from(age) << UNIT_SHIFT))
    }

    /// True once at least one sample was recorded.
    pub fn has_sample(&self) -> bool {
        self.state.load(Ordering::Relaxed) != UNSAMPLED
    }

    /// Forgets every sample: the estimator is as new. For an endpoint that
    /// comes back into service, whose old samples (failures, a dead
    /// connection's timeouts) say nothing about the new connection.
    pub fn reset(&self) {
        self.state.store(UNSAMPLED, Ordering::Relaxed);
    }

    /// Records a response that took `rtt_ns`, observed at `now_ns`.
    #[inline]
    pub fn record(&self, rtt_ns: u64, now_ns: u64) {
        self.update(now_ns, Kind::Latency, |_| rtt_ns as f64);
    }

    /// Records that a request took *at least* `rtt_ns` (it was abandoned
    /// before it finished): the estimate rises to it if it is higher, and
    /// is left alone otherwise. A lower bound says nothing about how fast
    /// the endpoint is, so it never blends the estimate down (nor ends a
    /// failure's memory).
    pub fn record_at_least(&self, rtt_ns: u64, now_ns: u64) {
        let state = self.state.load(Ordering::Relaxed);
        let higher = state == UNSAMPLED || {
            let (estimate, stamp, failed) = unpack(state);
            rtt_ns as f64 > estimate * self.weight(stamp, units(now_ns), failed)
        };
        if higher {
            self.update(now_ns, Kind::AtLeast, |current| current.max(rtt_ns as f64));
        }
    }

    /// Records a failure: a sample of the failure penalty, or of the current
    /// estimate if that is higher, so a failure never makes an endpoint look
    /// faster.
    pub fn record_failure(&self, now_ns: u64) {
        let penalty = self.penalty_ns;
        self.update(now_ns, Kind::Failure, |current| penalty.max(current));
    }

    /// Records a sample of `kind` at `now_ns`.
    fn update(&self, now_ns: u64, kind: Kind, sample: impl Fn(f64) -> f64) {
        let now = units(now_ns);
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let (next, jump) = if current == UNSAMPLED {
                (sample(self.seed_ns), false)
            } else {
                let (estimate, stamp, failed) = unpack(current);
                let w = self.weight(stamp, now, failed);
                let decayed = estimate * w;
                let r = sample(decayed);
                let jump = kind == Kind::Latency && r > JUMP * decayed;
                if r > decayed && (!jump || jumped(current)) {
                    (r, jump)
                } else {
                    (decayed + r * (1.0 - w), jump)
                }
            };
            let mut flags = if jump { JUMPED } else { 0 };
            if kind == Kind::Failure {
                flags |= FAILED;
            }
            let packed = pack(next, now, flags);
            if packed == current {
                // Nothing changes (a faster sample within the same stamp
                // unit blends in with weight 0): skip the write, so busy
                // endpoints' cache lines are not bounced between cores.
                return;
            }
            match self.state.compare_exchange_weak(
                current,
                packed,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests;
