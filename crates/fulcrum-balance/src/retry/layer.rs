use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::hedge::Hedger;
use super::{Hedging, Retry, RetryBudget, RetryConfigError};
use crate::pick::Tried;
use crate::Balancer;

/// Retries (and hedges) requests through a [`Balancer`], each attempt on
/// an endpoint not yet tried; see the [module docs](super).
///
/// Services made by one layer share its budget and hedging estimate.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::retry::{RetryBudget, RetryClone, RetryLayer};
///
/// let layer = RetryLayer::new(RetryClone)
///     .max_attempts(3).unwrap()
///     .per_try_timeout(Duration::from_millis(500)).unwrap()
///     .budget(RetryBudget::new(0.2, 10, Duration::from_secs(10)).unwrap());
/// # drop(layer);
/// ```
#[derive(Clone, Debug)]
pub struct RetryLayer<P> {
    policy: P,
    settings: Arc<Settings>,
}

/// What every service of a layer shares.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) max_attempts: u32,
    pub(crate) per_try_timeout: Option<Duration>,
    pub(crate) budget: Arc<RetryBudget>,
    pub(crate) hedger: Option<Hedger>,
    hedging: Option<Hedging>,
}

impl<P> RetryLayer<P> {
    /// Retries the requests `policy` says may be sent again: up to 3
    /// attempts, within the default [`RetryBudget`], no per-attempt
    /// timeout, no hedging.
    pub fn new(policy: P) -> Self {
        RetryLayer {
            policy,
            settings: Arc::new(Settings {
                max_attempts: 3,
                per_try_timeout: None,
                budget: Arc::new(RetryBudget::default()),
                hedger: None,
                hedging: None,
            }),
        }
    }

    /// Attempts per request, the first included (1 to 8; 3 by default).
    /// Moves of requests that were never sent do not count.
    pub fn max_attempts(self, n: u32) -> Result<Self, RetryConfigError> {
        if n == 0 || n as usize > Tried::CAPACITY {
            return Err(RetryConfigError::MaxAttempts(n));
        }
        Ok(self.with(|s| s.max_attempts = n))
    }

    /// How long one attempt may take before it is abandoned (cancelled on
    /// its endpoint) and the request retried elsewhere; the last attempt
    /// fails with [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut). Counts until
    /// the response (its headers, for HTTP), not its body.
    pub fn per_try_timeout(self, timeout: Duration) -> Result<Self, RetryConfigError> {
        if timeout.is_zero() {
            return Err(RetryConfigError::PerTryTimeout);
        }
        let timeout = timeout.min(crate::health::limits::LONGEST);
        Ok(self.with(|s| s.per_try_timeout = Some(timeout)))
    }

    /// The budget retries and hedges spend.
    pub fn budget(self, budget: RetryBudget) -> Self {
        self.shared_budget(Arc::new(budget))
    }

    /// A budget shared with other layers (one per downstream service,
    /// whatever the routes to it).
    pub fn shared_budget(self, budget: Arc<RetryBudget>) -> Self {
        self.with(|s| s.budget = budget)
    }

    /// Hedges slow requests; see [`Hedging`].
    pub fn hedging(self, hedging: Hedging) -> Self {
        self.with(|s| {
            s.hedging = Some(hedging);
            s.hedger = Some(Hedger::new(hedging));
        })
    }

    fn with(self, change: impl FnOnce(&mut Settings)) -> Self {
        let s = &self.settings;
        let mut settings = Settings {
            max_attempts: s.max_attempts,
            per_try_timeout: s.per_try_timeout,
            budget: s.budget.clone(),
            hedger: s.hedging.map(Hedger::new),
            hedging: s.hedging,
        };
        change(&mut settings);
        RetryLayer {
            policy: self.policy,
            settings: Arc::new(settings),
        }
    }
}

impl<P: Clone, S, K, C> Layer<Balancer<S, K, C>> for RetryLayer<P> {
    type Service = Retry<Balancer<S, K, C>, P>;

    fn layer(&self, balancer: Balancer<S, K, C>) -> Self::Service {
        Retry::new(balancer, self.policy.clone(), self.settings.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryClone;

    #[test]
    fn bad_settings_are_typed_errors() {
        let layer = || RetryLayer::new(RetryClone);
        assert_eq!(
            layer().max_attempts(0).unwrap_err(),
            RetryConfigError::MaxAttempts(0)
        );
        assert_eq!(
            layer().max_attempts(9).unwrap_err(),
            RetryConfigError::MaxAttempts(9)
        );
        assert_eq!(
            layer().per_try_timeout(Duration::ZERO).unwrap_err(),
            RetryConfigError::PerTryTimeout
        );
        let ok = layer()
            .max_attempts(8)
            .unwrap()
            .per_try_timeout(Duration::MAX)
            .unwrap();
        assert_eq!(ok.settings.max_attempts, 8);
        assert!(ok.settings.per_try_timeout.unwrap() <= crate::health::limits::LONGEST);
    }
}
