//! Proves the request path (poll_ready + call + the response future) makes
//! no heap allocation, for every built-in picker (the hash pickers with a
//! key on every request), with a trivial inner service. A counting global allocator sees every allocation in this test
//! binary; the loop runs without yielding, so the driver task cannot
//! allocate in between.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fulcrum_balance::{make_fn, pick, Balancer};
use fulcrum_core::Endpoint;
use tower::Service;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The trivial inner service: answers at once.
#[derive(Clone, Copy)]
struct Echo;

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

/// Every request keyed by its own number.
fn key(req: &u64) -> Option<u64> {
    Some(*req)
}

type Lb = Balancer<Echo, fn(&u64) -> Option<u64>>;

fn one_request(lb: &mut Lb, cx: &mut Context<'_>, i: u64) {
    match lb.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        other => panic!("not ready: {other:?}"),
    }
    let fut = pin!(lb.call(i));
    match fut.poll(cx) {
        Poll::Ready(Ok(v)) => assert_eq!(v, i),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_request_path_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut policies: Vec<(String, std::sync::Arc<dyn pick::Policy>)> = pick::policy_names()
        .map(|name| (name.to_owned(), pick::by_name(name).unwrap()))
        .collect();
    policies.push((
        "sticky(ewma)".to_owned(),
        std::sync::Arc::new(pick::Sticky::new(pick::PeakEwmaP2c)),
    ));
    for (policy, policy_impl) in &policies {
        for n in [1u16, 2, 10, 100] {
            let endpoints: Vec<_> = (0..n)
                .map(|i| {
                    Endpoint::new(([127, 0, 0, 1], 30_000 + i).into())
                        .with_weight(1 + u32::from(i % 3))
                })
                .collect();
            let mut lb: Lb = rt.block_on(async {
                let lb = Balancer::builder()
                    .policy_arc(policy_impl.clone())
                    .seed(1)
                    .endpoints(endpoints)
                    // Every request keyed: the hash pickers take their
                    // keyed path (the others ignore keys).
                    .key(key as fn(&u64) -> Option<u64>)
                    .build(make_fn(|_: &Endpoint| Echo));
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while lb.stats().ready < usize::from(n) {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{policy}: not ready"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                lb
            });
            let _guard = rt.enter();
            // Warm up: first use of thread-locals, lazily built statics.
            for i in 0..1_000 {
                one_request(&mut lb, &mut cx, i);
            }
            ALLOCATIONS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            for i in 0..20_000 {
                one_request(&mut lb, &mut cx, i);
            }
            COUNTING.store(false, Ordering::SeqCst);
            let allocations = ALLOCATIONS.load(Ordering::SeqCst);
            assert_eq!(
                allocations, 0,
                "{policy} with {n} endpoints allocated {allocations} times in 20000 requests"
            );
        }
    }
}
