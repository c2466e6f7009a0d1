//! Tiers over real sockets: primaries and a backup given by the static
//! target syntax (`;backup`), `/health` switched off and on under active
//! health checks. Every wait is bounded.

#[path = "support/http.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fulcrum::Balancer;
use support::{
    body_text, get, http_maker, prompt_health_checks, server_errors, Backend, Behaviour,
};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp>;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));
const INTERVAL: Duration = Duration::from_millis(200);

/// A balancer over `primaries` and `backups`, given as a static target.
async fn build(primaries: &[Backend], backups: &[Backend]) -> Lb {
    build_with(primaries, backups, 1.4).await
}

async fn build_with(primaries: &[Backend], backups: &[Backend], overprovisioning: f64) -> Lb {
    let target: Vec<String> = primaries
        .iter()
        .map(|b| b.addr.to_string())
        .chain(backups.iter().map(|b| format!("{};backup", b.addr)))
        .collect();
    let lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .discover_target(&target.join(","))
        .unwrap()
        .classify(server_errors())
        .overprovisioning_factor(overprovisioning)
        .unwrap()
        .health_checks(prompt_health_checks(INTERVAL))
        .unwrap()
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    lb
}

/// Waits (at most 10 s) until two tiers serve.
async fn spilling_over(lb: &Lb) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lb.stats().tiers.len() != 2 {
        assert!(
            Instant::now() < deadline,
            "no spill-over: {:?}",
            lb.stats().tiers
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send(lb: &mut Lb, n: usize) {
    for _ in 0..n {
        let response = lb.ready().await.unwrap().call(get("/")).await.unwrap();
        assert!(response.status().is_success());
        body_text(response).await;
    }
}

fn hits(backends: &[Backend]) -> u64 {
    backends.iter().map(Backend::hits).sum()
}

/// The whole primary tier fails its health check: the backup takes the
/// traffic within one probe interval (plus the probe's own time); when the
/// primaries recover, the traffic returns to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_serves_while_the_primaries_are_down_and_hands_back() {
    let primaries = [Backend::start(OK).await, Backend::start(OK).await];
    let backup = [Backend::start(OK).await];
    let mut lb = build(&primaries, &backup).await;
    send(&mut lb, 40).await;
    assert_eq!(
        hits(&backup),
        0,
        "the backup idles while the primaries serve"
    );
    assert_eq!(lb.stats().tiers.len(), 1);

    for p in &primaries {
        p.healthy.store(false, Ordering::Relaxed);
    }
    let down = Instant::now();
    let deadline = down + Duration::from_secs(10);
    let mut first_to_backup = None;
    let only_backup = |lb: &Lb| {
        let tiers = lb.stats().tiers;
        tiers.len() == 1 && tiers[0].priority == 1
    };
    while !only_backup(&lb) {
        assert!(Instant::now() < deadline, "the backup never took over");
        send(&mut lb, 1).await;
        if first_to_backup.is_none() && hits(&backup) > 0 {
            first_to_backup = Some(down.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = down.elapsed();
    eprintln!(
        "primaries down: the backup took its first request after {first_to_backup:?} \
         (one primary out, 30 % spilled) and all of them after {took:?} (probe interval {INTERVAL:?})"
    );
    assert!(took < INTERVAL + Duration::from_millis(300), "{took:?}");
    let stats = lb.stats();
    assert_eq!(stats.tiers[0].share, 1.0);
    assert!(stats.tier_changes >= 1);
    let before = hits(&primaries);
    send(&mut lb, 40).await;
    assert_eq!(hits(&primaries), before, "all to the backup");

    for p in &primaries {
        p.healthy.store(true, Ordering::Relaxed);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    // Both back (with one, 30 % would still spill to the backup).
    while lb.stats().tiers.first().map(|t| (t.priority, t.share)) != Some((0, 1.0)) {
        assert!(Instant::now() < deadline, "the primaries never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = hits(&backup);
    send(&mut lb, 40).await;
    assert_eq!(hits(&backup), before, "traffic returned to the primaries");
}

/// Half of four primaries down: with an overprovisioning factor of 1.4 the
/// primaries keep 70 % of requests and 30 % spill to the backups, in
/// proportion, instead of all or nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_tier_half_down_spills_30_percent_to_the_backups() {
    let mut primaries = Vec::new();
    for _ in 0..4 {
        primaries.push(Backend::start(OK).await);
    }
    let backups = [Backend::start(OK).await, Backend::start(OK).await];
    let mut lb = build(&primaries, &backups).await;
    primaries[0].healthy.store(false, Ordering::Relaxed);
    primaries[1].healthy.store(false, Ordering::Relaxed);
    spilling_over(&lb).await;
    let tiers = lb.stats().tiers;
    assert_eq!((tiers[0].priority, tiers[1].priority), (0, 1));
    assert!((tiers[0].share - 0.7).abs() < 1e-6, "{tiers:?}");
    let (p0, b0) = (hits(&primaries), hits(&backups));
    let down0 = hits(&primaries[..2]);
    let healthy0 = (primaries[2].hits(), primaries[3].hits());
    send(&mut lb, 1000).await;
    let to_backups = (hits(&backups) - b0) as f64 / 1000.0;
    eprintln!(
        "2 of 4 primaries down: {:.1} % of requests to the backups",
        to_backups * 100.0
    );
    assert!((0.25..=0.35).contains(&to_backups), "{to_backups}");
    assert_eq!(
        hits(&primaries[..2]),
        down0,
        "the unhealthy primaries get none"
    );
    assert_eq!(hits(&primaries) - p0 + hits(&backups) - b0, 1000);
    // The healthy primaries share the 70 % evenly under round robin.
    let a = (primaries[2].hits() - healthy0.0) as f64;
    let b = (primaries[3].hits() - healthy0.1) as f64;
    assert!((a / b - 1.0).abs() < 0.1, "{a} {b}");
}

/// With an overprovisioning factor of 1.0 a tier keeps exactly its healthy
/// share: one primary of four down sends a quarter of requests to the
/// backup (at 1.4 the primaries would keep them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_overprovisioning_one_a_tier_keeps_exactly_its_healthy_share() {
    let mut primaries = Vec::new();
    for _ in 0..4 {
        primaries.push(Backend::start(OK).await);
    }
    let backups = [Backend::start(OK).await];
    let mut lb = build_with(&primaries, &backups, 1.0).await;
    send(&mut lb, 40).await;
    assert_eq!(
        hits(&backups),
        0,
        "all four healthy: the primaries keep it all"
    );
    primaries[0].healthy.store(false, Ordering::Relaxed);
    spilling_over(&lb).await;
    let tiers = lb.stats().tiers;
    assert!((tiers[0].share - 0.75).abs() < 1e-6, "{tiers:?}");
    let b0 = hits(&backups);
    send(&mut lb, 1000).await;
    let to_backup = (hits(&backups) - b0) as f64 / 1000.0;
    assert!((0.20..=0.30).contains(&to_backup), "{to_backup}");
}
