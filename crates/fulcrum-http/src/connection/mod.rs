//! Connections to endpoints: the balancer's inner service for HTTP.
//!
//! A [`Connector`] is the balancer's maker: for each endpoint it makes an
//! [`EndpointService`] over that endpoint's pool of connections.
//!
//! * **A connection is part of readiness.** `poll_ready` checks out an
//!   idle connection or opens one (within the connect timeout). If it
//!   cannot, readiness fails with a [`ConnectError`]: the balancer takes
//!   the endpoint out of service and sends the request elsewhere — it was
//!   never sent, so no retry is needed for it.
//! * **The logical host travels.** Requests carry their own `Host` if they
//!   have one, else their URI's authority, else the name the endpoint was
//!   discovered by (`orders.internal:8080`), or
//!   [`ConnectionConfig::authority`]; only the TCP connection goes to the
//!   picked address.
//! * **HTTP/1.1** keeps a pool of connections per endpoint, one request at
//!   a time on each; **HTTP/2** ([`Protocol::Http2`], prior knowledge)
//!   multiplexes every request to an endpoint on one connection, made once
//!   however many requests wait for it.
//!
//! Use it directly to balance a request body type of your own (the
//! [`Client`](crate::Client) covers the common case):
//!
//! ```no_run
//! use bytes::Bytes;
//! use fulcrum_balance::{classify::ClassifyHttp, Balancer};
//! use fulcrum_http::{ConnectionConfig, Connector};
//! use http_body_util::Full;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let balancer = Balancer::builder()
//!     .discover_target("dns:///orders.internal:8080")
//!     .unwrap()
//!     .classify(ClassifyHttp::default())
//!     .build(Connector::<Full<Bytes>>::new(ConnectionConfig::default()));
//! # drop(balancer);
//! # }
//! ```

mod config;
pub(crate) mod connect;
mod error;
mod maker;
mod pool;
mod service;
#[cfg(feature = "tls")]
pub(crate) mod tls;

/// Without the `tls` feature there is never a TLS target.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(crate) enum TlsTarget {}
#[cfg(feature = "tls")]
pub(crate) use tls::TlsTarget;

pub use config::{ConnectionConfig, Protocol};
pub use error::{ConnectError, RequestTimeout};
pub use maker::Connector;
pub use service::{EndpointFuture, EndpointService};
