//! Retries and hedging within a budget, as a tower layer over a
//! [`Balancer`](crate::Balancer).
//!
//! [`RetryLayer`] wraps a balancer. A request the [`RetryPolicy`] marks
//! retryable (it can copy it: reads, idempotent writes) is sent again when
//! an attempt fails, up to `max_attempts`:
//!
//! * **each attempt on an endpoint not yet tried** for that request: the
//!   balancer honours the exclusion when it picks (the policy picks again,
//!   a hash policy with the key re-hashed so every client moves a key the
//!   same way); only when every endpoint has been tried does one serve
//!   twice;
//! * **within a budget** ([`RetryBudget`], Finagle's and Linkerd's): 20 %
//!   of requests plus 10 a second, so an outage costs at most 1.2× the
//!   traffic instead of `max_attempts`×;
//! * **a request that was never sent moves free**: a refused connection
//!   or a failed readiness check spends no budget (and the balancer moves
//!   such requests itself, retry layer or not);
//! * **with a per-attempt timeout**: an attempt that has not answered is
//!   cancelled and the request sent elsewhere;
//! * **hedging** ([`Hedging`]): a slow first attempt gets a second one on
//!   another endpoint; the first answer wins, the other is cancelled.
//!
//! What fails an attempt: an [`ErrorKind::Service`](crate::ErrorKind::Service) or
//! [`ErrorKind::NotReady`](crate::ErrorKind::NotReady) from the balancer, a
//! per-attempt timeout, or an answer the policy's
//! [`retry_response`](RetryPolicy::retry_response) calls for another
//! attempt (a `503`). The answer handed back is the last attempt's.
//! Retries, hedges and budget refusals are counted in the balancer's
//! [`Stats`](crate::Stats) and logged as `tracing` events at debug level.
//!
//! The layer goes directly over a balancer (it asks the balancer to avoid
//! endpoints), so put timeouts and other layers above it.
//!
//! ```
//! use std::{convert::Infallible, time::Duration};
//! use fulcrum_balance::retry::{RetryClone, RetryLayer};
//! use fulcrum_balance::{make_fn, Balancer};
//! use fulcrum_core::Endpoint;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Two endpoints; the one on port 1 fails every request.
//! let make = make_fn(|ep: &Endpoint| {
//!     let port = ep.addr().port();
//!     service_fn(move |q: &'static str| async move {
//!         if port == 1 { Err("down") } else { Ok::<_, &str>(format!("{q} from {port}")) }
//!     })
//! });
//! let balancer = Balancer::builder()
//!     .endpoints([1, 2].map(|p| Endpoint::new(([127, 0, 0, 1], p).into())))
//!     .build(make);
//! let mut client = RetryLayer::new(RetryClone)
//!     .per_try_timeout(Duration::from_secs(1)).unwrap()
//!     .layer(balancer.clone());
//! for _ in 0..10 {
//!     let answer = client.ready().await.unwrap().call("hello").await.unwrap();
//!     assert_eq!(answer, "hello from 2");
//! }
//! # }
//! ```

mod budget;
mod decide;
mod error;
mod future;
mod hedge;
mod latency;
mod layer;
mod policy;
mod service;

pub use budget::RetryBudget;
pub use error::RetryConfigError;
pub use future::RetryFuture;
pub use hedge::Hedging;
pub use layer::RetryLayer;
#[cfg(feature = "http")]
pub use policy::RetryIdempotent;
pub use policy::{retry_fn, RetryClone, RetryFn, RetryPolicy};
pub use service::Retry;
