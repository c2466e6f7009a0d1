//! fulcrum's load balancer: a request-aware, lock-free `tower::Service` that
//! spreads requests over endpoints with a choice of policies.
//!
//! * [`Balancer`] — the service, its [`Builder`] and [`BalanceLayer`]
//!   ([`balancer`] module).
//! * [`pick`] — the policies and the traits to write your own.
//! * [`classify`] — outcomes, and when a request is finished.
//! * [`retry`] — retries and hedging within a budget.
//! * [`key`] — affinity keys for the hash policies.
//! * [`updates`] — feeding endpoint sets by hand.
//! * [`stats`] — what the balancer knows, as JSON-ready data.
//!
//! Where things happen: a request is picked in
//! [`Balancer::call`](tower_service::Service::call) (`balancer/service.rs`,
//! `balancer/snapshot.rs`); an endpoint-set update becomes members in the
//! driver (`balancer/driver/members.rs`), which endpoints serve is decided
//! in `balancer/driver/hosts.rs`; an endpoint is taken out of service in
//! `slot/mod.rs` (`take_out_of_service`), from a failed readiness check
//! (`balancer/future/moves.rs`) or a refused connection
//! (`classify/completion.rs`), and re-admitted by the driver
//! (`balancer/driver/mod.rs`); load is recorded by the request's
//! [`Completion`].
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod balancer;
pub mod classify;
mod control;
pub mod health;
pub mod key;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod pick;
pub mod region;
pub mod retry;
mod slot;
pub mod stats;
pub mod subset;
pub mod subsetting;
pub mod updates;
pub mod zone;

pub use balancer::{
    make_fn, Backoff, BalanceLayer, Balancer, Builder, Error, ErrorKind, MakeFn, ManageError,
    Manager, ResponseFuture,
};
pub use classify::{CancelledAs, Classify, Completion, FailureKind, Outcome};
pub use slot::EndpointState;
pub use stats::{Counts, Stats};
pub use updates::{channel, Updater, Updates};
