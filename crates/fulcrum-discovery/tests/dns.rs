//! DNS discovery against an authoritative server speaking the real wire
//! protocol (hickory-server in this process, on 127.0.0.1).

#[path = "support/dns_server.rs"]
mod support;

use std::time::Duration;

use fulcrum_core::EndpointSet;
use fulcrum_discovery::{Discovery, DiscoveryConfig, DiscoveryError, OnEmpty};
use futures_util::StreamExt;
use support::{ip, DnsServer, Srv};
use tokio::time::{timeout, Instant};

fn fast() -> DiscoveryConfig {
    DiscoveryConfig {
        min_ttl: Duration::from_millis(200),
        max_ttl: Duration::from_secs(60),
        error_backoff: Duration::from_millis(100),
        query_timeout: Duration::from_millis(500),
        ..DiscoveryConfig::default()
    }
}

/// A/AAAA discovery of `host.test.internal:port` from `dns`, with `config`.
fn host(dns: &DnsServer, host_port: &str, config: DiscoveryConfig) -> Discovery {
    Discovery::new(&format!("dns://{}/{host_port}", dns.addr))
        .unwrap()
        .with_config(config)
}

fn addrs(set: &EndpointSet) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|e| e.addr().to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_and_aaaa_records_become_endpoints() {
    let dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2"), ip("127.0.0.3"), ip("::1")], 30)
        .await;
    let d = Discovery::new(&format!("dns://{}/api.test.internal:8080", dns.addr)).unwrap();
    let set = d.resolve().await.unwrap();
    assert_eq!(
        addrs(&set),
        ["127.0.0.2:8080", "127.0.0.3:8080", "[::1]:8080"]
    );
    for ep in set.iter() {
        assert_eq!(ep.authority(), Some("api.test.internal:8080"));
        assert_eq!((ep.weight(), ep.priority()), (1, 0));
    }
}

#[tokio::test]
async fn srv_records_give_ports_weights_priorities_and_resolved_targets() {
    let dns = DnsServer::start().await;
    dns.set_ips("a", &[ip("127.0.0.11")], 30).await;
    dns.set_ips("b", &[ip("127.0.0.12"), ip("127.0.0.13")], 30)
        .await;
    dns.set_ips("c", &[ip("127.0.0.14")], 30).await;
    dns.set_srv(
        "_http._tcp",
        &[
            Srv(10, 60, 8080, "a"),
            Srv(10, 20, 8081, "b"),
            Srv(20, 5, 9090, "c"),
        ],
        30,
    )
    .await;
    let d = Discovery::new(&format!("dns+srv://{}/_http._tcp.test.internal", dns.addr)).unwrap();
    let set = d.resolve().await.unwrap();
    let mut got: Vec<(String, u32, u32, String)> = set
        .iter()
        .map(|e| {
            (
                e.addr().to_string(),
                e.weight(),
                e.priority(),
                e.authority().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("127.0.0.11:8080", 60, 10, "a.test.internal:8080"),
        ("127.0.0.12:8081", 20, 10, "b.test.internal:8081"),
        ("127.0.0.13:8081", 20, 10, "b.test.internal:8081"),
        ("127.0.0.14:9090", 5, 20, "c.test.internal:9090"),
    ]
    .map(|(a, w, p, n)| (a.to_owned(), w, p, n.to_owned()));
    assert_eq!(got, want);
    // Lowest priority, heaviest first.
    assert_eq!(
        set.iter().next().unwrap().addr().to_string(),
        "127.0.0.11:8080"
    );
}

#[tokio::test]
async fn srv_weight_zero_port_zero_and_the_dot_target() {
    let dns = DnsServer::start().await;
    dns.set_ips("a", &[ip("127.0.0.21")], 30).await;
    dns.set_ips("b", &[ip("127.0.0.22")], 30).await;
    dns.set_srv("_http._tcp", &[Srv(0, 0, 80, "a"), Srv(0, 10, 0, "b")], 30)
        .await;
    let target = format!("dns+srv://{}/_http._tcp.test.internal", dns.addr);
    let set = Discovery::new(&target).unwrap().resolve().await.unwrap();
    // weight 0 is kept (a standby for the balancer); port 0 cannot be used.
    assert_eq!(addrs(&set), ["127.0.0.21:80"]);
    assert_eq!(set.iter().next().unwrap().weight(), 0);

    dns.set_srv("_gone._tcp", &[Srv(0, 0, 0, ".")], 30).await;
    let target = format!("dns+srv://{}/_gone._tcp.test.internal", dns.addr);
    let err = Discovery::new(&target)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::NotAvailable { .. }), "{err}");
    // As a stream, "." is an authoritative empty set.
    let (mut stream, _) = Discovery::new(&target)
        .unwrap()
        .with_config(fast())
        .stream();
    assert_eq!(stream.next().await.unwrap().unwrap(), EndpointSet::empty());
}

#[tokio::test]
async fn a_record_change_is_seen_within_ttl_plus_one_second_without_requests() {
    let dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2")], 1).await;
    let config = DiscoveryConfig {
        min_ttl: Duration::from_millis(500),
        ..fast()
    };
    let (mut stream, _) = host(&dns, "api.test.internal:80", config).stream();
    assert_eq!(
        addrs(&stream.next().await.unwrap().unwrap()),
        ["127.0.0.2:80"]
    );
    dns.set_ips("api", &[ip("127.0.0.2"), ip("127.0.0.3")], 1)
        .await;
    let changed = Instant::now();
    let set = timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("the change must arrive within TTL (1 s) + 1 s")
        .unwrap()
        .unwrap();
    assert_eq!(addrs(&set), ["127.0.0.2:80", "127.0.0.3:80"]);
    assert!(changed.elapsed() <= Duration::from_secs(2));
}

#[tokio::test]
async fn ttls_are_clamped_both_ways() {
    let dns = DnsServer::start().await;
    // A 1 s TTL under a 3 s minimum: no second query within 2 s.
    dns.set_ips("short", &[ip("127.0.0.2")], 1).await;
    let config = DiscoveryConfig {
        min_ttl: Duration::from_secs(3),
        jitter: 0.0,
        ..fast()
    };
    let (mut stream, _) = host(&dns, "short.test.internal:80", config).stream();
    stream.next().await.unwrap().unwrap();
    let after_first = dns.queries();
    let _ = timeout(Duration::from_secs(2), stream.next()).await;
    assert_eq!(
        dns.queries(),
        after_first,
        "re-resolved before the minimum TTL"
    );

    // A one-hour TTL under a 500 ms maximum: queried again within a second.
    dns.set_ips("long", &[ip("127.0.0.3")], 3600).await;
    let config = DiscoveryConfig {
        max_ttl: Duration::from_millis(500),
        min_ttl: Duration::from_millis(100),
        jitter: 0.0,
        ..fast()
    };
    let (mut stream, _) = host(&dns, "long.test.internal:80", config).stream();
    stream.next().await.unwrap().unwrap();
    let after_first = dns.queries();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // the stream is lazy: poll it so it can re-resolve
    let _ = timeout(Duration::from_millis(10), stream.next()).await;
    let _ = timeout(Duration::from_millis(700), stream.next()).await;
    assert!(
        dns.queries() > after_first,
        "the maximum TTL was not applied"
    );
}

#[tokio::test]
async fn when_the_server_stops_the_last_set_stays_and_recovery_follows() {
    let mut dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2")], 1).await;
    let (mut stream, _) = host(&dns, "api.test.internal:80", fast()).stream();
    let first = stream.next().await.unwrap().unwrap();
    dns.stop().await;
    let err = timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the failure is reported")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Resolve { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("check that the resolver is reachable"),
        "{err}"
    );
    dns.restart().await;
    // Errors may repeat while it comes back; then the set is confirmed again.
    let recovered = timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(set) = stream.next().await.unwrap() {
                return set;
            }
        }
    })
    .await
    .expect("resolution recovers");
    assert_eq!(recovered, first);
}

#[tokio::test]
async fn nxdomain_keeps_the_last_set_or_empties_it_as_configured() {
    let dns = DnsServer::start().await;
    let missing = format!("dns://{}/nowhere.test.internal:80", dns.addr);
    let err = Discovery::new(&missing)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DiscoveryError::NoRecords {
            name: "nowhere.test.internal".into(),
            nxdomain: true
        }
    );

    for (on_empty, expect_empty) in [(OnEmpty::KeepLast, false), (OnEmpty::Empty, true)] {
        dns.set_ips("api", &[ip("127.0.0.2")], 1).await;
        let config = DiscoveryConfig { on_empty, ..fast() };
        let (mut stream, _) = host(&dns, "api.test.internal:80", config).stream();
        stream.next().await.unwrap().unwrap();
        dns.set_ips("api", &[], 1).await;
        let next = timeout(Duration::from_secs(3), stream.next())
            .await
            .expect("the removal is seen")
            .unwrap();
        if expect_empty {
            assert_eq!(next.unwrap(), EndpointSet::empty());
        } else {
            assert!(
                matches!(next, Err(DiscoveryError::NoRecords { .. })),
                "{next:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_large_answer_arrives_whole_over_tcp() {
    let dns = DnsServer::start().await;
    let ips: Vec<_> = (0..120u8).map(|i| ip(&format!("127.1.0.{i}"))).collect();
    dns.set_ips("big", &ips, 30).await;
    let d = Discovery::new(&format!("dns://{}/big.test.internal:80", dns.addr)).unwrap();
    let set = d.resolve().await.unwrap();
    assert_eq!(
        set.len(),
        120,
        "a truncated UDP answer must be retried over TCP"
    );
}

#[tokio::test]
async fn an_early_refresh_is_rate_limited() {
    let dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2")], 3600).await;
    let config = DiscoveryConfig {
        min_refresh_interval: Duration::from_millis(300),
        max_ttl: Duration::from_secs(3600),
        ..fast()
    };
    let (mut stream, refresh) = host(&dns, "api.test.internal:80", config).stream();
    stream.next().await.unwrap().unwrap();
    dns.set_ips("api", &[ip("127.0.0.3")], 3600).await;
    let asked = Instant::now();
    refresh.refresh();
    let set = timeout(Duration::from_secs(3), stream.next())
        .await
        .expect("an early refresh happens long before the 1 h TTL")
        .unwrap()
        .unwrap();
    assert_eq!(addrs(&set), ["127.0.0.3:80"]);
    // not sooner than the rate limit after the first resolution
    assert!(
        asked.elapsed() >= Duration::from_millis(250),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn the_tower_adapter_turns_set_changes_into_inserts_and_removes() {
    use tower::discover::Change;
    let dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2"), ip("127.0.0.3")], 1)
        .await;
    let config = DiscoveryConfig {
        min_ttl: Duration::from_millis(300),
        ..fast()
    };
    let mut discover = host(&dns, "api.test.internal:80", config).into_discover(|ep| ep.addr());
    let mut inserted = Vec::new();
    for _ in 0..2 {
        match discover.next().await.unwrap().unwrap() {
            Change::Insert(addr, svc) => {
                assert_eq!(addr, svc);
                inserted.push(addr.to_string());
            }
            Change::Remove(addr) => panic!("unexpected removal of {addr}"),
        }
    }
    inserted.sort();
    assert_eq!(inserted, ["127.0.0.2:80", "127.0.0.3:80"]);
    dns.set_ips("api", &[ip("127.0.0.3"), ip("127.0.0.4")], 1)
        .await;
    let mut changes = Vec::new();
    for _ in 0..2 {
        let change = timeout(Duration::from_secs(3), discover.next())
            .await
            .unwrap();
        changes.push(match change.unwrap().unwrap() {
            Change::Insert(addr, _) => format!("+{addr}"),
            Change::Remove(addr) => format!("-{addr}"),
        });
    }
    changes.sort();
    assert_eq!(changes, ["+127.0.0.4:80", "-127.0.0.2:80"]);
}

#[tokio::test]
async fn srv_with_an_unresolvable_target_keeps_the_last_set_and_unusable_records_are_empty() {
    let dns = DnsServer::start().await;
    dns.set_ips("a", &[ip("127.0.0.21")], 30).await;
    // b lives outside the server's zone: it refuses to answer for it, a
    // transient failure as far as the client can tell.
    dns.set_srv(
        "_http._tcp",
        &[Srv(0, 1, 80, "a"), Srv(0, 1, 80, "b.elsewhere.")],
        30,
    )
    .await;
    let target = format!("dns+srv://{}/_http._tcp.test.internal", dns.addr);
    let err = Discovery::new(&target)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Resolve { name, .. } if name == "b.elsewhere"),
        "{err}"
    );

    dns.set_srv("_http._tcp", &[Srv(0, 1, 0, "a")], 30).await;
    let err = Discovery::new(&target)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DiscoveryError::NoRecords {
            name: "_http._tcp.test.internal".into(),
            nxdomain: false
        }
    );
}

#[tokio::test]
async fn refresh_config_extremes_neither_panic_nor_spin() {
    let dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2")], 0).await;
    let config = DiscoveryConfig {
        min_ttl: Duration::ZERO,
        max_ttl: Duration::MAX,
        jitter: f64::NAN,
        min_refresh_interval: Duration::MAX,
        ..fast()
    };
    let (mut stream, refresh) = host(&dns, "api.test.internal:80", config).stream();
    stream.next().await.unwrap().unwrap();
    refresh.refresh();
    let _ = timeout(Duration::from_millis(300), stream.next()).await;
    // A TTL of 0 with no minimum: re-resolves, but not in a busy loop
    // (at most one resolution, two queries, per 10 ms).
    assert!(
        dns.queries() < 2 * 40,
        "{} queries in 300 ms",
        dns.queries()
    );
}
