//! # fulcrum — client-side load balancing for Rust
//!
//! fulcrum lives inside your own HTTP or gRPC client, as tower layers: it
//! keeps a set of endpoints (instances of the service you call), measures
//! their load and latency, and picks one per request with a policy — P2C on
//! peak-EWMA latency by default, plus P2C on in-flight requests, least
//! connections, round robin, smooth weighted round robin, random, weighted
//! random, and hash affinity (ring, Maglev, rendezvous, bounded load, sticky
//! sessions).
//!
//! This facade re-exports the crates behind features:
//!
//! | feature | crate | what |
//! |---|---|---|
//! | (always) | [`fulcrum_core`] | [`Endpoint`], [`EndpointSet`], [`load`] metrics, errors |
//! | `balance` (default) | [`fulcrum_balance`] | [`Balancer`], [`BalanceLayer`], [`pick`], [`stats`] |
//! | `discovery` (default) | [`fulcrum_discovery`] | [`discovery`]: targets, static lists, DNS A/AAAA and SRV; `Balancer::from_target` |
//! | `http` (default) | [`fulcrum_http`] | [`http`]: the balanced HTTP client, key extractors, the HTTP probe |
//! | `grpc` (default) | [`fulcrum_grpc`] | [`grpc`]: the balanced channel for tonic-generated clients, metadata keys, the `grpc.health.v1` probe |
//! | `tls` | `fulcrum_http::tls` | HTTPS and gRPC over TLS on rustls: SNI and verification for the logical host |
//! | `metrics` | `fulcrum_balance::metrics` | counters and gauges through the `metrics` facade: `Builder::export_metrics` |
//!
//! ```
//! use std::convert::Infallible;
//! use fulcrum::{make_fn, Balancer, Endpoint};
//! use tower::{service_fn, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut balancer = Balancer::builder()
//!     .endpoints(["127.0.0.1:8080", "127.0.0.1:8081"].map(|a| Endpoint::new(a.parse().unwrap())))
//!     .build(make_fn(|ep: &Endpoint| {
//!         let addr = ep.addr();
//!         service_fn(move |_req: ()| async move { Ok::<_, Infallible>(addr) })
//!     }));
//! let served_by = balancer.ready().await.unwrap().call(()).await.unwrap();
//! assert_eq!(served_by.ip().to_string(), "127.0.0.1");
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub use fulcrum_core::{
    error, load, time, BoxError, Endpoint, EndpointSet, Locality, NoEndpoints, NoEndpointsReason,
    Unsent,
};

/// The balanced HTTP client over hyper: `fulcrum::http::Client::from_target(..)`.
#[cfg(feature = "http")]
pub mod http {
    pub use fulcrum_http::*;
}

/// The balanced gRPC channel for tonic-generated clients:
/// `GreeterClient::new(fulcrum::grpc::Channel::from_target(..)?)`.
#[cfg(feature = "grpc")]
pub mod grpc {
    pub use fulcrum_grpc::*;
}

/// Targets to endpoint sets: static lists, DNS A/AAAA and SRV records,
/// composite targets, and the locality map.
#[cfg(feature = "discovery")]
pub mod discovery {
    pub use fulcrum_discovery::*;
}

#[cfg(feature = "balance")]
pub use fulcrum_balance::{
    balancer, channel, classify, health, key, make_fn, pick, region, retry, stats, subset,
    subsetting, updates, zone, Backoff, BalanceLayer, Balancer, Builder, CancelledAs, Classify,
    Completion, EndpointState, Error, ErrorKind, FailureKind, MakeFn, ManageError, Manager,
    Outcome, ResponseFuture, Stats, Updater, Updates,
};
