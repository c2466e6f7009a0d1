//! Active health checks over real sockets: hyper servers on loopback whose
//! `/health` is switched off and on, servers that die and come back on the
//! same port (probed with TCP connects), and probes that hang or panic.
//! Every wait is bounded.

#[path = "support/http.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum::health::{HealthChecks, ProbeFuture};
use fulcrum::{Balancer, Endpoint, EndpointState};
use support::{get, health_probe, http_maker, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp>;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));

fn checks() -> HealthChecks {
    HealthChecks::new(health_probe())
        .interval(Duration::from_millis(50))
        .timeout(Duration::from_millis(500))
}

fn build(backends: &[&Backend], policy: &str, checks: HealthChecks) -> Lb {
    Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .seed(11)
        .endpoints(backends.iter().map(|b| Endpoint::new(b.addr)))
        .classify(server_errors())
        .health_checks(checks)
        .unwrap()
        .build(http_maker())
}

/// Polls `condition` on the balancer's stats every 10 ms, for at most 10 s.
async fn wait_for(lb: &Lb, what: &str, condition: impl Fn(&fulcrum::Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = lb.stats();
        if condition(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}: {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the published snapshot has `n` endpoints to pick.
async fn wait_until_ready(lb: &Lb, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lb.counts().ready != n {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} ready: {:?}",
            lb.counts()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn state(stats: &fulcrum::Stats, b: &Backend) -> EndpointState {
    stats.endpoint(b.addr).unwrap().state
}

/// Sends `n` requests one after another; returns how many failed.
async fn send(lb: &mut Lb, n: usize) -> usize {
    let mut failed = 0;
    for _ in 0..n {
        let call = async { lb.ready().await?.call(get("/")).await };
        match tokio::time::timeout(Duration::from_secs(2), call).await {
            Ok(Ok(r)) if r.status().is_success() => {}
            _ => failed += 1,
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_its_probe_gets_no_traffic_and_returns_when_it_passes() {
    let (a, b, c) = (
        Backend::start(OK).await,
        Backend::start(OK).await,
        Backend::start(OK).await,
    );
    // No traffic flows while it goes down: probes run on their own.
    let mut lb = build(&[&a, &b, &c], "round-robin", checks().rise(2).fall(3));
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    c.healthy.store(false, Ordering::Relaxed);
    wait_for(&lb, "c is unhealthy", |s| {
        state(s, &c) == EndpointState::Unhealthy
    })
    .await;
    let stats = lb.stats();
    let c_stats = stats.endpoint(c.addr).unwrap();
    assert_eq!(c_stats.probe_healthy, Some(false));
    assert!(c_stats.probes_failed >= 3, "fall 3: {c_stats:?}");
    assert_eq!((stats.unhealthy, stats.ready), (1, 2));

    let before = c.hits();
    assert_eq!(send(&mut lb, 200).await, 0);
    assert_eq!(c.hits(), before, "an unhealthy endpoint takes no request");
    assert_eq!(a.hits() + b.hits(), 200);

    c.healthy.store(true, Ordering::Relaxed);
    wait_for(&lb, "c is back", |s| state(s, &c) == EndpointState::Active).await;
    wait_until_ready(&lb, 3).await;
    assert_eq!(lb.stats().unhealthy, 0);
    assert_eq!(send(&mut lb, 300).await, 0);
    assert!(
        c.hits() - before >= 90,
        "round robin gives it its third: {}",
        c.hits() - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_probe_notices_a_dead_backend_without_traffic_and_its_return_on_the_same_port() {
    let a = Backend::start(OK).await;
    let b = Backend::start(OK).await;
    let checks = HealthChecks::tcp_connect()
        .interval(Duration::from_millis(50))
        .rise(2)
        .fall(2);
    let mut lb = build(&[&a, &b], "p2c", checks);
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let addr = b.addr;
    b.kill();
    drop(b);
    wait_for(&lb, "the dead backend is unhealthy", |s| {
        s.endpoint(addr).unwrap().state == EndpointState::Unhealthy
    })
    .await;
    // Not a single request was needed to find out, and none fails now.
    assert_eq!(lb.stats().endpoint(addr).unwrap().requests, 0);
    assert_eq!(send(&mut lb, 100).await, 0);

    let Some(b) = Backend::start_on(addr, OK).await else {
        // The port was taken meanwhile: nothing left to show.
        return;
    };
    wait_for(&lb, "the backend is back", |s| {
        s.endpoint(addr).unwrap().state == EndpointState::Active
    })
    .await;
    assert_eq!(send(&mut lb, 200).await, 0);
    assert!(b.hits() > 20, "it takes traffic again: {}", b.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_endpoint_can_wait_for_its_first_probe() {
    let a = Backend::start(OK).await;
    let b = Backend::start(OK).await;
    b.healthy.store(false, Ordering::Relaxed);
    let mut lb = build(
        &[&a, &b],
        "round-robin",
        checks().unhealthy_until_probed(true),
    );
    wait_for(&lb, "b has failed a probe", |s| {
        s.endpoint(b.addr).is_some_and(|e| e.probes_failed > 0)
    })
    .await;
    assert_eq!(send(&mut lb, 100).await, 0);
    assert_eq!(
        (a.hits(), b.hits()),
        (100, 0),
        "never probed healthy, never picked"
    );
    assert_eq!(
        lb.stats().endpoint(b.addr).unwrap().state,
        EndpointState::Unhealthy
    );

    b.healthy.store(true, Ordering::Relaxed);
    wait_for(&lb, "b is in", |s| state(s, &b) == EndpointState::Active).await;
    wait_until_ready(&lb, 2).await;
    assert_eq!(send(&mut lb, 100).await, 0);
    assert_eq!(b.hits(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_waiting_for_their_first_probe_serve_not_even_in_panic() {
    let backends = [
        Backend::start(OK).await,
        Backend::start(OK).await,
        Backend::start(OK).await,
    ];
    let first = backends[0].addr;
    // Only the first endpoint's probe answers; the others' hang for 5 s.
    let probe = move |ep: &Endpoint| -> ProbeFuture {
        let slow = ep.addr() != first;
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Ok(())
        })
    };
    let checks = HealthChecks::new(probe)
        .timeout(Duration::from_secs(10))
        .unhealthy_until_probed(true);
    let mut lb = build(&backends.iter().collect::<Vec<_>>(), "round-robin", checks);
    wait_until_ready(&lb, 1).await;
    // 1 of 3 probed healthy is below the panic threshold, but endpoints
    // never probed are not candidates: no panic, and they get nothing.
    assert_eq!(send(&mut lb, 60).await, 0);
    assert_eq!(backends[0].hits(), 60);
    assert!(!lb.stats().panic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_that_hang_or_panic_fail_and_the_balancer_carries_on() {
    let backends = [
        Backend::start(OK).await,
        Backend::start(OK).await,
        Backend::start(OK).await,
    ];
    let (hangs, panics) = (backends[1].addr, backends[2].addr);
    let probe = move |ep: &Endpoint| -> ProbeFuture {
        let addr = ep.addr();
        if addr == panics {
            panic!("a probe bug");
        }
        Box::pin(async move {
            if addr == hangs {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    };
    let checks = HealthChecks::new(probe)
        .interval(Duration::from_millis(50))
        .timeout(Duration::from_millis(50))
        .fall(2);
    let all: Vec<&Backend> = backends.iter().collect();
    // Without panic mode, only the endpoint whose probe works serves.
    let mut strict = Balancer::builder()
        .endpoints(all.iter().map(|b| Endpoint::new(b.addr)))
        .classify(server_errors())
        .panic_threshold(0.0)
        .unwrap()
        .health_checks(checks.clone())
        .unwrap()
        .build(http_maker());
    let down = |s: &fulcrum::Stats| {
        [hangs, panics].iter().all(|&a| {
            s.endpoint(a)
                .is_some_and(|e| e.state == EndpointState::Unhealthy)
        })
    };
    wait_for(&strict, "both bad probes failed", down).await;
    wait_until_ready(&strict, 1).await;
    assert!(!strict.stats().driver_stopped);
    let before: Vec<u64> = backends.iter().map(Backend::hits).collect();
    assert_eq!(send(&mut strict, 50).await, 0);
    assert_eq!(backends[0].hits() - before[0], 50);
    // With the default threshold, 1 healthy of 3 is panic: all serve.
    let mut lb = build(&all, "round-robin", checks);
    wait_for(&lb, "panic", |s| s.unhealthy == 2 && s.panic).await;
    assert_eq!(send(&mut lb, 60).await, 0);
    assert!(backends.iter().all(|b| b.hits() > 0), "in panic all serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_stop_with_the_balancer() {
    let a = Backend::start(OK).await;
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let probe = move |_: &Endpoint| -> ProbeFuture {
        counter.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    };
    let lb = build(
        &[&a],
        "p2c",
        HealthChecks::new(probe).interval(Duration::from_millis(20)),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::Relaxed) < 5 {
        assert!(
            Instant::now() < deadline,
            "probes run with no request at all"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(lb);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_drop = count.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count.load(Ordering::Relaxed),
        after_drop,
        "no probe after the balancer is gone"
    );
}

#[test]
fn probe_settings_that_cannot_work_are_refused_at_build_time() {
    let err = Balancer::builder()
        .health_checks(HealthChecks::tcp_connect().timeout(Duration::ZERO))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid probe timeout: is zero; give it a positive duration"
    );
    let err = Balancer::builder()
        .health_checks(HealthChecks::tcp_connect().fall(0))
        .unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
}
