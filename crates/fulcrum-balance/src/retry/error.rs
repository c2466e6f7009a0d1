use std::fmt;
use std::time::Duration;

/// A retry or hedging setting that cannot work, reported when it is set:
/// what was wrong and what to do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RetryConfigError {
    /// The budget's share of requests is not within 0.0–1.0.
    BudgetPercent(f64),
    /// The budget's window is not within 1 s–60 s.
    BudgetWindow(Duration),
    /// Attempts per request must be within 1–8.
    MaxAttempts(u32),
    /// The per-attempt timeout is zero.
    PerTryTimeout,
    /// The hedging delay is zero or longer than a minute.
    HedgeDelay(Duration),
    /// Hedging's extra load is not within (0, 0.5].
    MaxExtraLoad(f64),
}

impl fmt::Display for RetryConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryConfigError::BudgetPercent(p) => write!(
                f,
                "invalid retry budget: {p} is not a share of requests; give a value between \
                 0.0 and 1.0 (0.2 allows retries of 20 % of requests)"
            ),
            RetryConfigError::BudgetWindow(ttl) => write!(
                f,
                "invalid retry budget: a window of {ttl:?} is outside 1 s to 60 s; give one \
                 within (10 s is the usual)"
            ),
            RetryConfigError::MaxAttempts(n) => write!(
                f,
                "invalid max_attempts: {n} attempts per request; give 1 (no retry) to 8"
            ),
            RetryConfigError::PerTryTimeout => f.write_str(
                "invalid per_try_timeout: it is zero; give a positive duration, or none",
            ),
            RetryConfigError::HedgeDelay(d) => write!(
                f,
                "invalid hedging delay: {d:?}; give a positive duration under a minute"
            ),
            RetryConfigError::MaxExtraLoad(x) => write!(
                f,
                "invalid hedging max_extra_load: {x} is not within (0, 0.5]; give the share \
                 of extra requests hedges may add (0.05 for 5 %)"
            ),
        }
    }
}

impl std::error::Error for RetryConfigError {}
