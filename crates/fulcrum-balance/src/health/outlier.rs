//! Passive outlier detection: its settings, and the pure decisions of which
//! endpoints are outliers given what they answered.

use std::time::Duration;

use super::error::ConfigError;
use super::limits::{check_interval, LONGEST};

/// Passive outlier detection: endpoints that fail more than their peers are
/// ejected (taken out of the picking set, their connections kept) for a
/// while, then re-admitted. On by default.
///
/// Three detectors, with Envoy's defaults and gRPC's (A50) semantics;
/// unlike Envoy (where failure percentage is off unless enforced) all
/// three are on:
///
/// * **consecutive failures** (5): ejected at the fifth failure in a row;
///   any success resets the count;
/// * **success rate**, every [`interval`](Self::interval) (10 s): among the
///   endpoints with at least [`request_volume`](Self::success_rate_volume)
///   (100) answers in the interval, when there are at least
///   [`minimum_hosts`](Self::minimum_hosts) (5) of them, an endpoint whose
///   success rate is below `mean − 1.9 σ` is ejected — but only if it also
///   failed at least [`min_failure_percent`](Self::min_failure_percent)
///   (5 %) of its requests. (Without that floor, one endpoint at 99 % among
///   peers at 100 % is ejected: σ is tiny when everyone is near 100 %.)
/// * **failure percentage**: among endpoints with at least 50 answers in
///   the interval (and at least `minimum_hosts` of them), one failing more
///   than 85 % is ejected.
///
/// An ejection lasts `base × 2^(n−1)` for the endpoint's `n`-th ejection
/// (30 s, 60 s, …, capped at 300 s), drawn from the upper half of that
/// range; `n` goes down by one for every interval the endpoint spends in
/// service. At most [`max_ejection_percent`](Self::max_ejection_percent)
/// (10 %) of the set is ejected at once, and always at least one endpoint
/// may be.
///
/// Failures are what the balancer's classifier says they are (errors,
/// 5xx, `UNAVAILABLE`…). A request the caller abandoned (dropped, timed
/// out above the balancer) before its response arrived counts as a failure
/// here by default ([`cancelled_as_failure`](Self::cancelled_as_failure)):
/// an endpoint that hangs is an outlier too. A response body dropped
/// half-read does not count: the endpoint did answer. Overloaded answers (429 with `Retry-After`) are
/// not failures: they raise the endpoint's cost instead.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::health::OutlierDetection;
///
/// let od = OutlierDetection::default()
///     .consecutive_failures(3)
///     .interval(Duration::from_secs(5))
///     .base_ejection(Duration::from_secs(10));
/// od.validate().unwrap();
/// assert!(OutlierDetection::default().max_ejection_percent(150).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct OutlierDetection {
    pub(crate) enabled: bool,
    pub(crate) consecutive_failures: u32,
    pub(crate) interval: Duration,
    pub(crate) base_ejection: Duration,
    pub(crate) max_ejection: Duration,
    pub(crate) max_ejection_percent: u32,
    pub(crate) minimum_hosts: usize,
    pub(crate) success_rate_volume: u64,
    pub(crate) stdev_factor: f64,
    pub(crate) min_failure_percent: f64,
    pub(crate) failure_percent_threshold: Option<u32>,
    pub(crate) failure_percent_volume: u64,
    pub(crate) cancelled_as_failure: bool,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            enabled: true,
            consecutive_failures: 5,
            interval: Duration::from_secs(10),
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejection_percent: 10,
            minimum_hosts: 5,
            success_rate_volume: 100,
            stdev_factor: 1.9,
            min_failure_percent: 5.0,
            failure_percent_threshold: Some(85),
            failure_percent_volume: 50,
            cancelled_as_failure: true,
        }
    }
}

impl OutlierDetection {
    /// No outlier detection: endpoints leave service only when their
    /// service fails readiness or a connection is refused.
    pub fn disabled() -> Self {
        OutlierDetection {
            enabled: false,
            ..OutlierDetection::default()
        }
    }

    /// Failures in a row that eject an endpoint (5); 0 turns this detector off.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = n;
        self
    }

    /// How often success rates and failure percentages are evaluated (10 s;
    /// at most a year, and at least 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.min(LONGEST);
        self
    }

    /// The first ejection's length (30 s; at most a year): an ejection
    /// lasts between half of it and all of it; each further one doubles.
    pub fn base_ejection(mut self, base: Duration) -> Self {
        self.base_ejection = base.min(LONGEST);
        self
    }

    /// The longest ejection (300 s; at most a year).
    pub fn max_ejection(mut self, max: Duration) -> Self {
        self.max_ejection = max.min(LONGEST);
        self
    }

    /// At most this percentage of the set is ejected at once (10); at
    /// least one endpoint always may be, unless it is 0 (none).
    pub fn max_ejection_percent(mut self, percent: u32) -> Self {
        self.max_ejection_percent = percent;
        self
    }

    /// The interval detectors need at least this many endpoints with
    /// enough requests (5).
    pub fn minimum_hosts(mut self, n: usize) -> Self {
        self.minimum_hosts = n;
        self
    }

    /// Answers an endpoint needs in an interval to count for the success
    /// rate (100).
    pub fn success_rate_volume(mut self, n: u64) -> Self {
        self.success_rate_volume = n;
        self
    }

    /// Ejects below `mean − factor × σ` (1.9); 0 turns the success-rate
    /// detector off.
    pub fn stdev_factor(mut self, factor: f64) -> Self {
        self.stdev_factor = factor;
        self
    }

    /// The success-rate detector ejects only endpoints failing at least
    /// this percentage of their requests (5).
    pub fn min_failure_percent(mut self, percent: f64) -> Self {
        self.min_failure_percent = percent;
        self
    }

    /// Ejects an endpoint failing more than `percent` of its requests in an
    /// interval (85); `None` turns this detector off.
    pub fn failure_percent(mut self, percent: Option<u32>) -> Self {
        self.failure_percent_threshold = percent;
        self
    }

    /// Answers an endpoint needs in an interval for the failure-percentage
    /// detector (50).
    pub fn failure_percent_volume(mut self, n: u64) -> Self {
        self.failure_percent_volume = n;
        self
    }

    /// Whether a request the caller abandoned before its response arrived
    /// counts as a failure (true).
    pub fn cancelled_as_failure(mut self, yes: bool) -> Self {
        self.cancelled_as_failure = yes;
        self
    }

    /// Checks the settings; the builder calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        check_interval("outlier detection interval", self.interval)?;
        if self.base_ejection.is_zero() {
            return Err(ConfigError::zero("base ejection time"));
        }
        if self.max_ejection < self.base_ejection {
            return Err(ConfigError::invalid(
                "max ejection time",
                format!(
                    "{:?} is shorter than the base ejection time {:?}",
                    self.max_ejection, self.base_ejection
                ),
            ));
        }
        if self.max_ejection_percent > 100 {
            return Err(ConfigError::percent(
                "max ejection percent",
                f64::from(self.max_ejection_percent),
            ));
        }
        if let Some(p) = self.failure_percent_threshold.filter(|&p| p > 100) {
            return Err(ConfigError::percent("failure percent", f64::from(p)));
        }
        if !(0.0..=100.0).contains(&self.min_failure_percent) {
            return Err(ConfigError::percent(
                "min failure percent",
                self.min_failure_percent,
            ));
        }
        if !self.stdev_factor.is_finite() || self.stdev_factor < 0.0 {
            return Err(ConfigError::invalid(
                "stdev factor",
                format!("{} is not a finite number ≥ 0", self.stdev_factor),
            ));
        }
        Ok(())
    }

    /// How many endpoints of a set of `members` may be ejected at once.
    pub(crate) fn max_ejected(&self, members: usize) -> usize {
        if self.max_ejection_percent == 0 {
            return 0;
        }
        (members * self.max_ejection_percent as usize / 100).max(1)
    }

    /// How long the `n`-th ejection (n ≥ 1) lasts, before jitter.
    pub(crate) fn ejection_time(&self, n: u32) -> Duration {
        let exp = n.saturating_sub(1).min(20);
        self.base_ejection
            .saturating_mul(1 << exp)
            .min(self.max_ejection)
    }
}

/// What one endpoint answered in an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Answers {
    /// Requests that finished (succeeded, failed or were abandoned).
    pub(crate) total: u64,
    /// Of them, failures.
    pub(crate) failed: u64,
}

impl Answers {
    fn success_rate(&self) -> f64 {
        1.0 - self.failed as f64 / self.total as f64
    }
}

/// Why an endpoint was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EjectionReason {
    /// Too many failures in a row.
    ConsecutiveFailures,
    /// Its success rate was far below its peers'.
    SuccessRate,
    /// It failed more than the failure-percentage threshold.
    FailurePercent,
}

/// The endpoints (by index into `answers`) that an interval's answers make
/// outliers, each with the detector that found it. Does not apply the
/// maximum ejection percentage.
pub(crate) fn interval_outliers(
    od: &OutlierDetection,
    answers: &[Answers],
) -> Vec<(usize, EjectionReason)> {
    let mut out = Vec::new();
    if od.stdev_factor > 0.0 {
        let qualified: Vec<(usize, f64)> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| a.total >= od.success_rate_volume.max(1))
            .map(|(i, a)| (i, a.success_rate()))
            .collect();
        if qualified.len() >= od.minimum_hosts.max(1) {
            let n = qualified.len() as f64;
            let mean = qualified.iter().map(|&(_, r)| r).sum::<f64>() / n;
            let var = qualified
                .iter()
                .map(|&(_, r)| (r - mean).powi(2))
                .sum::<f64>()
                / n;
            let threshold = mean - od.stdev_factor * var.sqrt();
            let floor = 1.0 - od.min_failure_percent / 100.0;
            out.extend(
                qualified
                    .iter()
                    .filter(|&&(_, r)| r < threshold && r <= floor)
                    .map(|&(i, _)| (i, EjectionReason::SuccessRate)),
            );
        }
    }
    if let Some(threshold) = od.failure_percent_threshold {
        let volume = od.failure_percent_volume.max(1);
        let qualified = answers.iter().filter(|a| a.total >= volume).count();
        if qualified >= od.minimum_hosts.max(1) {
            for (i, a) in answers.iter().enumerate() {
                let failing = a.total >= volume
                    && a.failed as f64 * 100.0 > f64::from(threshold) * a.total as f64;
                if failing && !out.iter().any(|&(j, _)| j == i) {
                    out.push((i, EjectionReason::FailurePercent));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(rates: &[(u64, u64)]) -> Vec<Answers> {
        rates
            .iter()
            .map(|&(total, failed)| Answers { total, failed })
            .collect()
    }

    #[test]
    fn success_rate_ejects_the_endpoint_far_below_its_peers() {
        let od = OutlierDetection::default();
        let a = answers(&[(200, 0), (200, 1), (200, 0), (200, 2), (200, 60)]);
        assert_eq!(
            interval_outliers(&od, &a),
            vec![(4, EjectionReason::SuccessRate)]
        );
    }

    #[test]
    fn one_percent_failing_among_perfect_peers_is_not_an_outlier() {
        // Envoy's rule alone ejects it: mean 99.8 %, σ 0.4, threshold 99.04 %.
        let od = OutlierDetection::default();
        let a = answers(&[(1000, 0), (1000, 0), (1000, 0), (1000, 0), (1000, 10)]);
        assert!(interval_outliers(&od, &a).is_empty());
        let od = od.min_failure_percent(0.0);
        assert_eq!(interval_outliers(&od, &a).len(), 1);
    }

    #[test]
    fn too_few_hosts_or_requests_decide_nothing() {
        let od = OutlierDetection::default();
        // Four hosts: below the minimum of five.
        let a = answers(&[(200, 0), (200, 0), (200, 0), (200, 200)]);
        assert!(interval_outliers(&od, &a).is_empty());
        // Five hosts, but the failing one answered too little to count.
        let a = answers(&[(200, 0), (200, 0), (200, 0), (200, 0), (40, 40)]);
        assert!(interval_outliers(&od, &a).is_empty());
    }

    #[test]
    fn failure_percentage_ejects_above_its_threshold() {
        // All five fail a lot: the success rate sees no outlier (σ small
        // relative to the spread), the failure percentage does.
        let od = OutlierDetection::default().stdev_factor(0.0);
        let a = answers(&[(100, 90), (100, 86), (100, 85), (100, 10), (100, 0)]);
        let got = interval_outliers(&od, &a);
        assert_eq!(
            got,
            vec![
                (0, EjectionReason::FailurePercent),
                (1, EjectionReason::FailurePercent)
            ]
        );
        let od = od.failure_percent(None);
        assert!(interval_outliers(&od, &a).is_empty());
    }

    #[test]
    fn ejections_double_up_to_the_cap_and_the_cap_allows_one() {
        let od = OutlierDetection::default();
        let secs = |n| od.ejection_time(n).as_secs();
        assert_eq!(
            (secs(1), secs(2), secs(3), secs(4), secs(5)),
            (30, 60, 120, 240, 300)
        );
        assert_eq!(secs(1000), 300);
        assert_eq!(
            (od.max_ejected(1), od.max_ejected(5), od.max_ejected(100)),
            (1, 1, 10)
        );
        let od = od.max_ejection_percent(100);
        assert_eq!(od.max_ejected(5), 5);
        assert_eq!(od.max_ejection_percent(0).max_ejected(5), 0);
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        let zero = OutlierDetection::default().interval(Duration::ZERO);
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("interval"));
        let short = OutlierDetection::default().max_ejection(Duration::from_secs(1));
        assert!(short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("shorter"));
        let fast = OutlierDetection::default().interval(Duration::from_millis(1));
        assert!(fast
            .validate()
            .unwrap_err()
            .to_string()
            .contains("shorter than 10ms"));
        let never = OutlierDetection::default()
            .interval(Duration::MAX)
            .base_ejection(Duration::MAX)
            .max_ejection(Duration::MAX);
        assert!(never.validate().is_ok());
        assert!(never.ejection_time(u32::MAX) <= LONGEST);
        let pct = OutlierDetection::default().failure_percent(Some(101));
        assert!(pct
            .validate()
            .unwrap_err()
            .to_string()
            .contains("0 and 100"));
        let nan = OutlierDetection::default().stdev_factor(f64::NAN);
        assert!(nan.validate().is_err());
        assert!(OutlierDetection::disabled()
            .interval(Duration::ZERO)
            .validate()
            .is_ok());
    }
}
