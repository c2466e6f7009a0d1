//! Nearest-region routing over real sockets: three regions of hyper
//! servers on loopback answering after 1, 20 and 80 ms (placed by
//! `;region=` in the target), the nearest one killed and brought back on
//! the same ports. Every load loop is bounded in count and time.

#[path = "support/http.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fulcrum::classify::ClassifyHttp;
use fulcrum::region::NearestRegion;
use fulcrum::retry::{Retry, RetryIdempotent, RetryLayer};
use fulcrum::Balancer;
use support::{body_text, get, http_maker, prompt_health_checks, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, ClassifyHttp>;
type Client = Retry<Lb, RetryIdempotent>;

const DELAYS_MS: [u64; 3] = [1, 20, 80];
const PER_REGION: usize = 2;
const HOLD: Duration = Duration::from_millis(500);

fn behaviour(region: usize) -> Behaviour {
    Behaviour::Delay(Duration::from_millis(DELAYS_MS[region]))
}

async fn region(r: usize) -> Vec<Backend> {
    let mut backends = Vec::new();
    for _ in 0..PER_REGION {
        backends.push(Backend::start(behaviour(r)).await);
    }
    backends
}

fn target(regions: &[Vec<Backend>]) -> String {
    regions
        .iter()
        .enumerate()
        .flat_map(|(r, backends)| {
            backends
                .iter()
                .map(move |b| format!("{};region=r{r}", b.addr))
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn hits(regions: &[Vec<Backend>]) -> Vec<u64> {
    regions
        .iter()
        .map(|r| r.iter().map(Backend::hits).sum())
        .collect()
}

/// Sends `n` requests one after another (each must succeed): the sorted
/// latencies.
async fn send(client: &mut Client, n: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = client.ready().await.unwrap().call(get("/")).await.unwrap();
        assert!(response.status().is_success());
        body_text(response).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

/// Sends `n` requests from 10 callers at once (each must succeed): the
/// sorted latencies.
async fn send_concurrently(client: &Client, n: usize) -> Vec<Duration> {
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { send(&mut client, n / 10).await })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    for caller in callers {
        latencies.extend(caller.await.unwrap());
    }
    latencies.sort();
    latencies
}

/// Sends requests until `done` says so (at most 15 s).
async fn send_until(
    client: &mut Client,
    lb: &Lb,
    what: &str,
    done: impl Fn(&fulcrum::Stats) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(&lb.stats()) {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?}",
            lb.stats().regions
        );
        send(client, 5).await;
    }
}

fn share_of(now: &[u64], before: &[u64], r: usize) -> f64 {
    let total: u64 = now.iter().zip(before).map(|(n, b)| n - b).sum();
    (now[r] - before[r]) as f64 / total as f64
}

fn preferred(stats: &fulcrum::Stats) -> Option<String> {
    stats.regions.as_ref().and_then(|r| r.preferred.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_to_the_nearest_region_fail_over_to_the_next_and_come_back() {
    nearest_region_with("ewma").await;
}

/// A policy that does not rank by latency: the regions are measured all
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_region_works_with_round_robin() {
    nearest_region_with("round-robin").await;
}

async fn nearest_region_with(policy: &str) {
    let mut regions = vec![region(0).await, region(1).await, region(2).await];
    let lb: Lb = Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .discover_target(&target(&regions))
        .unwrap()
        .classify(ClassifyHttp)
        .nearest_region(
            NearestRegion::default()
                .hold(HOLD)
                .unwrap()
                .interval(Duration::from_millis(100))
                .unwrap(),
        )
        .health_checks(prompt_health_checks(Duration::from_millis(100)))
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let mut client: Client = RetryLayer::new(RetryIdempotent).layer(lb.clone());

    // At first every region serves; once measured, the 1 ms one alone.
    send_until(&mut client, &lb, "r0 preferred", |s| {
        preferred(s).as_deref() == Some("r0")
    })
    .await;
    let before = hits(&regions);
    let latencies = send(&mut client, 500).await;
    let r0 = share_of(&hits(&regions), &before, 0);
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "{policy}: r0 healthy: {:.1} % to r0, p99 {p99:?}",
        r0 * 100.0
    );
    assert!(r0 >= 0.95, "{r0}");
    let stats = lb.stats().regions.unwrap();
    assert_eq!(stats.regions[0].region.as_deref(), Some("r0"));
    assert_eq!(stats.regions[1].region.as_deref(), Some("r1"), "{stats:?}");

    // r0 dies: requests move to r1 (20 ms), not r2 (80 ms).
    let addrs: Vec<SocketAddr> = regions[0].iter().map(|b| b.addr).collect();
    for b in &regions[0] {
        b.kill();
    }
    let killed = Instant::now();
    send_until(&mut client, &lb, "r1 takes over", |s| {
        s.regions.as_ref().is_some_and(|r| {
            r.regions
                .iter()
                .any(|x| x.region.as_deref() == Some("r1") && x.share > 0.95)
        })
    })
    .await;
    eprintln!(
        "{policy}: r0 killed: r1 took over after {:?}",
        killed.elapsed()
    );
    let before = hits(&regions);
    let latencies = send_concurrently(&client, 1000).await;
    let now = hits(&regions);
    let (r1, r2) = (share_of(&now, &before, 1), share_of(&now, &before, 2));
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "{policy}: r0 down: {:.1} % to r1, {:.1} % to r2, p99 {p99:?}",
        r1 * 100.0,
        r2 * 100.0
    );
    assert!(r1 >= 0.95 && r2 <= 0.05, "{r1} {r2}");
    assert!(
        p99 >= Duration::from_millis(20) && p99 < Duration::from_millis(70),
        "p99 is r1's latency: {p99:?}"
    );
    assert_eq!(
        preferred(&lb.stats()).as_deref(),
        Some("r0"),
        "r0 keeps its estimate"
    );

    // r0 comes back on the same ports: requests return within the probe
    // interval and the hold time.
    let mut back = Vec::new();
    for addr in addrs {
        match Backend::start_on(addr, behaviour(0)).await {
            Some(b) => back.push(b),
            None => return, // the port was taken meanwhile: nothing left to show
        }
    }
    regions[0] = back;
    let returned = Instant::now();
    send_until(&mut client, &lb, "r0 serves again", |s| {
        s.regions.as_ref().is_some_and(|r| {
            r.regions
                .iter()
                .any(|x| x.region.as_deref() == Some("r0") && x.share > 0.95)
        })
    })
    .await;
    let took = returned.elapsed();
    eprintln!("{policy}: r0 back: it serves again after {took:?}");
    assert!(took < HOLD + Duration::from_secs(2), "{took:?}");
    let before = hits(&regions);
    send(&mut client, 200).await;
    let back = share_of(&hits(&regions), &before, 0);
    assert!(
        back >= 0.95,
        "{policy}: {back} to r0; {:?}; {:?}",
        lb.stats().regions,
        lb.stats()
            .endpoints
            .iter()
            .map(|e| (e.addr, e.state, e.ejected))
            .collect::<Vec<_>>()
    );
    // The preference never moved: failing over is spill-over by health.
    assert_eq!(lb.stats().regions.unwrap().changes, 0);
}
