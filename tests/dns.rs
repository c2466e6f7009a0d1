//! End to end: a balancer over `dns://` with real HTTP backends on
//! 127.0.0.1-3 and an authoritative DNS server in this process.

#[path = "../crates/fulcrum-discovery/tests/support/dns_server.rs"]
mod dns_server;
#[path = "support/http.rs"]
mod http;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dns_server::{ip, DnsServer};
use fulcrum::discovery::{Discovery, DiscoveryConfig};
use fulcrum::Balancer;
use http::{get, http_maker, server_errors};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancer_follows_dns_changes_with_no_failed_request() {
    let (port, backends) = http::three_on_one_port().await;
    let dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.1"), ip("127.0.0.2")], 1)
        .await;
    let discovery = Discovery::new(&format!("dns://{}/api.test.internal:{port}", dns.addr))
        .unwrap()
        .with_config(DiscoveryConfig {
            min_ttl: Duration::from_millis(500),
            ..DiscoveryConfig::default()
        });
    let lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .discovery(discovery)
        .classify(server_errors())
        .build(http_maker());

    // Load from 4 tasks for the whole test; every request must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let mut lb = lb.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut served: HashMap<IpAddr, u64> = HashMap::new();
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let response = lb
                        .ready()
                        .await
                        .unwrap()
                        .call(get("/"))
                        .await
                        .expect("no request fails");
                    let body = http::body_text(response).await;
                    let addr: SocketAddr = body.parse().unwrap();
                    *served.entry(addr.ip()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                served
            })
        })
        .collect();

    let hits = |i: usize| backends[i].hits();
    // 127.0.0.3 is not in DNS yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hits(2), 0);
    // Add it: it takes traffic within TTL (1 s) + 1 s.
    dns.set_ips(
        "api",
        &[ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.3")],
        1,
    )
    .await;
    let added = Instant::now();
    while hits(2) == 0 {
        assert!(
            added.elapsed() < Duration::from_secs(2),
            "the new backend got no traffic in 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Remove 127.0.0.1: it stops getting new requests.
    dns.set_ips("api", &[ip("127.0.0.2"), ip("127.0.0.3")], 1)
        .await;
    let removed = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = hits(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hits(0),
        before,
        "127.0.0.1 still gets requests {:?} after removal",
        removed.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.expect("a load task panicked: a request failed");
    }
    let stats = lb.stats();
    assert!(stats.endpoints.iter().all(|e| e.failures == 0), "{stats:?}");
}

/// Polls `done` every 20 ms; fails the test with `what` after `limit`.
async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An in-memory service per endpoint that answers with its address, or
/// fails readiness when `broken` (like a backend refusing connections).
#[derive(Clone)]
struct ByAddr {
    addr: SocketAddr,
    broken: bool,
}

impl tower::Service<()> for ByAddr {
    type Response = SocketAddr;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<SocketAddr, std::io::Error>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(if self.broken {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "refused",
            ))
        } else {
            Ok(())
        })
    }
    fn call(&mut self, (): ()) -> Self::Future {
        std::future::ready(Ok(self.addr))
    }
}

fn by_addr(
    broken_ip: Option<&'static str>,
) -> fulcrum::MakeFn<impl FnMut(&fulcrum::Endpoint) -> ByAddr + Clone> {
    fulcrum::make_fn(move |ep: &fulcrum::Endpoint| ByAddr {
        addr: ep.addr(),
        broken: broken_ip.is_some_and(|b| ep.addr().ip() == ip(b)),
    })
}

#[tokio::test]
async fn a_dns_outage_keeps_requests_flowing_and_shows_in_stats() {
    let mut dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2")], 1).await;
    let discovery = Discovery::new(&format!("dns://{}/api.test.internal:80", dns.addr))
        .unwrap()
        .with_config(DiscoveryConfig {
            min_ttl: Duration::from_millis(300),
            error_backoff: Duration::from_millis(100),
            query_timeout: Duration::from_millis(300),
            ..DiscoveryConfig::default()
        });
    let mut lb = Balancer::builder()
        .discovery(discovery)
        .build(by_addr(None));
    assert_eq!(
        lb.ready().await.unwrap().call(()).await.unwrap(),
        "127.0.0.2:80".parse().unwrap()
    );
    dns.stop().await;
    wait_until(
        Duration::from_secs(5),
        "the outage never showed in stats",
        || lb.stats().discovery_error.is_some(),
    )
    .await;
    let stats = lb.stats();
    assert!(
        stats
            .discovery_error
            .as_deref()
            .unwrap()
            .contains("api.test.internal"),
        "{stats:?}"
    );
    // The last good set still serves.
    assert_eq!(
        lb.ready().await.unwrap().call(()).await.unwrap(),
        "127.0.0.2:80".parse().unwrap()
    );
    dns.restart().await;
    wait_until(
        Duration::from_secs(10),
        "the error never cleared after recovery",
        || lb.stats().discovery_error.is_none(),
    )
    .await;
}

#[tokio::test]
async fn a_failing_endpoint_triggers_an_early_re_resolve() {
    let dns = DnsServer::start().await;
    // An hour-long TTL: without an early refresh, the move below would go
    // unseen for an hour.
    dns.set_ips("api", &[ip("127.0.0.2")], 3600).await;
    let discovery = Discovery::new(&format!("dns://{}/api.test.internal:80", dns.addr))
        .unwrap()
        .with_config(DiscoveryConfig {
            max_ttl: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_millis(200),
            ..DiscoveryConfig::default()
        });
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_secs(5))
        .discovery(discovery)
        .build(by_addr(Some("127.0.0.2")));
    wait_until(Duration::from_secs(5), "never resolved", || {
        lb.stats().ready > 0
    })
    .await;
    // The instance moved; DNS knows, the balancer does not yet.
    dns.set_ips("api", &[ip("127.0.0.3")], 3600).await;
    let first = lb.ready().await.unwrap().call(()).await;
    assert!(
        matches!(
            first.as_ref().map_err(fulcrum::Error::kind),
            Err(fulcrum::ErrorKind::NotReady { .. })
        ),
        "{first:?}"
    );
    // The failure made discovery look again: within seconds (not the hour of
    // the TTL) requests find the new home. Until then the old address may
    // be retried once its backoff ends, and fail again.
    let moved = Instant::now();
    loop {
        let result: Result<SocketAddr, fulcrum::Error> =
            async { lb.ready().await?.call(()).await }.await;
        if let Ok(served) = result {
            assert_eq!(served, "127.0.0.3:80".parse().unwrap());
            break;
        }
        assert!(
            moved.elapsed() < Duration::from_secs(3),
            "the move was not seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Regression: with an unreachable resolver `ready()` failed after 3 s with
/// a generic "discovery has not produced any endpoint yet" while the
/// discovery error was still unknown (one resolve took 4 s).
#[tokio::test]
async fn an_unreachable_resolver_is_named_when_no_endpoint_comes() {
    // A resolver that receives queries and never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let resolver = silent.local_addr().unwrap();
    let target = format!("dns://{resolver}/api.test.internal:80");
    let mut lb = Balancer::builder()
        .discover_target(&target)
        .unwrap()
        .build(http_maker());
    let started = Instant::now();
    let err = lb.ready().await.unwrap_err();
    let waited = started.elapsed();
    let message = err.to_string();
    eprintln!("after {waited:?}: {message}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(message.contains(&target), "{message}");
    assert!(
        message.contains(&format!("the resolver {resolver} did not answer within 2s")),
        "{message}"
    );
    drop(silent);
}
