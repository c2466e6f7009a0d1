//! The hash pickers' promises, measured: consistency across clients,
//! disruption on removal, balance, weights, bounded load and bad input.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::*;
use crate::key::mix64;

fn keys(count: u64) -> impl Iterator<Item = u64> {
    (0..count).map(|i| mix64(i ^ 0xABCD))
}

fn hash_policies() -> Vec<(&'static str, Box<dyn Policy>)> {
    vec![
        ("ring-hash", Box::new(RingHash::default())),
        ("maglev", Box::new(Maglev::default())),
        ("rendezvous", Box::new(Rendezvous::default())),
    ]
}

#[test]
fn two_independent_clients_map_every_key_the_same() {
    let a = TestEndpoints::numbered(0..10);
    // The other client learned the endpoints in another order.
    let b = TestEndpoints::numbered((0..10).rev());
    for (name, policy) in hash_policies() {
        let (x, y) = (
            a.owners(&*policy, keys(10_000)),
            b.owners(&*policy, keys(10_000)),
        );
        assert_eq!(x, y, "{name} maps keys differently in two clients");
        let distinct: std::collections::HashSet<_> = x.iter().collect();
        assert_eq!(distinct.len(), 10, "{name} uses every endpoint");
    }
}

#[test]
fn removing_one_of_100_endpoints_moves_few_keys() {
    let before = TestEndpoints::numbered(0..100);
    let after = TestEndpoints::numbered((0..100).filter(|&i| i != 37));
    let gone: SocketAddr = "10.0.0.37:80".parse().unwrap();
    for (name, policy, limit) in [
        (
            "ring-hash",
            Box::new(RingHash::default().vnodes(100)) as Box<dyn Policy>,
            0.012,
        ),
        ("rendezvous", Box::new(Rendezvous::default()), 0.012),
        ("maglev", Box::new(Maglev::default()), 0.025),
    ] {
        let total = 100_000;
        let x = before.owners(&*policy, keys(total));
        let y = after.owners(&*policy, keys(total));
        let moved = x.iter().zip(&y).filter(|(a, b)| a != b).count();
        let survivors_moved = x
            .iter()
            .zip(&y)
            .filter(|(a, b)| a != b && **a != gone)
            .count();
        let share = moved as f64 / total as f64;
        eprintln!(
            "{name}: removing 1 of 100 moved {:.2}% of keys ({survivors_moved} of them from surviving endpoints)",
            share * 100.0
        );
        assert!(share <= limit, "{name} moved {:.2}%", share * 100.0);
        assert!(x.iter().zip(&y).all(|(a, b)| *a != gone || b != &gone));
        if name != "maglev" {
            assert_eq!(
                survivors_moved, 0,
                "{name} moved keys of surviving endpoints"
            );
        }
    }
}

#[test]
fn a_million_keys_over_100_endpoints_are_balanced() {
    let f = TestEndpoints::numbered(0..100);
    for (name, policy) in [
        ("maglev", Box::new(Maglev::default()) as Box<dyn Policy>),
        (
            "ring-hash (1000 vnodes)",
            Box::new(RingHash::default().vnodes(1000)),
        ),
    ] {
        let mut counts: HashMap<SocketAddr, u64> = HashMap::new();
        for owner in f.owners(&*policy, keys(1_000_000)) {
            *counts.entry(owner).or_default() += 1;
        }
        let max = *counts.values().max().unwrap() as f64;
        let ratio = max / (1_000_000.0 / 100.0);
        eprintln!("{name}: max/avg = {ratio:.3}");
        assert!(ratio <= 1.10, "{name}: max/avg = {ratio:.3}");
    }
}

#[test]
fn weight_3_gets_three_times_the_keys_of_weight_1() {
    let mut weights = vec![1u32; 10];
    weights[4] = 3;
    let f = TestEndpoints::weighted(&weights);
    for (name, policy) in [
        (
            "ring-hash",
            Box::new(RingHash::default().vnodes(1000)) as Box<dyn Policy>,
        ),
        ("maglev", Box::new(Maglev::default())),
        ("rendezvous", Box::new(Rendezvous::default())),
    ] {
        let mut counts: HashMap<SocketAddr, u64> = HashMap::new();
        for owner in f.owners(&*policy, keys(240_000)) {
            *counts.entry(owner).or_default() += 1;
        }
        let heavy = counts[&f.slots[4].endpoint.addr()] as f64;
        let light = (counts.values().sum::<u64>() as f64 - heavy) / 9.0;
        let ratio = heavy / light;
        eprintln!("{name}: weight 3 / weight 1 = {ratio:.3}");
        assert!((2.85..=3.15).contains(&ratio), "{name}: {ratio:.3}");
    }
}

#[test]
fn keys_go_to_the_next_candidate_while_home_is_down_and_come_back() {
    let f = TestEndpoints::numbered(0..10);
    for (name, policy) in hash_policies() {
        let home = f.owners(&*policy, keys(1_000));
        let down = f.slots[3].endpoint.addr();
        f.slots[3].set_state(crate::slot::EndpointState::Unavailable);
        let during = f.owners(&*policy, keys(1_000));
        f.slots[3].set_state(crate::slot::EndpointState::Active);
        let after = f.owners(&*policy, keys(1_000));
        assert!(
            during.iter().all(|&a| a != down),
            "{name} picked a down endpoint"
        );
        for (h, d) in home.iter().zip(&during) {
            if *h != down {
                assert_eq!(h, d, "{name} moved a key whose home is up");
            }
        }
        assert_eq!(home, after, "{name}: keys did not go home");
    }
}

#[test]
fn bounded_load_skips_endpoints_over_the_bound_in_order() {
    let f = TestEndpoints::numbered(0..4);
    let policy = Maglev::default().options(HashOptions::default().balance_factor(1.25));
    let key = 42;
    let home = f.owners(&policy, std::iter::once(key))[0];
    let home_index = f
        .slots
        .iter()
        .position(|s| s.endpoint.addr() == home)
        .unwrap();
    // 4 in flight, all at home: the bound for a 5th is ⌈1.25 · 5 / 4⌉ = 2.
    for _ in 0..4 {
        f.slots[home_index].in_flight.enter();
    }
    f.total.store(4, Ordering::Relaxed);
    let next = f.owners(&policy, std::iter::once(key))[0];
    assert_ne!(next, home, "over its bound, home must be skipped");
    // Without a factor the key stays home however loaded.
    assert_eq!(f.owners(&Maglev::default(), std::iter::once(key))[0], home);
}

#[test]
fn every_endpoint_over_its_bound_falls_back_to_the_least_loaded() {
    let f = TestEndpoints::numbered(0..3);
    for (i, load) in [5, 2, 7].into_iter().enumerate() {
        for _ in 0..load {
            f.slots[i].in_flight.enter();
        }
    }
    // A total that makes every bound 1: nobody fits.
    f.total.store(0, Ordering::Relaxed);
    for (name, policy) in [
        (
            "ring-hash",
            Box::new(RingHash::default().options(HashOptions::default().balance_factor(1.0)))
                as Box<dyn Policy>,
        ),
        (
            "maglev",
            Box::new(Maglev::default().options(HashOptions::default().balance_factor(1.0))),
        ),
        (
            "rendezvous",
            Box::new(Rendezvous::default().options(HashOptions::default().balance_factor(1.0))),
        ),
    ] {
        let owners = f.owners(&*policy, keys(100));
        assert!(
            owners.iter().all(|&a| a == f.slots[1].endpoint.addr()),
            "{name} did not fall back to the least loaded"
        );
    }
}

#[test]
fn requests_without_a_key_use_the_fallback_policy() {
    let f = TestEndpoints::numbered(0..4);
    let policy = RingHash::default().options(HashOptions::default().fallback(RoundRobin));
    // No key: the fallback's exact rotation.
    assert_eq!(f.picks(&policy, 8, 0), vec![0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn an_empty_set_and_one_endpoint_are_handled() {
    let empty = TestEndpoints::numbered(std::iter::empty());
    let one = TestEndpoints::numbered([7]);
    for (name, policy) in hash_policies() {
        let picker = policy.build(&empty.loads(), None);
        let mut rng = fastrand::Rng::with_seed(0);
        let mut cx = PickContext::new(empty.loads(), &mut rng, Some(1));
        assert_eq!(picker.pick(&mut cx), None, "{name}");
        assert!(one
            .owners(&*policy, keys(10))
            .iter()
            .all(|a| a.to_string() == "10.0.0.7:80"));
    }
}
