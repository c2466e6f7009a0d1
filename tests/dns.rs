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
use http::{get, http_maker, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// Three HTTP backends on 127.0.0.1, .2 and .3, all on one port (A records
/// carry addresses, not ports).
async fn three_backends() -> (u16, Vec<Backend>) {
    'port: for _ in 0..50 {
        let first = Backend::start(Behaviour::Delay(Duration::from_millis(1))).await;
        let port = first.addr.port();
        let mut backends = vec![first];
        for host in [2, 3] {
            match Backend::start_on(
                SocketAddr::from(([127, 0, 0, host], port)),
                Behaviour::Delay(Duration::from_millis(1)),
            )
            .await
            {
                Some(b) => backends.push(b),
                None => continue 'port,
            }
        }
        return (port, backends);
    }
    panic!("no port free on 127.0.0.1-3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancer_follows_dns_changes_with_no_failed_request() {
    let (port, backends) = three_backends().await;
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
        .build(http_maker())
        .with_classifier(server_errors);

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
