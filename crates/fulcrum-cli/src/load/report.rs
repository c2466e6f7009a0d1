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
    /// endpoint's counts from the client's `stats` after the run.
    pub(crate) fn new(policy: &str, m: &Measured, stats: &Stats) -> Report {
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
            })
            .collect();
        endpoints.sort_by(|a, b| a.addr.cmp(&b.addr));
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
        writeln!(
            out,
            "{:<40} {:>10} {:>8} {:>7}",
            "endpoint", "requests", "errors", "share"
        )?;
        let total: u64 = self.endpoints.iter().map(|e| e.requests).sum();
        for e in &self.endpoints {
            let share = if total > 0 {
                100.0 * e.requests as f64 / total as f64
            } else {
                0.0
            };
            writeln!(
                out,
                "{:<40} {:>10} {:>8} {:>6.1}%",
                e.addr, e.requests, e.errors, share
            )?;
        }
        Ok(())
    }
}
