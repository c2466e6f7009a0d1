//! Overload over real sockets: a backend that sheds load with 429 and
//! `Retry-After` takes a small share of requests until its `Retry-After`
//! has passed, is never ejected, and takes its full share again afterwards.
//! Every wait is bounded.

#[path = "support/http.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fulcrum::{Balancer, Endpoint, EndpointState};
use support::{body_text, get, http_maker, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp>;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));

/// Sends `n` requests one after another, or as many as fit before
/// `until`; returns how many were sent and how many answered 429.
async fn send(lb: &mut Lb, n: usize, until: Option<Instant>) -> (usize, usize) {
    let mut shed = 0;
    for sent in 0..n {
        if until.is_some_and(|until| Instant::now() >= until) {
            return (sent, shed);
        }
        let response = lb.ready().await.unwrap().call(get("/")).await.unwrap();
        shed += usize::from(response.status().as_u16() == 429);
        body_text(response).await;
    }
    (n, shed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_shedding_load_takes_little_until_its_retry_after_passes() {
    for policy in ["round-robin", "p2c", "ewma"] {
        let backends = [
            Backend::start(OK).await,
            Backend::start(OK).await,
            Backend::start(Behaviour::Shedding(3)).await,
        ];
        let mut lb: Lb = Balancer::builder()
            .policy_name(policy)
            .unwrap()
            .endpoints(backends.iter().map(|b| Endpoint::new(b.addr)))
            .classify(server_errors())
            .build(http_maker());
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let shedder = &backends[2];
        shedder.healthy.store(false, Ordering::Relaxed);

        // Its first 429 cuts its share for the 3 s it asked for. The
        // requests stop well inside that window however slow the machine.
        let began = Instant::now();
        let before = shedder.hits();
        let (sent, shed) = send(&mut lb, 300, Some(began + Duration::from_millis(2_000))).await;
        let during = shedder.hits() - before;
        let took = began.elapsed();
        let stats = lb.stats();
        let endpoint = stats.endpoint(shedder.addr).unwrap();
        eprintln!(
            "{policy}: while shedding, {during} of {sent} requests reached it ({shed} answered \
             429) in {took:?}; overloads {}",
            endpoint.overloads
        );
        assert!(sent >= 60, "{policy}: only {sent} requests in {took:?}");
        assert!(
            // A few go before the driver has seen the first 429, however
            // many are sent; after that about one in twenty.
            during >= 1 && during <= sent as u64 / 10 + 10 && during < sent as u64 / 3,
            "{policy}: {during} of {sent} (a third would be {})",
            sent / 3
        );
        assert_eq!(
            endpoint.state,
            EndpointState::Active,
            "overloaded, not ejected"
        );
        assert_eq!(stats.ejected, 0);

        assert!(endpoint.overloaded_for_ms.is_some());
        assert!(
            endpoint.share.is_some_and(|s| s < 0.1),
            "{:?}",
            endpoint.share
        );

        // It recovers: each 429 pushed its end back by 3 s; once the last
        // one has passed it takes its share again.
        shedder.healthy.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        while lb.stats().endpoint(shedder.addr).unwrap().share.is_some() {
            assert!(
                Instant::now() < deadline,
                "{policy}: its share never came back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let back = began.elapsed();
        assert!(
            back >= Duration::from_secs(3),
            "{policy}: back after {back:?}"
        );
        // Four callers at once, so load counts as well as latency: with
        // sequential calls `ewma` ranks three 1 ms backends by noise alone
        // and may give any one of them far more or far less than a third.
        let before = shedder.hits();
        let callers = (0..4).map(|_| {
            let mut lb = lb.clone();
            tokio::spawn(async move { send(&mut lb, 75, None).await })
        });
        for caller in futures_util::future::join_all(callers).await {
            assert_eq!(caller.unwrap(), (75, 0));
        }
        let after = shedder.hits() - before;
        eprintln!("{policy}: back after {back:?}; then {after} of 300");
        assert!(after >= 45, "{policy}: back to its share, {after} of 300");
    }
}
