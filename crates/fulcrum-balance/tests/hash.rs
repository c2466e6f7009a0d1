//! Hash affinity through the Balancer: keys from requests, and bounded load
//! under a hot key with many concurrent requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_balance::key::hash_bytes;
use fulcrum_balance::pick::{HashOptions, Maglev, Rendezvous, RingHash};
use fulcrum_balance::{make_fn, Balancer};
use fulcrum_core::Endpoint;
use tower::{service_fn, Service, ServiceExt};

/// The last octet of an endpoint's IPv4 address: its number here.
fn number(ep: &Endpoint) -> u8 {
    match ep.addr().ip() {
        std::net::IpAddr::V4(v4) => v4.octets()[3],
        std::net::IpAddr::V6(_) => unreachable!("the tests use IPv4"),
    }
}

fn endpoints(n: u8) -> Vec<Endpoint> {
    (0..n)
        .map(|i| Endpoint::new(SocketAddr::from(([127, 0, 1, i], 80))))
        .collect()
}

#[tokio::test]
async fn the_same_key_goes_to_the_same_endpoint_from_any_balancer() {
    for policy in ["ring-hash", "maglev", "rendezvous"] {
        let make = || {
            make_fn(|ep: &Endpoint| {
                let addr = ep.addr();
                service_fn(move |_: String| async move { Ok::<_, Infallible>(addr) })
            })
        };
        let build = |eps: Vec<Endpoint>| {
            Balancer::builder()
                .policy_name(policy)
                .unwrap()
                .endpoints(eps)
                .key(|user: &String| Some(hash_bytes(user.as_bytes())))
                .build(make())
        };
        let mut a = build(endpoints(10));
        let mut reversed = endpoints(10);
        reversed.reverse();
        let mut b = build(reversed);
        for user in (0..500).map(|i| format!("user-{i}")) {
            let x = a.ready().await.unwrap().call(user.clone()).await.unwrap();
            let y = b.ready().await.unwrap().call(user.clone()).await.unwrap();
            let again = a.ready().await.unwrap().call(user.clone()).await.unwrap();
            assert_eq!((x, x), (y, again), "{policy}: {user}");
        }
    }
}

/// Counts concurrency per backend and in total, and records whether any
/// backend ever held more than ⌈c · (total in flight) / n⌉ requests.
#[derive(Default)]
struct Meter {
    total: AtomicU64,
    per: [AtomicU64; 10],
    violations: AtomicU64,
    served: [AtomicU64; 10],
}

#[tokio::test]
async fn bounded_load_holds_under_one_hot_key() {
    let meter = Arc::new(Meter::default());
    let n = 10u64;
    let c = 1.25;
    for policy in [
        Box::new(|o| {
            Box::new(Maglev::default().options(o)) as Box<dyn fulcrum_balance::pick::Policy>
        }) as Box<dyn Fn(HashOptions) -> Box<dyn fulcrum_balance::pick::Policy>>,
        Box::new(|o| Box::new(RingHash::default().options(o))),
        Box::new(|o| Box::new(Rendezvous::default().options(o))),
    ] {
        let m = meter.clone();
        let make = make_fn(move |ep: &Endpoint| {
            let index = usize::from(number(ep));
            let m = m.clone();
            service_fn(move |delay_ms: u64| {
                let m = m.clone();
                async move {
                    // Both counts include this request, as the bound does.
                    let total = m.total.fetch_add(1, Ordering::SeqCst) + 1;
                    let mine = m.per[index].fetch_add(1, Ordering::SeqCst) + 1;
                    let cap = (c * total as f64 / n as f64).ceil() as u64;
                    if mine > cap {
                        m.violations.fetch_add(1, Ordering::SeqCst);
                    }
                    m.served[index].fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    m.per[index].fetch_sub(1, Ordering::SeqCst);
                    m.total.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(index)
                }
            })
        });
        let lb = Balancer::builder()
            .policy_arc(Arc::from(policy(HashOptions::default().balance_factor(c))))
            .endpoints(endpoints(10))
            .key(|_: &u64| Some(7))
            // Every request has the same key: one hot key.
            .build(make);
        let tasks: Vec<_> = (0..100u64)
            .map(|t| {
                let mut lb = lb.clone();
                tokio::spawn(async move {
                    for r in 0..20u64 {
                        lb.ready()
                            .await
                            .unwrap()
                            .call(1 + (t + r) % 4)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let name = lb.stats().policy;
        assert_eq!(
            meter.violations.load(Ordering::SeqCst),
            0,
            "{name}: bound exceeded"
        );
        let used = meter
            .served
            .iter()
            .filter(|s| s.load(Ordering::SeqCst) > 0)
            .count();
        assert!(
            used >= 5,
            "{name}: the hot key spread over only {used} endpoints"
        );
        for s in &meter.served {
            s.store(0, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn without_a_factor_a_hot_key_stays_on_one_endpoint() {
    let served: Arc<HashMap<u8, AtomicU64>> =
        Arc::new((0..10).map(|i| (i, AtomicU64::new(0))).collect());
    let s = served.clone();
    let make = make_fn(move |ep: &Endpoint| {
        let s = s.clone();
        let last = number(ep);
        service_fn(move |_: u64| {
            s[&last].fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(()) }
        })
    });
    let mut lb = Balancer::builder()
        .policy_name("maglev")
        .unwrap()
        .endpoints(endpoints(10))
        .key(|_: &u64| Some(7))
        .build(make);
    for i in 0..100 {
        lb.ready().await.unwrap().call(i).await.unwrap();
    }
    let used = served
        .values()
        .filter(|c| c.load(Ordering::SeqCst) > 0)
        .count();
    assert_eq!(used, 1);
}
