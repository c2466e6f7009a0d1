//! How fulcrum scales with the number of endpoints: warm-up, churn,
//! per-request cost and memory at 10,000 endpoints.
//!
//! Run: `cargo bench --bench scale` (about a minute). In-memory endpoints
//! whose services are made at once, so what is measured is the balancer
//! (the maker's own time is excluded). One line per policy:
//!
//! `scale policy=<name> n=10000 warm_ms=<x> churn_ms=<y> pick_ns_n10=<a>
//! pick_ns_n10000=<b> ratio=<b/a> bytes_per_endpoint=<m>`
//!
//! * `warm_ms`: from `build` until `ready_all` returns: 10,000 services made
//!   and the picker published (median of 3);
//! * `churn_ms`: an update replacing 1 % of the endpoints (100 out, 100 in),
//!   from `Updater::update` until a snapshot with all 10,000 ready is
//!   published (median of 5);
//! * `pick_ns_*`: `poll_ready` + `call` + await per request, median of 5 ×
//!   200k (hash policies keyed);
//! * `bytes_per_endpoint`: heap held by the balancer (its driver, snapshot,
//!   picker and endpoints) per endpoint, beyond the services (zero-sized
//!   here), counted by this binary's allocator.

mod support;

use support::{median, runtime, BenchKey, Echo, HASH_POLICIES};

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::poll_fn;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use fulcrum::{channel, make_fn, Balancer, Endpoint, EndpointSet};
use tower::Service;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 10_000;

fn endpoint(i: usize) -> Endpoint {
    Endpoint::new(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 80).into())
}

fn set(range: std::ops::Range<usize>) -> EndpointSet {
    range.map(endpoint).collect()
}

fn balancer(policy: &str, updates: fulcrum::Updates) -> Balancer<Echo, BenchKey> {
    Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .seed(1)
        .updates(updates)
        .key(BenchKey(HASH_POLICIES.contains(&policy)))
        .build(make_fn(|_: &Endpoint| Echo))
}

/// Waits (yielding) until a snapshot newer than `after` has all `n` ready.
async fn published(lb: &Balancer<Echo, BenchKey>, after: u64, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = lb.counts();
        if c.version > after && c.ready == n && c.warming == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "never published: {c:?}");
        tokio::task::yield_now().await;
    }
}

fn warm_ms(policy: &str) -> f64 {
    median(
        (0..3)
            .map(|_| {
                runtime().block_on(async {
                    let (_tx, rx) = channel(set(0..N));
                    let started = Instant::now();
                    let lb = balancer(policy, rx);
                    lb.ready_all(Duration::from_secs(60)).await.unwrap();
                    started.elapsed().as_secs_f64() * 1e3
                })
            })
            .collect(),
    )
}

fn churn_ms(policy: &str) -> f64 {
    runtime().block_on(async {
        let (tx, rx) = channel(set(0..N));
        let lb = balancer(policy, rx);
        lb.ready_all(Duration::from_secs(60)).await.unwrap();
        let mut samples = Vec::new();
        for round in 0..5 {
            // Let any publishing spacing from the last change pass.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let base = round * 100;
            let next = (base + 100..N + base + 100).collect::<Vec<_>>();
            let version = lb.counts().version;
            let started = Instant::now();
            tx.update(next.into_iter().map(endpoint).collect());
            published(&lb, version, N).await;
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
        median(samples)
    })
}

fn pick_ns(policy: &str, n: usize) -> f64 {
    runtime().block_on(async {
        let (_tx, rx) = channel(set(0..n));
        let mut lb = balancer(policy, rx);
        lb.ready_all(Duration::from_secs(60)).await.unwrap();
        let requests = if policy == "rendezvous" {
            20_000
        } else {
            200_000
        };
        let mut samples = Vec::new();
        for run in 0..6 {
            let started = Instant::now();
            for i in 0..requests {
                poll_fn(|cx| lb.poll_ready(cx)).await.unwrap();
                black_box(lb.call(i).await.unwrap());
            }
            if run > 0 {
                samples.push(started.elapsed().as_nanos() as f64 / requests as f64);
            }
        }
        median(samples)
    })
}

fn bytes_per_endpoint(policy: &str) -> f64 {
    let rt = runtime();
    let before = LIVE.load(Ordering::SeqCst);
    let (tx, lb) = rt.block_on(async {
        let (tx, rx) = channel(set(0..N));
        let lb = balancer(policy, rx);
        lb.ready_all(Duration::from_secs(60)).await.unwrap();
        // Let spaced publishes and dropped snapshots settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        (tx, lb)
    });
    // The set held by the channel is the caller's, not the balancer's.
    let set_bytes = N * std::mem::size_of::<Endpoint>();
    let held = LIVE.load(Ordering::SeqCst) - before - set_bytes as isize;
    drop((tx, lb));
    held as f64 / N as f64
}

fn main() {
    let only: Option<String> =
        std::env::args().find_map(|a| a.strip_prefix("--policy=").map(str::to_owned));
    for policy in fulcrum::pick::policy_names() {
        if only.as_deref().is_some_and(|p| p != policy) {
            continue;
        }
        let warm = warm_ms(policy);
        let churn = churn_ms(policy);
        let small = pick_ns(policy, 10);
        let large = pick_ns(policy, N);
        let bytes = bytes_per_endpoint(policy);
        println!(
            "scale policy={policy} n={N} warm_ms={warm:.1} churn_ms={churn:.2} \
             pick_ns_n10={small:.1} pick_ns_n{N}={large:.1} ratio={:.2} bytes_per_endpoint={bytes:.0}",
            large / small
        );
    }
}
