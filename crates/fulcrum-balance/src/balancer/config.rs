//! Settings the builder hands the driver and the request path.

use std::sync::Arc;
use std::time::Duration;

use fulcrum_core::load::EwmaConfig;

use crate::classify::CancelledAs;
use crate::health::{HealthChecks, OutlierDetection, SlowStart};
use crate::pick::Policy;
use crate::subset::SubsetRule;

/// Exponential backoff with jitter for endpoints that failed readiness or
/// could not be made: `base × 2^(n-1)`, capped at `max`, each delay drawn
/// uniformly from its upper half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    pub(crate) fn delay(&self, failures: u32, rng: &mut fastrand::Rng) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << exp).min(self.max);
        let half = full / 2;
        half + half.mul_f64(rng.f64())
    }
}

/// Asks the endpoint source to look again (e.g. a DNS re-resolve).
pub(crate) type RefreshFn = Arc<dyn Fn() + Send + Sync>;

/// Everything a balancer is configured with, but its endpoint source, key
/// extractor and classifier.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) target: String,
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) ready_timeout: Duration,
    pub(crate) make_timeout: Duration,
    pub(crate) max_waiters: usize,
    pub(crate) ewma: EwmaConfig,
    pub(crate) backoff: Backoff,
    pub(crate) cancelled: CancelledAs,
    pub(crate) seed: Option<u64>,
    pub(crate) outliers: OutlierDetection,
    pub(crate) panic_threshold: f64,
    /// How much a tier's healthy share is trusted to carry (≥ 1).
    pub(crate) overprovisioning: f64,
    pub(crate) checks: Option<HealthChecks>,
    pub(crate) slow_start: Option<SlowStart>,
    /// Checked subsets (see [`crate::subset`]); empty without.
    pub(crate) subsets: Arc<[SubsetRule]>,
    /// This client's share of the endpoints (see [`crate::subsetting`]);
    /// all of them without.
    pub(crate) subsetting: Option<crate::subsetting::Subsetting>,
    /// Zone-aware routing (see [`crate::zone`]); off without.
    pub(crate) zone_aware: Option<crate::zone::ZoneAware>,
    /// Nearest-region routing (see [`crate::region`]); off without.
    pub(crate) nearest_region: Option<crate::region::NearestRegion>,
    /// How often the driver records metrics (feature `metrics`); never
    /// without.
    #[cfg(feature = "metrics")]
    pub(crate) metrics_every: Option<Duration>,
}

/// The default panic threshold, in percent (Envoy's).
pub(crate) const PANIC_THRESHOLD: f64 = 50.0;
/// The default overprovisioning factor (Envoy's).
pub(crate) const OVERPROVISIONING: f64 = 1.4;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            target: "static".to_owned(),
            policy: Arc::new(crate::pick::PeakEwmaP2c),
            ready_timeout: Duration::from_secs(3),
            make_timeout: Duration::from_secs(10),
            max_waiters: 10_000,
            ewma: EwmaConfig::default(),
            backoff: Backoff::default(),
            cancelled: CancelledAs::default(),
            seed: None,
            outliers: OutlierDetection::default(),
            panic_threshold: PANIC_THRESHOLD,
            overprovisioning: OVERPROVISIONING,
            checks: None,
            slow_start: None,
            subsets: Arc::new([]),
            subsetting: None,
            zone_aware: None,
            nearest_region: None,
            #[cfg(feature = "metrics")]
            metrics_every: None,
        }
    }
}
