//! Active health checks: how often the driver probes each endpoint, and
//! how many results in a row change its verdict.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::error::ConfigError;
use super::limits::{check_interval, LONGEST, SHORTEST_INTERVAL};
use super::probe::{Probe, TcpConnect};

/// Active health checks: the balancer's driver runs a [`Probe`] against
/// every endpoint of the set on an interval, whether or not requests flow,
/// and stops when the balancer is dropped.
///
/// In HAProxy's vocabulary, an endpoint goes down after [`fall`](Self::fall)
/// (3) failed probes in a row and comes back after [`rise`](Self::rise) (2)
/// passed ones. A probe fails when it returns an error, runs past its
/// [`timeout`](Self::timeout) (1 s), or panics. An endpoint down by its
/// probe is not picked (state `unhealthy`), unless its tier is in panic
/// (see [the panic threshold](crate::Builder::panic_threshold)); its
/// service (connections) is kept.
///
/// Probes run every [`interval`](Self::interval) (5 s), each wait drawn
/// within ±[`jitter_percent`](Self::jitter_percent) (10 %) of it, so that
/// many clients (and many endpoints) do not probe in lock step. A new
/// endpoint is first probed at a random point of its first interval, or at
/// once if it starts [unhealthy until probed](Self::unhealthy_until_probed);
/// then one passed probe is enough to bring it in.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::{health::HealthChecks, Balancer};
///
/// let builder = Balancer::builder()
///     .health_checks(
///         HealthChecks::tcp_connect()
///             .interval(Duration::from_secs(2))
///             .timeout(Duration::from_millis(500))
///             .rise(2)
///             .fall(3),
///     )
///     .unwrap();
/// # let _ = builder;
/// assert!(HealthChecks::tcp_connect().fall(0).validate().is_err());
/// ```
#[derive(Clone)]
pub struct HealthChecks {
    pub(crate) probe: Arc<dyn Probe>,
    pub(crate) interval: Duration,
    pub(crate) jitter_percent: u32,
    pub(crate) timeout: Duration,
    pub(crate) rise: u32,
    pub(crate) fall: u32,
    pub(crate) unhealthy_until_probed: bool,
}

impl fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecks")
            .field("probe", &self.probe.name())
            .field("interval", &self.interval)
            .field("jitter_percent", &self.jitter_percent)
            .field("timeout", &self.timeout)
            .field("rise", &self.rise)
            .field("fall", &self.fall)
            .field("unhealthy_until_probed", &self.unhealthy_until_probed)
            .finish()
    }
}

impl HealthChecks {
    /// Checks with `probe`, and the default settings.
    pub fn new(probe: impl Probe) -> Self {
        HealthChecks {
            probe: Arc::new(probe),
            interval: Duration::from_secs(5),
            jitter_percent: 10,
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            unhealthy_until_probed: false,
        }
    }

    /// Checks that open a TCP connection ([`TcpConnect`]).
    pub fn tcp_connect() -> Self {
        HealthChecks::new(TcpConnect)
    }

    /// Time between two probes of an endpoint (5 s; at least 10 ms, at most
    /// a year).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.min(LONGEST);
        self
    }

    /// Each wait is drawn within ± this percentage of the interval (10; at
    /// most 100).
    pub fn jitter_percent(mut self, percent: u32) -> Self {
        self.jitter_percent = percent;
        self
    }

    /// A probe running longer fails (1 s; at most a year).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(LONGEST);
        self
    }

    /// Passed probes in a row that bring an endpoint back (2).
    pub fn rise(mut self, n: u32) -> Self {
        self.rise = n;
        self
    }

    /// Failed probes in a row that take an endpoint down (3).
    pub fn fall(mut self, n: u32) -> Self {
        self.fall = n;
        self
    }

    /// Whether a new endpoint waits for a passed probe before it takes
    /// requests (false: it serves as soon as its service is made).
    pub fn unhealthy_until_probed(mut self, yes: bool) -> Self {
        self.unhealthy_until_probed = yes;
        self
    }

    /// Checks the settings; the builder calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_interval("probe interval", self.interval)?;
        if self.timeout.is_zero() {
            return Err(ConfigError::zero("probe timeout"));
        }
        if self.jitter_percent > 100 {
            return Err(ConfigError::percent(
                "probe jitter percent",
                f64::from(self.jitter_percent),
            ));
        }
        if self.rise == 0 {
            return Err(ConfigError::invalid(
                "probe rise",
                "is 0; give the passed probes in a row (at least 1) that bring an endpoint back"
                    .to_owned(),
            ));
        }
        if self.fall == 0 {
            return Err(ConfigError::invalid(
                "probe fall",
                "is 0; give the failed probes in a row (at least 1) that take an endpoint down"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The wait before the next probe: the interval within ± the jitter.
    pub(crate) fn next_wait(&self, rng: &mut fastrand::Rng) -> Duration {
        let spread = f64::from(self.jitter_percent) / 100.0;
        self.interval
            .mul_f64(1.0 - spread + 2.0 * spread * rng.f64())
            .max(SHORTEST_INTERVAL)
    }

    /// The wait before a new endpoint's first probe.
    pub(crate) fn first_wait(&self, rng: &mut fastrand::Rng) -> Duration {
        if self.unhealthy_until_probed {
            Duration::ZERO
        } else {
            self.interval.mul_f64(rng.f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_are_refused_with_the_setting_named() {
        let base = HealthChecks::tcp_connect();
        assert!(base.validate().is_ok());
        let cases = [
            (base.clone().interval(Duration::ZERO), "probe interval"),
            (
                base.clone().interval(Duration::from_millis(1)),
                "probe interval",
            ),
            (base.clone().timeout(Duration::ZERO), "probe timeout"),
            (base.clone().jitter_percent(101), "probe jitter percent"),
            (base.clone().rise(0), "probe rise"),
            (base.clone().fall(0), "probe fall"),
        ];
        for (checks, setting) in cases {
            let e = checks.validate().unwrap_err();
            assert_eq!(e.setting(), setting, "{e}");
        }
        // "Never" is a year, not an overflow.
        assert!(base.interval(Duration::MAX).validate().is_ok());
    }

    #[test]
    fn waits_stay_within_the_jitter() {
        let checks = HealthChecks::tcp_connect().interval(Duration::from_secs(10));
        let mut rng = fastrand::Rng::with_seed(3);
        let waits: Vec<Duration> = (0..1000).map(|_| checks.next_wait(&mut rng)).collect();
        assert!(waits
            .iter()
            .all(|w| (9.0..=11.0).contains(&w.as_secs_f64())));
        let spread =
            waits.iter().max().unwrap().as_secs_f64() - waits.iter().min().unwrap().as_secs_f64();
        assert!(spread > 1.5, "waits are spread: {spread}");
        let first: Vec<Duration> = (0..1000).map(|_| checks.first_wait(&mut rng)).collect();
        assert!(first.iter().all(|w| *w <= Duration::from_secs(10)));
        assert!(first.iter().any(|w| *w < Duration::from_secs(1)));
        let eager = checks.unhealthy_until_probed(true);
        assert_eq!(eager.first_wait(&mut rng), Duration::ZERO);
    }
}
