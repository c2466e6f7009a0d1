//! fulcrum quickstart: what a balancing policy does to tail latency.
//!
//! Starts five local HTTP servers (hyper, on 127.0.0.1): four answer in
//! 2 ms, one in 40 ms. Then sends the same load — 8000 requests, 32 in
//! flight — through a fulcrum balancer with each of several policies, and
//! prints each policy's latency percentiles, throughput and the share of
//! requests each backend got.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

#[path = "../tests/support/http.rs"]
mod support;

use std::time::{Duration, Instant};

use fulcrum::{Balancer, Endpoint};
use hdrhistogram::Histogram;
use support::{body_text, get, http_maker, server_errors, Backend, Behaviour};
use tower::{Service, ServiceExt};

const REQUESTS: usize = 8_000;
const IN_FLIGHT: usize = 32;
const POLICIES: [&str; 4] = ["ewma", "p2c", "least-conn", "round-robin"];

struct Run {
    policy: &'static str,
    latency_us: Histogram<u64>,
    elapsed: Duration,
    errors: usize,
    shares: Vec<f64>,
}

async fn run(policy: &'static str, backends: &[Backend]) -> Run {
    let before: Vec<u64> = backends.iter().map(Backend::hits).collect();
    let lb = Balancer::builder()
        .target("quickstart")
        .policy_name(policy)
        .expect("a built-in policy")
        .seed(1)
        .endpoints(backends.iter().map(|b| Endpoint::new(b.addr)))
        .classify(server_errors())
        .build(http_maker());
    let started = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let mut lb = lb.clone();
            tokio::spawn(async move {
                let mut latency_us =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("a histogram");
                let mut errors = 0;
                for _ in 0..REQUESTS / IN_FLIGHT {
                    let t = Instant::now();
                    let result = match lb.ready().await {
                        Ok(lb) => lb.call(get("/")).await,
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(response) => {
                            body_text(response).await;
                        }
                        Err(_) => errors += 1,
                    }
                    latency_us.saturating_record(t.elapsed().as_micros() as u64);
                }
                (latency_us, errors)
            })
        })
        .collect();
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("a histogram");
    let mut errors = 0;
    for w in workers {
        let (h, e) = w.await.expect("a load task");
        latency_us.add(h).expect("same histogram bounds");
        errors += e;
    }
    let elapsed = started.elapsed();
    let hits: Vec<u64> = backends
        .iter()
        .zip(before)
        .map(|(b, before)| b.hits() - before)
        .collect();
    let total = hits.iter().sum::<u64>().max(1) as f64;
    Run {
        policy,
        latency_us,
        elapsed,
        errors,
        shares: hits.iter().map(|&h| 100.0 * h as f64 / total).collect(),
    }
}

#[tokio::main]
async fn main() {
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(Backend::start(Behaviour::Delay(Duration::from_millis(2))).await);
    }
    backends.push(Backend::start(Behaviour::Delay(Duration::from_millis(40))).await);

    println!(
        "fulcrum quickstart: 5 local HTTP backends (b1-b4 answer in 2 ms, b5 in 40 ms), \
         {REQUESTS} requests per policy, {IN_FLIGHT} in flight\n"
    );
    println!(
        "{:<13} {:>7} {:>7} {:>9} {:>8} {:>7}   share of requests: b1 b2 b3 b4 | b5 (slow)",
        "policy", "p50 ms", "p99 ms", "p99.9 ms", "req/s", "errors"
    );
    for policy in POLICIES {
        let r = run(policy, &backends).await;
        let ms = |q: f64| r.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let shares: Vec<String> = r.shares.iter().map(|s| format!("{s:5.1}%")).collect();
        println!(
            "{:<13} {:>7.1} {:>7.1} {:>9.1} {:>8.0} {:>7}   {} | {}",
            r.policy,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            REQUESTS as f64 / r.elapsed.as_secs_f64(),
            r.errors,
            shares[..4].join(" "),
            shares[4],
        );
    }
    println!(
        "\newma (the default) learns that b5 is slow and sends it almost nothing; \
         round robin sends it a fifth of all requests, and its p99 is b5's latency."
    );
}
