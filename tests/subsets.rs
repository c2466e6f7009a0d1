//! Subsets over real sockets: reads to replicas, writes to the primary (a
//! database router's shape), endpoints labelled by the static target
//! syntax (`;role=replica`), and the fallback rules when no replica can
//! serve — static, and while replicas fail and recover their health check.
//! Every wait is bounded.

#[path = "support/http.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use fulcrum::stats::SubsetRoute;
use fulcrum::subset::{Fallback, Routed, Selector, Subset, Subsets};
use fulcrum::{Balancer, Error, ErrorKind, NoEndpointsReason};
use http_body_util::Empty;
use hyper::{Method, Request};
use support::{body_text, http_maker, prompt_health_checks, server_errors, Backend, Behaviour};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

type Req = Request<Empty<Bytes>>;
type Lb = Balancer<
    support::EndpointClient,
    Routed<fulcrum::key::NoKey, Req>,
    fulcrum::classify::ClassifyHttp,
>;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));
const INTERVAL: Duration = Duration::from_millis(200);

fn is_read(req: &Req) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD)
}

/// `primary` fails its requests when it cannot serve; `replicas` fall
/// back to `replicas_fallback`.
fn subsets(replicas_fallback: Fallback) -> Subsets<Req> {
    Subsets::new()
        .subset(Subset::new("primary", Selector::label("role", "primary")))
        .subset(
            Subset::new("replicas", Selector::label("role", "replica")).fallback(replicas_fallback),
        )
        .route("replicas", is_read)
        .route("primary", |req: &Req| !is_read(req))
}

/// A balancer over one primary and `replicas`, labelled in the target.
async fn build(primary: &Backend, replicas: &[Backend], fallback: Fallback) -> Lb {
    let target: Vec<String> = std::iter::once(format!("{};role=primary", primary.addr))
        .chain(replicas.iter().map(|b| format!("{};role=replica", b.addr)))
        .collect();
    build_over(&target, subsets(fallback)).await
}

/// A balancer over `target`'s entries, health-checked every [`INTERVAL`],
/// with `subsets`.
async fn build_over(target: &[String], subsets: Subsets<Req>) -> Lb {
    let lb = Balancer::builder()
        .discover_target(&target.join(","))
        .unwrap()
        .classify(server_errors())
        .health_checks(prompt_health_checks(INTERVAL))
        .unwrap()
        .subsets(subsets)
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    lb
}

fn read() -> Req {
    Request::get("/").body(Empty::new()).unwrap()
}

fn write() -> Req {
    Request::post("/").body(Empty::new()).unwrap()
}

async fn send(lb: &mut Lb, req: Req) -> Result<(), Error> {
    let response = lb.ready().await?.call(req).await?;
    assert!(response.status().is_success());
    body_text(response).await;
    Ok(())
}

fn routed_to(lb: &Lb, subset: &str) -> SubsetRoute {
    let stats = lb.stats();
    let s = stats.subsets.iter().find(|s| s.name == subset).unwrap();
    s.routed_to.clone()
}

/// Waits (at most 10 s) until the replicas' requests go to `route`.
async fn until_routed(lb: &Lb, route: SubsetRoute, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while routed_to(lb, "replicas") != route {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_reach_only_replicas_and_writes_only_the_primary() {
    let primary = Backend::start(OK).await;
    let replicas = [Backend::start(OK).await, Backend::start(OK).await];
    let mut lb = build(&primary, &replicas, Fallback::subset("primary")).await;
    for i in 0..300 {
        let req = if i % 3 == 0 { write() } else { read() };
        send(&mut lb, req).await.unwrap();
    }
    assert_eq!(primary.hits(), 100, "every write, and only writes");
    let reads: Vec<u64> = replicas.iter().map(Backend::hits).collect();
    assert_eq!(reads.iter().sum::<u64>(), 200, "every read: {reads:?}");
    assert!(
        reads.iter().all(|&r| r > 0),
        "both replicas read: {reads:?}"
    );
    let stats = lb.stats();
    assert_eq!(stats.subsets.len(), 2);
    assert_eq!(stats.subsets[1].members, 2);
    assert_eq!(stats.subsets[1].healthy, 2);
    assert_eq!(routed_to(&lb, "replicas"), SubsetRoute::Own);
    assert_eq!(stats.subset_changes, 0);
}

/// With no replica in the set, reads follow the fallback: to the primary,
/// or a typed error at once (no wait, no hang) while writes still go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_replica_the_fallback_rule_applies() {
    let primary = Backend::start(OK).await;

    let mut lb = build(&primary, &[], Fallback::subset("primary")).await;
    for _ in 0..20 {
        send(&mut lb, read()).await.unwrap();
    }
    assert_eq!(primary.hits(), 20, "reads fell back to the primary");
    assert_eq!(
        routed_to(&lb, "replicas"),
        SubsetRoute::Subset("primary".into())
    );
    drop(lb);

    let mut lb = build(&primary, &[], Fallback::Fail).await;
    let began = Instant::now();
    let err = send(&mut lb, read()).await.unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "failed at once, not after the readiness deadline: {:?}",
        began.elapsed()
    );
    match err.kind() {
        ErrorKind::NoEndpoints(e) => assert_eq!(e.reason(), NoEndpointsReason::SubsetEmpty),
        other => panic!("expected NoEndpoints(SubsetEmpty), got {other:?}"),
    }
    assert!(err.to_string().contains("subset"), "{err}");
    assert_eq!(routed_to(&lb, "replicas"), SubsetRoute::Fail);
    send(&mut lb, write()).await.unwrap();
    assert_eq!(primary.hits(), 21, "writes unaffected, the read never sent");
    assert!(!lb.stats().fail_fast, "a subset's failure is not an outage");
}

/// Replicas fail their health check: reads move to the primary within a
/// probe interval, with no failed read; when the replicas recover, reads
/// return to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fall_back_while_replicas_are_down_and_return() {
    let primary = Backend::start(OK).await;
    let replicas = [Backend::start(OK).await, Backend::start(OK).await];
    let mut lb = build(&primary, &replicas, Fallback::subset("primary")).await;
    for _ in 0..20 {
        send(&mut lb, read()).await.unwrap();
    }
    assert_eq!(primary.hits(), 0);

    for r in &replicas {
        r.healthy.store(false, Ordering::Relaxed);
    }
    let down = Instant::now();
    let deadline = down + Duration::from_secs(10);
    while routed_to(&lb, "replicas") != SubsetRoute::Subset("primary".into()) {
        assert!(Instant::now() < deadline, "reads never fell back");
        send(&mut lb, read())
            .await
            .expect("no read fails meanwhile");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = down.elapsed();
    eprintln!("replicas down: reads fell back to the primary after {took:?} (probe interval {INTERVAL:?})");
    assert!(took < INTERVAL + Duration::from_millis(800), "{took:?}");
    let before = primary.hits();
    for _ in 0..20 {
        send(&mut lb, read()).await.unwrap();
    }
    assert_eq!(primary.hits(), before + 20, "reads on the primary");

    for r in &replicas {
        r.healthy.store(true, Ordering::Relaxed);
    }
    until_routed(&lb, SubsetRoute::Own, "reads never returned").await;
    let before = primary.hits();
    for _ in 0..20 {
        send(&mut lb, read()).await.unwrap();
    }
    assert_eq!(primary.hits(), before, "reads back on the replicas");
    assert!(lb.stats().subset_changes >= 2);
}

/// `key` after `subsets` replaces the routes: the subsets are dropped, not
/// left in stats while nothing is routed.
#[tokio::test]
async fn a_key_set_after_the_subsets_drops_them_visibly() {
    let lb = Balancer::builder()
        .endpoints([fulcrum::Endpoint::new(([127, 0, 0, 1], 1).into())])
        .subsets(subsets(Fallback::Fail))
        .unwrap()
        .key(|_: &Req| Some(1))
        .build(http_maker());
    assert!(lb.stats().subsets.is_empty());
}

/// A route predicate is user code: one that panics fails its request with
/// a typed error, and the balancer goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_route_fails_only_its_request() {
    let primary = Backend::start(OK).await;
    let lb = Balancer::builder()
        .discover_target(&format!("{};role=primary", primary.addr))
        .unwrap()
        .subsets(
            Subsets::new()
                .subset(Subset::new("primary", Selector::label("role", "primary")))
                .route("primary", |req: &Req| {
                    assert!(req.uri().path() != "/boom", "route bug");
                    true
                }),
        )
        .unwrap()
        .build(http_maker());
    let mut lb = lb;
    let req = Request::get("/boom").body(Empty::new()).unwrap();
    let err = lb.ready().await.unwrap().call(req).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Panicked { what: "subset route", message } if message.contains("route bug")),
        "{err:?}"
    );
    let response = lb.ready().await.unwrap().call(read()).await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(primary.hits(), 1);
}

/// A retry of a read goes to another replica, never out of its subset to
/// the primary; a write's retry with a single primary goes to it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stay_inside_the_subset() {
    use fulcrum::retry::{RetryIdempotent, RetryLayer};
    use tower::Layer;

    let primary = Backend::start(OK).await;
    let replicas = [
        Backend::start(Behaviour::Unavailable).await,
        Backend::start(OK).await,
    ];
    let target = format!(
        "{};role=primary,{};role=replica,{};role=replica",
        primary.addr, replicas[0].addr, replicas[1].addr
    );
    let lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .discover_target(&target)
        .unwrap()
        .classify(server_errors())
        .subsets(subsets(Fallback::subset("primary")))
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let mut client = RetryLayer::new(RetryIdempotent).layer(lb.clone());
    for _ in 0..40 {
        let response = client.ready().await.unwrap().call(read()).await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        body_text(response).await;
    }
    assert_eq!(primary.hits(), 0, "no read left the replicas");
    assert_eq!(replicas[1].hits(), 40);
    assert!(replicas[0].hits() > 0, "the failing replica was tried");
    assert!(lb.stats().retries > 0);
}

/// A subset is balanced as a set of its own: when its preferred tier has
/// no healthy endpoint, its requests spill to its own backup tier, even
/// while the set's preferred tier as a whole stays healthy enough to keep
/// all the set's traffic (3 of 4 healthy, × 1.4 overprovisioning). Decided
/// over the whole set instead, the backup replica would never serve and
/// reads (fallback `Fail`) would fail. Requests with no route (writes here)
/// stay on the set's endpoints. With every replica down, reads fail at
/// once rather than go to a replica known to be down; when the replica
/// recovers, reads return to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_spills_to_its_own_backup_tier() {
    let primaries = [
        Backend::start(OK).await,
        Backend::start(OK).await,
        Backend::start(OK).await,
    ];
    let replica = Backend::start(OK).await;
    let backup = Backend::start(OK).await;
    let mut target: Vec<String> = primaries
        .iter()
        .map(|b| format!("{};role=primary", b.addr))
        .collect();
    target.push(format!("{};role=replica", replica.addr));
    target.push(format!("{};backup;role=replica", backup.addr));
    let replicas_only = Subsets::new()
        .subset(Subset::new("replicas", Selector::label("role", "replica")))
        .route("replicas", is_read);
    let mut lb = build_over(&target, replicas_only).await;
    for _ in 0..20 {
        send(&mut lb, read()).await.unwrap();
    }
    assert_eq!(
        (replica.hits(), backup.hits()),
        (20, 0),
        "the replica's tier first"
    );

    replica.healthy.store(false, Ordering::Relaxed);
    let down = Instant::now();
    let deadline = down + Duration::from_secs(10);
    let mut failed = 0;
    while backup.hits() == 0 {
        assert!(
            Instant::now() < deadline,
            "reads never reached the backup replica"
        );
        if send(&mut lb, read()).await.is_err() {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "replica down: reads on the backup replica after {:?}, {failed} failed",
        down.elapsed()
    );
    assert_eq!(
        failed, 0,
        "reads went on while the replica was still checked healthy"
    );
    let before = (replica.hits(), backup.hits());
    for _ in 0..20 {
        send(&mut lb, read()).await.unwrap();
        send(&mut lb, write()).await.unwrap();
    }
    assert_eq!(
        replica.hits(),
        before.0,
        "nothing to the replica that is down"
    );
    assert_eq!(
        backup.hits(),
        before.1 + 20,
        "every read, and only reads, on the backup"
    );
    assert_eq!(routed_to(&lb, "replicas"), SubsetRoute::Own);
    let primary_hits: u64 = primaries.iter().map(Backend::hits).sum();
    assert_eq!(primary_hits, 20, "the writes, on the set's own tier");

    // Every replica down: reads fail at once, none is sent to a replica.
    backup.healthy.store(false, Ordering::Relaxed);
    until_routed(&lb, SubsetRoute::Fail, "reads never stopped").await;
    let before = (replica.hits(), backup.hits());
    for _ in 0..10 {
        let err = send(&mut lb, read()).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::NoEndpoints(e) if e.reason() == NoEndpointsReason::SubsetEmpty),
            "{err:?}"
        );
    }
    assert_eq!(
        (replica.hits(), backup.hits()),
        before,
        "no read to a replica known down"
    );

    replica.healthy.store(true, Ordering::Relaxed);
    until_routed(&lb, SubsetRoute::Own, "reads never returned").await;
    let before = (replica.hits(), backup.hits());
    for _ in 0..20 {
        send(&mut lb, read()).await.unwrap();
    }
    assert_eq!(
        (replica.hits(), backup.hits()),
        (before.0 + 20, before.1),
        "reads back on the replica's tier"
    );
}
