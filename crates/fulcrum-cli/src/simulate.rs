//! `fulcrum simulate`: compute what a setting does to a population of
//! clients, to size it before deploying it.

use std::io::Write;

use clap::{Subcommand, ValueEnum};
use fulcrum_balance::subsetting::simulate::{simulate, Method, Report, Scenario};
use serde::Serialize;

use crate::Failure;

#[derive(Debug, Subcommand)]
pub(crate) enum Args {
    /// Subsetting: each of C clients connects to K of the N endpoints.
    /// Prints, for each method side by side (none, random as gRPC's A68,
    /// rendezvous, deterministic): the connections against a full mesh,
    /// clients per endpoint and requests per endpoint under equal client
    /// demand (max / mean), and how much of each client's subset changes
    /// when P % of the endpoints are removed (--churn, 1 by default).
    Subsetting(SubsettingArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct SubsettingArgs {
    /// Clients of the service.
    #[arg(long, value_name = "C")]
    clients: u64,
    /// Endpoints of the service.
    #[arg(long, value_name = "N")]
    endpoints: usize,
    /// Endpoints per client.
    #[arg(long, value_name = "K")]
    subset: usize,
    /// Percentage of the endpoints removed (a scale-in, a zone lost), for
    /// the churn; 0 skips it.
    #[arg(long, value_name = "P", default_value_t = 1.0)]
    churn: f64,
    /// Only this method (all of them by default).
    #[arg(long, value_enum)]
    method: Option<MethodArg>,
    /// Seeds the random subsetting and which endpoints are removed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON, one object per method.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    /// No subsetting: a full mesh.
    None,
    /// A random seed per client, rendezvous hashing (gRPC's A68).
    Random,
    /// Clients known by any id.
    Rendezvous,
    /// Clients that know their coordinate and the number of clients.
    Deterministic,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::None => Method::None,
            MethodArg::Random => Method::Random,
            MethodArg::Rendezvous => Method::Rendezvous,
            MethodArg::Deterministic => Method::Deterministic,
        }
    }
}

#[derive(Serialize)]
struct Row {
    method: &'static str,
    clients: u64,
    endpoints: usize,
    subset: usize,
    connections: u64,
    full_mesh_percent: f64,
    clients_per_endpoint_min: u64,
    clients_per_endpoint_mean: f64,
    clients_per_endpoint_max: u64,
    clients_max_over_mean: f64,
    requests_max_over_mean: f64,
    requests_min_over_mean: f64,
    removed: usize,
    subset_changed_percent: Option<f64>,
}

fn row(args: &SubsettingArgs, method: Method, r: &Report) -> Row {
    let s = &r.per_endpoint;
    Row {
        method: method.name(),
        clients: args.clients,
        endpoints: args.endpoints,
        subset: args.subset,
        connections: r.connections,
        full_mesh_percent: 100.0 * r.connections as f64 / r.full_mesh as f64,
        clients_per_endpoint_min: s.min,
        clients_per_endpoint_mean: s.mean,
        clients_per_endpoint_max: s.max,
        clients_max_over_mean: s.max as f64 / s.mean,
        requests_max_over_mean: r.requests.max,
        requests_min_over_mean: r.requests.min,
        removed: r.churn.map_or(0, |c| c.removed),
        subset_changed_percent: r.churn.map(|c| 100.0 * c.per_client),
    }
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    let Args::Subsetting(args) = args;
    let methods: Vec<Method> = match args.method {
        Some(m) => vec![m.into()],
        None => Method::ALL.to_vec(),
    };
    let mut rows = Vec::new();
    for method in methods {
        let report = simulate(&Scenario {
            method,
            clients: args.clients,
            endpoints: args.endpoints,
            subset: args.subset,
            remove_percent: args.churn,
            seed: args.seed,
        })
        .map_err(|e| Failure::Usage(e.to_string()))?;
        rows.push(row(&args, method, &report));
    }
    print(&args, &rows).map_err(Failure::from_io)
}

fn print(args: &SubsettingArgs, rows: &[Row]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        for r in rows {
            writeln!(
                out,
                "{}",
                serde_json::to_string(r).map_err(std::io::Error::other)?
            )?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "subsetting: {} clients, {} endpoints, subsets of {}; churn: {} endpoints removed ({}%)",
        args.clients,
        args.endpoints,
        args.subset,
        rows.first().map_or(0, |r| r.removed),
        args.churn
    )?;
    writeln!(
        out,
        "  {:<14} {:>11} {:>7} {:>22} {:>14} {:>14} {:>15}",
        "METHOD",
        "CONNECTIONS",
        "MESH",
        "CLIENTS/ENDPOINT",
        "CLIENTS MAX/",
        "REQUESTS MAX/",
        "SUBSET CHANGED"
    )?;
    writeln!(
        out,
        "  {:<14} {:>11} {:>7} {:>22} {:>14} {:>14} {:>15}",
        "", "", "", "min / mean / max", "MEAN", "MEAN", "PER CLIENT"
    )?;
    for r in rows {
        let spread = format!(
            "{} / {:.1} / {}",
            r.clients_per_endpoint_min, r.clients_per_endpoint_mean, r.clients_per_endpoint_max
        );
        let changed = r
            .subset_changed_percent
            .map_or("-".to_owned(), |c| format!("{c:.2}%"));
        writeln!(
            out,
            "  {:<14} {:>11} {:>6.1}% {:>22} {:>14.3} {:>14.3} {:>15}",
            r.method,
            r.connections,
            r.full_mesh_percent,
            spread,
            r.clients_max_over_mean,
            r.requests_max_over_mean,
            changed
        )?;
    }
    Ok(())
}
