//! Slow start: how an endpoint new to the set, or back in service, ramps
//! up its share of requests.

use std::time::Duration;

use super::error::ConfigError;
use super::limits::LONGEST;

/// Slow start (off by default): an endpoint that starts serving — added
/// to a set that already serves, or back after an ejection, a failed
/// probe or a backoff — takes a growing share of requests over a
/// window (given to [`new`](Self::new)), instead of its full share at once with cold
/// caches, JIT or connection pools.
///
/// Its share is scaled by Envoy's factor
/// `max(min_weight, (t / window)^(1 / aggression))`, `t` the time since it
/// started serving. It works with **every** policy:
///
/// * policies without a key (`ewma`, `p2c`, `least-conn`, `round-robin`,
///   `random`, the weighted ones) pick again when they land on a ramping
///   endpoint, with the probability `1 − factor`;
///   (`least-conn`, which always chooses the one least loaded endpoint,
///   chooses a ramping one again when it picks again: there it takes about
///   `1 − (1 − factor)^5` of the picks it would win, still a ramp);
/// * the hash policies send a ramping endpoint only the keys whose hash
///   (with the endpoint) falls below its factor, so its keys arrive
///   gradually, in the same order in every client, and stay once they
///   have arrived; the other keys take the policy's next choice for them
///   (for `ring-hash` and `rendezvous`, where they were before the
///   endpoint joined; for `maglev`, the next entry of the key's probe
///   sequence, so they may move twice);
/// * `sticky` keeps its sessions where they live, and places new ones
///   with its inner policy, as above.
///
/// The endpoints of a balancer's first set do not ramp (there is nobody
/// to spare them), nor do endpoints when all that serve are ramping.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::{health::SlowStart, Balancer};
///
/// let builder = Balancer::builder()
///     .slow_start(SlowStart::new(Duration::from_secs(30)).aggression(1.5))
///     .unwrap();
/// # let _ = builder;
/// assert!(SlowStart::new(Duration::ZERO).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SlowStart {
    pub(crate) window: Duration,
    pub(crate) aggression: f64,
    pub(crate) min_weight_percent: f64,
}

impl SlowStart {
    /// Ramps over `window` (at most a year), linearly, from 10 %.
    pub fn new(window: Duration) -> Self {
        SlowStart {
            window: window.min(LONGEST),
            aggression: 1.0,
            min_weight_percent: 10.0,
        }
    }

    /// The curve's shape (1.0: linear; above 1 ramps faster early on,
    /// below 1 slower).
    pub fn aggression(mut self, aggression: f64) -> Self {
        self.aggression = aggression;
        self
    }

    /// The share a ramping endpoint starts with, in percent of its full
    /// share (10).
    pub fn min_weight_percent(mut self, percent: f64) -> Self {
        self.min_weight_percent = percent;
        self
    }

    /// Checks the settings; the builder calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window.is_zero() {
            return Err(ConfigError::zero("slow start window"));
        }
        if !(self.aggression.is_finite() && self.aggression > 0.0) {
            return Err(ConfigError::invalid(
                "slow start aggression",
                format!(
                    "{} is not a positive number; give 1.0 for a linear ramp",
                    self.aggression
                ),
            ));
        }
        if !(0.0..=100.0).contains(&self.min_weight_percent) {
            return Err(ConfigError::percent(
                "slow start min weight percent",
                self.min_weight_percent,
            ));
        }
        Ok(())
    }

    /// The share, in `(0, 1]`, of an endpoint that started serving
    /// `elapsed` ago.
    pub(crate) fn factor(&self, elapsed: Duration) -> f64 {
        let time = (elapsed.as_secs_f64() / self.window.as_secs_f64()).clamp(0.0, 1.0);
        let floor = (self.min_weight_percent / 100.0).max(0.001);
        time.powf(1.0 / self.aggression).max(floor).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_factor_follows_envoys_curve_from_the_floor_to_one() {
        let linear = SlowStart::new(S(10));
        assert_eq!(linear.factor(S(0)), 0.1);
        assert!((linear.factor(S(5)) - 0.5).abs() < 1e-9);
        assert_eq!(linear.factor(S(10)), 1.0);
        assert_eq!(linear.factor(S(100)), 1.0);
        // Aggression 2: the square root, faster early on.
        let eager = SlowStart::new(S(10)).aggression(2.0);
        assert!((eager.factor(S(4)) - 0.4f64.sqrt()).abs() < 1e-9);
        let shy = SlowStart::new(S(10)).aggression(0.5);
        assert!((shy.factor(S(5)) - 0.25).abs() < 1e-9);
        // A floor of 0 still lets the endpoint take a request.
        assert!(SlowStart::new(S(10)).min_weight_percent(0.0).factor(S(0)) > 0.0);
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        for (bad, setting) in [
            (SlowStart::new(Duration::ZERO), "slow start window"),
            (
                SlowStart::new(S(1)).aggression(0.0),
                "slow start aggression",
            ),
            (
                SlowStart::new(S(1)).aggression(f64::NAN),
                "slow start aggression",
            ),
            (
                SlowStart::new(S(1)).min_weight_percent(120.0),
                "slow start min weight percent",
            ),
        ] {
            assert_eq!(bad.validate().unwrap_err().setting(), setting);
        }
        assert!(SlowStart::new(Duration::MAX).validate().is_ok());
    }
}
