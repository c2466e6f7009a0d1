//! Slow start over real sockets: three hyper servers on loopback serve, a
//! fourth joins, and its share of requests is sampled across the window
//! under `ewma`, `round-robin` and `maglev` (keyed requests). Every load
//! loop is bounded in count and time.

#[path = "support/http.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use fulcrum::health::SlowStart;
use fulcrum::key::hash_bytes;
use fulcrum::{Balancer, Endpoint, EndpointSet};
use http_body_util::Empty;
use hyper::Request;
use support::{get, http_maker, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));
const WINDOW: Duration = Duration::from_secs(2);
const BUCKET: Duration = Duration::from_millis(400);

/// Adds a fourth backend to three that serve, waits until it serves, then
/// loads the balancer with 4 sequential callers for the window and a
/// little more; returns the newcomer's share of the requests in each
/// 400 ms bucket.
async fn shares<S>(
    lb: S,
    updater: &fulcrum::Updater,
    old: &[Backend],
    new: &Backend,
    ready: impl Fn() -> usize,
) -> Vec<f64>
where
    S: Service<Request<Empty<Bytes>>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
{
    updater.update(EndpointSet::new(
        old.iter().chain([new]).map(|b| Endpoint::new(b.addr)),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    // It starts serving (and ramping) with the snapshot that lists it.
    while ready() < 4 {
        assert!(
            Instant::now() < deadline,
            "the fourth endpoint never served"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let start = Instant::now();
    let end = start + WINDOW + BUCKET;
    let tasks: Vec<_> = (0..4u64)
        .map(|t| {
            let mut lb = lb.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end && n < 50_000 {
                    n += 1;
                    let path = format!("/key-{t}-{n}");
                    let r = lb.ready().await.unwrap().call(get(&path)).await;
                    assert!(r.is_ok(), "{:?}", r.err());
                }
            })
        })
        .collect();
    let total = |bs: &[Backend]| bs.iter().map(Backend::hits).sum::<u64>();
    let mut last = (new.hits(), total(old) + new.hits());
    let mut shares = Vec::new();
    for k in 1..=(end - start).as_millis() / BUCKET.as_millis() {
        tokio::time::sleep_until(start + BUCKET * k as u32).await;
        let now = (new.hits(), total(old) + new.hits());
        let (mine, all) = (now.0 - last.0, now.1 - last.1);
        shares.push(mine as f64 / all.max(1) as f64);
        last = now;
    }
    for t in tasks {
        t.await.unwrap();
    }
    shares
}

async fn backends() -> (Vec<Backend>, Backend) {
    let mut old = Vec::new();
    for _ in 0..3 {
        old.push(Backend::start(OK).await);
    }
    (old, Backend::start(OK).await)
}

/// The share starts far below a fair quarter and grows across the window.
fn assert_ramps(policy: &str, shares: &[f64]) {
    eprintln!("{policy}: newcomer's share per 400 ms: {shares:.3?}");
    let (first, last) = (shares[0], shares[shares.len() - 1]);
    assert!(
        first < 0.15,
        "{policy}: starts far below its quarter: {shares:.3?}"
    );
    // The last two buckets: under `ewma` one bucket's share swings with
    // the latencies of the moment (0.16–0.32 seen at the end), where a
    // stuck ramp stays near its first share.
    let end = (last + shares[shares.len() - 2]) / 2.0;
    assert!(end > 0.15, "{policy}: ends near its quarter: {shares:.3?}");
    let middle = shares[shares.len() / 2];
    assert!(
        first < middle && middle < last + 0.05,
        "{policy}: grows across the window: {shares:.3?}"
    );
}

/// A balancer builder over the three serving backends, fed by an updater.
fn builder(
    policy: &str,
    old: &[Backend],
) -> (
    fulcrum::Updater,
    fulcrum::Builder<fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp>,
) {
    let (updater, updates) =
        fulcrum::channel(EndpointSet::new(old.iter().map(|b| Endpoint::new(b.addr))));
    let builder = Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .updates(updates)
        .classify(server_errors());
    (updater, builder)
}

/// Warms the balancer up, then measures the newcomer's shares.
async fn run<K, C>(
    lb: Balancer<support::EndpointClient, K, C>,
    updater: &fulcrum::Updater,
    old: &[Backend],
    new: &Backend,
) -> Vec<f64>
where
    Balancer<support::EndpointClient, K, C>:
        Service<Request<Empty<Bytes>>, Error = fulcrum::Error> + Clone + Send + 'static,
    <Balancer<support::EndpointClient, K, C> as Service<Request<Empty<Bytes>>>>::Future: Send,
{
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let counts = lb.clone();
    shares(lb, updater, old, new, move || counts.counts().ready).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_endpoint_ramps_up_under_ewma_and_round_robin() {
    for policy in ["ewma", "round-robin"] {
        let (old, new) = backends().await;
        let (updater, builder) = builder(policy, &old);
        let lb = builder
            .slow_start(SlowStart::new(WINDOW))
            .unwrap()
            .build(http_maker());
        assert_ramps(policy, &run(lb, &updater, &old, &new).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_endpoint_ramps_up_under_maglev_taking_its_keys_gradually() {
    let (old, new) = backends().await;
    let (updater, builder) = builder("maglev", &old);
    let lb = builder
        .key(|r: &Request<Empty<Bytes>>| Some(hash_bytes(r.uri().path().as_bytes())))
        .slow_start(SlowStart::new(WINDOW))
        .unwrap()
        .build(http_maker());
    assert_ramps("maglev", &run(lb, &updater, &old, &new).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_slow_start_a_new_endpoint_takes_its_share_at_once() {
    // The control for the tests above: they would fail without slow start.
    let (old, new) = backends().await;
    let (updater, builder) = builder("round-robin", &old);
    let shares = run(builder.build(http_maker()), &updater, &old, &new).await;
    eprintln!("no slow start: {shares:.3?}");
    assert!(shares[0] > 0.2, "{shares:.3?}");
}
