//! Faults the core must survive (findings 3, 5, 6 and 7 of the core
//! review): panics in every piece of user code, the driver stopping,
//! endpoints that never become ready, makes that never finish, requests
//! dropped half-way, and balancers that must not share state.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{addr, eventually, set, Behaviour, Farm};
use fulcrum_balance::classify::{classify_fn, CancelledAs, Outcome};
use fulcrum_balance::pick::{self, Loads, Picker, Policy, RoundRobin, Sticky};
use fulcrum_balance::{channel, make_fn, BalanceLayer, Balancer, EndpointState, Error, ErrorKind};
use fulcrum_core::{BoxError, Endpoint, EndpointSet};
use tower::{service_fn, Layer, Service, ServiceExt};

type Lb = Balancer<common::Backend>;

async fn send<S, K, C>(lb: &mut Balancer<S, K, C>) -> Result<SocketAddr, Error>
where
    Balancer<S, K, C>: Service<u32, Response = SocketAddr, Error = Error>,
{
    lb.ready().await?.call(0).await
}

// ---- panics in user code -------------------------------------------------

/// A maker that panics for endpoint 1 (in `call`) and whose future panics
/// for endpoint 2.
#[derive(Clone)]
struct PanickyMaker(Farm);

impl Service<Endpoint> for PanickyMaker {
    type Response = common::Backend;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<common::Backend, Infallible>> + Send>,
    >;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, ep: Endpoint) -> Self::Future {
        assert!(ep.addr() != addr(1), "maker bug for {}", ep.addr());
        let backend = Service::call(&mut self.0.make(), ep.clone())
            .into_inner()
            .unwrap();
        Box::pin(async move {
            assert!(ep.addr() != addr(2), "make future bug");
            Ok(backend)
        })
    }
}

/// Regression: a maker that panicked for one endpoint killed the driver:
/// later updates were never applied and stats froze.
#[tokio::test]
async fn a_panicking_maker_or_make_future_is_a_failed_make() {
    let farm = Farm::uniform(5, Duration::ZERO);
    let (tx, rx) = channel(set(&[0, 1, 2]));
    let mut lb = Balancer::builder()
        .updates(rx)
        .build(PanickyMaker(farm.clone()));
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let stats = lb.stats();
    for bad in [1, 2] {
        assert_eq!(
            stats.endpoint(addr(bad)).unwrap().state,
            EndpointState::Unavailable,
            "{stats:?}"
        );
    }
    for _ in 0..10 {
        assert_eq!(send(&mut lb).await.unwrap(), addr(0));
    }
    // The driver is alive: a later update is applied.
    tx.update(set(&[0, 3, 4]));
    assert!(eventually(Duration::from_secs(5), || lb.stats().ready == 3).await);
    assert!(!lb.stats().driver_stopped);
}

/// A policy whose build panics for sets of three endpoints.
#[derive(Debug)]
struct PanicsOnThree;

impl Policy for PanicsOnThree {
    fn name(&self) -> &str {
        "panics-on-three"
    }
    fn build(&self, loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        assert!(loads.len() != 3, "policy bug");
        RoundRobin.build(loads, previous)
    }
}

#[tokio::test]
async fn a_panicking_policy_falls_back_to_random_picks() {
    let farm = Farm::uniform(4, Duration::ZERO);
    let (tx, rx) = channel(set(&[0, 1, 2]));
    let mut lb = Balancer::builder()
        .policy(PanicsOnThree)
        .updates(rx)
        .build(farm.make());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    for _ in 0..30 {
        send(&mut lb).await.unwrap();
    }
    assert!(
        (0..3).all(|i| farm.hits(i) > 0),
        "random picks reach every endpoint"
    );
    tx.update(set(&[0, 1, 2, 3]));
    assert!(eventually(Duration::from_secs(5), || lb.stats().ready == 4).await);
}

#[tokio::test]
async fn a_panicking_endpoint_source_keeps_the_last_set() {
    let farm = Farm::uniform(2, Duration::ZERO);
    let stream = futures_util::stream::unfold(0, |n| async move {
        match n {
            0 => Some((Ok::<_, BoxError>(set(&[0, 1])), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!("discovery bug")
            }
            _ => None,
        }
    });
    let mut lb = Balancer::builder().discover(stream).build(farm.make());
    assert!(
        eventually(Duration::from_secs(5), || lb
            .stats()
            .discovery_error
            .is_some_and(|e| e.contains("panicked")))
        .await,
        "{:?}",
        lb.stats()
    );
    assert_eq!(lb.stats().ready, 2);
    send(&mut lb).await.unwrap();
}

#[tokio::test]
async fn a_panicking_key_extractor_or_classifier_fails_only_its_request() {
    let farm = Farm::uniform(2, Duration::ZERO);
    let (_tx, rx) = channel(set(&[0, 1]));
    let mut lb = Balancer::builder()
        .policy_name("maglev")
        .unwrap()
        .updates(rx)
        .key(|req: &u32| {
            assert!(*req != 13, "key bug");
            Some(u64::from(*req))
        })
        .classify(classify_fn(|result: &Result<SocketAddr, BoxError>| {
            if result.as_ref().is_ok_and(|a| *a == addr(1)) {
                panic!("classifier bug");
            }
            Outcome::Success
        }))
        .build(farm.make());
    let err = lb.ready().await.unwrap().call(13).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Panicked { what: "key extractor", message } if message.contains("key bug")),
        "{err}"
    );
    let mut panicked = 0;
    for req in (0..40).filter(|&r| r != 13) {
        match lb
            .ready()
            .await
            .unwrap()
            .call(req)
            .await
            .map_err(Error::into_kind)
        {
            Ok(a) => assert_eq!(a, addr(0)),
            Err(ErrorKind::Panicked {
                what: "classifier", ..
            }) => panicked += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(panicked > 0);
    for e in lb.stats().endpoints {
        assert_eq!(e.in_flight, 0, "{e:?}");
    }
}

/// Regression: if the driver died, requests kept going to stale endpoints.
#[test]
fn requests_fail_at_once_when_the_driver_has_stopped() {
    let farm = Farm::uniform(2, Duration::ZERO);
    let (_tx, rx) = channel(set(&[0, 1]));
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut lb: Lb = first.block_on(async {
        let lb = Balancer::builder().updates(rx).build(farm.make());
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        lb
    });
    // The driver's runtime goes away, and the driver with it.
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        let started = tokio::time::Instant::now();
        let err = send(&mut lb).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::DriverStopped), "{err}");
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(err.to_string().contains("build a new balancer"));
        assert!(lb.stats().driver_stopped);
    });
}

// ---- bounded waits ---------------------------------------------------------

/// Regression: with one of four endpoints never ready, round robin left a
/// quarter of the requests waiting for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_never_ready_delays_no_request_past_the_deadline() {
    for policy in pick::policy_names() {
        let farm = Farm::one(Behaviour {
            stuck: common::on(),
            ..Default::default()
        });
        for i in 1..4 {
            farm.add(i, Behaviour::default());
        }
        let deadline = Duration::from_millis(600);
        let (_tx, rx) = channel(set(&[0, 1, 2, 3]));
        let lb = Balancer::builder()
            .policy_name(policy)
            .unwrap()
            .ready_timeout(deadline)
            .updates(rx)
            .key(|req: &u32| Some(u64::from(*req)))
            .build(farm.make());
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let requests: Vec<_> = (0..200u32)
            .map(|i| {
                let mut lb = lb.clone();
                tokio::spawn(async move {
                    let started = tokio::time::Instant::now();
                    let result = lb.ready().await.unwrap().call(i).await;
                    (result, started.elapsed())
                })
            })
            .collect();
        let mut longest = Duration::ZERO;
        for r in requests {
            let (result, took) = tokio::time::timeout(Duration::from_secs(10), r)
                .await
                .unwrap_or_else(|_| panic!("{policy}: a request hung"))
                .unwrap();
            assert_ne!(result.unwrap(), addr(0), "{policy}");
            longest = longest.max(took);
        }
        eprintln!("{policy}: longest wait {longest:?} (deadline {deadline:?})");
        assert!(
            longest <= deadline + Duration::from_millis(150),
            "{policy}: {longest:?}"
        );
        assert_ne!(
            lb.stats().endpoint(addr(0)).unwrap().state,
            EndpointState::Active,
            "{policy}: the stuck endpoint is out of service"
        );
    }
}

/// Regression: in a full outage every request waited the whole deadline,
/// and each one added a waiter.
#[tokio::test]
async fn an_outage_fails_fast_after_one_deadline_and_recovers() {
    let not_ready = common::on();
    let farm = Farm::one(Behaviour {
        not_ready: not_ready.clone(),
        ..Default::default()
    });
    let (_tx, rx) = channel(set(&[0]));
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_millis(200))
        .backoff(fulcrum_balance::Backoff {
            base: Duration::from_millis(1_000),
            max: Duration::from_millis(1_000),
        })
        .updates(rx)
        .build(farm.make());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    // The only endpoint fails readiness: out of service, then a full wait.
    assert!(send(&mut lb).await.is_err());
    let err = send(&mut lb).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NoEndpoints(_)), "{err}");
    assert!(lb.stats().fail_fast);
    // Now requests fail at once, however many.
    let started = tokio::time::Instant::now();
    for _ in 0..100 {
        let mut clone = lb.clone();
        assert!(send(&mut clone).await.is_err());
    }
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    // The endpoint comes back: requests succeed again.
    not_ready.store(false, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(5), || lb.stats().ready == 1).await,
        "{:?}",
        lb.stats()
    );
    assert_eq!(send(&mut lb).await.unwrap(), addr(0));
    assert!(!lb.stats().fail_fast);
}

/// Regression: a request whose view of the set was stale was re-polled in
/// a loop (`wake_by_ref` + `Pending`) while nothing could be picked.
#[tokio::test]
async fn a_waiting_request_is_not_polled_in_a_loop() {
    let farm = Farm::uniform(1, Duration::ZERO);
    let (tx, rx) = channel(EndpointSet::empty());
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_secs(5))
        .updates(rx)
        .build(farm.make());
    let polls = Arc::new(AtomicI64::new(0));
    let call = {
        let polls = polls.clone();
        let mut fut = Box::pin(lb.call(0));
        tokio::spawn(std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::SeqCst);
            std::future::Future::poll(fut.as_mut(), cx)
        }))
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_polls = polls.load(Ordering::SeqCst);
    assert!(idle_polls <= 3, "polled {idle_polls} times while waiting");
    tx.update(set(&[0]));
    assert_eq!(call.await.unwrap().unwrap(), addr(0));
}

// ---- makes -----------------------------------------------------------------

/// Counts live make futures; each never finishes.
#[derive(Clone)]
struct EndlessMaker(Arc<AtomicI64>);

struct Live(Arc<AtomicI64>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Service<Endpoint> for EndlessMaker {
    type Response = common::Backend;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<common::Backend, Infallible>> + Send>,
    >;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: Endpoint) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        let live = Live(self.0.clone());
        Box::pin(async move {
            let _live = live;
            std::future::pending().await
        })
    }
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Regression: makes had no timeout and were never cancelled: with 100
/// endpoints replaced per round, live makes grew from 500 to 10,015 and RSS
/// from 7 to 51 MB.
#[tokio::test]
async fn makes_of_removed_endpoints_are_cancelled_and_memory_stays_bounded() {
    let live = Arc::new(AtomicI64::new(0));
    let (tx, rx) = channel(EndpointSet::empty());
    let lb = Balancer::builder()
        .updates(rx)
        .build(EndlessMaker(live.clone()));
    let round = |r: u16| -> EndpointSet {
        (0..100u16)
            .map(|i| {
                Endpoint::new(SocketAddr::from((
                    [10, 2, (r % 250) as u8, i as u8],
                    80 + r,
                )))
            })
            .collect()
    };
    let mut rss_after_warmup = 0;
    let mut most_live = 0;
    for r in 0..200u16 {
        tx.update(round(r));
        assert!(
            eventually(Duration::from_secs(5), || lb.stats().endpoints.len() == 100
                && live.load(Ordering::SeqCst) <= 100)
            .await,
            "round {r}: {} live makes",
            live.load(Ordering::SeqCst)
        );
        most_live = most_live.max(live.load(Ordering::SeqCst));
        if r == 20 {
            rss_after_warmup = resident_bytes();
        }
    }
    let rss = resident_bytes();
    eprintln!(
        "200 rounds of 100 replaced endpoints: at most {most_live} live makes; RSS {} → {} KiB",
        rss_after_warmup / 1024,
        rss / 1024
    );
    assert!(most_live <= 100);
    assert!(
        rss < rss_after_warmup + 8 * 1024 * 1024,
        "RSS grew from {rss_after_warmup} to {rss}"
    );
}

#[tokio::test]
async fn a_make_that_takes_too_long_fails_and_is_retried() {
    let live = Arc::new(AtomicI64::new(0));
    let (_tx, rx) = channel(set(&[0]));
    let mut lb = Balancer::builder()
        .make_timeout(Duration::from_millis(100))
        .ready_timeout(Duration::from_millis(50))
        .backoff(fulcrum_balance::Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(50),
        })
        .updates(rx)
        .build(EndlessMaker(live.clone()));
    assert!(
        eventually(Duration::from_secs(5), || lb
            .stats()
            .endpoint(addr(0))
            .is_some_and(|e| e.state == EndpointState::Unavailable))
        .await
    );
    // It is made again after the backoff (and times out again).
    assert!(eventually(Duration::from_secs(5), || live.load(Ordering::SeqCst) == 1).await);
    let err = send(&mut lb).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NoEndpoints(_)), "{err}");
}

// ---- cancellation ------------------------------------------------------------

/// Regression: requests cancelled by a timeout above the balancer counted
/// as successes: a black-holed endpoint showed `failures=0`.
#[tokio::test]
async fn a_request_dropped_half_way_is_cancelled() {
    for (cancelled_as, as_failure) in [(CancelledAs::Slow, false), (CancelledAs::Failure, true)] {
        let farm = Farm::one(Behaviour {
            hold: common::on(),
            ..Default::default()
        });
        let (_tx, rx) = channel(set(&[0]));
        let lb = Balancer::builder()
            .cancelled(cancelled_as)
            .updates(rx)
            .build(farm.make());
        for _ in 0..5 {
            let mut lb = lb.clone();
            let timed_out =
                tokio::time::timeout(
                    Duration::from_millis(100),
                    async move { send(&mut lb).await },
                )
                .await;
            assert!(timed_out.is_err());
        }
        let e = lb.stats().endpoint(addr(0)).cloned().unwrap();
        eprintln!("{cancelled_as:?}: {e:?}");
        assert_eq!((e.cancelled, e.in_flight), (5, 0), "{e:?}");
        assert!(e.ewma_ms >= 90.0, "cancelled requests look slow: {e:?}");
        assert_eq!(e.failures, if as_failure { 5 } else { 0 }, "{e:?}");
    }
}

// ---- per-balancer state --------------------------------------------------------

/// Regression: the sticky table lived in the policy value, so balancers
/// built from one builder shared sessions: one session had 3 homes in 10
/// calls across two services.
#[tokio::test]
async fn balancers_built_from_one_builder_share_no_state() {
    let farm = Farm::uniform(8, Duration::ZERO);
    let builder = Balancer::builder()
        .policy(Sticky::new(RoundRobin))
        .key(|session: &u32| Some(u64::from(*session)));
    let mut a = builder
        .clone()
        .endpoints(set(&[0, 1, 2, 3]).iter().cloned())
        .build(farm.make());
    let mut b = builder
        .endpoints(set(&[4, 5, 6, 7]).iter().cloned())
        .build(farm.make());
    a.ready_all(Duration::from_secs(5)).await.unwrap();
    b.ready_all(Duration::from_secs(5)).await.unwrap();
    let home_a = a.ready().await.unwrap().call(42).await.unwrap();
    let home_b = b.ready().await.unwrap().call(42).await.unwrap();
    for _ in 0..10 {
        assert_eq!(a.ready().await.unwrap().call(42).await.unwrap(), home_a);
        assert_eq!(b.ready().await.unwrap().call(42).await.unwrap(), home_b);
    }
    // Each balancer rotates on its own: both start at their first endpoint.
    assert_eq!((home_a, home_b), (addr(0), addr(4)));
}

/// Regression: a layer could not carry a key extractor, so a layer over
/// `maglev` sent every request to the fallback policy.
#[tokio::test]
async fn a_layer_carries_the_key_extractor_and_the_classifier() {
    let layer = BalanceLayer::new(
        Balancer::builder()
            .policy_name("maglev")
            .unwrap()
            .key(|user: &String| Some(fulcrum_balance::key::hash_bytes(user.as_bytes())))
            .classify(classify_fn(|r: &Result<SocketAddr, BoxError>| match r {
                Ok(_) => Outcome::Success,
                Err(_) => Outcome::Failure(fulcrum_balance::FailureKind::Server),
            }))
            .endpoints((0..10).map(|i| Endpoint::new(addr(i)))),
    );
    let mut lb = layer.layer(make_fn(|ep: &Endpoint| {
        let addr = ep.addr();
        service_fn(move |_: String| async move { Ok::<_, BoxError>(addr) })
    }));
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let mut homes = std::collections::HashSet::new();
    for user in ["ann", "bob", "cy", "dee", "eve"] {
        let first = lb
            .ready()
            .await
            .unwrap()
            .call(user.to_owned())
            .await
            .unwrap();
        for _ in 0..5 {
            assert_eq!(
                lb.ready()
                    .await
                    .unwrap()
                    .call(user.to_owned())
                    .await
                    .unwrap(),
                first
            );
        }
        homes.insert(first);
    }
    assert!(homes.len() > 1, "keys spread over endpoints");
}

// ---- deadlines -----------------------------------------------------------------

/// `ready_all` is not a request: a short readiness deadline neither makes
/// it spin nor turns on fail-fast.
#[tokio::test(flavor = "current_thread")]
async fn ready_all_outlasts_a_short_readiness_deadline_without_failing_fast() {
    let slow_make = tower::service_fn(|ep: Endpoint| async move {
        if ep.addr() == addr(1) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok::<_, Infallible>(service_fn(|_: u32| async { Ok::<_, Infallible>(()) }))
    });
    for timeout in [Duration::ZERO, Duration::from_millis(100)] {
        let (_tx, rx) = channel(set(&[0, 1]));
        let lb = Balancer::builder()
            .ready_timeout(timeout)
            .updates(rx)
            .build(slow_make);
        let started = tokio::time::Instant::now();
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{timeout:?}: {took:?}");
        assert!(!lb.stats().fail_fast, "{timeout:?}");
        assert_eq!(lb.stats().ready, 2);
    }
}

/// A request dropped while its endpoint was not ready yet was never sent:
/// it counts against nothing.
#[tokio::test]
async fn a_request_dropped_before_it_is_sent_counts_against_nothing() {
    let farm = Farm::one(Behaviour {
        stuck: common::on(),
        ..Default::default()
    });
    let (_tx, rx) = channel(set(&[0]));
    let lb = Balancer::builder()
        .cancelled(CancelledAs::Failure)
        .updates(rx)
        .build(farm.make());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let mut clone = lb.clone();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        async move { send(&mut clone).await },
    )
    .await;
    assert!(gave_up.is_err());
    let e = lb.stats().endpoint(addr(0)).cloned().unwrap();
    assert_eq!((e.in_flight, e.cancelled, e.failures), (0, 0, 0), "{e:?}");
}

/// The readiness deadline covers all of a request's waiting: for an
/// endpoint to pick, then for that endpoint's service.
#[tokio::test]
async fn a_request_waits_no_longer_than_the_deadline_in_all() {
    let farm = Farm::one(Behaviour {
        stuck: common::on(),
        ..Default::default()
    });
    let deadline = Duration::from_millis(400);
    let (tx, rx) = channel(EndpointSet::empty());
    let mut lb = Balancer::builder()
        .ready_timeout(deadline)
        .updates(rx)
        .build(farm.make());
    let started = tokio::time::Instant::now();
    let call = tokio::spawn(lb.call(0));
    // The stuck endpoint appears near the end of the deadline.
    tokio::time::sleep(deadline * 3 / 4).await;
    tx.update(set(&[0]));
    let result = call.await.unwrap();
    let took = started.elapsed();
    assert!(
        matches!(
            result.as_ref().map_err(Error::kind),
            Err(ErrorKind::NotReady { .. })
        ),
        "{result:?}"
    );
    assert!(took < deadline + Duration::from_millis(150), "{took:?}");
}

/// "No limit" is a year, not a panic.
#[tokio::test]
async fn the_longest_timeouts_do_not_panic() {
    /// Not ready on its first poll (it wakes itself), ready after.
    #[derive(Clone)]
    struct Shy(bool);
    impl Service<u32> for Shy {
        type Response = ();
        type Error = Infallible;
        type Future = std::future::Ready<Result<(), Infallible>>;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Ready(Ok(()))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
        fn call(&mut self, _: u32) -> Self::Future {
            std::future::ready(Ok(()))
        }
    }
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::MAX)
        .make_timeout(Duration::MAX)
        .endpoints([Endpoint::new(addr(0))])
        .build(make_fn(|_: &Endpoint| Shy(false)));
    lb.ready_all(Duration::MAX).await.unwrap();
    lb.ready().await.unwrap().call(1).await.unwrap();
}
