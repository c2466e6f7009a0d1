//! What users configure for nearest-region routing.

use std::time::Duration;

use crate::health::ConfigError;

/// Nearest-region routing settings; see the [module docs](crate::region).
#[derive(Clone, Debug, PartialEq)]
pub struct NearestRegion {
    hysteresis: f64,
    hold: Duration,
    explore: f64,
    interval: Duration,
}

impl Default for NearestRegion {
    fn default() -> Self {
        NearestRegion {
            hysteresis: 0.2,
            hold: Duration::from_secs(2),
            explore: 0.002,
            interval: Duration::from_millis(250),
        }
    }
}

impl NearestRegion {
    /// How much lower (a share, 0–1) another region's estimate must be to
    /// take over (0.2 by default: 20 % faster).
    pub fn hysteresis(mut self, share: f64) -> Result<Self, ConfigError> {
        if !(0.0..1.0).contains(&share) {
            return Err(ConfigError::invalid(
                "region hysteresis",
                format!("{share} is not a share in [0, 1); give e.g. 0.2 for 20 % faster"),
            ));
        }
        self.hysteresis = share;
        Ok(self)
    }

    /// How long another region must stay faster before it takes over (2 s
    /// by default; zero switches at the next interval).
    pub fn hold(mut self, hold: Duration) -> Result<Self, ConfigError> {
        self.hold = hold;
        Ok(self)
    }

    /// The share of requests (0–0.2) sent to the regions that are not
    /// serving, to keep their estimates current (0.002 by default: below
    /// what moves a p99, though it shows in a p99.9; 0 turns it off, and a
    /// slower region is then measured again only when it serves).
    pub fn explore(mut self, share: f64) -> Result<Self, ConfigError> {
        if !(0.0..=0.2).contains(&share) {
            return Err(ConfigError::invalid(
                "region exploration share",
                format!("{share} is not a share in [0, 0.2]; give e.g. 0.005"),
            ));
        }
        self.explore = share;
        Ok(self)
    }

    /// How often the regions' estimates are taken (250 ms by default).
    pub fn interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::zero("region interval"));
        }
        self.interval = interval;
        Ok(self)
    }

    /// See [`hysteresis`](Self::hysteresis).
    pub fn hysteresis_share(&self) -> f64 {
        self.hysteresis
    }

    /// See [`hold`](Self::hold).
    pub fn hold_time(&self) -> Duration {
        self.hold
    }

    /// See [`explore`](Self::explore).
    pub fn explore_share(&self) -> f64 {
        self.explore
    }

    /// See [`interval`](Self::interval).
    pub fn every(&self) -> Duration {
        self.interval
    }
}
