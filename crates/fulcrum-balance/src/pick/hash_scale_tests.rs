//! The hash tables at scale: Maglev's table grows with the set, the ring
//! stays within its bound, and the fast ring lookup agrees with a plain
//! binary search.

use std::net::SocketAddr;

use super::hashed::HashTable;
use super::*;
use crate::key::mix64;

fn keys(count: u64) -> impl Iterator<Item = u64> {
    (0..count).map(|i| mix64(i ^ 0xABCD))
}

/// The identities and weights a hash table is built from, as the policies
/// see them.
fn identities_of(endpoints: &TestEndpoints) -> Vec<(u64, u32)> {
    super::hashed::identities(&endpoints.loads())
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[test]
fn maglev_grows_its_table_in_doublings_of_the_configured_size() {
    use super::maglev::table_size_for;
    assert_eq!(table_size_for(65_537, 0), 65_537);
    assert_eq!(table_size_for(65_537, 655), 65_537);
    let sizes = [
        (656, 131_074),
        (1_000, 131_074),
        (1_311, 262_148),
        (10_000, 1_048_592),
    ];
    for (n, floor) in sizes {
        let size = table_size_for(65_537, n);
        assert!(size >= floor && size >= 100 * n as u64, "{n}: {size}");
        assert!(is_prime(size), "{n}: {size}");
        assert!((floor..floor + 1_000).contains(&size), "{n}: {size}");
    }
    // A larger minimum is kept for small sets; the table still grows.
    assert_eq!(table_size_for(1_000_003, 100), 1_000_003);
    assert!(table_size_for(7, 10) >= 1_000);
}

#[test]
fn maglev_at_10000_endpoints_gives_none_more_than_10_percent_over_its_share() {
    let n = 10_000;
    let f = TestEndpoints::numbered(0..n as u16);
    let table = super::maglev::MaglevTable::new(&identities_of(&f), 65_537);
    let size = table.len();
    assert!(size >= 100 * n && is_prime(size as u64), "size {size}");
    let mut entries = vec![0u64; n];
    for slot in 0..size {
        entries[table.entry(slot)] += 1;
    }
    let mean = size as f64 / n as f64;
    let ratio = *entries.iter().max().unwrap() as f64 / mean;
    // Keys land on entries uniformly: their counts follow the entries'
    // shares (a χ² of about one per degree of freedom).
    let total = 2_000_000u64;
    let mut hits = vec![0u64; n];
    for key in keys(total) {
        hits[table.order(mix64(key)).next().unwrap()] += 1;
    }
    let chi2 = (0..n)
        .map(|i| {
            let expected = total as f64 * entries[i] as f64 / size as f64;
            (hits[i] as f64 - expected).powi(2) / expected
        })
        .sum::<f64>()
        / (n - 1) as f64;
    let keyed = *hits.iter().max().unwrap() as f64 / (total as f64 / n as f64);
    eprintln!(
        "maglev, {n} endpoints: {size} entries, max/mean {ratio:.3} over entries, \
         {keyed:.3} over {total} keys (χ²/dof {chi2:.3} against the entries)"
    );
    assert!(ratio <= 1.10, "max/mean {ratio:.3}");
    assert!(chi2 < 1.1, "keys do not follow the table: χ²/dof {chi2:.3}");
}

#[test]
fn maglev_removing_one_of_1000_endpoints_moves_few_keys() {
    // Past 655 endpoints the table has grown (131,101 entries); it keeps its
    // size while the set stays within a doubling, so a removal moves its
    // keys (0.1 %) and a little more.
    let before = TestEndpoints::numbered(0..1000);
    let after = TestEndpoints::numbered((0..1000).filter(|&i| i != 377));
    let total = 200_000;
    let x = before.owners(&Maglev::default(), keys(total));
    let y = after.owners(&Maglev::default(), keys(total));
    let moved = x.iter().zip(&y).filter(|(a, b)| a != b).count();
    let share = moved as f64 / total as f64;
    eprintln!(
        "maglev: removing 1 of 1000 moved {:.2}% of keys",
        share * 100.0
    );
    assert!(share <= 0.01, "moved {:.2}%", share * 100.0);
    // Whereas a table sized to 100 × endpoints exactly would change size,
    // and move nearly every key.
    let resized = |f: &TestEndpoints| {
        let ids = identities_of(f);
        let table = super::maglev::MaglevTable::new(&ids, 100 * ids.len() as u64);
        keys(total)
            .map(|k| ids[table.order(mix64(k)).next().unwrap()].0)
            .collect::<Vec<_>>()
    };
    let (x, y) = (resized(&before), resized(&after));
    let moved = x.iter().zip(&y).filter(|(a, b)| a != b).count();
    assert!(moved > total as usize / 2, "resized: moved {moved}");
}

#[test]
fn ring_at_10000_endpoints_stays_within_its_bound_with_a_point_each() {
    let n = 10_000;
    let f = TestEndpoints::numbered(0..n as u16);
    let ids = identities_of(&f);
    let bound = 1 << 20;
    let ring = super::ring_hash::Ring::new(&ids, 256, 1024, bound);
    let mut points = vec![0u64; n];
    for (_, owner) in ring.points() {
        points[owner] += 1;
    }
    let total: u64 = points.iter().sum();
    eprintln!(
        "ring-hash, {n} endpoints: {total} points ({}..={} each)",
        points.iter().min().unwrap(),
        points.iter().max().unwrap()
    );
    assert!(total <= bound && total >= bound * 9 / 10, "{total} points");
    assert!(points.iter().all(|&p| p >= 1));
}

#[test]
fn ring_points_are_shared_by_weight_within_the_bounds() {
    use super::ring_hash::point_counts;
    // Weights 1 to 1000: with a small bound the lightest round to nothing,
    // and keep one point each.
    let endpoints: Vec<(u64, u32)> = (0..2000u64)
        .map(|i| (mix64(i), 1 + (i % 1000) as u32))
        .collect();
    for bound in [2_000, 2_500, 10_000, 100_000, 1 << 20] {
        let counts = point_counts(&endpoints, 256, 1024, bound);
        let total: u64 = counts.iter().sum();
        assert!(total <= bound, "{bound}: {total}");
        assert!(counts.iter().all(|&c| c >= 1), "{bound}");
        if bound >= 100_000 {
            // Proportional to weight: weight 1000 against weight 500.
            let ratio = counts[999] as f64 / counts[499] as f64;
            assert!((1.99..=2.01).contains(&ratio), "{bound}: {ratio}");
        }
    }
    // More endpoints than the bound: one point each.
    let counts = point_counts(&endpoints, 256, 1024, 1_000);
    assert!(counts.iter().all(|&c| c == 1));
    // Equal weights: vnodes each, unless the minimum or maximum says otherwise.
    let equal = |n: u64| (0..n).map(|i| (mix64(i), 1)).collect::<Vec<_>>();
    assert_eq!(
        point_counts(&equal(100), 256, 1024, 1 << 20),
        vec![256; 100]
    );
    assert_eq!(point_counts(&equal(2), 256, 1024, 1 << 20), vec![512; 2]);
    assert_eq!(point_counts(&equal(1), 256, 1024, 1 << 20), vec![1024]);
    assert_eq!(
        point_counts(&equal(10_000), 256, 1024, 1 << 20),
        vec![104; 10_000]
    );
    assert_eq!(point_counts(&equal(3), 256, 4096, 1000), vec![333; 3]);
    assert!(point_counts(&[], 256, 1024, 1 << 20).is_empty());
}

#[test]
fn ring_lookup_is_the_first_point_at_or_after_the_key() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut crowded = 0;
    for (n, vnodes) in [
        (1u16, 256),
        (3, 256),
        (10, 256),
        (40, 256),
        (1000, 100),
        (10_000, 256),
    ] {
        let ids = identities_of(&TestEndpoints::numbered(0..n));
        let ring = super::ring_hash::Ring::new(&ids, vnodes, 1024, 1 << 20);
        crowded += ring.crowded_buckets();
        let points: Vec<(u64, usize)> = ring.points().collect();
        let at: Vec<u64> = points.iter().map(|&(at, _)| at).collect();
        assert!(at.windows(2).all(|w| w[0] <= w[1]));
        let reference = |key: u64| {
            let i = at.partition_point(|&p| p < key);
            if i == at.len() {
                0
            } else {
                i
            }
        };
        let check = |key: u64| {
            let home = ring.home_of(key);
            assert_eq!(home, reference(key), "{n} endpoints, key {key:#x}");
            assert_eq!(ring.order(key).next(), Some(points[home].1));
        };
        // Random keys, the ends of the ring, and each side of every point
        // (crowded buckets included); keys that share the top half of a
        // point's position take the exact path.
        for _ in 0..if n == 10_000 { 100_000 } else { 20_000 } {
            check(rng.u64(..));
        }
        for key in [0, 1, u64::MAX - 1, u64::MAX] {
            check(key);
        }
        let step = (at.len() / 20_000).max(1);
        for &p in at.iter().step_by(step) {
            for key in [
                p.wrapping_sub(1),
                p,
                p.wrapping_add(1),
                p & !0xFFFF_FFFF,
                p | 0xFFFF_FFFF,
            ] {
                check(key);
            }
        }
    }
    assert!(crowded > 0, "no crowded bucket was tried");
}

/// `n` endpoints 10.0.x.y:80 (as [`TestEndpoints::numbered`]), for [`measure`].
fn numbered_endpoints(n: u16) -> Vec<fulcrum_core::Endpoint> {
    (0..n)
        .map(|i| {
            fulcrum_core::Endpoint::new(SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 80)))
        })
        .collect()
}

#[test]
#[ignore = "timing: run by hand in release"]
fn build_and_pick_times() {
    // cargo test -p fulcrum-balance --release --lib build_and_pick_times -- --ignored --nocapture
    for (name, policy) in [
        ("maglev", Box::new(Maglev::default()) as Box<dyn Policy>),
        ("ring-hash", Box::new(RingHash::default())),
    ] {
        for n in [10u16, 1000, 10_000] {
            let endpoints = numbered_endpoints(n);
            // Warm up (allocator, page faults), then take the best of a few.
            let first = measure(&*policy, &endpoints, 100_000);
            let (mut build, mut pick_ns) = (first.build, f64::MAX);
            for _ in 0..5 {
                let m = measure(&*policy, &endpoints, 2_000_000);
                build = build.min(m.build);
                pick_ns = pick_ns.min(m.pick_ns);
            }
            eprintln!(
                "{name:>9} n = {n:>5}: build {:>7.2} ms, pick {pick_ns:>5.1} ns",
                build.as_secs_f64() * 1e3,
            );
        }
    }
    // Balance at 10,000 endpoints, over 50 million keys (5,000 per endpoint:
    // the keys' own noise is ~1.4 %, ~5.5 % at the busiest of 10,000).
    let n = 10_000;
    let f = TestEndpoints::numbered(0..n as u16);
    let ids = identities_of(&f);
    let table = super::maglev::MaglevTable::new(&ids, 65_537);
    let ring = super::ring_hash::Ring::new(&ids, 256, 1024, 1 << 20);
    let total = 50_000_000u64;
    let mean = total as f64 / n as f64;
    let mut hits = vec![0u64; n];
    for key in keys(total) {
        hits[table.order(mix64(key)).next().unwrap()] += 1;
    }
    eprintln!(
        "maglev, {n} endpoints: {} entries, max/mean {:.3} over {total} keys",
        table.len(),
        *hits.iter().max().unwrap() as f64 / mean
    );
    let mut hits = vec![0u64; n];
    for key in keys(total) {
        hits[ring.order(mix64(key)).next().unwrap()] += 1;
    }
    eprintln!(
        "ring-hash, {n} endpoints: {} points, max/mean {:.3} over {total} keys",
        ring.points().count(),
        *hits.iter().max().unwrap() as f64 / mean
    );
}
