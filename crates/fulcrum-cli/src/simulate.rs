//! `fulcrum simulate`: compute what a setting does to a population of
//! clients, to size it before deploying it.

use std::io::Write;

use clap::{Subcommand, ValueEnum};
use fulcrum_balance::subsetting::simulate::{simulate, Method, Report, Scenario};

use crate::Failure;

#[derive(Debug, Subcommand)]
pub(crate) enum Args {
    /// Deterministic subsetting: each of C clients connects to K of the N
    /// endpoints. Prints the connections (against a full mesh), clients
    /// per endpoint (min / mean / max) and how many connections move when
    /// P % of the endpoints are replaced by new ones (--churn, 10 by
    /// default; 0 skips it).
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
    /// Percentage of the endpoints replaced by new ones (a rolling update,
    /// a scale event), for the churn.
    #[arg(long, value_name = "P", default_value_t = 10.0)]
    churn: f64,
    /// rendezvous: clients known by any id; deterministic: clients that
    /// know a dense coordinate (0, 1, 2, …).
    #[arg(long, value_enum, default_value_t = MethodArg::Rendezvous)]
    method: MethodArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    Rendezvous,
    Deterministic,
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    let Args::Subsetting(args) = args;
    let method = match args.method {
        MethodArg::Rendezvous => Method::Rendezvous,
        MethodArg::Deterministic => Method::Deterministic,
    };
    let report = simulate(&Scenario {
        method,
        clients: args.clients,
        endpoints: args.endpoints,
        subset: args.subset,
        churn_percent: args.churn,
    })
    .map_err(|e| Failure::Usage(e.to_string()))?;
    let name = match method {
        Method::Rendezvous => "rendezvous",
        Method::Deterministic => "deterministic",
    };
    print(&args, name, &report).map_err(Failure::from_io)
}

fn print(args: &SubsettingArgs, method: &str, r: &Report) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "subsetting method={method} clients={} endpoints={} subset={} connections={} full_mesh={} ({:.1}% of a full mesh)",
        args.clients,
        args.endpoints,
        args.subset,
        r.connections,
        r.full_mesh,
        100.0 * r.connections as f64 / r.full_mesh as f64
    )?;
    let s = &r.per_endpoint;
    writeln!(
        out,
        "clients per endpoint min={} mean={:.1} max={} max/mean={:.2}",
        s.min,
        s.mean,
        s.max,
        s.max as f64 / s.mean
    )?;
    match &r.churn {
        Some(c) => writeln!(
            out,
            "churn replaced={} endpoints ({:.1}%) moved={} connections ({:.1}%) forced={} (to removed endpoints) extra={}",
            c.replaced,
            100.0 * c.replaced as f64 / args.endpoints as f64,
            c.moved,
            100.0 * c.moved as f64 / r.connections as f64,
            c.forced,
            c.moved - c.forced
        )?,
        None => writeln!(
            out,
            "churn none ({}% of {} endpoints rounds to 0 replaced)",
            args.churn, args.endpoints
        )?,
    }
    Ok(())
}
