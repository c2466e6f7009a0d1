//! `fulcrum demo [--json] [--plot FILE.svg]`: every policy against the
//! same local service, side by side. Needs nothing installed: the DNS
//! server and the backends run in this process, on loopback.

mod backends;
mod dns;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_balance::health::HealthChecks;
use fulcrum_balance::pick::policy_names;
use fulcrum_balance::retry::Hedging;
use fulcrum_http::{Client, HttpProbe};
use hdrhistogram::Histogram;
use http::HeaderName;
use serde::Serialize;

use crate::load::{self, plot_cdf, HashHeader, Load, LoadClient, Progress, Report};
use crate::Failure;
use backends::{Backend, Role};
use dns::DemoDns;

/// Arguments of `fulcrum demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Write the latency CDF of every policy to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// Requests per policy.
    #[arg(long, default_value_t = 4000, value_name = "N")]
    requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_name = "C")]
    concurrency: usize,
}

/// The ten backends' parts.
const ROLES: [Role; 10] = [
    Role::Normal,
    Role::Normal,
    Role::Normal,
    Role::Normal,
    Role::Normal,
    Role::Normal,
    Role::Normal,
    Role::Slow,
    Role::Failing,
    Role::Dies,
];

/// The hash policies key on this header (`key-{i mod 100}`), as a service
/// keying on a user id would.
const HASH_HEADER: &str = "x-user";
const KEYS: u64 = 100;

/// The last run: the default policy with every protection on.
const PROTECTED: &str = "ewma+health+hedge";

#[derive(Serialize)]
struct DemoOutput<'a> {
    target: String,
    backends: Vec<BackendOut>,
    runs: &'a [Report],
}

#[derive(Serialize)]
struct BackendOut {
    name: String,
    addr: String,
    role: Role,
}

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    if args.requests == 0 || args.concurrency == 0 {
        return Err(Failure::Usage(
            "--requests and --concurrency must be at least 1".into(),
        ));
    }
    if let Some(path) = &args.plot {
        // Fail before the runs, not after.
        std::fs::write(path, "").map_err(|e| {
            Failure::Usage(format!("cannot write the plot to {}: {e}", path.display()))
        })?;
    }
    let mut backends = Vec::new();
    for role in ROLES {
        backends.push(Arc::new(
            Backend::start(role).await.map_err(Failure::Runtime)?,
        ));
    }
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let dns = DemoDns::start(&addrs).await.map_err(Failure::Runtime)?;
    let target = format!("dns+srv://{}/{}", dns.addr, dns::SERVICE);
    if !args.json {
        println!(
            "fulcrum demo: {} HTTP backends on 127.0.0.1, found through SRV records",
            backends.len()
        );
        println!("  {target}");
        println!("  b1-b7 answer in ~2 ms; b8 in ~40 ms (slow); b9 fails 1 request in 5 with 503;");
        println!("  b10 dies a third of the way through each run and comes back at two thirds.");
        println!(
            "  {} requests per policy, {} in flight; hash policies key on {HASH_HEADER} ({KEYS} keys).\n",
            args.requests, args.concurrency
        );
    }

    let mut labels: Vec<String> = policy_names().map(str::to_owned).collect();
    labels.push(PROTECTED.to_owned());
    let mut reports = Vec::new();
    let mut histograms: Vec<Histogram<u64>> = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = load::stop_on_ctrl_c(stop.clone());
    for label in &labels {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (client, load) = client_for(label, &target, &args)?;
        wait_for_endpoints(&client, backends.len()).await;
        let done = Arc::new(AtomicU64::new(0));
        let progress = Progress::start(label, load.requests, done.clone(), args.json);
        let dying = backends[backends.len() - 1].clone();
        let chaos = tokio::spawn(kill_and_revive(dying.clone(), done.clone(), load.requests));
        let measured = load::drive(&client, &load, done, stop.clone()).await;
        chaos.abort();
        let _ = chaos.await;
        progress.finish();
        // b10 comes back for the next run however this one ended.
        if let Err(e) = dying.revive().await {
            eprintln!("fulcrum demo: {e}");
        }
        reports.push(Report::new(label, &measured, &client.stats(), None));
        histograms.push(measured.latency_us);
    }
    interrupt.abort();
    drop(dns);

    let names: Vec<String> = (1..=backends.len()).map(|i| format!("b{i}")).collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let output = DemoOutput {
            target: target.clone(),
            backends: backends
                .iter()
                .zip(&names)
                .map(|(b, name)| BackendOut {
                    name: name.clone(),
                    addr: b.addr.to_string(),
                    role: b.role,
                })
                .collect(),
            runs: &reports,
        };
        serde_json::to_writer(&mut out, &output)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .map_err(Failure::from_io)?;
    } else {
        print_table(&mut out, &reports, &backends).map_err(Failure::from_io)?;
    }
    if let Some(path) = &args.plot {
        let runs: Vec<(String, &Histogram<u64>)> =
            labels.iter().cloned().zip(histograms.iter()).collect();
        let svg = plot_cdf(
            "fulcrum demo: latency by policy (10 backends, 1 slow, 1 failing, 1 dying)",
            &runs,
        );
        std::fs::write(path, svg).map_err(|e| {
            Failure::Runtime(format!("cannot write the plot to {}: {e}", path.display()))
        })?;
        if !args.json {
            println!("\nlatency CDF by policy written to {}", path.display());
        }
    }
    for b in &backends {
        b.kill();
    }
    Ok(())
}

/// The client for one run, fresh so no run inherits another's state.
fn client_for(label: &str, target: &str, args: &Args) -> Result<(LoadClient, Load), Failure> {
    let policy = label.split('+').next().unwrap_or(label);
    let hashing = fulcrum_balance::pick::by_name(policy)
        .map_err(|e| Failure::Runtime(e.to_string()))?
        .picks_by_key();
    let header = HeaderName::from_static(HASH_HEADER);
    let mut builder = Client::builder()
        .target(target)
        .map_err(|e| Failure::Runtime(e.to_string()))?
        .policy(policy)
        .map_err(|e| Failure::Runtime(e.to_string()))?
        .request_timeout(Duration::from_secs(5))
        .key(HashHeader(hashing.then(|| header.clone())));
    if label == PROTECTED {
        let checks =
            HealthChecks::new(HttpProbe::get("/health").timeout(Duration::from_millis(200)))
                .interval(Duration::from_millis(100));
        builder = builder
            .health_checks(checks)
            .and_then(|b| b.outlier_detection(Default::default()))
            .map_err(|e| Failure::Runtime(e.to_string()))?
            .retries(2)
            .map_err(|e| Failure::Runtime(e.to_string()))?
            .hedging(
                Hedging::after(Duration::from_millis(10))
                    .map_err(|e| Failure::Runtime(e.to_string()))?,
            );
    }
    let load = Load {
        requests: args.requests,
        concurrency: args.concurrency,
        path: "/".into(),
        grpc: false,
        hash: hashing.then_some((header, KEYS)),
    };
    Ok((builder.build(), load))
}

/// Waits until the client has discovered and made every endpoint (at most
/// 3 s: the run then starts with what it has).
async fn wait_for_endpoints(client: &LoadClient, n: usize) {
    for _ in 0..300 {
        if client.stats().ready >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kills the dying backend a third of the way through the run and brings
/// it back at two thirds.
async fn kill_and_revive(dying: Arc<Backend>, done: Arc<AtomicU64>, total: u64) {
    let reached = |share: u64| {
        let done = done.clone();
        async move {
            while done.load(Ordering::Relaxed) * 3 < total * share {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    reached(1).await;
    dying.kill();
    // Let the accept loop see the crash before the next step, however
    // short the run.
    tokio::time::sleep(Duration::from_millis(20)).await;
    reached(2).await;
    if let Err(e) = dying.revive().await {
        eprintln!("fulcrum demo: {e}");
    }
}

fn print_table(
    out: &mut impl Write,
    reports: &[Report],
    backends: &[Arc<Backend>],
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20} {:>7} {:>7} {:>8} {:>7} {:>7}   {:>8} {:>6} {:>8} {:>6}",
        "policy", "p50 ms", "p99 ms", "p99.9 ms", "req/s", "errors", "b1-b7", "b8", "b9", "b10"
    )?;
    writeln!(
        out,
        "{:<20} {:>7} {:>7} {:>8} {:>7} {:>7}   {:>8} {:>6} {:>8} {:>6}",
        "", "", "", "", "", "", "(each)", "slow", "failing", "dies"
    )?;
    for r in reports {
        let total: u64 = r.endpoints.iter().map(|e| e.requests).sum::<u64>().max(1);
        let share = |i: usize| {
            let addr = backends.get(i).map(|b| b.addr.to_string());
            r.endpoints
                .iter()
                .find(|e| Some(&e.addr) == addr.as_ref())
                .map_or(0.0, |e| 100.0 * e.requests as f64 / total as f64)
        };
        let normal = (0..7).map(share).sum::<f64>() / 7.0;
        let l = &r.latency_ms;
        writeln!(
            out,
            "{:<20} {:>7.1} {:>7.1} {:>8.1} {:>7} {:>7}   {:>7.1}% {:>5.1}% {:>7.1}% {:>5.1}%",
            r.policy,
            l.p50,
            l.p99,
            l.p999,
            r.throughput_rps,
            r.errors,
            normal,
            share(7),
            share(8),
            share(9)
        )?;
    }
    Ok(())
}
