//! Zone-aware routing over real sockets: three zones of hyper servers on
//! loopback, placed by the static target syntax (`;zone=`), a client in
//! zone `a`. Health is switched with `/health` under active checks; a
//! zone is killed outright under a retry layer. Every load loop is
//! bounded in count and time.

#[path = "support/http.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fulcrum::classify::ClassifyHttp;
use fulcrum::retry::{Retry, RetryIdempotent, RetryLayer};
use fulcrum::zone::ZoneAware;
use fulcrum::Balancer;
use support::{http_maker, prompt_health_checks, send_ok, Backend, Behaviour};
use tokio::time::Instant;
use tower::Layer;

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, ClassifyHttp>;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));
const PER_ZONE: usize = 4;

/// Four backends in each of zones `a`, `b` and `c`.
struct Zones {
    a: Vec<Backend>,
    b: Vec<Backend>,
    c: Vec<Backend>,
}

impl Zones {
    async fn start() -> Zones {
        let start = || async {
            let mut zone = Vec::new();
            for _ in 0..PER_ZONE {
                zone.push(Backend::start(OK).await);
            }
            zone
        };
        Zones {
            a: start().await,
            b: start().await,
            c: start().await,
        }
    }

    fn target(&self) -> String {
        let entries = |zone: &str, backends: &[Backend]| -> Vec<String> {
            backends
                .iter()
                .map(|b| format!("{};zone={zone}", b.addr))
                .collect()
        };
        [
            entries("a", &self.a),
            entries("b", &self.b),
            entries("c", &self.c),
        ]
        .concat()
        .join(",")
    }

    fn hits(&self) -> [u64; 3] {
        let sum = |z: &[Backend]| z.iter().map(Backend::hits).sum();
        [sum(&self.a), sum(&self.b), sum(&self.c)]
    }
}

async fn build(zones: &Zones, policy: &str) -> Lb {
    let lb = Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .seed(7)
        .discover_target(&zones.target())
        .unwrap()
        .classify(ClassifyHttp)
        .zone_aware(ZoneAware::new("a"))
        .health_checks(prompt_health_checks(Duration::from_millis(100)))
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    lb
}

/// Each zone's share of the hits since `before`.
fn shares(now: [u64; 3], before: [u64; 3]) -> [f64; 3] {
    let d: Vec<f64> = (0..3).map(|z| (now[z] - before[z]) as f64).collect();
    let total: f64 = d.iter().sum();
    [d[0] / total, d[1] / total, d[2] / total]
}

/// Waits (at most 10 s) until the stats say zone `a` keeps `local`.
async fn keeping(lb: &Lb, local: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let zones = lb.stats().zones.expect("zone stats");
        if (zones.local_share - local).abs() < 1e-3 {
            return;
        }
        assert!(Instant::now() < deadline, "never kept {local}: {zones:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A healthy zone keeps every request, whatever the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_stay_in_the_clients_zone_while_it_is_healthy() {
    let zones = Zones::start().await;
    for policy in ["ewma", "round-robin", "least-conn", "maglev"] {
        let mut lb = build(&zones, policy).await;
        let before = zones.hits();
        send_ok(&mut lb, 400).await;
        let s = shares(zones.hits(), before);
        assert_eq!(s[0], 1.0, "{policy}: {s:?}");
        let stats = lb.stats().zones.unwrap();
        assert!(
            stats.split && stats.local_share == 1.0 && stats.spill == 0.0,
            "{stats:?}"
        );
        // Every endpoint of zone a takes a part (the policy works inside it).
        if policy != "maglev" {
            assert!(zones.a.iter().all(|b| b.hits() > 0), "{policy}");
        }
    }
}

/// Half of zone a down: it keeps (2/10) / (4/12) = 60 % of the requests
/// and zones b and c take 20 % each, as documented; back to 100 % when it
/// recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_of_the_zone_down_spills_the_documented_share() {
    let zones = Zones::start().await;
    let mut lb = build(&zones, "round-robin").await;
    for b in &zones.a[..2] {
        b.healthy.store(false, Ordering::Relaxed);
    }
    keeping(&lb, 0.6).await;
    let stats = lb.stats().zones.unwrap();
    assert!((stats.spill - 0.4).abs() < 1e-3, "{stats:?}");
    let before = zones.hits();
    send_ok(&mut lb, 2000).await;
    let s = shares(zones.hits(), before);
    eprintln!(
        "half of zone a down: a {:.3}, b {:.3}, c {:.3}",
        s[0], s[1], s[2]
    );
    assert!((s[0] - 0.6).abs() <= 0.05, "{s:?}");
    assert!(
        (s[1] - 0.2).abs() <= 0.05 && (s[2] - 0.2).abs() <= 0.05,
        "{s:?}"
    );

    for b in &zones.a[..2] {
        b.healthy.store(true, Ordering::Relaxed);
    }
    keeping(&lb, 1.0).await;
    let before = zones.hits();
    send_ok(&mut lb, 200).await;
    assert_eq!(shares(zones.hits(), before)[0], 1.0);
}

/// Zone a killed outright while four callers send, under a retry layer:
/// requests move to zones b and c and not one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_zone_gone_no_request_fails() {
    let zones = Zones::start().await;
    let lb = build(&zones, "ewma").await;
    let client: Retry<Lb, RetryIdempotent> = RetryLayer::new(RetryIdempotent).layer(lb.clone());
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let mut client = client.clone();
            // `send` asserts every request succeeds.
            tokio::spawn(async move { send_ok(&mut client, 300).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before_kill = zones.hits();
    for b in &zones.a {
        b.kill();
    }
    for caller in callers {
        caller.await.expect("no request failed");
    }
    assert!(before_kill[0] > 0, "zone a served before it died");
    assert!(zones.hits()[1] + zones.hits()[2] > 0, "b and c took over");
    keeping(&lb, 0.0).await;
    let stats = lb.stats().zones.unwrap();
    assert!(stats.spill == 1.0, "{stats:?}");
}

/// A client zone no endpoint is in is no error: requests spread over
/// every zone, and the stats say none stays local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_zone_with_no_endpoint_spreads_over_every_zone() {
    let zones = Zones::start().await;
    let mut lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .discover_target(&zones.target())
        .unwrap()
        .classify(ClassifyHttp)
        .zone_aware(ZoneAware::new("nowhere"))
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let before = zones.hits();
    send_ok(&mut lb, 600).await;
    let s = shares(zones.hits(), before);
    assert!(s.iter().all(|&z| (z - 1.0 / 3.0).abs() < 0.05), "{s:?}");
    let stats = lb.stats().zones.unwrap();
    assert_eq!(stats.local_share, 0.0, "{stats:?}");
    assert_eq!(stats.shares.len(), 3, "{stats:?}");
}
