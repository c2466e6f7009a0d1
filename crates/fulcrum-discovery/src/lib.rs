//! fulcrum's discovery: turns a target into endpoint sets, and keeps them
//! current.
//!
//! * [`Target`] parses every form users write: static lists with weights,
//!   `host:port` / `dns:///host:port` (A/AAAA), `dns+srv:///_svc._proto.domain`
//!   (SRV), with an optional explicit resolver. Mistakes get a typed
//!   [`TargetError`] that points at the offending part.
//! * [`Discovery`] resolves a target once ([`Discovery::resolve`]) or as a
//!   stream of whole [`EndpointSet`](fulcrum_core::EndpointSet)s
//!   ([`Discovery::stream`]) that re-resolves when the TTL runs out
//!   (clamped to `[min_ttl, max_ttl]`, jittered), keeps the last good set
//!   through resolver errors (reporting them, backing off), treats an
//!   authoritative empty answer as configured ([`OnEmpty`]), and can be asked
//!   to re-resolve early ([`RefreshHandle`]).
//! * SRV records follow RFC 2782: priority → the endpoint's tier, weight →
//!   its weight (0 = standby), port → its port, targets resolved to
//!   addresses (from the additional section when the server sent them); a
//!   lone `.` target means the service is not available.
//! * Composite targets, `first(…)` for region fail-over and `weighted(…)`
//!   for traffic shifting, discover and refresh each part on its own and
//!   combine the parts' sets (`src/composite.rs`).
//! * Locality: options on a target (`;zone=`, `;region=`) and a
//!   [`LocalityMap`] (address ranges and host-name suffixes, e.g. from
//!   `FULCRUM_LOCALITY_MAP`) place endpoints in zones and regions.
//! * [`ServiceDiscover`] adapts it all to `tower::discover::Discover`
//!   (feature `tower`), for tower's own balancer.
//!
//! Where a DNS answer becomes endpoints: `src/dns.rs`. Where re-resolution
//! is scheduled: `src/discovery.rs`. DNS is spoken by hickory-resolver (its
//! answer cache is turned off: fulcrum schedules re-resolution itself from
//! the TTLs, and must see fresh answers).
//!
//! ```
//! use fulcrum_discovery::{Discovery, Target};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A static list resolves to itself; DNS targets look the same to callers.
//! let (mut sets, _refresh) = Discovery::new("127.0.0.1:8080=2,127.0.0.1:8081").unwrap().stream();
//! let set = sets.next().await.unwrap().unwrap();
//! assert_eq!(set.iter().map(|e| e.weight()).collect::<Vec<_>>(), [2, 1]);
//!
//! assert!(matches!(
//!     "dns+srv:///_http._tcp.api.internal".parse::<Target>(),
//!     Ok(Target::Srv { .. })
//! ));
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod composite;
mod config;
mod discovery;
mod dns;
mod error;
mod locality;
pub mod target;
#[cfg(feature = "tower")]
pub mod tower;

pub use config::{DiscoveryConfig, OnEmpty};
pub use discovery::{Discovery, EndpointStream, RefreshHandle};
pub use error::DiscoveryError;
pub use locality::{LocalityMap, LocalityMapError, LOCALITY_MAP_VAR};
pub use target::{Tags, Target, TargetError, TargetErrorKind};
#[cfg(feature = "tower")]
pub use tower::ServiceDiscover;
