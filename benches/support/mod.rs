//! What the benches share: a trivial inner service, a key extractor for
//! the hash policies, a runtime, a median.
#![allow(dead_code)]

use std::convert::Infallible;
use std::task::{Context, Poll};

use fulcrum::key::KeyExtractor;
use tower::Service;

/// The trivial inner service: answers at once.
#[derive(Clone, Copy)]
pub struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Infallible;
    type Future = std::future::Ready<Result<u64, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: u64) -> Self::Future {
        std::future::ready(Ok(req))
    }
}

/// Keys every request by its number when on (the hash policies then take
/// their keyed path); no key otherwise.
#[derive(Clone, Copy)]
pub struct BenchKey(pub bool);

impl KeyExtractor<u64> for BenchKey {
    #[inline]
    fn key(&self, req: &u64) -> Option<u64> {
        self.0.then_some(*req)
    }
}

/// The policies that hash a key.
pub const HASH_POLICIES: [&str; 3] = ["ring-hash", "maglev", "rendezvous"];

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
