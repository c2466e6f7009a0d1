//! The estimator's semantics, sample by sample.

use super::*;

const MS: u64 = 1_000_000;

fn ewma() -> PeakEwma {
    PeakEwma::new(&EwmaConfig::default())
}

#[test]
fn seed_until_first_sample_which_replaces_it() {
    let e = ewma();
    assert!(!e.has_sample());
    assert_eq!(e.estimate(5_000 * MS), 30.0 * MS as f64);
    e.record(5 * MS, 5_000 * MS);
    assert!(e.has_sample());
    let est = e.estimate(5_000 * MS) / MS as f64;
    assert!((est - 5.0).abs() < 1e-3, "{est}");
}

#[test]
fn no_sampled_estimate_before_the_first_sample_or_after_a_reset() {
    let e = ewma();
    assert_eq!(e.sampled_estimate(0), None);
    e.record(7 * MS, 0);
    assert!((e.sampled_estimate(0).unwrap() / MS as f64 - 7.0).abs() < 1e-3);
    e.reset();
    assert_eq!(e.sampled_estimate(0), None);
    assert_eq!(e.estimate(0), 30.0 * MS as f64);
}

#[test]
fn slower_sample_is_taken_as_peak() {
    let e = ewma();
    e.record(5 * MS, 0);
    e.record(500 * MS, 5 * MS);
    e.record(500 * MS, 10 * MS);
    assert!((e.estimate(10 * MS) / MS as f64 - 500.0).abs() < 1e-3);
}

#[test]
fn one_slow_outlier_is_blended_not_taken() {
    let e = ewma();
    e.record(2 * MS, 0);
    e.record(8 * MS, MS); // an outlier
    e.record(2 * MS, 2 * MS);
    let est = e.estimate(2 * MS) / MS as f64;
    assert!(est < 2.1, "{est}");
    // Two outliers apart are two outliers, not a peak.
    e.record(8 * MS, 3 * MS);
    assert!(e.estimate(3 * MS) / (MS as f64) < 2.1);
}

#[test]
fn faster_samples_blend_in_by_elapsed_time() {
    let e = ewma();
    e.record(100 * MS, 0);
    // (the first sample replaces the seed, whatever it is)
    // 100 ms later a 10 ms sample: decayed 100·e^-0.1 = 90.48,
    // plus 10·(1 - e^-0.1) = 0.95
    e.record(10 * MS, 100 * MS);
    let est = e.estimate(100 * MS) / MS as f64;
    assert!((est - 91.43).abs() < 0.2, "{est}");
}

#[test]
fn a_lower_bound_only_raises_the_estimate() {
    let e = ewma();
    e.record(50 * MS, 0);
    e.record_at_least(10 * MS, 1);
    assert!((e.estimate(1) / MS as f64 - 50.0).abs() < 0.1);
    e.record_at_least(100 * MS, 2);
    assert!((e.estimate(2) / MS as f64 - 100.0).abs() < 0.1);
    let failed = ewma();
    failed.record_failure(0);
    failed.record_at_least(5 * MS, 1);
    // Still the failure's (slow) memory two seconds later.
    assert!(failed.estimate(2_000 * MS) > 800.0 * MS as f64);
}

#[test]
fn a_failure_is_remembered_longer_than_a_latency() {
    let slow = ewma();
    slow.record(1_000 * MS, 0);
    let failed = ewma();
    failed.record_failure(0);
    // Both 1 s; two seconds later the latency is down to e^-2, the
    // failure only to e^-0.2.
    let (s, f) = (slow.estimate(2_000 * MS), failed.estimate(2_000 * MS));
    assert!((s / MS as f64 - 135.3).abs() < 1.0, "{s}");
    assert!((f / MS as f64 - 818.7).abs() < 2.0, "{f}");
    // A success ends the failure's memory.
    failed.record(5 * MS, 2_000 * MS);
    let after = failed.estimate(4_000 * MS) / MS as f64;
    assert!(after < 120.0, "{after}");
}

#[test]
fn reads_do_not_mutate() {
    let e = ewma();
    e.record(100 * MS, 0);
    for t in 0..1000 {
        e.estimate(t * MS);
    }
    let a = e.estimate(200 * MS);
    let b = e.estimate(200 * MS);
    assert_eq!(a, b);
    let expect = 100.0 * (-0.2f64).exp();
    assert!((a / MS as f64 - expect).abs() < 0.3);
}

#[test]
fn failure_never_lowers_the_estimate() {
    let e = ewma();
    e.record_failure(0);
    assert!((e.estimate(0) / MS as f64 - 1000.0).abs() < 0.1);
    let slow = ewma();
    slow.record(5_000 * MS, 0);
    slow.record_failure(1);
    assert!(slow.estimate(1) >= 4_999.0 * MS as f64);
}

#[test]
fn stamp_from_the_future_counts_as_no_time() {
    let e = ewma();
    e.record(50 * MS, 10_000 * MS);
    // a racing reader with an older clock value sees the undecayed estimate
    assert!((e.estimate(9_000 * MS) / MS as f64 - 50.0).abs() < 1e-3);
}

#[test]
fn a_long_gap_decays_fully() {
    let e = ewma();
    e.record(1_000 * MS, 0);
    // 10 days later: long past the racing window, nothing is left
    let days = 10 * 24 * 3_600 * 1_000 * MS;
    assert!(e.estimate(days) < 1.0);
}

#[test]
fn concurrent_updates_keep_a_sane_estimate() {
    use std::sync::atomic::AtomicU64;
    // One monotonic clock shared by all threads, as in real use; each
    // record advances it by 0.1 ms.
    let clock = std::sync::Arc::new(AtomicU64::new(0));
    let e = std::sync::Arc::new(ewma());
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let (e, clock) = (e.clone(), clock.clone());
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    let now = clock.fetch_add(MS / 10, Ordering::Relaxed);
                    e.record((10 + i) * MS, now);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let est = e.estimate(clock.load(Ordering::Relaxed)) / MS as f64;
    assert!((9.9..=13.5).contains(&est), "{est}");
}
