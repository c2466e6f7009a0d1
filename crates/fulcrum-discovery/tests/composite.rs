//! Composite targets and locality against an authoritative server speaking
//! the real wire protocol (hickory-server in this process, on 127.0.0.1):
//! each part resolved and refreshed on its own, the parts combined.

#[path = "support/dns_server.rs"]
mod support;

use std::time::Duration;

use fulcrum_core::EndpointSet;
use fulcrum_discovery::{Discovery, DiscoveryConfig, DiscoveryError, EndpointStream, LocalityMap};
use futures_util::StreamExt;
use support::{ip, DnsServer, Srv};
use tokio::time::timeout;

fn fast() -> DiscoveryConfig {
    DiscoveryConfig {
        min_ttl: Duration::from_millis(100),
        max_ttl: Duration::from_secs(60),
        error_backoff: Duration::from_millis(100),
        query_timeout: Duration::from_millis(500),
        ..DiscoveryConfig::default()
    }
}

/// `(address, priority, region)` of each endpoint, in the set's order.
fn placed(set: &EndpointSet) -> Vec<(String, u32, Option<String>)> {
    set.iter()
        .map(|e| {
            (
                e.addr().to_string(),
                e.priority(),
                e.region().map(str::to_owned),
            )
        })
        .collect()
}

async fn next(sets: &mut EndpointStream) -> Result<EndpointSet, DiscoveryError> {
    timeout(Duration::from_secs(10), sets.next())
        .await
        .expect("a set within 10 s")
        .expect("the stream goes on")
}

fn entry(addr: &str, priority: u32, region: &str) -> (String, u32, Option<String>) {
    (addr.to_owned(), priority, Some(region.to_owned()))
}

#[tokio::test]
async fn first_fails_over_when_a_parts_answer_empties_and_comes_back() {
    let dns = DnsServer::start().await;
    dns.set_ips("eu", &[ip("127.0.1.1"), ip("127.0.1.2")], 1)
        .await;
    dns.set_ips("us", &[ip("127.0.2.1")], 1).await;
    let target = format!(
        "first(dns://{0}/eu.test.internal:80;region=eu, dns://{0}/us.test.internal:80;region=us)",
        dns.addr
    );
    let (mut sets, _refresh) = Discovery::new(&target)
        .unwrap()
        .with_config(fast())
        .stream();
    let both = vec![
        entry("127.0.1.1:80", 0, "eu"),
        entry("127.0.1.2:80", 0, "eu"),
        entry("127.0.2.1:80", 1 << 16, "us"),
    ];
    assert_eq!(placed(&next(&mut sets).await.unwrap()), both);

    // The EU name's records are withdrawn: its part empties, and the US
    // part is what is left (a tier the balancer fails over to).
    dns.set_ips("eu", &[], 1).await;
    assert_eq!(
        placed(&next(&mut sets).await.unwrap()),
        vec![entry("127.0.2.1:80", 1 << 16, "us")]
    );
    dns.set_ips("eu", &[ip("127.0.1.1"), ip("127.0.1.2")], 1)
        .await;
    assert_eq!(placed(&next(&mut sets).await.unwrap()), both);
}

#[tokio::test]
async fn a_failing_part_is_reported_while_the_others_serve() {
    let dns = DnsServer::start().await;
    dns.set_ips("us", &[ip("127.0.2.1")], 30).await;
    let mut silent = DnsServer::start().await;
    silent.stop().await;
    let target = format!(
        "first(dns://{}/eu.test.internal:80, dns://{}/us.test.internal:80)",
        silent.addr, dns.addr
    );
    let (mut sets, _refresh) = Discovery::new(&target)
        .unwrap()
        .with_config(fast())
        .stream();
    let first = timeout(Duration::from_secs(10), sets.next()).await.unwrap();
    match first {
        Some(Err(DiscoveryError::Part { target, error })) => {
            assert!(target.contains("eu.test.internal"), "{target}");
            assert!(matches!(*error, DiscoveryError::Resolve { .. }), "{error}");
        }
        other => panic!("the failing part first: {other:?}"),
    }
    let set = timeout(Duration::from_secs(10), sets.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(set.len(), 1, "the part that answers serves");

    // Resolving once: the parts that answered, combined.
    let once = Discovery::new(&target).unwrap().with_config(fast());
    assert_eq!(once.resolve().await.unwrap().len(), 1);
    let dead = format!("first(dns://{}/eu.test.internal:80)", silent.addr);
    let e = Discovery::new(&dead)
        .unwrap()
        .with_config(fast())
        .resolve()
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("part `dns://"), "{e}");
}

#[tokio::test]
async fn weighted_parts_weigh_their_share_whatever_their_size() {
    let dns = DnsServer::start().await;
    let three = [ip("127.0.1.1"), ip("127.0.1.2"), ip("127.0.1.3")];
    dns.set_ips("big", &three, 30).await;
    dns.set_ips("small", &[ip("127.0.2.1")], 30).await;
    let target = format!(
        "weighted(25=dns://{0}/big.test.internal:80, 75=dns://{0}/small.test.internal:80)",
        dns.addr
    );
    let set = Discovery::new(&target)
        .unwrap()
        .with_config(fast())
        .resolve()
        .await
        .unwrap();
    // Each endpoint is marked with its part and the part's share (the
    // balancer splits requests by them); weights stay the endpoints' own.
    for e in set.iter() {
        let expected = if e.addr().to_string().starts_with("127.0.1.") {
            (0, 25)
        } else {
            (1, 75)
        };
        assert_eq!(e.traffic_share(), Some(expected), "{e}");
        assert_eq!(e.weight(), 1);
    }
    assert_eq!(set.len(), 4);
}

#[tokio::test]
async fn srv_targets_are_placed_by_their_names_and_addresses_by_ranges() {
    let dns = DnsServer::start().await;
    dns.set_ips("web-1.za", &[ip("127.0.3.1")], 30).await;
    dns.set_ips("web-2.zb", &[ip("127.0.4.1")], 30).await;
    dns.set_srv(
        "_http._tcp",
        &[Srv(0, 1, 80, "web-1.za"), Srv(0, 1, 80, "web-2.zb")],
        30,
    )
    .await;
    let locality = LocalityMap::parse(
        "*.za.test.internal;zone=a, 127.0.4.0/24;zone=b, 127.0.0.0/8;region=here",
    )
    .unwrap();
    let set = Discovery::new(&format!("dns+srv://{}/_http._tcp.test.internal", dns.addr))
        .unwrap()
        .with_config(DiscoveryConfig { locality, ..fast() })
        .resolve()
        .await
        .unwrap();
    let zones: Vec<(Option<&str>, Option<&str>)> =
        set.iter().map(|e| (e.zone(), e.region())).collect();
    // The first matching rule places each: the name rule gives no region.
    assert_eq!(zones, [(Some("a"), None), (Some("b"), None)]);
}

#[tokio::test]
async fn a_composite_whose_parts_all_fail_reports_errors_not_an_empty_set() {
    let mut silent = DnsServer::start().await;
    silent.stop().await;
    let target = format!(
        "first(dns://{0}/eu.test.internal:80, dns://{0}/us.test.internal:80)",
        silent.addr
    );
    let (mut sets, _refresh) = Discovery::new(&target)
        .unwrap()
        .with_config(fast())
        .stream();
    for _ in 0..3 {
        let item = timeout(Duration::from_secs(10), sets.next())
            .await
            .expect("an item within 10 s")
            .expect("the stream goes on");
        assert!(
            matches!(item, Err(DiscoveryError::Part { .. })),
            "only the parts' errors: {item:?}"
        );
    }
}
