//! The balanced HTTP [`Client`] and its [`Builder`].

mod body;
mod builder;
mod error;
mod retry;
mod service;

pub use body::Body;
pub use builder::{BalanceBuilder, Builder};
pub use error::Error;
pub use service::{Client, ResponseFuture};
