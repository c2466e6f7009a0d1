//! Behaviour of the Balancer on real tokio tasks and timers.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{addr, eventually, set, Behaviour, Farm};
use fulcrum_balance::{channel, Balancer, EndpointState, Error, ErrorKind};
use fulcrum_core::{Endpoint, EndpointSet, NoEndpointsReason};
use tower::{Service, ServiceExt};

type Lb = Balancer<common::Backend>;

fn balancer(farm: &Farm, policy: &str, updates: fulcrum_balance::Updates) -> Lb {
    Balancer::builder()
        .target("test")
        .policy_name(policy)
        .unwrap()
        .seed(7)
        .updates(updates)
        .build(farm.make())
}

async fn send(lb: &mut Lb) -> Result<SocketAddr, Error> {
    lb.ready().await?.call(0).await
}

async fn wait_ready<S, K, C>(lb: &Balancer<S, K, C>, n: usize) {
    assert!(
        eventually(Duration::from_secs(5), || lb.stats().ready == n).await,
        "expected {n} ready endpoints: {:?}",
        lb.stats()
    );
}

#[tokio::test]
async fn round_robin_rotates_exactly() {
    let farm = Farm::uniform(3, Duration::ZERO);
    let (_tx, rx) = channel(set(&[0, 1, 2]));
    let mut lb = balancer(&farm, "round-robin", rx);
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(send(&mut lb).await.unwrap());
    }
    for i in 3..9 {
        assert_eq!(seen[i], seen[i - 3], "{seen:?}");
    }
    assert_ne!(seen[0], seen[1]);
    assert_ne!(seen[1], seen[2]);
    assert_ne!(seen[0], seen[2]);
}

#[tokio::test]
async fn weighted_round_robin_gives_exact_shares_without_bursts() {
    let farm = Farm::uniform(3, Duration::ZERO);
    let weighted: EndpointSet = [(0, 5), (1, 1), (2, 1)]
        .into_iter()
        .map(|(i, w)| Endpoint::new(addr(i)).with_weight(w))
        .collect();
    let (_tx, rx) = channel(weighted);
    let mut lb = balancer(&farm, "weighted-round-robin", rx);
    let mut run = 0;
    let mut longest = 0;
    for _ in 0..70 {
        if send(&mut lb).await.unwrap() == addr(0) {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    assert_eq!([farm.hits(0), farm.hits(1), farm.hits(2)], [50, 10, 10]);
    assert!(longest <= 3, "a run of {longest}");
}

/// Holds requests on endpoint 0, then checks where new requests go.
async fn prefers_least_loaded(policy: &str) {
    let farm = Farm::default();
    let hold = Arc::new(AtomicBool::new(true));
    farm.add(
        0,
        Behaviour {
            hold: hold.clone(),
            ..Default::default()
        },
    );
    for i in 1..4 {
        farm.add(i, Behaviour::default());
    }
    // Load endpoint 0 while it is the only one, then add three idle ones.
    let (tx, rx) = channel(set(&[0]));
    let mut lb = balancer(&farm, policy, rx);
    wait_ready(&lb, 1).await;
    let held: Vec<_> = (0..5)
        .map(|_| {
            let mut c = lb.clone();
            tokio::spawn(async move { send(&mut c).await })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || lb
            .stats()
            .endpoint(addr(0))
            .is_some_and(|e| e.in_flight == 5))
        .await
    );
    tx.update(set(&[0, 1, 2, 3]));
    wait_ready(&lb, 4).await;
    let before = farm.hits(0);
    for _ in 0..200 {
        assert_ne!(send(&mut lb).await.unwrap(), addr(0));
    }
    assert_eq!(farm.hits(0), before, "{policy} sent to the loaded endpoint");
    hold.store(false, Ordering::SeqCst);
    for h in held {
        h.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn p2c_prefers_the_least_loaded() {
    prefers_least_loaded("p2c").await;
}

#[tokio::test]
async fn least_conn_prefers_the_least_loaded() {
    prefers_least_loaded("least-conn").await;
}

/// Sends `total` requests with `concurrency` in flight through clones of
/// `lb` on a multi-threaded runtime; returns hits per backend.
async fn load(lb: &Lb, total: usize, concurrency: usize) -> Vec<Result<SocketAddr, String>> {
    let per_task = total / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut lb = lb.clone();
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    out.push(send(&mut lb).await.map_err(|e| e.to_string()));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Ten endpoints under `ewma`: 0–8 answer in 5 ms, 9 behaves as `odd`.
async fn nine_fast_and(odd: Behaviour) -> (Farm, Lb, fulcrum_balance::Updater) {
    let farm = Farm::uniform(9, Duration::from_millis(5));
    farm.add(9, odd);
    let (tx, rx) = channel(set(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    let lb = balancer(&farm, "ewma", rx);
    wait_ready(&lb, 10).await;
    (farm, lb, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ewma_avoids_an_endpoint_20x_slower() {
    let (farm, lb, _updater) = nine_fast_and(Behaviour {
        delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let results = load(&lb, 20_000, 50).await;
    assert!(results.iter().all(Result::is_ok));
    let slow = farm.hits(9);
    eprintln!("ewma: slow endpoint got {slow} of 20000");
    assert!(
        slow * 200 < 20_000,
        "the slow endpoint got {slow} of 20000 requests (limit 0.5%)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ewma_does_not_reward_an_endpoint_that_fails_fast() {
    let (farm, lb, _updater) = nine_fast_and(Behaviour {
        fail_calls: true,
        ..Default::default()
    })
    .await;
    let results = load(&lb, 10_000, 50).await;
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    assert_eq!(failed, farm.hits(9));
    eprintln!("ewma: failing endpoint got {failed} of 10000");
    // Fair share would be 10%; without the penalty it would take most traffic.
    assert!(
        failed * 200 < 10_000,
        "the failing endpoint got {failed} of 10000 requests"
    );
    let stats = lb.stats();
    assert_eq!(stats.endpoint(addr(9)).unwrap().failures, failed);
}

#[tokio::test]
async fn zero_endpoints_fail_with_no_endpoints_at_the_deadline() {
    let farm = Farm::default();
    let (_tx, rx) = channel(EndpointSet::empty());
    let mut lb = Balancer::builder()
        .target("dns:///nothing.internal:80")
        .ready_timeout(Duration::from_millis(200))
        .updates(rx)
        .build(farm.make());
    let started = tokio::time::Instant::now();
    let err = lb.ready().await.unwrap_err();
    let waited = started.elapsed();
    let ErrorKind::NoEndpoints(e) = err.kind() else {
        panic!("{err}")
    };
    assert_eq!(e.reason(), NoEndpointsReason::NeverHadAny);
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(
        err.to_string().contains("dns:///nothing.internal:80"),
        "{err}"
    );
}

#[tokio::test]
async fn an_endpoint_added_while_requests_wait_wakes_them() {
    let farm = Farm::uniform(1, Duration::ZERO);
    let (tx, rx) = channel(EndpointSet::empty());
    let lb = Balancer::builder()
        .ready_timeout(Duration::from_secs(30))
        .updates(rx)
        .build(farm.make());
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let mut lb = lb.clone();
            tokio::spawn(async move {
                let t = tokio::time::Instant::now();
                (send(&mut lb).await, t.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.update(set(&[0]));
    for w in waiters {
        let (result, waited) = w.await.unwrap();
        assert_eq!(result.unwrap(), addr(0));
        // woken by the update, far before the 30 s deadline
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }
}

#[tokio::test]
async fn static_empty_set_fails_at_once() {
    let farm = Farm::default();
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_secs(60))
        .endpoints([])
        .build(farm.make());
    let err = tokio::time::timeout(Duration::from_secs(10), lb.ready())
        .await
        .expect("must not wait for the deadline")
        .unwrap_err();
    let ErrorKind::NoEndpoints(e) = err.kind() else {
        panic!()
    };
    assert_eq!(e.reason(), NoEndpointsReason::DiscoveryEnded);
}

#[tokio::test]
async fn zero_deadline_fails_immediately_without_endpoints() {
    let farm = Farm::default();
    let (_tx, rx) = channel(EndpointSet::empty());
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::ZERO)
        .updates(rx)
        .build(farm.make());
    let err = tokio::time::timeout(Duration::from_secs(10), lb.ready())
        .await
        .expect("zero deadline must not wait")
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NoEndpoints(_)));
}

#[tokio::test]
async fn updates_apply_while_no_request_flows() {
    let farm = Farm::uniform(4, Duration::ZERO);
    let (tx, rx) = channel(set(&[0, 1]));
    let lb = balancer(&farm, "ewma", rx);
    wait_ready(&lb, 2).await;
    tx.update(set(&[0, 1, 2, 3]));
    wait_ready(&lb, 4).await;
    tx.update(set(&[1, 3]));
    wait_ready(&lb, 2).await;
    let stats = lb.stats();
    let addrs: Vec<_> = stats.endpoints.iter().map(|e| e.addr).collect();
    assert_eq!(addrs, vec![addr(1), addr(3)]);
    assert!(stats.version >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_endpoint_with_requests_in_flight_fails_none() {
    let farm = Farm::uniform(3, Duration::from_millis(200));
    let (tx, rx) = channel(set(&[0, 1, 2]));
    let lb = balancer(&farm, "round-robin", rx);
    wait_ready(&lb, 3).await;
    let in_flight: Vec<_> = (0..30)
        .map(|_| {
            let mut lb = lb.clone();
            tokio::spawn(async move { send(&mut lb).await })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || {
            lb.stats()
                .endpoint(addr(0))
                .is_some_and(|e| e.in_flight > 0)
        })
        .await
    );
    tx.update(set(&[1, 2]));
    wait_ready(&lb, 2).await;
    let draining = lb.stats();
    let e0 = draining
        .endpoint(addr(0))
        .expect("still listed while draining");
    assert_eq!(e0.state, EndpointState::Draining);
    let hits_at_removal = farm.hits(0);
    for r in in_flight {
        r.await.unwrap().expect("an in-flight request failed");
    }
    let mut lb2 = lb.clone();
    for _ in 0..20 {
        assert_ne!(send(&mut lb2).await.unwrap(), addr(0));
    }
    assert_eq!(farm.hits(0), hits_at_removal);
    assert!(
        eventually(Duration::from_secs(5), || lb
            .stats()
            .endpoint(addr(0))
            .is_none())
        .await,
        "drained endpoint is forgotten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_share_clones_for_a_second() {
    let farm = Farm::default();
    for i in 0..5 {
        farm.add(
            i,
            Behaviour {
                delay: Duration::from_millis(u64::from(i % 2)),
                ..Default::default()
            },
        );
    }
    let (_tx, rx) = channel(set(&[0, 1, 2, 3, 4]));
    let lb = balancer(&farm, "ewma", rx);
    wait_ready(&lb, 5).await;
    let stop = tokio::time::Instant::now() + Duration::from_secs(1);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let mut lb = lb.clone();
            tokio::spawn(async move {
                let mut ok = 0u64;
                // bounded by time and by count
                while tokio::time::Instant::now() < stop && ok < 1_000_000 {
                    let got = send(&mut lb)
                        .await
                        .expect("every request gets its response");
                    assert!(got.port() >= 20_000 && got.port() < 20_005);
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(total > 0);
    let stats = lb.stats();
    let dispatched: u64 = stats.endpoints.iter().map(|e| e.requests).sum();
    assert_eq!(dispatched, total);
    for e in &stats.endpoints {
        assert_eq!(e.in_flight, 0, "{e:?}");
    }
}

#[tokio::test]
async fn weight_zero_is_a_standby() {
    let farm = Farm::uniform(3, Duration::ZERO);
    let weighted: EndpointSet = [(0, 0), (1, 1), (2, 0)]
        .into_iter()
        .map(|(i, w)| Endpoint::new(addr(i)).with_weight(w))
        .collect();
    let (tx, rx) = channel(weighted);
    let mut lb = balancer(&farm, "weighted-random", rx);
    wait_ready(&lb, 1).await;
    for _ in 0..50 {
        assert_eq!(send(&mut lb).await.unwrap(), addr(1));
    }
    // Only standbys left: they serve, equally.
    let standbys: EndpointSet = [0, 2]
        .into_iter()
        .map(|i| Endpoint::new(addr(i)).with_weight(0))
        .collect();
    tx.update(standbys);
    wait_ready(&lb, 2).await;
    let mut counts: HashMap<SocketAddr, u32> = HashMap::new();
    for _ in 0..400 {
        *counts.entry(send(&mut lb).await.unwrap()).or_default() += 1;
    }
    assert!(
        counts[&addr(0)] > 120 && counts[&addr(2)] > 120,
        "{counts:?}"
    );
}

#[tokio::test]
async fn duplicate_endpoints_collapse_to_one() {
    let farm = Farm::uniform(2, Duration::ZERO);
    let dup = EndpointSet::new([
        Endpoint::new(addr(0)).with_weight(3),
        Endpoint::new(addr(1)),
        Endpoint::new(addr(0)).with_weight(9),
    ]);
    assert_eq!(dup.duplicates(), 1);
    let (_tx, rx) = channel(dup);
    let lb = balancer(&farm, "round-robin", rx);
    wait_ready(&lb, 2).await;
    let stats = lb.stats();
    assert_eq!(stats.endpoints.len(), 2);
    assert_eq!(stats.endpoint(addr(0)).unwrap().weight, 3);
}

#[tokio::test]
async fn readiness_failure_moves_the_request_and_backs_off() {
    let farm = Farm::default();
    let not_ready = Arc::new(AtomicBool::new(true));
    farm.add(
        0,
        Behaviour {
            not_ready: not_ready.clone(),
            ..Default::default()
        },
    );
    farm.add(1, Behaviour::default());
    let (_tx, rx) = channel(set(&[0, 1]));
    let mut lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .backoff(fulcrum_balance::Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        })
        .updates(rx)
        .build(farm.make());
    wait_ready(&lb, 2).await;
    // Every request succeeds: those picked onto 0 move to 1.
    for _ in 0..20 {
        assert_eq!(send(&mut lb).await.unwrap(), addr(1));
    }
    let e0 = lb.stats().endpoint(addr(0)).cloned().unwrap();
    assert!(e0.failures >= 1);
    assert_ne!(e0.state, EndpointState::Active);
    // Not gone for good: once healthy it is made again and takes traffic.
    not_ready.store(false, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(5), || lb
            .stats()
            .endpoint(addr(0))
            .is_some_and(|e| e.state == EndpointState::Active))
        .await
    );
    let mut got0 = false;
    for _ in 0..10 {
        got0 |= send(&mut lb).await.unwrap() == addr(0);
    }
    assert!(got0, "endpoint 0 never came back");
    assert!(
        farm.made.load(Ordering::Relaxed) >= 3,
        "its service was made afresh"
    );
}

#[tokio::test]
async fn readiness_failure_of_the_only_endpoint_is_a_typed_error() {
    let farm = Farm::default();
    farm.add(
        0,
        Behaviour {
            not_ready: Arc::new(AtomicBool::new(true)),
            ..Default::default()
        },
    );
    let (_tx, rx) = channel(set(&[0]));
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_millis(100))
        .updates(rx)
        .build(farm.make());
    wait_ready(&lb, 1).await;
    let err = send(&mut lb).await.unwrap_err();
    match err.kind() {
        ErrorKind::NotReady { endpoint, .. } => assert_eq!(*endpoint, addr(0)),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("safe to retry"), "{err}");
    // While it backs off there is nothing to pick: a clear NoEndpoints.
    let err = send(&mut lb).await.unwrap_err();
    let ErrorKind::NoEndpoints(e) = err.kind() else {
        panic!("{err}")
    };
    assert_eq!(e.reason(), NoEndpointsReason::AllUnavailable);
}

#[tokio::test]
async fn call_errors_name_the_endpoint_and_count_as_failures() {
    let farm = Farm::default();
    farm.add(
        0,
        Behaviour {
            fail_calls: true,
            ..Default::default()
        },
    );
    let (_tx, rx) = channel(set(&[0]));
    let mut lb = balancer(&farm, "p2c", rx);
    let err = send(&mut lb).await.unwrap_err();
    match err.kind() {
        ErrorKind::Service { endpoint, source } => {
            assert_eq!(*endpoint, addr(0));
            assert!(source.to_string().contains("failed"));
        }
        other => panic!("{other}"),
    }
    let e0 = lb.stats().endpoint(addr(0)).cloned().unwrap();
    assert_eq!((e0.requests, e0.failures, e0.in_flight), (1, 1, 0));
    assert!(e0.ewma_ms > 900.0, "failure penalty recorded: {e0:?}");
    // The endpoint stays: call errors are for health checking to judge.
    assert_eq!(e0.state, EndpointState::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptying_the_set_with_requests_in_flight() {
    let farm = Farm::uniform(2, Duration::from_millis(150));
    let (tx, rx) = channel(set(&[0, 1]));
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_millis(100))
        .updates(rx)
        .build(farm.make());
    wait_ready(&lb, 2).await;
    let in_flight: Vec<_> = (0..10)
        .map(|_| {
            let mut lb = lb.clone();
            tokio::spawn(async move { send(&mut lb).await })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || lb
            .stats()
            .endpoints
            .iter()
            .map(|e| e.in_flight)
            .sum::<u32>()
            == 10)
        .await
    );
    tx.update(EndpointSet::empty());
    wait_ready(&lb, 0).await;
    for r in in_flight {
        r.await.unwrap().expect("in-flight requests finish");
    }
    let err = send(&mut lb).await.unwrap_err();
    let ErrorKind::NoEndpoints(e) = err.kind() else {
        panic!("{err}")
    };
    assert_eq!(e.reason(), NoEndpointsReason::SetBecameEmpty);
}

#[tokio::test]
async fn a_failing_maker_backs_off_and_retries() {
    use std::sync::atomic::AtomicU32;
    use std::task::{Context, Poll};

    #[derive(Clone)]
    struct FlakyMaker {
        farm: Farm,
        failures_left: Arc<AtomicU32>,
    }
    impl tower::Service<Endpoint> for FlakyMaker {
        type Response = common::Backend;
        type Error = std::io::Error;
        type Future = std::future::Ready<Result<common::Backend, std::io::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, ep: Endpoint) -> Self::Future {
            if self.failures_left.load(Ordering::SeqCst) > 0 {
                self.failures_left.fetch_sub(1, Ordering::SeqCst);
                return std::future::ready(Err(std::io::Error::other("connection refused")));
            }
            let mut make = self.farm.make();
            std::future::ready(Ok(tower::Service::call(&mut make, ep)
                .into_inner()
                .unwrap()))
        }
    }

    let farm = Farm::uniform(1, Duration::ZERO);
    let (_tx, rx) = channel(set(&[0]));
    let mut lb = Balancer::builder()
        .backoff(fulcrum_balance::Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
        })
        .updates(rx)
        .build(FlakyMaker {
            farm: farm.clone(),
            failures_left: Arc::new(AtomicU32::new(2)),
        });
    assert_eq!(send(&mut lb).await.unwrap(), addr(0));
}

#[tokio::test]
async fn the_driver_stops_with_the_last_handle() {
    let farm = Farm::uniform(1, Duration::ZERO);
    let witness = Arc::new(());
    let held = witness.clone();
    let make = fulcrum_balance::make_fn({
        let mut inner = farm.make();
        move |ep: &Endpoint| {
            let _ = &held;
            tower::Service::call(&mut inner, ep.clone())
                .into_inner()
                .unwrap()
        }
    });
    let (_tx, rx) = channel(set(&[0]));
    let lb: Lb = Balancer::builder().updates(rx).build(make);
    let clone = lb.clone();
    wait_ready(&lb, 1).await;
    drop(lb);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(Arc::strong_count(&witness), 2, "a clone still lives");
    drop(clone);
    assert!(
        eventually(Duration::from_secs(5), || Arc::strong_count(&witness) == 1).await,
        "the driver (which owns the maker) did not stop"
    );
}

#[tokio::test]
async fn stats_serialise_to_json() {
    let farm = Farm::uniform(1, Duration::ZERO);
    let (_tx, rx) = channel(set(&[0]));
    let mut lb = balancer(&farm, "ewma", rx);
    send(&mut lb).await.unwrap();
    let json = serde_json::to_value(lb.stats()).unwrap();
    assert_eq!(json["policy"], "ewma");
    let e = &json["endpoints"][0];
    assert_eq!(e["addr"], "127.0.0.1:20000");
    assert_eq!(e["state"], "active");
    assert_eq!(e["requests"], 1);
    assert_eq!(e["in_flight"], 0);
    assert!(e["ewma_ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn built_outside_a_runtime_starts_on_first_use() {
    let farm = Farm::uniform(1, Duration::ZERO);
    let (_tx, rx) = channel(set(&[0]));
    let mut lb = std::thread::spawn(move || balancer(&farm, "ewma", rx))
        .join()
        .unwrap();
    assert_eq!(send(&mut lb).await.unwrap(), addr(0));
}

#[tokio::test]
async fn a_maker_with_backpressure_does_not_stall_the_driver() {
    // At most 2 services made at once, each taking 20 ms: the driver must
    // keep finishing makes while it waits for the maker's capacity.
    let farm = Farm::uniform(10, Duration::ZERO);
    let backends = farm.clone();
    let make = tower::limit::ConcurrencyLimit::new(
        tower::service_fn(move |ep: Endpoint| {
            let mut make = backends.make();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::convert::Infallible>(
                    tower::Service::call(&mut make, ep).into_inner().unwrap(),
                )
            }
        }),
        2,
    );
    let (_tx, rx) = channel(set(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    let lb: Lb = Balancer::builder().updates(rx).build(make);
    wait_ready(&lb, 10).await;
}

#[tokio::test]
async fn every_endpoint_failing_readiness_at_once_comes_back() {
    let farm = Farm::default();
    let not_ready = Arc::new(AtomicBool::new(true));
    for i in 0..4 {
        farm.add(
            i,
            Behaviour {
                not_ready: not_ready.clone(),
                ..Default::default()
            },
        );
    }
    let (_tx, rx) = channel(set(&[0, 1, 2, 3]));
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_millis(50))
        .backoff(fulcrum_balance::Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(50),
        })
        .updates(rx)
        .build(farm.make());
    wait_ready(&lb, 4).await;
    // One request walks over several endpoints, taking each out of service.
    let err = send(&mut lb).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::NotReady { .. } | ErrorKind::NoEndpoints(_)
        ),
        "{err}"
    );
    not_ready.store(false, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(5), || lb
            .stats()
            .endpoints
            .iter()
            .all(|e| e.state == EndpointState::Active))
        .await,
        "an endpoint stayed out of service: {:?}",
        lb.stats()
    );
    assert!(send(&mut lb).await.is_ok());
}

/// A maker that always fails.
#[derive(Clone)]
struct BrokenMaker;

impl tower::Service<Endpoint> for BrokenMaker {
    type Response = common::Backend;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<common::Backend, std::io::Error>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::io::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: Endpoint) -> Self::Future {
        std::future::ready(Err(std::io::Error::other("connection refused")))
    }
}

#[tokio::test]
async fn extreme_backoffs_neither_spin_nor_panic_the_driver() {
    for (base, max) in [
        (Duration::ZERO, Duration::ZERO),
        (Duration::MAX, Duration::MAX),
    ] {
        let (tx, rx) = channel(set(&[0]));
        let mut lb = Balancer::builder()
            .ready_timeout(Duration::from_millis(100))
            .backoff(fulcrum_balance::Backoff { base, max })
            .updates(rx)
            .build(BrokenMaker);
        let err = send(&mut lb).await.unwrap_err();
        let ErrorKind::NoEndpoints(e) = err.kind() else {
            panic!("{err}")
        };
        assert_eq!(e.reason(), NoEndpointsReason::AllUnavailable);
        // The driver is alive: it still applies updates.
        tx.update(set(&[0, 1]));
        assert!(
            eventually(Duration::from_secs(5), || lb.stats().endpoints.len() == 2).await,
            "driver stopped with backoff {base:?}"
        );
        let failures = lb.stats().endpoint(addr(0)).unwrap().failures;
        // With a zero backoff the driver retries every millisecond at most:
        // nothing like a hot loop's millions.
        let streak = lb.stats();
        assert!(failures == 0 || streak.version < 100_000, "{streak:?}");
    }
}

#[tokio::test]
async fn only_the_most_preferred_priority_tier_serves() {
    let farm = Farm::uniform(3, Duration::ZERO);
    let tiers = |ids: &[(u16, u32)]| -> EndpointSet {
        ids.iter()
            .map(|&(i, p)| Endpoint::new(addr(i)).with_priority(p))
            .collect()
    };
    let (tx, rx) = channel(tiers(&[(0, 10), (1, 10), (2, 20)]));
    let mut lb = balancer(&farm, "round-robin", rx);
    wait_ready(&lb, 2).await;
    for _ in 0..20 {
        assert_ne!(
            send(&mut lb).await.unwrap(),
            addr(2),
            "the backup tier took traffic"
        );
    }
    // The preferred tier is gone: the next one takes over.
    tx.update(tiers(&[(2, 20)]));
    wait_ready(&lb, 1).await;
    assert_eq!(send(&mut lb).await.unwrap(), addr(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_churn_under_load_loses_no_request() {
    for policy in ["ewma", "maglev", "round-robin"] {
        let farm = Farm::uniform(8, Duration::from_millis(1));
        let (tx, rx) = channel(set(&[0, 1, 2, 3]));
        let lb = Balancer::builder()
            .target("test")
            .policy_name(policy)
            .unwrap()
            .seed(7)
            .updates(rx)
            .key(|req: &u32| Some(u64::from(*req % 64)))
            .build(farm.make());
        wait_ready(&lb, 4).await;
        let stop = tokio::time::Instant::now() + Duration::from_millis(1500);
        // Every 3 ms a different non-empty subset of the 8 endpoints.
        let churn = tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(99);
            let mut updates = 0;
            while tokio::time::Instant::now() < stop {
                let ids: Vec<u16> = (0..8).filter(|_| rng.bool()).collect();
                let ids = if ids.is_empty() {
                    vec![rng.u16(0..8)]
                } else {
                    ids
                };
                tx.update(set(&ids));
                updates += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            (tx, updates)
        });
        let load: Vec<_> = (0..8u32)
            .map(|t| {
                let mut lb = lb.clone();
                tokio::spawn(async move {
                    let mut sent = 0u32;
                    while tokio::time::Instant::now() < stop && sent < 100_000 {
                        let req = t * 1_000_000 + sent;
                        lb.ready()
                            .await
                            .expect("an endpoint is always there")
                            .call(req)
                            .await
                            .expect("no request is lost to churn");
                        sent += 1;
                    }
                    sent
                })
            })
            .collect();
        let mut sent = 0;
        for task in load {
            sent += task.await.unwrap();
        }
        let (_tx, updates) = churn.await.unwrap();
        assert!(
            updates > 50 && sent > 1_000,
            "{policy}: {updates} updates, {sent} requests"
        );
        // Every request ended: nothing in flight, nothing left draining.
        assert!(
            eventually(Duration::from_secs(5), || lb
                .stats()
                .endpoints
                .iter()
                .all(|e| e.in_flight == 0 && e.state != EndpointState::Draining))
            .await,
            "{policy}: {:?}",
            lb.stats()
        );
    }
}

#[tokio::test]
async fn a_call_with_nothing_to_pick_waits_for_an_endpoint_instead_of_failing() {
    let farm = Farm::uniform(1, Duration::ZERO);
    let (tx, rx) = channel(EndpointSet::empty());
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_secs(30))
        .updates(rx)
        .build(farm.make());
    // As if the set emptied between poll_ready and call.
    let call = tokio::spawn(lb.call(0));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!call.is_finished(), "the call must wait, not fail");
    tx.update(set(&[0]));
    let served = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("woken by the update")
        .unwrap()
        .unwrap();
    assert_eq!(served, addr(0));

    // With no endpoint coming, it fails at the deadline.
    let (_tx, rx) = channel(EndpointSet::empty());
    let mut lb = Balancer::builder()
        .ready_timeout(Duration::from_millis(100))
        .updates(rx)
        .build(farm.make());
    let err = tokio::time::timeout(Duration::from_secs(5), lb.call(0))
        .await
        .expect("bounded by the deadline")
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NoEndpoints(_)), "{err}");
}
