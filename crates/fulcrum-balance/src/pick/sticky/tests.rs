//! The sticky policy against endpoints with load set by hand.

use super::super::TestEndpoints as Fixture;
use super::super::{LeastConn, RoundRobin};
use super::*;

fn pick(f: &Fixture, picker: &dyn Picker, key: u64) -> std::net::SocketAddr {
    let mut rng = fastrand::Rng::with_seed(0);
    let mut cx = PickContext::new(f.loads(), &mut rng, Some(key));
    f.slots[picker.pick(&mut cx).unwrap()].endpoint.addr()
}

#[test]
fn a_session_stays_on_its_endpoint_across_membership_changes() {
    let policy = Sticky::new(RoundRobin);
    let before = Fixture::numbered(0..5);
    let picker = policy.build(&before.loads(), None);
    let homes: Vec<_> = (0..50u64).map(|s| pick(&before, &*picker, s)).collect();
    // Round robin spreads new sessions...
    assert!(homes.iter().collect::<std::collections::HashSet<_>>().len() == 5);
    // ...and each session sticks, even after endpoints are added.
    let after = Fixture::numbered(0..8);
    let picker = policy.build(&after.loads(), Some(&*picker));
    for (s, home) in homes.iter().enumerate() {
        assert_eq!(pick(&after, &*picker, s as u64), *home, "session {s} moved");
    }
}

#[test]
fn a_session_whose_endpoint_left_is_placed_again_and_stays() {
    let policy = Sticky::new(LeastConn);
    let all = Fixture::numbered(0..3);
    let picker = policy.build(&all.loads(), None);
    let home = pick(&all, &*picker, 7);
    let rest: Vec<u16> = (0..3u16)
        .filter(|&i| format!("10.0.0.{i}:80") != home.to_string())
        .collect();
    let without = Fixture::numbered(rest);
    let picker = policy.build(&without.loads(), Some(&*picker));
    let new_home = pick(&without, &*picker, 7);
    assert_ne!(new_home, home);
    for _ in 0..10 {
        assert_eq!(pick(&without, &*picker, 7), new_home);
    }
}

#[test]
fn concurrent_placements_of_one_session_converge_on_one_endpoint() {
    let policy = Sticky::new(RoundRobin);
    let f = Fixture::numbered(0..4);
    let picker: Arc<dyn Picker> = Arc::from(policy.build(&f.loads(), None));
    let f = Arc::new(f);
    for session in 0..200u64 {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (f, picker) = (f.clone(), picker.clone());
                std::thread::spawn(move || pick(&f, &*picker, session))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Whatever the race placed, from now on the session has one home.
        let home = pick(&f, &*picker, session);
        for _ in 0..5 {
            assert_eq!(pick(&f, &*picker, session), home, "session {session}");
        }
    }
}

#[test]
fn a_flood_of_unique_ids_stays_within_the_memory_bound() {
    let policy = Sticky::new(RoundRobin).capacity(4096);
    let bytes = policy.table_bytes();
    assert_eq!(bytes, 4096 * 16);
    let f = Fixture::numbered(0..10);
    let picker = policy.build(&f.loads(), None);
    // Round robin places each new session on the next endpoint, so a
    // forgotten session would (9 times in 10) come back elsewhere.
    let newest = 999_000..1_000_000u64;
    let mut homes = Vec::new();
    for s in 0..1_000_000u64 {
        let home = pick(&f, &*picker, s);
        if newest.contains(&s) {
            homes.push(home);
        }
    }
    assert_eq!(policy.table_bytes(), bytes, "the table never grows");
    // Nearly all of the newest sessions are remembered (eviction is per
    // bucket of 4, not a global LRU, so a few may have been pushed out).
    let kept = newest
        .zip(&homes)
        .filter(|(s, home)| pick(&f, &*picker, *s) == **home)
        .count();
    eprintln!("sticky: {kept} of the newest 1000 sessions kept after 1M unique ids");
    assert!(kept >= 700, "only {kept} of the newest 1000 sessions kept");
    assert!(kept >= 90, "only {kept} of the newest 100 sessions kept");
}

#[test]
fn two_balancers_from_one_policy_keep_separate_sessions() {
    let policy = Sticky::new(RoundRobin);
    let f = Fixture::numbered(0..4);
    let a = policy.build(&f.loads(), None);
    let b = policy.build(&f.loads(), None);
    // Each balancer places session 1 with its own rotation: both on the
    // first endpoint, and then each keeps its own record.
    let home_a = pick(&f, &*a, 1);
    for s in 2..5 {
        pick(&f, &*b, s);
    }
    let home_b = pick(&f, &*b, 1);
    assert_eq!(home_a, f.addr(0));
    assert_ne!(home_b, home_a, "b placed session 1 itself");
    for _ in 0..10 {
        assert_eq!(pick(&f, &*a, 1), home_a);
        assert_eq!(pick(&f, &*b, 1), home_b);
    }
}
