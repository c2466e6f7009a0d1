//! fulcrum's balanced gRPC channel: give it to a tonic-generated client
//! and every call goes to one of the target's endpoints, picked per call.
//!
//! ```no_run
//! # mod greeter { pub struct GreeterClient<T>(T); impl<T> GreeterClient<T> { pub fn new(t: T) -> Self { Self(t) } } }
//! # use greeter::GreeterClient;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = fulcrum_grpc::Channel::from_target("dns:///greeter.internal:50051")?;
//! let mut client = GreeterClient::new(channel);
//! // client.say_hello(HelloRequest { name: "fulcrum".into() }).await?;
//! # Ok(())
//! # }
//! ```
//!
//! * [`Channel`] — built from a target in one line or with a [`Builder`];
//!   `Clone`, no `Buffer` hop, one HTTP/2 connection per endpoint. Calls
//!   carry the logical `:authority` (`greeter.internal:50051`) while the
//!   connection goes to the picked address.
//! * **Classification** reads `grpc-status` from headers and trailers:
//!   `UNAVAILABLE`, `INTERNAL`, `DEADLINE_EXCEEDED` and similar are failures
//!   of their endpoint; `RESOURCE_EXHAUSTED` with `grpc-retry-pushback-ms`
//!   an overload that cuts its share for that long. A streaming call
//!   counts in flight on its endpoint until its stream ends.
//! * **Errors are statuses**: no endpoint, none ready, or a connection
//!   lost (before the response or half-way through it) is `UNAVAILABLE`
//!   (not `UNKNOWN`), a timeout `DEADLINE_EXCEEDED`.
//! * [`key::Metadata`] — affinity by a metadata entry (`x-user-id`).
//! * [`GrpcHealthProbe`] — `grpc.health.v1` checks, `Watch` where the
//!   server supports it, else `Check`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod channel;
#[cfg(feature = "demo")]
pub mod demo;
pub mod key;
mod probe;

pub use channel::{Body, Builder, Channel, ResponseFuture};
pub use probe::GrpcHealthProbe;
