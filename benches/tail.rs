//! Tail latency with one slow backend: 10 HTTP backends on loopback, 9
//! answering in 5 ms and one 20× slower (100 ms). The same load goes
//! through fulcrum's `ewma` (alone and with hedging), fulcrum's round
//! robin, tower 0.5's P2C + PeakEwma, and tower's P2C on a constant load
//! (what tonic's balanced channel does), side by side in one run, each
//! over the same per-endpoint hyper-util client; and through `ewma` over
//! the 9 fast backends alone, the reference.
//!
//! Run: `cargo bench --bench tail` (about a minute; `-- --requests N
//! --concurrency C` to change the load, 20000 and 32 by default).
//!
//! It prints each run's share of requests to the slow backend, throughput
//! and p50 / p99 / p99.9, then the ratios the project's targets are about:
//! the slow share against tower's, throughput against the healthy-only
//! run, and the hedged p99.9 against the healthy-only p99.9.

#[path = "../tests/support/http.rs"]
mod backends;
mod load;

use std::time::Duration;

use backends::{get, http_maker, server_errors, Backend, Behaviour, EndpointClient};
use fulcrum::retry::{Hedging, RetryIdempotent, RetryLayer};
use fulcrum::{Balancer, Endpoint};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, Constant, PeakEwmaDiscover};
use tower::Layer;

const FAST: Duration = Duration::from_millis(5);
const SLOW: Duration = Duration::from_millis(100);

fn main() {
    load::main(20_000, 32, run);
}

fn fulcrum_lb(
    backends: &[Backend],
    policy: &str,
) -> Balancer<EndpointClient, fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp> {
    Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .endpoints(backends.iter().map(|b| Endpoint::new(b.addr)))
        .classify(server_errors())
        .build(http_maker())
}

/// Per-endpoint hyper-util clients, as a list tower can balance.
fn clients(backends: &[Backend]) -> Vec<EndpointClient> {
    let mut made = Vec::new();
    let mut maker = http_maker();
    for b in backends {
        let svc = tower::Service::call(&mut maker, Endpoint::new(b.addr));
        made.push(futures_util::FutureExt::now_or_never(svc).unwrap().unwrap());
    }
    made
}

async fn run(n: u64, c: usize) {
    let mut backends = Vec::new();
    for _ in 0..9 {
        backends.push(Backend::start(Behaviour::Delay(FAST)).await);
    }
    backends.push(Backend::start(Behaviour::Delay(SLOW)).await);
    let slow = backends.len() - 1;
    println!(
        "tail: 10 HTTP/1.1 backends on loopback (9 at {FAST:?}, 1 at {SLOW:?}), {n} requests, {c} in flight"
    );
    load::header("slow %");
    let mut results = Vec::new();
    let mut measure = |run: load::Run, hits_before: u64, backends: &[Backend]| {
        let slow_hits = backends.get(slow).map_or(0, |b| b.hits() - hits_before);
        let share = 100.0 * slow_hits as f64 / (run.ok + run.errors).max(1) as f64;
        let extra = if backends.len() > slow {
            format!("{share:.3}")
        } else {
            "-".into()
        };
        load::row(&run, &extra);
        results.push((run, share));
    };

    // Reference: the 9 fast backends only.
    let healthy = fulcrum_lb(&backends[..slow], "ewma");
    healthy.ready_all(Duration::from_secs(5)).await.unwrap();
    let run = load::drive("healthy only (9 fast), ewma", healthy, n, c, |_| get("/")).await;
    measure(run, 0, &backends[..slow]);

    for policy in ["ewma", "round-robin"] {
        let lb = fulcrum_lb(&backends, policy);
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let before = backends[slow].hits();
        let run = load::drive(&format!("fulcrum {policy}"), lb, n, c, |_| get("/")).await;
        measure(run, before, &backends);
    }

    // ewma with hedging: a request without an answer after 15 ms is sent
    // again to another endpoint; the first answer wins.
    let lb = fulcrum_lb(&backends, "ewma");
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let hedged = RetryLayer::new(RetryIdempotent)
        .hedging(Hedging::after(Duration::from_millis(15)).unwrap())
        .layer(lb);
    let before = backends[slow].hits();
    let run = load::drive("fulcrum ewma + hedge 15ms", hedged, n, c, |_| get("/")).await;
    measure(run, before, &backends);

    // tower 0.5: P2C on PeakEwma with its usual settings (30 ms seed,
    // 10 s decay: a longer memory than fulcrum's 1 s, which keeps a slow
    // endpoint's estimate high for longer and favours tower here), behind
    // a Buffer so that tasks can share it.
    let discover = PeakEwmaDiscover::new(
        ServiceList::new(clients(&backends)),
        Duration::from_millis(30),
        Duration::from_secs(10),
        CompleteOnResponse::default(),
    );
    let tower_ewma = Buffer::new(Balance::new(discover), 1024);
    let before = backends[slow].hits();
    let run = load::drive("tower p2c + PeakEwma", tower_ewma, n, c, |_| get("/")).await;
    measure(run, before, &backends);

    // tower's P2C on a constant load: every endpoint looks the same, as in
    // tonic's balanced channel.
    let constant: Vec<_> = clients(&backends)
        .into_iter()
        .map(|s| Constant::new(s, 1u32))
        .collect();
    let tonic_like = Buffer::new(Balance::new(ServiceList::new(constant)), 1024);
    let before = backends[slow].hits();
    let run = load::drive("tower p2c, constant load (tonic)", tonic_like, n, c, |_| {
        get("/")
    })
    .await;
    measure(run, before, &backends);

    let [healthy, ewma, _rr, hedged, tower, _tonic] = &results[..] else {
        unreachable!("six runs")
    };
    println!();
    println!(
        "ratio slow_share ewma={:.3}% tower={:.3}% ewma/tower={:.2} (target: <= 0.1% and <= tower)",
        ewma.1,
        tower.1,
        ewma.1 / tower.1.max(1e-9)
    );
    println!(
        "ratio throughput ewma/healthy={:.3} (target >= 0.95)",
        ewma.0.rps() / healthy.0.rps()
    );
    println!(
        "ratio p999 hedged/healthy={:.2} ({:.2} ms / {:.2} ms; target <= 2)",
        hedged.0.ms(0.999) / healthy.0.ms(0.999),
        hedged.0.ms(0.999),
        healthy.0.ms(0.999)
    );
}
