//! `fulcrum`: see what discovery finds for a target, load a service through
//! a balancing policy, and demo every policy side by side.
//!
//! Exit status: 0 on success, 1 when the work failed (e.g. the resolver did
//! not answer), 2 when the command line or the target is malformed.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod discover;
mod load;
mod resolve;
mod simulate;

/// Client-side load balancing: discovery, policies, tail latency.
#[derive(Debug, Parser)]
#[command(name = "fulcrum", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve a target to its endpoints, once or as it changes.
    ///
    /// TARGET is a static list (127.0.0.1:8080,127.0.0.1:8081=3), host:port,
    /// dns:///host:port, dns://RESOLVER_IP:PORT/host:port,
    /// dns+srv:///_service._proto.domain or
    /// dns+srv://RESOLVER_IP:PORT/_service._proto.domain.
    Resolve(resolve::Args),
    /// Send real load to a service through a policy; report latency,
    /// throughput, errors and each endpoint's share.
    ///
    /// TARGET is any target `fulcrum resolve` accepts. The report lists
    /// p50 / p90 / p99 / p99.9 / max latency and, per endpoint, every
    /// attempt sent to it. Ctrl-C stops with a partial report.
    Bench(Box<bench::Args>),
    /// Every policy against the same local service (ten HTTP backends found
    /// through an in-process DNS server: one slow, one failing, one that
    /// dies and comes back), side by side. Needs nothing installed.
    Demo(demo::Args),
    /// Compute what a setting does to many clients, before deploying it.
    #[command(subcommand)]
    Simulate(simulate::Args),
}

/// A failure, with the exit status it maps to.
#[derive(Debug)]
enum Failure {
    /// Malformed input: exit 2.
    Usage(String),
    /// The work failed: exit 1.
    Runtime(String),
    /// Whoever read the output stopped reading (`| head`): exit quietly.
    BrokenPipe,
}

impl Failure {
    /// A failed write to stdout: quiet when the reader went away.
    fn from_io(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Runtime(format!("cannot write the output: {e}"))
        }
    }
}

/// clap's error as one line: what is wrong, and the usage.
fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    let mut line = String::new();
    for part in parts {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part);
    }
    format!("{line}; see --help")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: not errors.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // A bare `fulcrum`: the help, on stderr, and a usage error.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("fulcrum: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fulcrum: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Resolve(args) => resolve::run(args).await,
            Command::Bench(args) => bench::run(*args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Simulate(args) => simulate::run(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("fulcrum: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("fulcrum: {message}");
            ExitCode::from(1)
        }
        Err(Failure::BrokenPipe) => ExitCode::SUCCESS,
    }
}
