//! Proves the request path (poll_ready + call + the response future) makes
//! no heap allocation, for every built-in picker (the hash pickers with a
//! key on every request), with a trivial inner service, and with the
//! request's completion carried by the response. A counting global
//! allocator sees every allocation the test's thread makes; the loop runs
//! without yielding, so the driver task (on the same current-thread
//! runtime) cannot allocate in between.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fulcrum_balance::classify::{Classify, Completion, Outcome};
use fulcrum_balance::{make_fn, pick, Balancer};
use fulcrum_core::BoxError;
use fulcrum_core::Endpoint;
use tower::Service;

struct Counting;

std::thread_local! {
    /// Counting is per thread: the test harness's own threads (printing
    /// results of other tests) do not count.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn counting() -> bool {
    COUNTING.try_with(|c| c.get()).unwrap_or(false)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Allocations this thread makes in 20,000 calls of `request`, after 1,000
/// to warm up (thread-locals, lazily built statics).
fn allocations_in(mut request: impl FnMut(u64)) -> u64 {
    for i in 0..1_000 {
        request(i);
    }
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    for i in 0..20_000 {
        request(i);
    }
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::SeqCst)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The count is process-wide: the tests of this binary take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
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
            let allocations = allocations_in(|i| one_request(&mut lb, &mut cx, i));
            assert_eq!(
                allocations, 0,
                "{policy} with {n} endpoints allocated {allocations} times in 20000 requests"
            );
        }
    }
}

/// Requests routed to subsets (odd numbers to one, even to the other, one
/// route with a fallback in effect) allocate nothing either.
#[test]
fn requests_routed_to_subsets_do_not_allocate() {
    use fulcrum_balance::subset::{Fallback, Routed, Selector, Subset, Subsets};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let mut cx = Context::from_waker(Waker::noop());
    let mut lb = rt.block_on(async {
        let lb = Balancer::builder()
            .endpoints((0..10u16).map(|i| {
                let role = if i < 3 { "primary" } else { "replica" };
                Endpoint::new(([127, 0, 0, 1], 32_000 + i).into()).with_label("role", role)
            }))
            .subsets(
                Subsets::new()
                    .subset(Subset::new("primary", Selector::label("role", "primary")))
                    .subset(Subset::new("replicas", Selector::label("role", "replica")))
                    .subset(
                        Subset::new("none", Selector::label("role", "none"))
                            .fallback(Fallback::subset("replicas")),
                    )
                    .route("primary", |r: &u64| r.is_multiple_of(3))
                    .route("replicas", |r: &u64| r % 3 == 1)
                    .route("none", |_: &u64| true),
            )
            .unwrap()
            .build(make_fn(|_: &Endpoint| Echo));
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        lb
    });
    let _guard = rt.enter();
    type Routed64 = Balancer<Echo, Routed<fulcrum_balance::key::NoKey, u64>>;
    let mut one = |i: u64, lb: &mut Routed64| {
        assert!(lb.poll_ready(&mut cx).is_ready());
        let fut = pin!(lb.call(i));
        match fut.poll(&mut cx) {
            Poll::Ready(Ok(v)) => assert_eq!(v, i),
            other => panic!("{other:?}"),
        }
    };
    let allocations = allocations_in(|i| one(i, &mut lb));
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in 20000 requests"
    );
    let stats = lb.stats();
    let per_endpoint: Vec<u64> = stats.endpoints.iter().map(|e| e.requests).collect();
    let to_primaries = (0..1_000u64)
        .chain(0..20_000)
        .filter(|i| i.is_multiple_of(3))
        .count();
    assert_eq!(
        per_endpoint[..3].iter().sum::<u64>(),
        to_primaries as u64,
        "the multiples of 3, and only they, to the primaries: {per_endpoint:?}"
    );
}

/// A classifier that hands each request's completion to the response, as a
/// streamed body holds it until its end.
#[derive(Clone, Copy)]
struct HandOn;

impl Classify<u64> for HandOn {
    type Response = (u64, Completion);
    fn classify(
        &self,
        result: Result<u64, BoxError>,
        completion: Completion,
    ) -> Result<(u64, Completion), BoxError> {
        result.map(|v| (v, completion))
    }
}

/// With completion carried by the response (and finished by its reader),
/// the request path still allocates nothing.
#[test]
fn completion_carried_by_the_response_does_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let mut cx = Context::from_waker(Waker::noop());
    let mut lb = rt.block_on(async {
        let lb = Balancer::builder()
            .endpoints((0..10u16).map(|i| Endpoint::new(([127, 0, 0, 1], 31_000 + i).into())))
            .classify(HandOn)
            .build(make_fn(|_: &Endpoint| Echo));
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        lb
    });
    let _guard = rt.enter();
    let mut one = |i: u64, lb: &mut Balancer<Echo, fulcrum_balance::key::NoKey, HandOn>| {
        assert!(lb.poll_ready(&mut cx).is_ready());
        let fut = pin!(lb.call(i));
        match fut.poll(&mut cx) {
            Poll::Ready(Ok((v, completion))) => {
                assert_eq!(v, i);
                // The reader reaches the end of the stream.
                completion.finish(Outcome::Success);
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(allocations_in(|i| one(i, &mut lb)), 0);
    assert!(lb.stats().endpoints.iter().all(|e| e.in_flight == 0));
}

/// Fails every request on the endpoint with port 1 (the error is an
/// `&'static str`: converting it to the balancer's error boxes it).
#[derive(Clone, Copy)]
struct FailOnPort1(u16);

impl Service<u64> for FailOnPort1 {
    type Response = u64;
    type Error = &'static str;
    type Future = std::future::Ready<Result<u64, &'static str>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: u64) -> Self::Future {
        std::future::ready(if self.0 == 1 { Err("down") } else { Ok(req) })
    }
}

/// The retry layer's allocations per request: none for a request answered
/// by its first attempt (with a per-attempt timeout and hedging on), and
/// for a retried one, the inner error's box, the balancer's error and the
/// retry's set of tried endpoints.
#[test]
fn the_retry_layer_allocates_only_when_it_retries() {
    use fulcrum_balance::retry::{Hedging, RetryBudget, RetryClone, RetryLayer};
    use tower::Layer;

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let mut cx = Context::from_waker(Waker::noop());
    let layer = RetryLayer::new(RetryClone)
        .per_try_timeout(Duration::from_secs(1))
        .unwrap()
        .hedging(Hedging::after(Duration::from_secs(1)).unwrap())
        .budget(RetryBudget::new(1.0, 100_000, Duration::from_secs(10)).unwrap());
    let build = |ports: std::ops::Range<u16>| {
        rt.block_on(async {
            let lb = Balancer::builder()
                .policy_name("round-robin")
                .unwrap()
                .endpoints(ports.map(|p| Endpoint::new(([127, 0, 0, 1], p).into())))
                .build(make_fn(|ep: &Endpoint| FailOnPort1(ep.addr().port())));
            lb.ready_all(Duration::from_secs(5)).await.unwrap();
            layer.clone().layer(lb)
        })
    };
    let _guard = rt.enter();
    let mut one = |client: &mut fulcrum_balance::retry::Retry<_, RetryClone>, i: u64| {
        assert!(client.poll_ready(&mut cx).is_ready());
        let fut = pin!(client.call(i));
        match fut.poll(&mut cx) {
            Poll::Ready(Ok(v)) => assert_eq!(v, i),
            other => panic!("{other:?}"),
        }
    };
    let mut healthy = build(2..12);
    let first_attempts = allocations_in(|i| one(&mut healthy, i));
    // Hedging at a percentile records every answer's latency.
    let percentile = RetryLayer::new(RetryClone)
        .hedging(Hedging::at_percentile(0.05).unwrap())
        .layer(healthy.get_ref().clone());
    let mut percentile = percentile;
    let with_percentile = allocations_in(|i| one(&mut percentile, i));
    // Round robin over ports 1 and 2.
    let mut half_failing = build(1..3);
    let before = half_failing.get_ref().stats().retries;
    let with_retries = allocations_in(|i| one(&mut half_failing, i));
    // Every request, warm-up included, fails on port 1 first: each retry
    // moves the rotation on, so the next request starts on port 1 again.
    assert_eq!(half_failing.get_ref().stats().retries - before, 21_000);
    let retried = 20_000;
    eprintln!(
        "retry layer: {first_attempts} allocations in 20000 first-attempt answers; \
         {with_retries} in 20000 requests of which {retried} were retried ({:.1} per retry)",
        with_retries as f64 / retried as f64
    );
    assert_eq!(first_attempts, 0);
    assert_eq!(with_percentile, 0);
    // Each failed attempt: the inner `&str` error boxed as the balancer's
    // source (a `String` and its box) and the balancer's `Error` (one box,
    // which keeps every `Result` small); each retry: its set of tried
    // endpoints.
    assert_eq!(with_retries, 4 * retried);
}
