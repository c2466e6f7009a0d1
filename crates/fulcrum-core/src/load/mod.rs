//! Load metrics: how busy and how fast an endpoint is.
//!
//! Two measurements per endpoint, both plain atomics so the request path
//! takes no lock:
//!
//! * [`InFlight`]: requests dispatched and not yet finished.
//! * [`PeakEwma`]: a latency estimate with Finagle's peak-EWMA semantics — a
//!   sample slower than the estimate replaces it at once, faster samples blend
//!   in with weight `1 - exp(-Δt/decay)`, and between samples the estimate
//!   decays toward zero so an endpoint that was slow long ago gets probed again.
//!
//! ```
//! use fulcrum_core::load::{EwmaConfig, InFlight, PeakEwma};
//!
//! let ewma = PeakEwma::new(&EwmaConfig::default());
//! let in_flight = InFlight::default();
//! let ms = 1_000_000;
//! in_flight.enter();
//! ewma.record(40 * ms, 1_000 * ms); // a 40 ms response, one second in
//! in_flight.exit();
//! assert_eq!(in_flight.get(), 0);
//! assert!((ewma.estimate(1_000 * ms) / ms as f64 - 40.0).abs() < 0.01);
//! ```

mod in_flight;
mod peak_ewma;

pub use in_flight::InFlight;
pub use peak_ewma::{EwmaConfig, PeakEwma};
