//! Per-request overhead of every picker, side by side with tower 0.5's
//! `p2c::Balance` in the same run, plus 2-thread scaling.
//!
//! Run: `cargo bench --bench pick` (about two minutes; `-- --quick` for a
//! rough pass). Each case is the median of 5 runs of 1M requests
//! (`poll_ready` + `call` + await) on a current-thread runtime, over trivial
//! in-memory endpoints, so what is measured is the balancer itself.
//!
//! Then the hash pickers alone (`hash …` lines): the cost of one pick with
//! no request around it, and the time to rebuild the picker (a membership
//! change), at N = 10, 100, 1000. Then 2-thread scaling at N = 100 (`threads …` lines): two OS threads sharing clones of one
//! balancer, against one thread, with inner services doing ~0, ~100 and
//! ~500 ns of work per request; and, as the machine's own reference, two
//! threads with one balancer each.
//!
//! Output, one line per case:
//! `pick policy=<name> n=<N> fulcrum_ns=<x> tower_ns=<y> ratio=<tower/fulcrum>`
//! (`tower_ns=-` where tower has no equivalent: it only has P2C).
//! A custom harness rather than criterion: the point is the ratio of two
//! implementations measured in one process, printed in a fixed format.

mod support;

use support::{median, runtime, BenchKey, Echo, HASH_POLICIES};

use std::convert::Infallible;
use std::future::poll_fn;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fulcrum::{make_fn, pick::policy_names, Balancer, Endpoint};
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwmaDiscover, PendingRequestsDiscover};
use tower::Service;

/// An inner service that burns a fixed amount of CPU per request (a stand-in
/// for the cheapest real client work: encoding, a syscall), so that scaling
/// is measured with a per-request cost other than the balancer's own.
#[derive(Clone, Copy)]
struct Work(u32);

impl Service<u64> for Work {
    type Response = u64;
    type Error = Infallible;
    type Future = std::future::Ready<Result<u64, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: u64) -> Self::Future {
        let mut x = req;
        for _ in 0..self.0 {
            x = black_box(
                x.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            );
        }
        std::future::ready(Ok(x))
    }
}

struct Config {
    runs: usize,
    requests: u64,
}

/// ns per request: ready + call + await, `requests` times.
async fn drive<S>(svc: &mut S, requests: u64) -> f64
where
    S: Service<u64, Response = u64>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for i in 0..requests {
        poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        black_box(svc.call(i).await.unwrap());
    }
    start.elapsed().as_nanos() as f64 / requests as f64
}

fn fulcrum_balancer(policy: &str, n: usize) -> Balancer<Echo, BenchKey> {
    balancer_over(policy, n, Echo)
}

fn balancer_over<S>(policy: &str, n: usize, svc: S) -> Balancer<S, BenchKey>
where
    S: Service<u64> + Clone + Send + Sync + 'static,
{
    let endpoints = (0..n).map(|i| Endpoint::new(([127, 0, 0, 1], 40_000 + i as u16).into()));
    Balancer::builder()
        .policy_name(policy)
        .unwrap()
        .seed(1)
        .endpoints(endpoints)
        // Every request keyed for the hash policies: their keyed path.
        .key(BenchKey(HASH_POLICIES.contains(&policy)))
        .build(make_fn(move |_: &Endpoint| svc.clone()))
}

async fn until_ready<S>(lb: &Balancer<S, BenchKey>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lb.stats().ready < n {
        assert!(Instant::now() < deadline, "balancer never became ready");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Median ns per request over `cfg.runs` runs, after a warm-up.
async fn measure<S>(cfg: &Config, svc: &mut S) -> f64
where
    S: Service<u64, Response = u64>,
    S::Error: std::fmt::Debug,
{
    drive(svc, cfg.requests / 10).await;
    let mut samples = Vec::with_capacity(cfg.runs);
    for _ in 0..cfg.runs {
        samples.push(drive(svc, cfg.requests).await);
    }
    median(samples)
}

fn bench_fulcrum(cfg: &Config, policy: &str, n: usize) -> f64 {
    // Rendezvous scores every endpoint per pick (O(n)): fewer requests.
    let cfg = &Config {
        runs: cfg.runs,
        requests: if policy == "rendezvous" {
            (cfg.requests / (1 + n as u64 / 10)).max(10_000)
        } else {
            cfg.requests
        },
    };
    runtime().block_on(async {
        let mut lb = fulcrum_balancer(policy, n);
        until_ready(&lb, n).await;
        measure(cfg, &mut lb).await
    })
}

fn bench_tower_pending(cfg: &Config, n: usize) -> f64 {
    runtime().block_on(async {
        let list = ServiceList::new(vec![Echo; n]);
        let discover = PendingRequestsDiscover::new(list, CompleteOnResponse::default());
        measure(cfg, &mut Balance::new(discover)).await
    })
}

fn bench_tower_ewma(cfg: &Config, n: usize) -> f64 {
    runtime().block_on(async {
        let list = ServiceList::new(vec![Echo; n]);
        let discover = PeakEwmaDiscover::new(
            list,
            Duration::from_millis(30),
            Duration::from_secs(10),
            CompleteOnResponse::default(),
        );
        measure(cfg, &mut Balance::new(discover)).await
    })
}

fn bench_direct(cfg: &Config) -> f64 {
    runtime().block_on(async {
        let mut samples = Vec::with_capacity(cfg.runs);
        for _ in 0..cfg.runs {
            samples.push(drive(&mut Echo, cfg.requests).await);
        }
        median(samples)
    })
}

/// Requests per second with `threads` OS threads (each its own
/// current-thread runtime) sharing clones of one balancer over endpoints
/// that each do `work` units of CPU work per request.
///
/// With `separate`, each thread gets a balancer of its own instead: the
/// machine's own scaling, with no state shared between the threads.
fn throughput(
    policy: &str,
    n: usize,
    threads: usize,
    per_thread: u64,
    work: u32,
    separate: bool,
) -> f64 {
    let rt = runtime();
    let build = || {
        rt.block_on(async {
            let lb = balancer_over(policy, n, Work(work));
            until_ready(&lb, n).await;
            lb
        })
    };
    let shared = build();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let mut lb = if separate { build() } else { shared.clone() };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let rt = runtime();
                rt.block_on(drive(&mut lb, per_thread / 10));
                barrier.wait();
                rt.block_on(drive(&mut lb, per_thread));
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for w in workers {
        w.join().unwrap();
    }
    (threads as u64 * per_thread) as f64 / start.elapsed().as_secs_f64()
}

/// ns per call of the bare `Work(work)` service, for the scale lines.
fn work_ns(work: u32) -> f64 {
    let rt = runtime();
    rt.block_on(drive(&mut Work(work), 200_000))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cfg = if quick {
        Config {
            runs: 1,
            requests: 100_000,
        }
    } else {
        Config {
            runs: 5,
            requests: 1_000_000,
        }
    };
    let only_n: Option<usize> =
        std::env::args().find_map(|a| a.strip_prefix("--n=").map(|v| v.parse().expect("--n=N")));
    let only_policy: Option<String> =
        std::env::args().find_map(|a| a.strip_prefix("--policy=").map(str::to_owned));
    println!("floor direct_ns={:.1}", bench_direct(&cfg));
    for n in [2usize, 10, 100, 1000] {
        if only_n.is_some_and(|only| only != n) {
            continue;
        }
        let tower_pending = bench_tower_pending(&cfg, n);
        let tower_ewma = bench_tower_ewma(&cfg, n);
        for policy in policy_names() {
            if only_policy.as_deref().is_some_and(|only| only != policy) {
                continue;
            }
            let ours = bench_fulcrum(&cfg, policy, n);
            let tower = match policy {
                "ewma" => Some(tower_ewma),
                "p2c" => Some(tower_pending),
                _ => None,
            };
            match tower {
                Some(t) => println!(
                    "pick policy={policy} n={n} fulcrum_ns={ours:.1} tower_ns={t:.1} ratio={:.2}",
                    t / ours
                ),
                None => {
                    println!("pick policy={policy} n={n} fulcrum_ns={ours:.1} tower_ns=- ratio=-")
                }
            }
        }
    }
    // The hash pickers alone: pure pick cost (no request around it) and the
    // time to rebuild for 1000 endpoints (a membership change).
    for policy in HASH_POLICIES {
        for n in [10usize, 100, 1000] {
            let endpoints: Vec<Endpoint> = (0..n)
                .map(|i| Endpoint::new(([10, 0, (i >> 8) as u8, i as u8], 80).into()))
                .collect();
            let policy_impl = fulcrum::pick::by_name(policy).unwrap();
            let picks = if policy == "rendezvous" {
                20_000
            } else {
                2_000_000
            };
            let runs: Vec<_> = (0..cfg.runs)
                .map(|_| fulcrum::pick::measure(&*policy_impl, &endpoints, picks))
                .collect();
            let pick_ns = median(runs.iter().map(|m| m.pick_ns).collect());
            let build_ms = median(runs.iter().map(|m| m.build.as_secs_f64() * 1e3).collect());
            println!("hash policy={policy} n={n} pick_ns={pick_ns:.1} rebuild_ms={build_ms:.2}");
        }
    }
    let per_thread: u64 = if quick { 1_000_000 } else { 5_000_000 };
    let repeats = if quick { 1 } else { 5 };
    let cases = [
        ("ewma", 0, false),
        ("p2c", 0, false),
        ("p2c", 0, true),
        ("ewma", 100, false),
        ("p2c", 100, false),
        ("ewma", 500, false),
        ("p2c", 500, false),
    ];
    for (policy, work, separate) in cases {
        let mut one = Vec::new();
        let mut two = Vec::new();
        let per_thread = per_thread / (1 + u64::from(work) / 25);
        for _ in 0..repeats {
            one.push(throughput(policy, 100, 1, per_thread, work, separate));
            two.push(throughput(policy, 100, 2, per_thread, work, separate));
        }
        let (one, two) = (median(one), median(two));
        println!(
            "threads policy={policy} n=100 inner_ns={:.0} balancers={} threads1_mreq_s={:.2} threads2_mreq_s={:.2} speedup={:.2}",
            work_ns(work),
            if separate { "one-per-thread" } else { "shared" },
            one / 1e6,
            two / 1e6,
            two / one
        );
    }
}
