//! Health over real sockets: hyper servers on loopback that fail, hang or
//! die, a fulcrum balancer over per-endpoint hyper-util clients, and
//! outlier detection with short intervals. Every load loop is bounded in
//! count and time.

#[path = "support/http.rs"]
mod support;

use std::time::Duration;

use fulcrum::health::{EjectionReason, OutlierDetection};
use fulcrum::{Balancer, Endpoint};
use support::{body_text, get, http_maker, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp>;

async fn start(behaviours: &[Behaviour]) -> Vec<Backend> {
    let mut backends = Vec::new();
    for &b in behaviours {
        backends.push(Backend::start(b).await);
    }
    backends
}

fn builder(
    backends: &[Backend],
    policy: &str,
) -> fulcrum::Builder<fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp> {
    Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .seed(7)
        .endpoints(backends.iter().map(|b| Endpoint::new(b.addr)))
        .classify(server_errors())
}

/// `tasks` callers send up to `per_task` requests each, each with a
/// `timeout` above the balancer, stopping early when `until` says so or
/// after `limit`. Returns (requests, failed: errors, non-2xx, timeouts).
async fn load(
    lb: &Lb,
    tasks: usize,
    per_task: usize,
    timeout: Duration,
    limit: Duration,
    until: impl Fn(&Lb) -> bool + Clone + Send + 'static,
) -> (u64, u64) {
    let deadline = Instant::now() + limit;
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let mut lb = lb.clone();
            let until = until.clone();
            tokio::spawn(async move {
                let (mut sent, mut failed) = (0u64, 0u64);
                for _ in 0..per_task {
                    if Instant::now() > deadline || until(&lb) {
                        break;
                    }
                    sent += 1;
                    let call = async {
                        let response = lb.ready().await?.call(get("/")).await?;
                        let ok = response.status().is_success();
                        body_text(response).await;
                        Ok::<bool, fulcrum::Error>(ok)
                    };
                    match tokio::time::timeout(timeout, call).await {
                        Ok(Ok(true)) => {}
                        _ => failed += 1,
                    }
                }
                (sent, failed)
            })
        })
        .collect();
    let mut totals = (0, 0);
    for h in handles {
        let (s, f) = h.await.unwrap();
        totals.0 += s;
        totals.1 += f;
    }
    totals
}

fn never(_: &Lb) -> bool {
    false
}

/// [`load`] until the endpoint at `addr` has been ejected.
async fn until_ejected(
    lb: &Lb,
    addr: std::net::SocketAddr,
    tasks: usize,
    per_task: usize,
    timeout: Duration,
) -> (u64, u64) {
    let ejected = move |lb: &Lb| lb.stats().endpoint(addr).unwrap().ejections > 0;
    load(
        lb,
        tasks,
        per_task,
        timeout,
        Duration::from_secs(20),
        ejected,
    )
    .await
}

/// [`load`] to the end: 2 s per request, 20 s in all.
async fn steady(lb: &Lb, tasks: usize, per_task: usize) -> (u64, u64) {
    load(
        lb,
        tasks,
        per_task,
        Duration::from_secs(2),
        Duration::from_secs(20),
        never,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_failing_30_percent_is_ejected_by_success_rate_and_one_failing_1_percent_is_not()
{
    use Behaviour::*;
    let ok = Delay(Duration::from_millis(1));
    let backends = start(&[ok, ok, ok, ok, Failing(1), Failing(30)]).await;
    let (one, thirty) = (backends[4].addr, backends[5].addr);
    let od = OutlierDetection::default()
        .consecutive_failures(0)
        .interval(Duration::from_millis(500))
        .success_rate_volume(40)
        .failure_percent(None);
    let lb = builder(&backends, "round-robin")
        .outlier_detection(od)
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let (sent, _) = until_ejected(&lb, thirty, 6, 2_000, Duration::from_secs(2)).await;
    let stats = lb.stats();
    let (s1, s30) = (
        stats.endpoint(one).unwrap(),
        stats.endpoint(thirty).unwrap(),
    );
    eprintln!("after {sent} requests: 1 %: {s1:?}\n30 %: {s30:?}");
    assert_eq!(s30.ejected, Some(EjectionReason::SuccessRate), "{s30:?}");
    assert_eq!(s1.ejections, 0, "{s1:?}");
    assert_eq!(stats.ejected, 1);
    // Ejected for 15–30 s: it gets nothing now.
    let before = backends[5].hits();
    let (more, failed) = steady(&lb, 4, 100).await;
    assert_eq!(
        backends[5].hits(),
        before,
        "an ejected backend got requests"
    );
    // Only the 1 % backend fails now: about 1 in 500.
    assert!(failed * 50 <= more, "{failed} of {more} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_hangs_is_ejected() {
    use Behaviour::*;
    let ok = Delay(Duration::from_millis(1));
    let backends = start(&[ok, ok, ok, ok, Hang]).await;
    let hung = backends[4].addr;
    let lb = builder(&backends, "round-robin").build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    // The callers give up after 100 ms: cancelled requests count as
    // failures for outlier detection.
    let (sent, failed) = until_ejected(&lb, hung, 4, 500, Duration::from_millis(100)).await;
    let s = lb.stats();
    let hs = s.endpoint(hung).unwrap();
    eprintln!("{failed} of {sent} timed out before the ejection: {hs:?}");
    assert_eq!(
        hs.ejected,
        Some(EjectionReason::ConsecutiveFailures),
        "{hs:?}"
    );
    // The threshold, the requests in flight on it when it was ejected (at
    // most one per caller), and those dispatched while the driver acted.
    assert!(failed <= 5 + 4 + 3, "{failed} timed out");
    let (more, failed) = steady(&lb, 4, 100).await;
    assert_eq!((more, failed), (400, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_of_five_failing_the_maximum_ejection_percentage_and_the_panic_threshold() {
    use Behaviour::*;
    let ok = Delay(Duration::from_millis(1));
    let failing = Failing(100);
    let behaviours = [ok, failing, failing, failing, failing];

    // Default: at most 10 % (at least one) ejected; no panic.
    let backends = start(&behaviours).await;
    let lb = builder(&backends, "round-robin").build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let mut max_ejected = 0;
    for _ in 0..10 {
        steady(&lb, 4, 25).await;
        let s = lb.stats();
        max_ejected = max_ejected.max(s.ejected);
        assert!(!s.panic);
    }
    assert_eq!(max_ejected, 1, "max ejection percent 10 % of 5 is 1");

    // All may be ejected: after four ejections one of five is healthy
    // (20 % < 50 %), so the tier panics and every endpoint serves again.
    let backends = start(&behaviours).await;
    let od = OutlierDetection::default().max_ejection_percent(100);
    let lb = builder(&backends, "round-robin")
        .outlier_detection(od.clone())
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let all_four = |lb: &Lb| lb.stats().ejected == 4;
    // 4 callers, 500 requests each at most.
    let load_until = |lb, until| {
        load(
            lb,
            4,
            500,
            Duration::from_secs(2),
            Duration::from_secs(20),
            until,
        )
    };
    load_until(&lb, all_four).await;
    // The driver publishes the panic right after the fourth ejection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lb.stats().panic && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = lb.stats();
    assert_eq!((s.ejected, s.panic), (4, true), "{s:?}");
    let before: u64 = backends[1..].iter().map(Backend::hits).sum();
    steady(&lb, 2, 50).await;
    let after: u64 = backends[1..].iter().map(Backend::hits).sum();
    assert!(
        after - before >= 40,
        "in panic the ejected backends serve: {}",
        after - before
    );

    // Without panic mode the healthy one takes everything.
    let backends = start(&behaviours).await;
    let lb = builder(&backends, "round-robin")
        .outlier_detection(od)
        .unwrap()
        .panic_threshold(0.0)
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    load_until(&lb, all_four).await;
    let s = lb.stats();
    assert_eq!((s.ejected, s.panic), (4, false));
    let (sent, failed) = steady(&lb, 2, 50).await;
    assert_eq!((sent, failed), (100, 0));
}

/// Retries off: a backend killed under load costs at most the requests in
/// flight on it at the moment plus the consecutive-failure threshold. (Its
/// first refused connection takes it out of service; a long backoff keeps
/// it out for the rest of the run, as a dead process stays dead.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_under_load_costs_at_most_its_requests_in_flight() {
    for policy in ["round-robin", "p2c", "ewma"] {
        let ok = Behaviour::Delay(Duration::from_millis(2));
        let backends = start(&[ok, ok, ok]).await;
        let lb = builder(&backends, policy)
            .backoff(fulcrum::Backoff {
                base: Duration::from_secs(60),
                max: Duration::from_secs(60),
            })
            .build(http_maker());
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let victim = backends[2].addr;
        let load_task = {
            let lb = lb.clone();
            tokio::spawn(async move { steady(&lb, 8, 400).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let in_flight = lb.stats().endpoint(victim).unwrap().in_flight;
        backends[2].kill();
        let (sent, failed) = load_task.await.unwrap();
        let vs = lb.stats();
        let vs = vs.endpoint(victim).unwrap();
        eprintln!("{policy}: {failed} of {sent} failed; {in_flight} were in flight on the killed backend: {vs:?}");
        assert!(sent > 1000);
        // In flight at the kill (at most 8, the callers) and the threshold.
        assert!(failed <= 8 + 5, "{policy}: {failed} failed");
    }
}

/// A response body dropped half-read is not a failure for outlier
/// detection: the endpoint answered. (Checking a status and dropping the
/// body is common.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_dropped_half_read_eject_nobody() {
    let backends = start(&[Behaviour::Stream(3), Behaviour::Stream(3)]).await;
    let mut lb = builder(&backends, "round-robin").build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    for _ in 0..12 {
        let response = lb.ready().await.unwrap().call(get("/")).await.unwrap();
        assert!(response.status().is_success());
        drop(response);
    }
    let s = lb.stats();
    for b in &backends {
        let e = s.endpoint(b.addr).unwrap();
        assert_eq!(
            (e.cancelled, e.ejections, e.failures_in_a_row),
            (6, 0, 0),
            "{e:?}"
        );
    }
}
