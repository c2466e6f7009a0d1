//! Hedging: a second attempt of a slow request on another endpoint.

use std::time::Duration;

use super::latency::LatencyPercentile;
use super::{RetryBudget, RetryConfigError};

/// When to hedge a request (Finagle's backup requests, gRPC's A6): if its
/// first attempt has not answered after a delay, a second attempt goes to
/// another endpoint; the first answer wins and the other attempt is
/// cancelled. Hedges are limited to `max_extra_load` of the requests (5 %
/// by default), and spend the retry budget too.
///
/// The delay is fixed ([`Hedging::after`]), or the latency percentile
/// that `max_extra_load` implies, estimated from the attempts this layer
/// has seen ([`Hedging::at_percentile`]: with 5 %, the p95). The
/// percentile needs 100 answers before the first hedge.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::retry::{Hedging, RetryClone, RetryLayer};
///
/// let layer = RetryLayer::new(RetryClone)
///     .hedging(Hedging::at_percentile(0.05).unwrap());
/// let fixed = Hedging::after(Duration::from_millis(20)).unwrap().max_extra_load(0.02).unwrap();
/// # drop((layer, fixed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hedging {
    delay: Option<Duration>,
    max_extra_load: f64,
}

const LONGEST_DELAY: Duration = Duration::from_secs(60);

impl Hedging {
    /// Hedge requests that have not answered after `delay`.
    pub fn after(delay: Duration) -> Result<Self, RetryConfigError> {
        if delay.is_zero() || delay > LONGEST_DELAY {
            return Err(RetryConfigError::HedgeDelay(delay));
        }
        Ok(Hedging {
            delay: Some(delay),
            max_extra_load: 0.05,
        })
    }

    /// Hedge requests slower than the `1 − max_extra_load` latency
    /// percentile (the p95 for 0.05), with at most `max_extra_load` extra
    /// requests.
    pub fn at_percentile(max_extra_load: f64) -> Result<Self, RetryConfigError> {
        Hedging {
            delay: None,
            max_extra_load: 0.05,
        }
        .max_extra_load(max_extra_load)
    }

    /// At most this share of extra requests, in (0, 0.5].
    pub fn max_extra_load(mut self, share: f64) -> Result<Self, RetryConfigError> {
        if !(share > 0.0 && share <= 0.5) {
            return Err(RetryConfigError::MaxExtraLoad(share));
        }
        self.max_extra_load = share;
        Ok(self)
    }
}

/// Hedging's running state, shared by the services of one layer.
#[derive(Debug)]
pub(crate) struct Hedger {
    fixed: Option<Duration>,
    percentile: LatencyPercentile,
    /// Hedges' own budget: `max_extra_load` of requests, no floor.
    budget: RetryBudget,
}

impl Hedger {
    pub(crate) fn new(config: Hedging) -> Self {
        Hedger {
            fixed: config.delay,
            percentile: LatencyPercentile::new(1.0 - config.max_extra_load),
            budget: RetryBudget::new(config.max_extra_load, 0, Duration::from_secs(10))
                .expect("checked by Hedging"),
        }
    }

    /// How long to wait before hedging, if known yet.
    pub(crate) fn delay(&self) -> Option<Duration> {
        self.fixed
            .or_else(|| self.percentile.get().map(Duration::from_nanos))
    }

    pub(crate) fn deposit(&self) {
        self.budget.deposit();
    }

    pub(crate) fn try_withdraw(&self) -> bool {
        self.budget.try_withdraw()
    }

    pub(crate) fn refund(&self) {
        self.budget.refund();
    }

    /// An attempt answered after `nanos`.
    pub(crate) fn record(&self, nanos: u64) {
        if self.fixed.is_none() {
            self.percentile.record(nanos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_typed_errors() {
        assert!(Hedging::after(Duration::ZERO).is_err());
        assert!(Hedging::after(Duration::from_secs(61)).is_err());
        for bad in [0.0, -0.1, 0.6, f64::NAN] {
            assert!(matches!(
                Hedging::at_percentile(bad),
                Err(RetryConfigError::MaxExtraLoad(_))
            ));
        }
    }

    #[test]
    fn the_delay_is_fixed_or_waits_for_enough_answers() {
        let fixed = Hedger::new(Hedging::after(Duration::from_millis(7)).unwrap());
        assert_eq!(fixed.delay(), Some(Duration::from_millis(7)));
        let p95 = Hedger::new(Hedging::at_percentile(0.05).unwrap());
        assert_eq!(p95.delay(), None);
        for ms in 1..=200u64 {
            p95.record(ms * 1_000_000);
        }
        let delay = p95.delay().unwrap().as_secs_f64() * 1e3;
        assert!((190.0..=215.0).contains(&delay), "{delay}");
    }

    #[test]
    fn hedges_are_limited_to_the_extra_load() {
        let hedger = Hedger::new(Hedging::at_percentile(0.05).unwrap());
        assert!(!hedger.try_withdraw());
        for _ in 0..100 {
            hedger.deposit();
        }
        let hedges = (0..100).filter(|_| hedger.try_withdraw()).count();
        assert_eq!(hedges, 5);
    }
}
