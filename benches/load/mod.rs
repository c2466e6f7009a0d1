//! The load driver the macro benches share: `C` tasks send `N` requests
//! through a service over real sockets, each measured until its response
//! body ends, into an HDR histogram.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use tower::{Service, ServiceExt};

/// What one run measured.
pub struct Run {
    pub label: String,
    pub latency_us: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Run {
    pub fn rps(&self) -> f64 {
        (self.ok + self.errors) as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1e3
    }
}

/// Runs `run(requests, concurrency)` on a 2-thread runtime, with the
/// load from the bench's arguments, else the defaults.
pub fn main<F>(requests: u64, concurrency: usize, run: impl FnOnce(u64, usize) -> F)
where
    F: std::future::Future<Output = ()>,
{
    let (n, c) = args(requests, concurrency);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(run(n, c));
}

/// `--requests N --concurrency C` from the bench's arguments, else the
/// defaults.
pub fn args(requests: u64, concurrency: usize) -> (u64, usize) {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
    };
    (
        value("--requests").unwrap_or(requests),
        value("--concurrency").map_or(concurrency, |c: u64| c as usize),
    )
}

/// Sends `n` requests made by `request` through `svc` from `c` tasks.
pub async fn drive<S, Req, B>(
    label: &str,
    svc: S,
    n: u64,
    c: usize,
    request: impl Fn(u64) -> Req + Clone + Send + Sync + 'static,
) -> Run
where
    S: Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Display,
    Req: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let (mut svc, next, request) = (svc.clone(), next.clone(), request.clone());
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let (mut ok, mut errors) = (0, 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    let result = async {
                        let response = svc
                            .ready()
                            .await
                            .map_err(|e| e.to_string())?
                            .call(request(i))
                            .await
                            .map_err(|e| e.to_string())?;
                        let status = response.status();
                        response
                            .into_body()
                            .collect()
                            .await
                            .map_err(|e| e.to_string())?;
                        if status.is_server_error() {
                            return Err(format!("status {status}"));
                        }
                        Ok::<_, String>(())
                    };
                    let result = tokio::time::timeout(Duration::from_secs(10), result).await;
                    latency.saturating_record(t.elapsed().as_micros().max(1) as u64);
                    match result {
                        Ok(Ok(())) => ok += 1,
                        _ => errors += 1,
                    }
                }
                (latency, ok, errors)
            })
        })
        .collect();
    let mut run = Run {
        label: label.to_owned(),
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (latency, ok, errors) = task.await.expect("a load task");
        run.latency_us.add(&latency).unwrap();
        run.ok += ok;
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    run
}

/// The median of `values` (five alternating rounds smooth out a noisy
/// machine better than the best of a few).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The table header.
pub fn header(extra: &str) {
    println!(
        "{:<34} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "run", extra, "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
}

/// One table row.
pub fn row(run: &Run, extra: &str) {
    println!(
        "{:<34} {:>9} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>7}",
        run.label,
        extra,
        run.rps(),
        run.ms(0.5),
        run.ms(0.99),
        run.ms(0.999),
        run.errors
    );
}
