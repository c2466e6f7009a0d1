//! fulcrum's discovery: turns a target into endpoint sets.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod target;

pub use target::{Target, TargetError, TargetErrorKind};
