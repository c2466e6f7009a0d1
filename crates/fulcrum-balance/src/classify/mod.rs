//! What a finished request says about its endpoint: its [`Outcome`], and
//! when it is finished ([`Completion`]).
//!
//! Every request holds a [`Completion`] from the moment it is sent. A
//! [`Classify`] set on the [`Builder`](crate::Builder) receives the inner
//! service's result with it, and either finishes it at once with an outcome
//! or moves it into the response, to finish when the response ends: at the
//! end of a streamed body, where trailers (a gRPC status) are known. A
//! completion dropped unfinished (the caller gave up, a timeout above the
//! balancer fired, the body was dropped half-read) finishes as
//! [`Outcome::Cancelled`]. Until it finishes the request counts in its
//! endpoint's in-flight load, and its latency runs.
//!
//! Outcomes feed the endpoint's latency estimate and counters, and decide
//! what happens to it: a [`FailureKind::Connect`] failure takes the endpoint
//! out of service at once (the backoff of a failed readiness check) and asks
//! discovery to look again; other failures count against its latency
//! estimate (the failure penalty) so load-aware policies avoid it. An
//! overload with a delay (`Retry-After`) cuts the endpoint's share to about
//! a twentieth (a pick that lands on it is made again, up to four times),
//! under every policy, until the delay (at most 60 s) has
//! passed; it is never ejected for it. An overload without a delay counts
//! as one failure penalty.
//!
//! * [`DefaultClassify`]: `Ok` is a success, `Err` a failure whose kind is
//!   read from the error's causes (refused connection, reset, timeout).
//! * [`classify_fn`]: a closure from `&Result` to [`Outcome`].
//! * [`TrackedBody`] (feature `http`): an `http_body::Body` that finishes
//!   its completion at the end of the stream, with [`ClassifyHttp`] for
//!   HTTP and gRPC responses.
//!
//! ```
//! use fulcrum_balance::classify::{classify_fn, FailureKind, Outcome};
//! use fulcrum_balance::Balancer;
//!
//! // Responses are status codes here; 5xx are failures.
//! let builder = Balancer::builder().classify(classify_fn(|result: &Result<u16, _>| match result {
//!     Ok(status) if *status >= 500 => Outcome::Failure(FailureKind::Server),
//!     Ok(_) => Outcome::Success,
//!     Err(_) => Outcome::Failure(FailureKind::Server),
//! }));
//! # drop(builder);
//! ```

#[cfg(feature = "http")]
mod body;
mod completion;
mod default;
#[cfg(feature = "http")]
mod http;
mod outcome;

#[cfg(feature = "http")]
pub use body::{ClassifyTrailers, TrackedBody};
pub(crate) use completion::UNTIMED;
pub use completion::{CancelledAs, Completion};
pub use default::{classify_fn, Classify, ClassifyFn, DefaultClassify};
#[cfg(feature = "http")]
pub use http::ClassifyHttp;
pub use outcome::{FailureKind, Outcome};
