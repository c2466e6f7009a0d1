//! fulcrum's load balancer: a request-aware, lock-free `tower::Service` that
//! spreads requests over endpoints with a choice of policies.
//!
//! * [`Balancer`] — the service, its [`Builder`] and [`BalanceLayer`]
//!   ([`balancer`] module).
//! * [`pick`] — the policies and the traits to write your own.
//! * [`key`] — affinity keys for the hash policies.
//! * [`updates`] — feeding endpoint sets by hand.
//! * [`stats`] — what the balancer knows, as JSON-ready data.
//!
//! Where things happen: a request is picked in
//! [`Balancer::call`](tower_service::Service::call) (`balancer/mod.rs`), an
//! endpoint-set update is applied and an endpoint backed off in the driver
//! (`balancer/driver.rs`), load is recorded in the response future
//! (`balancer/future.rs`).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod balancer;
pub mod key;
pub mod pick;
mod slot;
pub mod stats;
pub mod updates;

pub use balancer::{
    make_fn, Backoff, BalanceLayer, Balancer, Builder, Classifier, Error, MakeFn, Outcome,
    ResponseFuture,
};
pub use slot::EndpointState;
pub use stats::Stats;
pub use updates::{channel, Updater, Updates};
