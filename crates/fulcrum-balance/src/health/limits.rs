//! Bounds every health setting shares.

use std::time::Duration;

use super::error::ConfigError;

/// "Never" is a year, not an overflow: durations are clamped to it.
pub(crate) const LONGEST: Duration = Duration::from_secs(365 * 86_400);

/// The shortest interval of a periodic check (probes, outlier detection):
/// going over every endpoint more often would keep the driver busy.
pub(crate) const SHORTEST_INTERVAL: Duration = Duration::from_millis(10);

/// An interval must be positive and at least [`SHORTEST_INTERVAL`].
pub(crate) fn check_interval(setting: &'static str, interval: Duration) -> Result<(), ConfigError> {
    if interval.is_zero() {
        return Err(ConfigError::zero(setting));
    }
    if interval < SHORTEST_INTERVAL {
        return Err(ConfigError::invalid(
            setting,
            format!("{interval:?} is shorter than {SHORTEST_INTERVAL:?}; give a longer one"),
        ));
    }
    Ok(())
}
