//! Retries and hedging over real sockets: hyper servers on loopback that
//! die, fail, hang or lag, a fulcrum balancer over per-endpoint hyper-util
//! clients, and the retry layer above it. Every load loop is bounded in
//! count and time.

#[path = "support/http.rs"]
mod support;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use fulcrum::classify::{ClassifyHttp, TrackedBody};
use fulcrum::retry::{
    retry_fn, Hedging, Retry, RetryBudget, RetryClone, RetryIdempotent, RetryLayer,
};
use fulcrum::{make_fn, Balancer, Endpoint};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response};
use support::{body_text, get, http_maker, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, ClassifyHttp>;
type Client = Retry<Lb, RetryIdempotent>;
type Answer = Response<TrackedBody<Incoming>>;

async fn start(behaviours: &[Behaviour]) -> Vec<Backend> {
    let mut backends = Vec::new();
    for &b in behaviours {
        backends.push(Backend::start(b).await);
    }
    backends
}

fn builder(
    backends: &[Backend],
    policy: &str,
) -> fulcrum::Builder<fulcrum::key::NoKey, ClassifyHttp> {
    Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .seed(11)
        .endpoints(backends.iter().map(|b| Endpoint::new(b.addr)))
        .classify(server_errors())
}

fn hits(backends: &[Backend]) -> u64 {
    backends.iter().map(Backend::hits).sum()
}

/// What a load run saw.
#[derive(Debug, Default)]
struct Run {
    sent: u64,
    failed: u64,
    /// Latency of every successful request, sorted.
    latencies: Vec<Duration>,
}

impl Run {
    fn percentile(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }
}

/// `tasks` callers send `per_task` requests each (`request()` builds
/// them), stopping after `limit`; a request fails on an error, a non-2xx
/// answer or 5 s without one.
async fn load<S>(
    client: &S,
    tasks: usize,
    per_task: usize,
    limit: Duration,
    request: fn() -> Request<Empty<Bytes>>,
) -> Run
where
    S: Service<Request<Empty<Bytes>>, Response = Answer, Error = fulcrum::Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let deadline = Instant::now() + limit;
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut run = Run::default();
                for _ in 0..per_task {
                    if Instant::now() > deadline {
                        break;
                    }
                    run.sent += 1;
                    let started = Instant::now();
                    let call = async {
                        let response = client.ready().await?.call(request()).await?;
                        let ok = response.status().is_success();
                        body_text(response).await;
                        Ok::<bool, fulcrum::Error>(ok)
                    };
                    match tokio::time::timeout(Duration::from_secs(5), call).await {
                        Ok(Ok(true)) => run.latencies.push(started.elapsed()),
                        _ => run.failed += 1,
                    }
                }
                run
            })
        })
        .collect();
    let mut total = Run::default();
    for h in handles {
        let run = h.await.unwrap();
        total.sent += run.sent;
        total.failed += run.failed;
        total.latencies.extend(run.latencies);
    }
    total.latencies.sort();
    total
}

fn post() -> Request<Empty<Bytes>> {
    Request::post("/").body(Empty::new()).unwrap()
}

/// One of three backends killed under steady load: with retries the
/// caller sees no failed request, whatever the policy. (Without retries it
/// loses the requests in flight on it: `tests/health.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_under_load_fails_no_request_with_retries() {
    for policy in ["round-robin", "p2c", "ewma"] {
        let ok = Behaviour::Delay(Duration::from_millis(2));
        let backends = start(&[ok, ok, ok]).await;
        let lb = builder(&backends, policy)
            .backoff(fulcrum::Backoff {
                base: Duration::from_secs(60),
                max: Duration::from_secs(60),
            })
            .build(http_maker());
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let client: Client = RetryLayer::new(RetryIdempotent).layer(lb.clone());
        let victim = backends[2].addr;
        let load_task = {
            let client = client.clone();
            tokio::spawn(
                async move { load(&client, 8, 400, Duration::from_secs(20), get_root).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let in_flight = lb.stats().endpoint(victim).unwrap().in_flight;
        backends[2].kill();
        let run = load_task.await.unwrap();
        let stats = lb.stats();
        eprintln!(
            "{policy}: {} of {} failed; {in_flight} in flight on the killed backend; \
             {} retries, budget exhausted {}",
            run.failed, run.sent, stats.retries, stats.retry_budget_exhausted
        );
        assert!(run.sent > 1000);
        assert_eq!(run.failed, 0, "{policy}");
        assert_eq!(stats.retry_budget_exhausted, 0);
    }
}

fn get_root() -> Request<Empty<Bytes>> {
    get("/")
}

/// Every backend failing for 5 s: retries stay within the budget (20 % of
/// requests plus 10 a second over its 10 s window), counted at the
/// backends, and the budget is used, not just never reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stay_within_the_budget_when_every_backend_fails() {
    let down = Behaviour::Unavailable;
    let backends = start(&[down, down, down]).await;
    let lb = builder(&backends, "round-robin").build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let client: Client = RetryLayer::new(RetryIdempotent).layer(lb.clone());
    let run = load(&client, 4, 20_000, Duration::from_secs(5), get_root).await;
    let retries = hits(&backends) - run.sent;
    let stats = lb.stats();
    let allowed = run.sent as f64 * 0.2 + 100.0;
    eprintln!(
        "{} requests, all failing, made {retries} retries (the budget allows {allowed:.0}); \
         {} refused by the budget",
        run.sent, stats.retry_budget_exhausted
    );
    assert!(run.sent > 1000, "{run:?}");
    assert_eq!(run.failed, run.sent);
    assert_eq!(retries, stats.retries);
    assert!(retries as f64 <= allowed, "{retries} > {allowed}");
    assert!(retries as f64 >= 0.9 * run.sent as f64 * 0.2, "{retries}");
    assert!(stats.retry_budget_exhausted > 0);
    // The 503s a retry dropped unread count as failures, not cancellations.
    let failures: u64 = stats.endpoints.iter().map(|e| e.failures).sum();
    let cancelled: u64 = stats.endpoints.iter().map(|e| e.cancelled).sum();
    assert_eq!((failures, cancelled), (hits(&backends), 0));
}

/// Each attempt of a request goes to an endpoint it has not tried, and a
/// request the policy does not mark retryable (a `POST`) is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_goes_to_an_endpoint_not_yet_tried() {
    for policy in ["round-robin", "ewma", "p2c", "random", "least-conn"] {
        let down = Behaviour::Unavailable;
        let backends = start(&[down, down, down, down]).await;
        let lb = builder(&backends, policy).build(http_maker());
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let mut client = RetryLayer::new(RetryIdempotent)
            .max_attempts(4)
            .unwrap()
            .layer(lb.clone());
        let response = client.ready().await.unwrap().call(get("/")).await.unwrap();
        assert_eq!(response.status(), 503);
        let each: Vec<u64> = backends.iter().map(Backend::hits).collect();
        assert_eq!(each, [1, 1, 1, 1], "{policy}");
        let response = client.ready().await.unwrap().call(post()).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(hits(&backends), 5, "{policy}: a POST is sent once");
    }
}

/// A hash policy moves a key the same way in every client: two balancers
/// given the endpoints in opposite orders try them in the same order.
#[tokio::test]
async fn a_keyed_request_tries_endpoints_in_the_same_order_in_every_client() {
    let addrs: Vec<std::net::SocketAddr> = (1..=5)
        .map(|p| ([127, 0, 0, 1], 40_000 + p).into())
        .collect();
    let client = |order: Vec<std::net::SocketAddr>| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let lb = Balancer::builder()
            .policy_name("maglev")
            .unwrap()
            .key(|k: &u64| Some(*k))
            .endpoints(order.into_iter().map(Endpoint::new))
            .build(make_fn(move |ep: &Endpoint| {
                let (tx, addr) = (tx.clone(), ep.addr());
                tower::service_fn(move |_: u64| {
                    let _ = tx.send(addr);
                    async { Err::<(), _>("down") }
                })
            }));
        (lb, rx)
    };
    let mut forward = addrs.clone();
    let (a, mut tried_a) = client(forward.clone());
    forward.reverse();
    let (b, mut tried_b) = client(forward);
    for lb in [&a, &b] {
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
    }
    let layer = RetryLayer::new(RetryClone).max_attempts(4).unwrap();
    for key in [7u64, 99, 12345] {
        for lb in [&a, &b] {
            let mut client = layer.clone().layer(lb.clone());
            let result = client.ready().await.unwrap().call(key).await;
            assert!(matches!(
                result.as_ref().map_err(fulcrum::Error::kind),
                Err(fulcrum::ErrorKind::Service { .. })
            ));
        }
        let order_a: Vec<_> = std::iter::from_fn(|| tried_a.try_recv().ok()).collect();
        let order_b: Vec<_> = std::iter::from_fn(|| tried_b.try_recv().ok()).collect();
        assert_eq!(order_a.len(), 4);
        assert_eq!(order_a, order_b, "key {key}");
        let distinct: std::collections::HashSet<_> = order_a.iter().collect();
        assert_eq!(distinct.len(), 4, "key {key}: {order_a:?}");
    }
}

/// A refused connection never reached the endpoint: the request moves
/// without spending budget, so even an empty budget loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_never_sent_move_without_spending_budget() {
    let ok = Behaviour::Delay(Duration::from_millis(1));
    let backends = start(&[ok, ok]).await;
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let endpoints = [backends[0].addr, dead, backends[1].addr].map(Endpoint::new);
    let lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .endpoints(endpoints)
        .classify(server_errors())
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let empty = RetryBudget::new(0.0, 0, Duration::from_secs(10)).unwrap();
    let client: Client = RetryLayer::new(RetryIdempotent)
        .budget(empty)
        .layer(lb.clone());
    let run = load(&client, 1, 30, Duration::from_secs(20), get_root).await;
    let stats = lb.stats();
    eprintln!("{run:?} {} retries", stats.retries);
    assert_eq!((run.sent, run.failed), (30, 0));
    assert!(stats.retries >= 1);
    assert_eq!(stats.retry_budget_exhausted, 0);
}

/// A backend that accepts requests and never answers: the per-attempt
/// timeout moves them elsewhere; with one attempt allowed the caller gets
/// a typed `TimedOut` naming the endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_backend_is_left_after_the_per_attempt_timeout() {
    let backends = start(&[Behaviour::Hang, Behaviour::Delay(Duration::from_millis(1))]).await;
    let lb = builder(&backends, "round-robin").build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let layer = RetryLayer::new(RetryIdempotent)
        .per_try_timeout(Duration::from_millis(100))
        .unwrap();
    // One attempt allowed: round robin sends one of two to the hanging one.
    let mut once = layer.clone().max_attempts(1).unwrap().layer(lb.clone());
    let mut timed_out = None;
    for _ in 0..2 {
        if let Err(e) = once.ready().await.unwrap().call(get("/")).await {
            timed_out = Some(e);
        }
    }
    match timed_out.map(fulcrum::Error::into_kind) {
        Some(fulcrum::ErrorKind::TimedOut { endpoint, after }) => {
            assert_eq!(endpoint, Some(backends[0].addr));
            assert_eq!(after, Duration::from_millis(100));
        }
        other => panic!("expected a per-attempt timeout, got {other:?}"),
    }
    let client: Client = layer.layer(lb.clone());
    let run = load(&client, 1, 10, Duration::from_secs(20), get_root).await;
    assert_eq!((run.sent, run.failed), (10, 0));
    assert!(
        backends[0].hits() >= 2,
        "the hanging backend was tried again"
    );
    assert!(lb.stats().retries >= 1);
}

/// One of ten backends 20× slower than the others: hedging at the p95
/// brings p99.9 to within 2× of the p99.9 with the healthy nine alone, for
/// at most 5 % extra requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedging_cuts_the_tail_of_one_slow_backend() {
    // Long enough that the VM's scheduling noise (a few ms) does not
    // decide the tail.
    let fast = Behaviour::Delay(Duration::from_millis(20));
    let slow = Behaviour::Delay(Duration::from_millis(400));
    let policy = "p2c";
    let (tasks, per_task) = (10, 300);

    let healthy = start(&[fast; 9]).await;
    let lb = builder(&healthy, policy).build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let plain: Client = RetryLayer::new(RetryIdempotent).layer(lb);
    load(&plain, tasks, 20, Duration::from_secs(20), get_root).await;
    let floor = load(&plain, tasks, per_task, Duration::from_secs(30), get_root).await;

    let mut behaviours = vec![fast; 9];
    behaviours.push(slow);
    let backends = start(&behaviours).await;
    let lb = builder(&backends, policy).build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let unhedged: Client = RetryLayer::new(RetryIdempotent).layer(lb);
    let before = load(
        &unhedged,
        tasks,
        per_task,
        Duration::from_secs(30),
        get_root,
    )
    .await;

    let backends = start(&behaviours).await;
    let lb = builder(&backends, policy).build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let hedged: Client = RetryLayer::new(RetryIdempotent)
        .hedging(Hedging::at_percentile(0.05).unwrap())
        .layer(lb.clone());
    // The p95 needs 100 answers before the first hedge.
    load(&hedged, tasks, 20, Duration::from_secs(20), get_root).await;
    let (hits_before, stats_before) = (hits(&backends), lb.stats());
    let after = load(&hedged, tasks, per_task, Duration::from_secs(30), get_root).await;
    let extra = (hits(&backends) - hits_before) as f64 / after.sent as f64 - 1.0;
    let stats = lb.stats();
    let show = |name: &str, run: &Run| {
        eprintln!(
            "{name:>28}: p50 {:>6.1?} p99 {:>6.1?} p99.9 {:>6.1?} ({} requests, {} failed)",
            run.percentile(0.5),
            run.percentile(0.99),
            run.percentile(0.999),
            run.sent,
            run.failed
        )
    };
    show("9 healthy", &floor);
    show("+1 slow, no hedging", &before);
    show("+1 slow, hedging at p95", &after);
    eprintln!(
        "extra requests {:.1} %, hedges {} (won {})",
        extra * 100.0,
        stats.hedges - stats_before.hedges,
        stats.hedges_won - stats_before.hedges_won
    );
    assert_eq!(after.failed, 0);
    assert!(
        after.percentile(0.999) <= floor.percentile(0.999) * 2,
        "p99.9 {:?} against {:?} healthy",
        after.percentile(0.999),
        floor.percentile(0.999)
    );
    assert!(extra <= 0.05, "{:.1} % extra", extra * 100.0);
}

/// Code the user passes to the retry layer can panic: a policy that panics
/// copying a request fails that request with a typed error; one that
/// panics judging a response is taken as "no retry"; one that panics
/// copying for a retry hands back the last attempt's result. No request is
/// lost or left hanging.
#[tokio::test]
async fn a_panicking_retry_policy_fails_the_request_with_a_typed_error() {
    let lb = Balancer::builder()
        .endpoints([Endpoint::new(([127, 0, 0, 1], 1).into())])
        .build(make_fn(|_: &Endpoint| {
            tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n) })
        }));
    let mut client = RetryLayer::new(retry_fn(|n: &u32| {
        assert!(*n != 13, "thirteen");
        Some(*n)
    }))
    .layer(lb);
    assert_eq!(client.ready().await.unwrap().call(1).await.unwrap(), 1);
    match client
        .ready()
        .await
        .unwrap()
        .call(13)
        .await
        .map_err(fulcrum::Error::into_kind)
    {
        Err(fulcrum::ErrorKind::Panicked { what, message }) => {
            assert_eq!(what, "retry policy");
            assert!(message.contains("thirteen"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.ready().await.unwrap().call(2).await.unwrap(), 2);

    #[derive(Clone)]
    struct PanicsJudging;
    impl fulcrum::retry::RetryPolicy<u32, u32> for PanicsJudging {
        fn clone_request(&self, n: &u32) -> Option<u32> {
            Some(*n)
        }
        fn retry_response(&self, _: &u32) -> bool {
            panic!("judging")
        }
    }
    let lb = Balancer::builder()
        .endpoints([Endpoint::new(([127, 0, 0, 1], 1).into())])
        .build(make_fn(|_: &Endpoint| {
            tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n) })
        }));
    let mut client = RetryLayer::new(PanicsJudging).layer(lb);
    assert_eq!(client.ready().await.unwrap().call(5).await.unwrap(), 5);

    // Copying for the retry panics, over an endpoint that always fails.
    let copies = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = copies.clone();
    let lb = Balancer::builder()
        .endpoints([Endpoint::new(([127, 0, 0, 1], 1).into())])
        .build(make_fn(|_: &Endpoint| {
            tower::service_fn(|_: u32| async { Err::<u32, _>("down") })
        }));
    let mut client = RetryLayer::new(retry_fn(move |n: &u32| {
        let copy = counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(copy == 0, "second copy");
        Some(*n)
    }))
    .layer(lb);
    let call = client.ready().await.unwrap().call(1);
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(Err(e)) if matches!(e.kind(), fulcrum::ErrorKind::Service { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(copies.load(std::sync::atomic::Ordering::Relaxed), 2);
}
