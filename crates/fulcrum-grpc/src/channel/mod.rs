//! The balanced [`Channel`] and its [`Builder`].
//!
//! A `Channel` is a `tower::Service<http::Request<tonic::body::Body>>`,
//! which is what tonic-generated clients take. Underneath it is a
//! fulcrum balancer whose endpoints are
//! [`fulcrum_http`] connections in HTTP/2 mode, so everything the HTTP
//! client does holds here: connecting is part of readiness (a call whose
//! connection could not be made moves to another endpoint), the logical
//! authority travels as `:authority`, and load counts until the response
//! stream ends.
//!
//! Not here: retries and hedging of calls that reached a server (a gRPC
//! request body is a stream that cannot be replayed without buffering it;
//! use your client's own retry logic on `UNAVAILABLE`).

mod body;
mod builder;
mod service;
mod status;

pub use body::Body;
pub use builder::{BalanceBuilder, Builder};
pub use service::{Channel, RequestBody, ResponseFuture};
