//! The shared vocabulary of fulcrum: what an [`Endpoint`] is, how a whole
//! [`EndpointSet`] is handed from discovery to the balancer, how load is
//! measured ([`load`]), and the errors every crate shares ([`error`]).
//!
//! This crate does no I/O and spawns nothing; it is the part of fulcrum a
//! custom discovery source or a custom picker depends on.
//!
//! ```
//! use fulcrum_core::{Endpoint, EndpointSet};
//!
//! let set: EndpointSet = [
//!     Endpoint::new("127.0.0.1:8080".parse().unwrap()).with_weight(3),
//!     Endpoint::new("127.0.0.1:8081".parse().unwrap()),
//! ]
//! .into_iter()
//! .collect();
//! assert_eq!(set.len(), 2);
//! assert_eq!(set.iter().map(|e| e.weight()).sum::<u32>(), 4);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod endpoint;
pub mod error;
pub mod load;
mod locality;
mod set;
mod tier;
pub mod time;

pub use endpoint::Endpoint;
pub use error::{BoxError, NoEndpoints, NoEndpointsReason, Unsent};
pub use locality::{Locality, REGION_VAR, ZONE_VAR};
pub use set::EndpointSet;
pub use tier::serving_tier;
