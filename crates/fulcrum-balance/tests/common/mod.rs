//! In-memory backends for behaviour tests: real tokio tasks and timers,
//! configurable latency, failures and readiness.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum_balance::{make_fn, MakeFn};
use fulcrum_core::{BoxError, Endpoint, EndpointSet};

pub fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20_000 + i))
}

pub fn set(ids: &[u16]) -> EndpointSet {
    ids.iter().map(|&i| Endpoint::new(addr(i))).collect()
}

/// A flag that starts set, for `Behaviour`'s switches.
pub fn on() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

#[derive(Clone, Default)]
pub struct Behaviour {
    pub delay: Duration,
    pub fail_calls: bool,
    /// While set, `poll_ready` fails.
    pub not_ready: Arc<AtomicBool>,
    /// While set, calls wait until it is cleared (checked every ms).
    pub hold: Arc<AtomicBool>,
    /// While set, `poll_ready` stays pending (and never wakes the caller).
    pub stuck: Arc<AtomicBool>,
}

#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    pub behaviour: Behaviour,
    pub hits: Arc<AtomicU64>,
}

impl tower::Service<u32> for Backend {
    type Response = SocketAddr;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<SocketAddr, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.behaviour.stuck.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        if self.behaviour.not_ready.load(Ordering::SeqCst) {
            Poll::Ready(Err(format!("{} is not ready", self.addr).into()))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, _req: u32) -> Self::Future {
        self.hits.fetch_add(1, Ordering::Relaxed);
        let b = self.behaviour.clone();
        let addr = self.addr;
        Box::pin(async move {
            if !b.delay.is_zero() {
                tokio::time::sleep(b.delay).await;
            }
            while b.hold.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if b.fail_calls {
                Err(format!("{addr} failed").into())
            } else {
                Ok(addr)
            }
        })
    }
}

/// A set of backends by address, and a maker for the balancer.
#[derive(Clone, Default)]
pub struct Farm {
    backends: Arc<Mutex<HashMap<SocketAddr, Backend>>>,
    pub made: Arc<AtomicU64>,
}

impl Farm {
    pub fn add(&self, i: u16, behaviour: Behaviour) -> Backend {
        let b = Backend {
            addr: addr(i),
            behaviour,
            hits: Arc::new(AtomicU64::new(0)),
        };
        self.backends.lock().unwrap().insert(b.addr, b.clone());
        b
    }

    /// One backend, endpoint 0, behaving as `behaviour`.
    pub fn one(behaviour: Behaviour) -> Self {
        let farm = Farm::default();
        farm.add(0, behaviour);
        farm
    }

    pub fn uniform(n: u16, delay: Duration) -> Self {
        let farm = Farm::default();
        for i in 0..n {
            farm.add(
                i,
                Behaviour {
                    delay,
                    ..Default::default()
                },
            );
        }
        farm
    }

    pub fn hits(&self, i: u16) -> u64 {
        self.backends.lock().unwrap()[&addr(i)]
            .hits
            .load(Ordering::Relaxed)
    }

    pub fn make(&self) -> MakeFn<impl FnMut(&Endpoint) -> Backend + Clone> {
        let farm = self.clone();
        make_fn(move |ep: &Endpoint| {
            farm.made.fetch_add(1, Ordering::Relaxed);
            farm.backends.lock().unwrap()[&ep.addr()].clone()
        })
    }
}

/// Polls `check` every 10 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
