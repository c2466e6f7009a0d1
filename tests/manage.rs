//! Manual control over real sockets: a rolling update under load with no
//! failed request, drain waiting for a streamed body, and disable, enable
//! and weights that outlive set updates. Every load loop is bounded.

#[path = "support/http.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum::{Balancer, Endpoint, EndpointSet, EndpointState, ManageError};
use support::{body_text, get, http_maker, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp>;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(2));

fn set(backends: &[&Backend]) -> EndpointSet {
    EndpointSet::new(backends.iter().map(|b| Endpoint::new(b.addr)))
}

fn build(policy: &str, updates: fulcrum::Updates) -> Lb {
    Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .seed(5)
        .updates(updates)
        .classify(server_errors())
        .build(http_maker())
}

async fn wait_for(lb: &Lb, what: &str, condition: impl Fn(&fulcrum::Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition(&lb.stats()) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends `n` requests one after another; returns how many failed.
async fn send(lb: &mut Lb, n: usize) -> usize {
    let mut failed = 0;
    for _ in 0..n {
        let call = async {
            let r = lb.ready().await?.call(get("/")).await?;
            let ok = r.status().is_success();
            body_text(r).await;
            Ok::<_, fulcrum::Error>(ok)
        };
        if !matches!(
            tokio::time::timeout(Duration::from_secs(2), call).await,
            Ok(Ok(true))
        ) {
            failed += 1;
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_under_load_fails_no_request() {
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(Backend::start(OK).await);
    }
    let (updater, updates) = fulcrum::channel(set(&live.iter().collect::<Vec<_>>()));
    let lb = build("ewma", updates);
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let manager = lb.manager();

    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let mut lb = lb.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                let (mut sent, mut failed) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && sent < 200_000 {
                    sent += 1;
                    failed += send(&mut lb, 1).await;
                }
                (sent, failed)
            })
        })
        .collect();

    let mut replaced = Vec::new();
    for _ in 0..3 {
        // Add the new instance, wait until it serves...
        let new = Backend::start(OK).await;
        let mut with_new: Vec<&Backend> = live.iter().collect();
        with_new.push(&new);
        updater.update(set(&with_new));
        wait_for(&lb, "the new instance serves", |s| {
            s.endpoint(new.addr)
                .is_some_and(|e| e.state == EndpointState::Active)
        })
        .await;
        // ...drain the oldest, remove it from the set, and stop it.
        let old = live.remove(0);
        tokio::time::timeout(Duration::from_secs(10), manager.drain(old.addr))
            .await
            .expect("the drain ends once its requests have")
            .unwrap();
        let hits_at_drain = old.hits();
        live.push(new);
        updater.update(set(&live.iter().collect::<Vec<_>>()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        old.kill();
        assert_eq!(
            old.hits(),
            hits_at_drain,
            "a drained endpoint takes no new request"
        );
        replaced.push(old);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut sent, mut failed) = (0, 0);
    for c in callers {
        let (s, f) = c.await.unwrap();
        sent += s;
        failed += f;
    }
    eprintln!("rolling update: {sent} requests, {failed} failed");
    assert_eq!(failed, 0, "of {sent}");
    assert!(live.iter().all(|b| b.hits() > 0), "the new instances serve");
    assert!(replaced.iter().all(|b| b.hits() > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_waits_for_the_end_of_a_streamed_body() {
    let streaming = Backend::start(Behaviour::Stream(8)).await;
    let (_updater, updates) = fulcrum::channel(set(&[&streaming]));
    let mut lb = build("p2c", updates);
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let response = lb.ready().await.unwrap().call(get("/")).await.unwrap();
    let body_done = Arc::new(AtomicBool::new(false));
    let done = body_done.clone();
    let reader = tokio::spawn(async move {
        let text = body_text(response).await;
        done.store(true, Ordering::SeqCst);
        text
    });
    tokio::time::timeout(Duration::from_secs(10), lb.manager().drain(streaming.addr))
        .await
        .unwrap()
        .unwrap();
    assert!(
        body_done.load(Ordering::SeqCst),
        "drain ended before the body did"
    );
    assert_eq!(reader.await.unwrap().matches("chunk;").count(), 8);
    assert_eq!(
        lb.stats().endpoint(streaming.addr).unwrap().state,
        EndpointState::Disabled
    );
    // Nothing else to pick: a new request waits, then fails with a typed error.
    let err = tokio::time::timeout(Duration::from_secs(10), async {
        lb.ready().await.map(drop)
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains("no endpoint"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_enable_and_weights_outlive_set_updates_but_not_the_address_leaving() {
    let (a, b) = (Backend::start(OK).await, Backend::start(OK).await);
    let (updater, updates) = fulcrum::channel(set(&[&a, &b]));
    let mut lb = build("weighted-round-robin", updates);
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let manager = lb.manager();

    manager.set_weight(b.addr, 3).await.unwrap();
    wait_for(&lb, "the weight applies", |s| {
        s.endpoint(b.addr).unwrap().weight_override == Some(3)
    })
    .await;
    let (a0, b0) = (a.hits(), b.hits());
    assert_eq!(send(&mut lb, 400).await, 0);
    assert_eq!((a.hits() - a0, b.hits() - b0), (100, 300), "weights 1 : 3");

    manager.disable(a.addr).await.unwrap();
    // Discovery re-sends the set with a new weight for a: still disabled.
    let version = lb.counts().version;
    updater.update(EndpointSet::new([
        Endpoint::new(a.addr).with_weight(2),
        Endpoint::new(b.addr),
    ]));
    wait_for(&lb, "the update is applied", |s| {
        s.version > version && s.endpoint(a.addr).unwrap().weight == 2
    })
    .await;
    assert_eq!(
        lb.stats().endpoint(a.addr).unwrap().state,
        EndpointState::Disabled
    );
    let a1 = a.hits();
    assert_eq!(send(&mut lb, 100).await, 0);
    assert_eq!(a.hits(), a1, "disabled, whatever discovery says");

    manager.enable(a.addr).await.unwrap();
    manager.reset_weight(b.addr).await.unwrap();
    wait_for(&lb, "a is enabled", |s| {
        s.endpoint(a.addr).unwrap().state == EndpointState::Active
    })
    .await;
    let (a2, b2) = (a.hits(), b.hits());
    assert_eq!(send(&mut lb, 300).await, 0);
    assert_eq!(
        (a.hits() - a2, b.hits() - b2),
        (200, 100),
        "discovery's weights 2 : 1 again"
    );

    // An address that leaves the set forgets its overrides: a new instance
    // on it (a reused pod IP) starts afresh.
    manager.disable(a.addr).await.unwrap();
    updater.update(set(&[&b]));
    wait_for(&lb, "a has left", |s| s.endpoint(a.addr).is_none()).await;
    updater.update(set(&[&a, &b]));
    wait_for(&lb, "a is back, enabled", |s| {
        s.endpoint(a.addr)
            .is_some_and(|e| e.state == EndpointState::Active && !e.disabled)
    })
    .await;

    let nowhere = "127.0.0.1:9".parse().unwrap();
    let err = manager.disable(nowhere).await.unwrap_err();
    assert_eq!(err, ManageError::UnknownEndpoint(nowhere));
    assert!(err.to_string().contains("stats()"), "{err}");
    drop(lb);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        manager.enable(a.addr).await,
        Err(ManageError::DriverStopped)
    );
}
