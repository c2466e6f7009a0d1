//! fulcrum's balanced HTTP client: hyper underneath, a target in, one
//! endpoint picked per request.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = fulcrum_http::Client::from_target("dns:///orders.internal:8080")?;
//! let response = client.get("/orders/42").await?;
//! assert!(response.status().is_success());
//! let text = response.into_body().text().await?;
//! # drop(text);
//! # Ok(())
//! # }
//! ```
//!
//! * [`Client`] — built from a target in one line or with a [`Builder`];
//!   a `tower::Service<http::Request<B>>` with `get` / `post` / `request`
//!   on top. The policy (`ewma` by default) sees each request; the
//!   endpoint's load counts until its response body ends.
//! * **The logical host is kept**: requests carry `Host: orders.internal:8080`
//!   (HTTP/1) or that `:authority` (HTTP/2) while the connection goes to
//!   the picked address ([`connection`]).
//! * **A connection that cannot be made moves the request**: connecting
//!   is part of an endpoint's readiness, so with one of four backends
//!   refusing connections the caller sees no error, without retries.
//! * **Classification** ([`ClassifyHttp`](fulcrum_balance::classify::ClassifyHttp)):
//!   connect errors and timeouts are failures of their kind, `5xx` server
//!   failures, `429` and `503` with `Retry-After` overloads; `grpc-status`
//!   is read from headers and trailers.
//! * **Retries and hedging** for idempotent methods, within a budget
//!   ([`Builder::retries`], [`Builder::hedging`]).
//! * [`key`] — affinity keys from headers, cookies, query parameters,
//!   paths, client addresses, and templates combining them.
//! * [`HttpProbe`] — an active health check: `GET /health`, a status range,
//!   a timeout.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod client;
pub mod connection;
pub mod key;
mod probe;

pub use client::{Body, Builder, Client, Error, ResponseFuture};
pub use connection::{ConnectError, ConnectionConfig, Connector, Protocol, RequestTimeout};
pub use probe::HttpProbe;

/// TLS (feature `tls`): [`client_config`](tls::client_config) for a
/// private CA, and the `rustls` these configurations come from.
#[cfg(feature = "tls")]
pub mod tls {
    pub use crate::connection::tls::client_config;
    pub use tokio_rustls::rustls;
}
