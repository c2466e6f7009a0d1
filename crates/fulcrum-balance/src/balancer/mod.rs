//! The [`Balancer`]: a `tower::Service` that picks an endpoint per request.
//!
//! * **Picks in `call`, with the request visible.** `poll_ready` only says
//!   that some endpoint is available; `call` picks against the current
//!   snapshot of ready endpoints (see [`pick`](crate::pick)), keyed by the
//!   builder's key extractor.
//! * **Clone it freely.** Clones share one state. The request path reads an
//!   atomically swapped snapshot, updates per-endpoint atomics, takes no lock
//!   and allocates nothing.
//! * **A request is done when its response is**: the classifier set on the
//!   builder decides each request's [`Outcome`](crate::classify::Outcome)
//!   and can hold it open until a streamed body ends (see
//!   [`classify`](crate::classify)). A request dropped unfinished is
//!   cancelled, an outcome of its own.
//! * **A background driver** (spawned on the current tokio runtime by the
//!   [`Builder`], stopped when the last clone is dropped) applies endpoint-set
//!   updates, makes one inner service per endpoint, and re-admits endpoints
//!   after a backoff — whether or not requests flow. It survives panics in
//!   user code; if it stops anyway, requests fail at once with
//!   [`ErrorKind::DriverStopped`].
//! * **No unbounded wait.** `poll_ready` waits up to the readiness deadline
//!   (3 s by default), is woken the moment an endpoint appears, and
//!   otherwise fails with [`ErrorKind::NoEndpoints`] naming the reason and the
//!   last discovery error; after such a failure new requests fail at once
//!   until an endpoint is back. A chosen endpoint whose service is not
//!   ready in time is taken out of service and the request moves on.
//! * **Removed endpoints drain:** their in-flight requests finish; they take
//!   no new ones.
//! * **An endpoint that fails readiness or refuses connections** is taken
//!   out of service for a backoff (the request moves to another endpoint if
//!   it was not sent), and after the backoff its service is made afresh.
//!
//! ```
//! use std::convert::Infallible;
//! use fulcrum_balance::{make_fn, Balancer};
//! use fulcrum_core::Endpoint;
//! use tower::{service_fn, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let endpoints = ["127.0.0.1:8080", "127.0.0.1:8081"].map(|a| Endpoint::new(a.parse().unwrap()));
//! // One inner service per endpoint; a real one would be an HTTP or gRPC client.
//! let make = make_fn(|ep: &Endpoint| {
//!     let addr = ep.addr();
//!     service_fn(move |req: String| async move { Ok::<_, Infallible>(format!("{addr} <- {req}")) })
//! });
//! let mut balancer = Balancer::builder()
//!     .target("my-service")
//!     .policy_name("round-robin")
//!     .unwrap()
//!     .endpoints(endpoints)
//!     .build(make);
//!
//! let a = balancer.ready().await.unwrap().call("one".into()).await.unwrap();
//! let b = balancer.ready().await.unwrap().call("two".into()).await.unwrap();
//! assert_ne!(a[..14], b[..14]); // round robin: two different endpoints
//! assert_eq!(balancer.stats().endpoints.len(), 2);
//! # }
//! ```

mod builder;
mod config;
mod driver;
pub(crate) mod error;
mod future;
mod layer;
mod make;
mod manage;
mod service;
pub(crate) mod shared;
pub(crate) mod snapshot;
mod wait;

pub use builder::Builder;
pub use config::Backoff;
pub use error::{Error, ErrorKind};
pub use future::ResponseFuture;
pub use layer::BalanceLayer;
pub use make::{make_fn, MakeFn};
pub use manage::{ManageError, Manager};
pub use service::Balancer;

pub(crate) use driver::{ejection_reason, MAX_RETRY_AFTER};
