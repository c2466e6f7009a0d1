//! A builder's health settings: outlier detection, the panic threshold,
//! active health checks and slow start, each checked when given.

use super::Builder;
use crate::health::{ConfigError, HealthChecks, OutlierDetection, SlowStart};

impl<K, C> Builder<K, C> {
    /// Passive outlier detection ([`OutlierDetection::default`]: on, with
    /// Envoy's and gRPC's defaults); [`OutlierDetection::disabled`] turns
    /// it off. Settings that cannot work are an error here.
    ///
    /// ```
    /// use fulcrum_balance::{health::OutlierDetection, Balancer};
    /// use std::time::Duration;
    ///
    /// let err = Balancer::builder()
    ///     .outlier_detection(OutlierDetection::default().interval(Duration::ZERO))
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid outlier detection interval: is zero; give it a positive duration");
    /// ```
    pub fn outlier_detection(mut self, outliers: OutlierDetection) -> Result<Self, ConfigError> {
        outliers.validate()?;
        if let Some(slow_start) = &self.settings.slow_start {
            window_within_ejection(slow_start, &outliers)?;
        }
        self.settings.outliers = outliers;
        Ok(self)
    }

    /// The panic threshold, in percent (50 by default): when fewer than
    /// this share of the set's endpoints are healthy (the tiers' healthy
    /// shares added up; healthy: not ejected, not down by a probe, service
    /// made), every endpoint of the most preferred tier with a service
    /// serves, ejected or not. 0 turns panic mode off: with no healthy
    /// endpoint, nothing serves. Subsets have no panic mode of their own
    /// (their floor and fallback decide).
    pub fn panic_threshold(mut self, percent: f64) -> Result<Self, ConfigError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(ConfigError::percent("panic threshold", percent));
        }
        self.settings.panic_threshold = percent;
        Ok(self)
    }

    /// The overprovisioning factor (1.4 by default, Envoy's): a tier's
    /// healthy share, times this, is the share of requests it keeps; the
    /// rest spills over to the next tier (SRV priority, backup endpoints).
    /// At 1.4 a tier keeps all its traffic down to 1 / 1.4 ≈ 71.4 % healthy;
    /// at 1.0 it keeps exactly its healthy share, so a backup tier takes
    /// traffic as soon as a primary is lost. Below 1 a fully healthy tier
    /// would spill over, so that is an error, as is a value that is not a
    /// number.
    ///
    /// ```
    /// use fulcrum_balance::Balancer;
    ///
    /// let builder = Balancer::builder().overprovisioning_factor(1.0).unwrap();
    /// let err = Balancer::builder().overprovisioning_factor(0.8).unwrap_err();
    /// assert_eq!(err.setting(), "overprovisioning factor");
    /// # drop(builder);
    /// ```
    pub fn overprovisioning_factor(mut self, factor: f64) -> Result<Self, ConfigError> {
        if !(factor.is_finite() && factor >= 1.0) {
            return Err(ConfigError::invalid(
                "overprovisioning factor",
                format!(
                    "{factor} is not a number of at least 1 (1.4 by default; 1.0 keeps exactly \
                     a tier's healthy share)"
                ),
            ));
        }
        self.settings.overprovisioning = factor;
        Ok(self)
    }

    /// Active health checks: the driver probes every endpoint on an
    /// interval and holds out those whose probe fails ([`HealthChecks`];
    /// off by default). Settings that cannot work are an error here.
    ///
    /// ```
    /// use fulcrum_balance::{health::HealthChecks, Balancer};
    ///
    /// let err = Balancer::builder()
    ///     .health_checks(HealthChecks::tcp_connect().rise(0))
    ///     .unwrap_err();
    /// assert_eq!(err.setting(), "probe rise");
    /// ```
    pub fn health_checks(mut self, checks: HealthChecks) -> Result<Self, ConfigError> {
        checks.validate()?;
        self.settings.checks = Some(checks);
        Ok(self)
    }

    /// Slow start ([`SlowStart`]; off by default): endpoints that start
    /// serving (added, or back in service) ramp up their share over a
    /// window, under every policy. A window longer than the longest
    /// outlier ejection is an error: an endpoint ejected again while it
    /// ramps would never reach its share.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fulcrum_balance::{health::SlowStart, Balancer};
    ///
    /// let err = Balancer::builder()
    ///     .slow_start(SlowStart::new(Duration::from_secs(600)))
    ///     .unwrap_err();
    /// assert_eq!(err.setting(), "slow start window");
    /// ```
    pub fn slow_start(mut self, slow_start: SlowStart) -> Result<Self, ConfigError> {
        slow_start.validate()?;
        window_within_ejection(&slow_start, &self.settings.outliers)?;
        self.settings.slow_start = Some(slow_start);
        Ok(self)
    }
}

/// A slow-start window must fit within the longest ejection.
fn window_within_ejection(
    slow_start: &SlowStart,
    outliers: &OutlierDetection,
) -> Result<(), ConfigError> {
    if outliers.enabled && slow_start.window > outliers.max_ejection {
        return Err(ConfigError::invalid(
            "slow start window",
            format!(
                "{:?} is longer than the longest outlier ejection ({:?}); shorten the window \
                 or raise OutlierDetection::max_ejection",
                slow_start.window, outliers.max_ejection
            ),
        ));
    }
    Ok(())
}
