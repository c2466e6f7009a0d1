//! Composite targets over real sockets: `weighted(...)` shifting traffic
//! between two groups of hyper servers whatever their sizes, and
//! `first(...)` failing over from a group whose servers are all killed.
//! Every load loop is bounded in count and time.

#[path = "support/http.rs"]
mod support;

use std::time::Duration;

use fulcrum::classify::ClassifyHttp;
use fulcrum::retry::{Retry, RetryIdempotent, RetryLayer};
use fulcrum::Balancer;
use support::{hits_of, http_maker, send_ok, Backend, Behaviour};
use tower::Layer;

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, ClassifyHttp>;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));

async fn group(n: usize) -> Vec<Backend> {
    let mut g = Vec::new();
    for _ in 0..n {
        g.push(Backend::start(OK).await);
    }
    g
}

fn list(backends: &[Backend]) -> String {
    let addrs: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    format!("({})", addrs.join(","))
}

async fn build(target: &str, policy: &str) -> Lb {
    let lb = Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .discover_target(target)
        .unwrap()
        .classify(ClassifyHttp)
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    lb
}

/// Four servers at 10 % and one at 90 %: the shares hold whatever the
/// group sizes, for a weighted policy and a load-aware one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_parts_take_their_share_of_requests() {
    let (many, one) = (group(4).await, group(1).await);
    let target = format!("weighted(10={}, 90={})", list(&many), list(&one));
    for (policy, tolerance) in [("ewma", 0.05), ("round-robin", 0.05), ("random", 0.05)] {
        let mut lb = build(&target, policy).await;
        let before = (hits_of(&many), hits_of(&one));
        send_ok(&mut lb, 1000).await;
        let (a, b) = (hits_of(&many) - before.0, hits_of(&one) - before.1);
        let share = a as f64 / (a + b) as f64;
        eprintln!(
            "{policy}: {:.1} % to the four, {:.1} % to the one",
            share * 100.0,
            100.0 - share * 100.0
        );
        assert!((share - 0.10).abs() <= tolerance, "{policy}: {share}");
    }
}

/// The first part's servers all die mid-load: with retries on, every
/// request succeeds, and they all go to the second part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_fails_over_to_the_next_part_when_the_first_dies() {
    let (primary, secondary) = (group(3).await, group(2).await);
    let target = format!("first({}, {})", list(&primary), list(&secondary));
    let lb = build(&target, "round-robin").await;
    let mut client: Retry<Lb, RetryIdempotent> = RetryLayer::new(RetryIdempotent).layer(lb.clone());
    send_ok(&mut client, 100).await;
    assert_eq!((hits_of(&primary), hits_of(&secondary)), (100, 0));
    for b in &primary {
        b.kill();
    }
    // `send` asserts that every request succeeds.
    send_ok(&mut client, 300).await;
    let before = hits_of(&secondary);
    send_ok(&mut client, 100).await;
    assert_eq!(hits_of(&secondary), before + 100, "all on the second part");
    assert_eq!(
        lb.stats().tiers[0].priority,
        1 << 16,
        "{:?}",
        lb.stats().tiers
    );
}
