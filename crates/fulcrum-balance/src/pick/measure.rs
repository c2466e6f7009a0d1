//! Measuring a policy outside a balancer: rebuild time and per-pick cost.

use std::hint::black_box;
use std::time::{Duration, Instant};

use fulcrum_core::Endpoint;

use super::{PickContext, Policy, TestEndpoints};
use crate::key::mix64;

/// What [`measure`] found.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// How long [`Policy::build`] took for the endpoints.
    pub build: Duration,
    /// Mean time of one [`Picker::pick`](super::Picker::pick), in
    /// nanoseconds, with a different key each time and no load.
    pub pick_ns: f64,
}

/// Builds `policy`'s picker over `endpoints` and times `picks` picks with
/// distinct keys: for benchmarks and capacity planning (how long a
/// membership change takes to apply, what a pick costs at this size).
///
/// ```
/// use fulcrum_balance::pick::{measure, Maglev};
/// use fulcrum_core::Endpoint;
///
/// let endpoints: Vec<_> = (0..100u16)
///     .map(|i| Endpoint::new(([10, 0, 0, 1], 1000 + i).into()))
///     .collect();
/// let m = measure(&Maglev::default(), &endpoints, 1000);
/// assert!(m.pick_ns > 0.0);
/// ```
pub fn measure(policy: &dyn Policy, endpoints: &[Endpoint], picks: u64) -> Measurement {
    let endpoints = TestEndpoints::new(endpoints.iter().cloned());
    let loads = endpoints.loads();
    let started = Instant::now();
    let picker = policy.build(&loads, None);
    let build = started.elapsed();
    let mut rng = fastrand::Rng::with_seed(1);
    let started = Instant::now();
    for i in 0..picks {
        let mut cx = PickContext::new(loads, &mut rng, Some(mix64(i)));
        black_box(picker.pick(&mut cx));
    }
    let pick_ns = started.elapsed().as_nanos() as f64 / picks.max(1) as f64;
    Measurement { build, pick_ns }
}
