//! Deterministic subsetting over real sockets: each client balances over
//! its own subset of the endpoints, the one `Subsetting::select` computes
//! (so it can be checked offline), spread evenly across clients, and kept
//! when endpoints it does not use come and go. Every wait is bounded.

#[path = "support/http.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use fulcrum::subsetting::Subsetting;
use fulcrum::{Balancer, Endpoint, EndpointSet};
use support::{body_text, get, http_maker, Backend, Behaviour};
use tower::{Service, ServiceExt};

const OK: Behaviour = Behaviour::Delay(Duration::ZERO);

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, fulcrum::classify::ClassifyHttp>;

fn set_of(backends: &[Backend]) -> EndpointSet {
    EndpointSet::new(backends.iter().map(|b| Endpoint::new(b.addr)))
}

async fn client(updates: fulcrum::Updates, subsetting: Subsetting) -> Lb {
    let lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .updates(updates)
        .subsetting(subsetting)
        .classify(support::server_errors())
        .build(http_maker());
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    lb
}

/// The backends that answered `n` requests from `lb`.
async fn reached(lb: &mut Lb, backends: &[Backend], n: usize) -> BTreeSet<SocketAddr> {
    let before: Vec<u64> = backends.iter().map(Backend::hits).collect();
    for _ in 0..n {
        let response = lb.ready().await.unwrap().call(get("/")).await.unwrap();
        assert!(response.status().is_success());
        body_text(response).await;
    }
    backends
        .iter()
        .zip(before)
        .filter(|(b, before)| b.hits() > *before)
        .map(|(b, _)| b.addr)
        .collect()
}

fn addrs(set: &EndpointSet) -> BTreeSet<SocketAddr> {
    set.iter().map(|e| e.addr()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_uses_its_own_subset_and_keeps_it_through_unrelated_churn() {
    let mut backends = Vec::new();
    for _ in 0..8 {
        backends.push(Backend::start(OK).await);
    }
    let full = set_of(&backends);
    for id in ["orders-0", "orders-1"] {
        let subsetting = Subsetting::rendezvous(id, 3).unwrap();
        let expected = addrs(&subsetting.select(&full));
        assert_eq!(expected.len(), 3);
        let (tx, rx) = fulcrum::channel(full.clone());
        let mut lb = client(rx, subsetting.clone()).await;
        assert_eq!(lb.stats().endpoints.len(), 3, "{id}");
        let hit = reached(&mut lb, &backends, 60).await;
        assert_eq!(hit, expected, "{id}: only its subset, all of it");

        // One of its endpoints leaves: one replaces it, the other two stay,
        // as `select` computes for the new set.
        let gone = *expected.iter().next().unwrap();
        let fewer = EndpointSet::new(full.iter().filter(|e| e.addr() != gone).cloned());
        let now = addrs(&subsetting.select(&fewer));
        assert_eq!(now.intersection(&expected).count(), 2, "{id}");
        tx.update(fewer.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while lb.stats().endpoint(gone).is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id}: update never applied"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let hit = reached(&mut lb, &backends, 60).await;
        assert_eq!(hit, now, "{id}: its new subset, and only that");

        // An endpoint it does not use leaves: its subset stays.
        let unused = backends
            .iter()
            .find(|b| !now.contains(&b.addr) && b.addr != gone)
            .unwrap();
        let fewer_still =
            EndpointSet::new(fewer.iter().filter(|e| e.addr() != unused.addr).cloned());
        assert_eq!(addrs(&subsetting.select(&fewer_still)), now, "{id}");
    }
}

/// Four clients at coordinates 0–3 of 4, subsets of two on average, over
/// eight endpoints: every endpoint serves exactly one client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_subsetting_gives_every_endpoint_its_share_of_clients() {
    let mut backends = Vec::new();
    for _ in 0..8 {
        backends.push(Backend::start(OK).await);
    }
    let mut clients_of = std::collections::BTreeMap::<SocketAddr, u32>::new();
    for index in 0..4 {
        let (_tx, rx) = fulcrum::channel(set_of(&backends));
        let mut lb = client(rx, Subsetting::deterministic(index, 4, 2).unwrap()).await;
        for addr in reached(&mut lb, &backends, 20).await {
            *clients_of.entry(addr).or_default() += 1;
        }
    }
    assert_eq!(
        clients_of.len(),
        8,
        "every endpoint has a client: {clients_of:?}"
    );
    assert!(clients_of.values().all(|&c| c == 1), "{clients_of:?}");
}

#[test]
fn a_subset_of_zero_is_refused() {
    let err = Subsetting::rendezvous("a", 0).unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
}
