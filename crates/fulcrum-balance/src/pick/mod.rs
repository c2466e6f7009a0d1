//! Pickers: how one endpoint is chosen per request.
//!
//! A [`Policy`] is the configuration ("P2C on peak EWMA"); whenever the set of
//! ready endpoints changes, the balancer's driver calls [`Policy::build`] to
//! make a [`Picker`], a plain data structure that is then read, lock-free, by
//! every request until the next change. Per-request load (in-flight counts,
//! latency estimates) is read through [`Loads`] at pick time.
//!
//! | name | policy | per pick |
//! |---|---|---|
//! | `ewma` (default) | [`PeakEwmaP2c`]: P2C on `rtt × (in_flight + 1) / weight` | O(1) |
//! | `p2c` | [`PendingP2c`]: P2C on `(in_flight + 1) / weight` | O(1) |
//! | `least-conn` | [`LeastConn`]: exact minimum of `(in_flight + 1) / weight` | O(n) |
//! | `round-robin` | [`RoundRobin`]: strict rotation | O(1) |
//! | `weighted-round-robin` | [`WeightedRoundRobin`]: smooth interleaving by weight | O(1) |
//! | `random` | [`Random`]: uniform | O(1) |
//! | `weighted-random` | [`WeightedRandom`]: alias table | O(1) |
//! | `ring-hash` | [`RingHash`]: consistent hashing on a bounded ring (≤ 2^20 points), points ∝ weight | O(1) (indexed) |
//! | `maglev` | [`Maglev`]: Maglev lookup table (≥ 100 entries per endpoint, prime), weighted | O(1) |
//! | `rendezvous` | [`Rendezvous`]: weighted highest-random-weight | O(n) |
//!
//! The hash pickers send requests with the same key (see
//! [`key`](crate::key)) to the same endpoint in every client, fall back in
//! their own order when that endpoint is down or over its load bound
//! ([`HashOptions::balance_factor`]), and send requests without a key to a
//! fallback policy (`ewma` by default). [`Sticky`] keeps sessions on the
//! endpoint they were first placed on, whatever policy placed them.
//!
//! # Writing your own
//!
//! ```
//! use fulcrum_balance::pick::{Loads, PickContext, Picker, Policy, TestEndpoints};
//!
//! /// Always the first endpoint with nothing in flight, else a random one.
//! #[derive(Debug)]
//! struct FirstIdle;
//!
//! impl Picker for FirstIdle {
//!     fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
//!         let n = cx.loads().len();
//!         (0..n)
//!             .find(|&i| cx.loads().in_flight(i) == 0)
//!             .or_else(|| (n > 0).then(|| cx.random_below(n)))
//!     }
//! }
//!
//! impl Policy for FirstIdle {
//!     fn name(&self) -> &str {
//!         "first-idle"
//!     }
//!     fn build(&self, _loads: &Loads<'_>, _previous: Option<&dyn Picker>) -> Box<dyn Picker> {
//!         Box::new(FirstIdle)
//!     }
//! }
//!
//! // Unit-test it without a balancer:
//! let endpoints = TestEndpoints::equal(3);
//! endpoints.add_in_flight(0, 2);
//! assert_eq!(endpoints.counts(&FirstIdle, 10, 1), vec![0, 10, 0]);
//!
//! let balancer_builder = fulcrum_balance::Balancer::builder().policy(FirstIdle);
//! # drop(balancer_builder);
//! ```
//!
//! Pickers with state of their own (a rotation, a session table) take it
//! over from the picker they replace (`previous`), so the state belongs to
//! one balancer; see [`Policy::build`].

mod context;
mod cost;
mod ewma;
mod hashed;
mod least_conn;
mod maglev;
mod measure;
mod p2c;
mod policy;
mod ramp;
mod random;
mod registry;
mod rendezvous;
mod ring_hash;
mod round_robin;
mod sticky;
mod testing;
mod tried;
mod weighted_random;
mod weighted_round_robin;

#[cfg(test)]
mod hash_scale_tests;
#[cfg(test)]
mod hash_tests;

pub use context::{Loads, PickContext};
pub use ewma::PeakEwmaP2c;
pub use hashed::HashOptions;
pub use least_conn::LeastConn;
pub use maglev::Maglev;
pub use measure::{measure, Measurement};
pub use p2c::PendingP2c;
pub use policy::{Picker, Policy};
pub use random::Random;
pub use registry::{by_name, by_name_with, policy_names, UnknownPolicy};
pub use rendezvous::Rendezvous;
pub use ring_hash::RingHash;
pub use round_robin::RoundRobin;
pub use sticky::Sticky;
pub use testing::TestEndpoints;
pub use weighted_random::WeightedRandom;
pub use weighted_round_robin::WeightedRoundRobin;

pub(crate) use policy::previous_as;
pub(crate) use ramp::pick_ramped;
pub(crate) use tried::Tried;
