//! fulcrum's discovery: turns a target into endpoint sets.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod discovery;
mod dns;
mod error;
pub mod target;
#[cfg(feature = "tower")]
pub mod tower;

pub use discovery::{Discovery, DiscoveryConfig, EndpointStream, OnEmpty, RefreshHandle};
pub use error::DiscoveryError;
pub use target::{Target, TargetError, TargetErrorKind};
#[cfg(feature = "tower")]
pub use tower::ServiceDiscover;
