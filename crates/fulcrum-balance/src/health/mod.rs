//! Endpoint health: passive outlier detection, active health checks and
//! the panic threshold.
//!
//! An endpoint leaves service in one of three ways, each with its own
//! clock and visible in [`Stats`](crate::Stats):
//!
//! * **unavailable**: its service failed readiness, could not be made, or
//!   a connection was refused. It is out at once, and made afresh after a
//!   jittered exponential backoff ([`Backoff`](crate::Backoff)).
//! * **ejected**: it answers, but fails more than its peers
//!   ([`OutlierDetection`]). Its service (connections) is kept; it is
//!   re-admitted when its ejection time ends.
//! * **unhealthy**: its active health check ([`HealthChecks`], off by
//!   default) failed `fall` times in a row. Its service is kept; it is back
//!   after `rise` passed probes. A [`Probe`] is any async check of an
//!   endpoint (a closure will do); [`TcpConnect`] ships here.
//!
//! Endpoints that start serving can ramp up their share over a window
//! ([`SlowStart`]), under every policy.
//!
//! The decisions are pure functions ([`outlier`] finds outliers in an
//! interval's answers, `ejection` keeps the lengths and the maximum
//! percentage, `verdict` counts probes against rise and fall); the
//! balancer's driver runs them, and decides which
//! endpoints serve from their health and the **panic threshold**: when
//! fewer than that share (50 % by default) of a tier's endpoints are
//! healthy, every available endpoint of the tier serves, ejected,
//! unhealthy or not
//! (Envoy's panic mode: better to try than to bury the few that are left).
//!
//! ```
//! use std::time::Duration;
//! use fulcrum_balance::{health::OutlierDetection, Balancer};
//!
//! let builder = Balancer::builder()
//!     .outlier_detection(OutlierDetection::default().consecutive_failures(3))
//!     .unwrap()
//!     .panic_threshold(30.0)
//!     .unwrap();
//! # let _ = builder;
//! ```

mod checks;
pub(crate) mod ejection;
mod error;
pub(crate) mod limits;
pub mod outlier;
mod probe;
mod slow_start;
pub(crate) mod verdict;

pub use checks::HealthChecks;
pub use error::ConfigError;
pub use outlier::{EjectionReason, OutlierDetection};
pub use probe::{Probe, ProbeFuture, TcpConnect};
pub use slow_start::SlowStart;
