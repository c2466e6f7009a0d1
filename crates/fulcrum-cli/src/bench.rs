//! `fulcrum bench TARGET …`: real load through the SDK against the user's
//! own service, and what the policy did with it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_balance::health::HealthChecks;
use fulcrum_balance::pick::{by_name_with, HashOptions};
use fulcrum_balance::region::NearestRegion;
use fulcrum_balance::retry::Hedging;
use fulcrum_balance::zone::ZoneAware;
use fulcrum_grpc::GrpcHealthProbe;
use fulcrum_http::{Client, HttpProbe, Protocol};
use http::HeaderName;

use crate::load::{self, HashHeader, Load, LoadClient, Progress, Report};
use crate::Failure;

/// Arguments of `fulcrum bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The service to load: any target `fulcrum resolve` accepts.
    target: String,
    /// `http` (HTTP/1.1) or `grpc` (unary calls over HTTP/2).
    #[arg(long, default_value = "http", value_name = "http|grpc")]
    protocol: String,
    /// The balancing policy.
    #[arg(long, default_value = "ewma", value_name = "NAME")]
    policy: String,
    /// How many requests to send.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    requests: u64,
    /// How many requests in flight at once.
    #[arg(long, default_value_t = 32, value_name = "C")]
    concurrency: usize,
    /// The path every request asks for (HTTP; `/` by default).
    #[arg(long, value_name = "/p")]
    path: Option<String>,
    /// The gRPC method every call invokes with an empty message (with
    /// --protocol grpc; /grpc.health.v1.Health/Check by default).
    #[arg(long, value_name = "/pkg.Service/Method")]
    grpc_method: Option<String>,
    /// Send this header with the value key-{i mod K} on request i (a hash
    /// policy keys on it).
    #[arg(long, value_name = "NAME", requires = "keys")]
    hash_header: Option<String>,
    /// How many distinct keys --hash-header cycles through.
    #[arg(long, value_name = "K", requires = "hash_header")]
    keys: Option<u64>,
    /// Bounded-load factor for the hash policies (above 1, e.g. 1.25).
    #[arg(long, value_name = "C")]
    balance_factor: Option<f64>,
    /// Active health checks, every second: `tcp`, `http:/path` or `grpc`
    /// (grpc.health.v1). An endpoint takes requests once a first check
    /// passes.
    #[arg(long, value_name = "tcp|http:/path|grpc")]
    health_check: Option<String>,
    /// Attempts per request, the first included (1 to 8).
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Hedge requests slower than DELAY on a second endpoint (e.g. 20ms).
    #[arg(long, value_name = "DELAY")]
    hedge: Option<String>,
    /// Zone-aware routing for a client in zone Z: requests stay in Z while
    /// its healthy endpoints cover its share (endpoints are placed by
    /// `;zone=` in the target or --locality-map). The report shows each
    /// zone's share.
    #[arg(long, value_name = "Z")]
    zone: Option<String>,
    /// Nearest-region routing: requests go to the region with the lowest
    /// measured latency (endpoints placed by `;region=` or --locality-map).
    #[arg(long)]
    nearest_region: bool,
    /// Place endpoints in zones and regions by address range or host-name
    /// suffix: `10.1.0.0/16;zone=eu-1a;region=eu,*.use1.internal;zone=use1-az1`
    /// (default: $FULCRUM_LOCALITY_MAP).
    #[arg(long, value_name = "RULES")]
    locality_map: Option<String>,
    /// Print one JSON report instead of tables.
    #[arg(long)]
    json: bool,
}

/// A request that has had no response for this long fails (an endpoint
/// that accepts and never answers must not stall the run).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let (client, load) = configure(&args)?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = load::stop_on_ctrl_c(stop.clone());
    let progress = Progress::start(&args.policy, load.requests, done.clone(), args.json);
    let measured = load::drive(&client, &load, done, stop.clone()).await;
    progress.finish();
    interrupt.abort();
    let report = Report::new(
        &args.policy,
        &measured,
        &client.stats(),
        args.zone.as_deref(),
    );
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        report.print_table(&mut out)
    };
    written.map_err(Failure::from_io)?;
    if stop.load(Ordering::Relaxed) {
        eprintln!(
            "fulcrum: interrupted after {} of {} requests",
            report.requests, args.requests
        );
    }
    if report.ok == 0 && report.errors > 0 {
        let why = measured.first_errors.first().cloned().unwrap_or_default();
        return Err(Failure::Runtime(format!(
            "every request failed; the first: {why}"
        )));
    }
    if let Some(first) = measured.first_errors.first() {
        eprintln!(
            "fulcrum: {} requests failed; the first: {first}",
            report.errors
        );
    }
    Ok(())
}

/// The client and the load the arguments ask for, or a usage error that
/// says what is wrong and what is accepted.
fn configure(args: &Args) -> Result<(LoadClient, Load), Failure> {
    let grpc = match args.protocol.as_str() {
        "http" => false,
        "grpc" => true,
        other => {
            return Err(Failure::Usage(format!(
                "unknown --protocol `{other}`; choose http or grpc"
            )))
        }
    };
    let path = match (grpc, &args.path, &args.grpc_method) {
        (false, _, Some(_)) => {
            return Err(Failure::Usage("--grpc-method needs --protocol grpc".into()))
        }
        (true, Some(_), _) => {
            return Err(Failure::Usage(
                "--path is for --protocol http; a gRPC call's path is its --grpc-method".into(),
            ))
        }
        (false, path, None) => path.clone().unwrap_or_else(|| "/".to_owned()),
        (true, None, method) => {
            let method = method.as_deref().unwrap_or(load::HEALTH_CHECK_METHOD);
            if !is_grpc_method(method) {
                return Err(Failure::Usage(format!(
                    "--grpc-method `{method}` is not a method path; give /package.Service/Method, \
                     e.g. /grpc.health.v1.Health/Check"
                )));
            }
            method.to_owned()
        }
    };
    if grpc && (args.retries.is_some() || args.hedge.is_some()) {
        return Err(Failure::Usage(
            "--retries and --hedge are for --protocol http: a gRPC call is a POST, which is \
             not retried"
                .into(),
        ));
    }
    if args.requests == 0 {
        return Err(Failure::Usage("--requests must be at least 1".into()));
    }
    if args.concurrency == 0 || args.concurrency > 10_000 {
        return Err(Failure::Usage(
            "--concurrency must be between 1 and 10000".into(),
        ));
    }
    if !path.starts_with('/') || path.parse::<http::Uri>().is_err() {
        return Err(Failure::Usage(format!(
            "--path `{path}` is not a request path; give one such as /health or /api?x=1"
        )));
    }
    let mut options = HashOptions::default();
    if let Some(c) = args.balance_factor {
        if !(c.is_finite() && c > 1.0) {
            return Err(Failure::Usage(format!(
                "--balance-factor {c} must be above 1 (1.25 lets an endpoint take 25 % more than the mean)"
            )));
        }
        options = options.balance_factor(c);
    }
    let policy = by_name_with(&args.policy, options).map_err(|e| Failure::Usage(e.to_string()))?;
    let hash = match (&args.hash_header, args.keys) {
        (Some(name), Some(keys)) => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Failure::Usage(format!("--hash-header `{name}` is not a valid header name"))
            })?;
            if keys == 0 {
                return Err(Failure::Usage("--keys must be at least 1".into()));
            }
            Some((name, keys))
        }
        _ => None,
    };
    let discovery = crate::discover::discovery(&args.target, args.locality_map.as_deref())?;
    if args.zone.as_deref().is_some_and(|z| z.trim().is_empty()) {
        return Err(Failure::Usage(
            "--zone needs a zone name, e.g. --zone eu-west-1a".into(),
        ));
    }
    let zone = args.zone.clone().map(ZoneAware::new);
    let nearest = args.nearest_region.then(NearestRegion::default);
    let mut builder = Client::builder()
        .target(&args.target)
        .map_err(|e| Failure::Usage(e.to_string()))?
        .configure(move |b| {
            let b = b.policy_arc(policy).discovery(discovery);
            let b = match zone {
                Some(z) => b.zone_aware(z),
                None => b,
            };
            match nearest {
                Some(n) => b.nearest_region(n),
                None => b,
            }
        })
        .request_timeout(REQUEST_TIMEOUT)
        .protocol(if grpc {
            Protocol::Http2
        } else {
            Protocol::Http1
        })
        .key(HashHeader(hash.as_ref().map(|(n, _)| n.clone())));
    if let Some(check) = &args.health_check {
        builder = builder
            .health_checks(health_checks(check)?)
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    if let Some(n) = args.retries {
        builder = builder
            .retries(n)
            .map_err(|e| Failure::Usage(format!("--retries: {e}")))?;
    }
    if let Some(delay) = &args.hedge {
        let delay = parse_duration(delay).ok_or_else(|| {
            Failure::Usage(format!(
                "--hedge `{delay}` is not a delay; give one such as 20ms or 1.5s"
            ))
        })?;
        let hedging = Hedging::after(delay).map_err(|e| Failure::Usage(format!("--hedge: {e}")))?;
        builder = builder.hedging(hedging);
    }
    let load = Load {
        requests: args.requests,
        concurrency: args.concurrency,
        path,
        grpc,
        hash,
    };
    Ok((builder.build(), load))
}

fn health_checks(check: &str) -> Result<HealthChecks, Failure> {
    // A bench is short: check often, and send nothing to an endpoint
    // before its first check has passed.
    let every_second = |checks: HealthChecks| {
        checks
            .interval(Duration::from_secs(1))
            .unhealthy_until_probed(true)
    };
    if check == "tcp" {
        return Ok(every_second(HealthChecks::tcp_connect()));
    }
    if let Some(path) = check.strip_prefix("http:") {
        if path.starts_with('/') && path.parse::<http::Uri>().is_ok() {
            return Ok(every_second(HealthChecks::new(HttpProbe::get(path))));
        }
    }
    if check == "grpc" {
        return Ok(every_second(HealthChecks::new(GrpcHealthProbe::new())));
    }
    Err(Failure::Usage(format!(
        "--health-check `{check}` is not one of: tcp, http:/path (e.g. http:/health), grpc"
    )))
}

/// `/package.Service/Method`: two non-empty segments without spaces.
fn is_grpc_method(method: &str) -> bool {
    let Some(rest) = method.strip_prefix('/') else {
        return false;
    };
    let mut parts = rest.split('/');
    let (service, name) = (parts.next(), parts.next());
    parts.next().is_none()
        && [service, name]
            .iter()
            .all(|p| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_graphic())))
}

/// `250ms`, `1.5s`, `2m`, `100us`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("100us"), Some(Duration::from_micros(100)));
        for bad in ["", "ms", "20", "20 parsecs", "-1s", "1e400s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn grpc_methods() {
        assert!(is_grpc_method("/grpc.health.v1.Health/Check"));
        assert!(is_grpc_method("/Svc/M"));
        for bad in ["", "/", "//M", "/Svc/", "Svc/M", "/a/b/c", "/a b/M"] {
            assert!(!is_grpc_method(bad), "{bad}");
        }
    }
}
