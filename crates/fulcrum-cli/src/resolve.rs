//! `fulcrum resolve TARGET [--json] [--watch SECONDS]`.

use std::io::Write;
use std::time::Duration;

use fulcrum_core::EndpointSet;
use futures_util::StreamExt;
use serde::Serialize;

use crate::Failure;

/// Arguments of `fulcrum resolve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The target to resolve.
    target: String,
    /// Print JSON: one object per endpoint set, one per line.
    #[arg(long)]
    json: bool,
    /// Keep resolving for SECONDS, printing the set each time it changes.
    #[arg(long, value_name = "SECONDS")]
    watch: Option<f64>,
    /// Place endpoints in zones and regions by address range or host-name
    /// suffix: `10.1.0.0/16;zone=eu-1a;region=eu,*.use1.internal;zone=use1-az1`
    /// (default: $FULCRUM_LOCALITY_MAP).
    #[arg(long, value_name = "RULES")]
    locality_map: Option<String>,
}

#[derive(Serialize)]
struct Output<'a> {
    target: &'a str,
    endpoints: Vec<EndpointOut>,
}

#[derive(Serialize)]
struct EndpointOut {
    addr: String,
    weight: u32,
    priority: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    labels: std::collections::BTreeMap<String, String>,
}

fn print(target: &str, set: &EndpointSet, json: bool) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if json {
        let output = Output {
            target,
            endpoints: set
                .iter()
                .map(|e| EndpointOut {
                    addr: e.addr().to_string(),
                    weight: e.weight(),
                    priority: e.priority(),
                    zone: e.zone().map(str::to_owned),
                    region: e.region().map(str::to_owned),
                    labels: e.labels().clone(),
                })
                .collect(),
        };
        serde_json::to_string(&output)
            .map_err(std::io::Error::other)
            .and_then(|line| writeln!(out, "{line}"))
    } else {
        print_table(&mut out, target, set)
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::BrokenPipe,
            _ => Failure::Runtime(format!("cannot write the output: {e}")),
        })
}

fn print_table(out: &mut impl Write, target: &str, set: &EndpointSet) -> std::io::Result<()> {
    let count = match set.len() {
        1 => "1 endpoint".to_owned(),
        n => format!("{n} endpoints"),
    };
    writeln!(out, "{target}: {count}")?;
    if set.is_empty() {
        return Ok(());
    }
    let width = set
        .iter()
        .map(|e| e.addr().to_string().len())
        .max()
        .unwrap_or(0)
        .max("ADDRESS".len());
    let labelled = set
        .iter()
        .any(|e| e.zone().is_some() || e.region().is_some() || !e.labels().is_empty());
    let authority_width = set
        .iter()
        .map(|e| e.authority().unwrap_or("-").len())
        .max()
        .unwrap_or(0)
        .max("AUTHORITY".len());
    let header = format!(
        "  {:<width$}  {:>6}  {:>8}  {:<authority_width$}",
        "ADDRESS", "WEIGHT", "PRIORITY", "AUTHORITY"
    );
    if labelled {
        writeln!(out, "{header}  LABELS")?;
    } else {
        writeln!(out, "{}", header.trim_end())?;
    }
    for e in set.iter() {
        let line = format!(
            "  {:<width$}  {:>6}  {:>8}  {:<authority_width$}",
            e.addr().to_string(),
            e.weight(),
            e.priority(),
            e.authority().unwrap_or("-")
        );
        if labelled {
            // The zone and region first, then every label, as the
            // target syntax writes them.
            let mut labels: Vec<String> = [("zone", e.zone()), ("region", e.region())]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                .collect();
            labels.extend(e.labels().iter().map(|(k, v)| format!("{k}={v}")));
            let labels = if labels.is_empty() {
                "-".to_owned()
            } else {
                labels.join(";")
            };
            writeln!(out, "{line}  {labels}")?;
        } else {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let discovery = crate::discover::discovery(&args.target, args.locality_map.as_deref())?;
    let Some(seconds) = args.watch else {
        let set = discovery
            .resolve()
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        return print(&args.target, &set, args.json);
    };
    let watch = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--watch takes a positive number of seconds, not `{seconds}`"
            ))
        })?;
    let deadline = tokio::time::Instant::now()
        .checked_add(watch)
        .ok_or_else(|| Failure::Usage(format!("--watch {seconds} is too long")))?;
    let (mut stream, _refresh) = discovery.stream();
    // Exit 1 if the whole watch found nothing: the same as without --watch.
    let mut found_any = false;
    let mut last_error = None;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_elapsed) => break,
            Ok(None) => {
                if last_error.is_some() && !found_any {
                    // Discovery gave up (e.g. no resolver configuration).
                    break;
                }
                // A static target never changes: wait out the watch.
                tokio::time::sleep_until(deadline).await;
                break;
            }
            Ok(Some(Ok(set))) => {
                found_any = true;
                print(&args.target, &set, args.json)?;
            }
            Ok(Some(Err(e))) => {
                eprintln!("fulcrum: {e}");
                last_error = Some(e.to_string());
            }
        }
    }
    if found_any {
        Ok(())
    } else {
        Err(Failure::Runtime(last_error.unwrap_or_else(|| {
            format!(
                "no endpoint set was found for `{}` within {seconds} s",
                args.target
            )
        })))
    }
}
