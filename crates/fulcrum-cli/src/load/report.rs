use std::io::Write;

use fulcrum_balance::Stats;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::Measured;

/// One run's report: `fulcrum bench --json` prints exactly this.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) policy: String,
    pub(crate) requests: u64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) duration_secs: f64,
    pub(crate) throughput_rps: f64,
    pub(crate) latency_ms: Latency,
    pub(crate) endpoints: Vec<EndpointReport>,
    /// Each zone's part of the run, when endpoints have zones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) zones: Vec<ZoneReport>,
}

/// One zone's part of a run.
#[derive(Debug, Serialize)]
pub(crate) struct ZoneReport {
    pub(crate) zone: Option<String>,
    pub(crate) requests: u64,
    /// Its share of the requests, 0–1.
    pub(crate) share: f64,
    /// The client's own zone (`--zone`).
    pub(crate) local: bool,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

/// One endpoint's part of a run.
#[derive(Debug, Serialize)]
pub(crate) struct EndpointReport {
    pub(crate) addr: String,
    /// Every attempt sent to it (retries and hedges included).
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<String>,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
        let ms = |q: f64| round3(h.value_at_quantile(q) as f64 / 1000.0);
        Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: round3(h.max() as f64 / 1000.0),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report {
    /// The report of a run of `policy` that measured `m`, with each
    /// endpoint's counts from the client's `stats` after the run (and each
    /// zone's, `local` being the client's).
    pub(crate) fn new(policy: &str, m: &Measured, stats: &Stats, local: Option<&str>) -> Report {
        let secs = m.elapsed.as_secs_f64();
        let requests = m.ok + m.errors;
        let mut endpoints: Vec<EndpointReport> = stats
            .endpoints
            .iter()
            .map(|e| EndpointReport {
                addr: e.addr.to_string(),
                // Dispatches whose connection could not be made were never sent.
                requests: e.requests.saturating_sub(e.not_sent),
                errors: e.failures.saturating_sub(e.not_sent),
                zone: e.zone.clone(),
                region: e.region.clone(),
            })
            .collect();
        endpoints.sort_by(|a, b| a.addr.cmp(&b.addr));
        let mut zones: Vec<ZoneReport> = Vec::new();
        if endpoints.iter().any(|e| e.zone.is_some()) {
            for e in &endpoints {
                match zones.iter_mut().find(|z| z.zone == e.zone) {
                    Some(z) => z.requests += e.requests,
                    None => zones.push(ZoneReport {
                        zone: e.zone.clone(),
                        requests: e.requests,
                        share: 0.0,
                        local: e.zone.is_some() && e.zone.as_deref() == local,
                    }),
                }
            }
            let total: u64 = zones.iter().map(|z| z.requests).sum();
            for z in &mut zones {
                z.share = if total > 0 {
                    round3(z.requests as f64 / total as f64)
                } else {
                    0.0
                };
            }
            zones.sort_by(|a, b| (!a.local, &a.zone).cmp(&(!b.local, &b.zone)));
        }
        Report {
            policy: policy.to_owned(),
            requests,
            ok: m.ok,
            errors: m.errors,
            duration_secs: round3(secs),
            throughput_rps: if secs > 0.0 {
                (requests as f64 / secs).round()
            } else {
                0.0
            },
            latency_ms: Latency::of(&m.latency_us),
            endpoints,
            zones,
        }
    }

    /// The human table `fulcrum bench` prints.
    pub(crate) fn print_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "policy {}: {} requests, {} ok, {} errors in {:.2} s ({} req/s)",
            self.policy,
            self.requests,
            self.ok,
            self.errors,
            self.duration_secs,
            self.throughput_rps
        )?;
        let l = &self.latency_ms;
        writeln!(
            out,
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        )?;
        writeln!(out)?;
        let placed = self
            .endpoints
            .iter()
            .any(|e| e.zone.is_some() || e.region.is_some());
        let place = |e: &EndpointReport| {
            [("zone", &e.zone), ("region", &e.region)]
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(";")
        };
        let header = format!(
            "{:<40} {:>10} {:>8} {:>7}",
            "endpoint", "requests", "errors", "share"
        );
        if placed {
            writeln!(out, "{header}  place")?;
        } else {
            writeln!(out, "{header}")?;
        }
        let total: u64 = self.endpoints.iter().map(|e| e.requests).sum();
        for e in &self.endpoints {
            let share = if total > 0 {
                100.0 * e.requests as f64 / total as f64
            } else {
                0.0
            };
            let line = format!(
                "{:<40} {:>10} {:>8} {:>6.1}%",
                e.addr, e.requests, e.errors, share
            );
            if placed {
                writeln!(out, "{line}  {}", place(e))?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
        if !self.zones.is_empty() {
            writeln!(out)?;
            writeln!(out, "{:<40} {:>10} {:>7}", "zone", "requests", "share")?;
            for z in &self.zones {
                let name = format!(
                    "{}{}",
                    z.zone.as_deref().unwrap_or("(none)"),
                    if z.local { " (local)" } else { "" }
                );
                writeln!(
                    out,
                    "{:<40} {:>10} {:>6.1}%",
                    name,
                    z.requests,
                    100.0 * z.share
                )?;
            }
        }
        Ok(())
    }
}
