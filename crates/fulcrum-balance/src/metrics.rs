//! Metrics through the [`metrics`] facade (feature `metrics`): whatever
//! exporter the application installed (Prometheus, OpenTelemetry, statsd)
//! receives every balancer's and endpoint's counters and gauges.
//!
//! The request path is untouched: the balancer's driver task reads the
//! same atomics [`Balancer::stats`](crate::Balancer::stats) reads, on an
//! interval ([`Builder::export_metrics`](crate::Builder::export_metrics)),
//! and records what changed: counters grow by the requests since the last
//! export (an endpoint removed and added again keeps counting up, as
//! Prometheus counters must), gauges are set. A panic in the recorder
//! stops the export, never the balancer.
//!
//! Every series has the label `balancer` (the builder's
//! [`target`](crate::Builder::target) name, the target string for
//! balancers built from one, `static` otherwise: give balancers of
//! fixed endpoints distinct names, or their series mix); an endpoint's
//! also have `endpoint` (its address).
//!
//! | name | kind | what |
//! |---|---|---|
//! | `fulcrum_endpoints` | gauge | endpoints in the set, draining ones included |
//! | `fulcrum_endpoints_ready` | gauge | endpoints that can take requests now |
//! | `fulcrum_endpoints_ejected` | gauge | endpoints ejected by outlier detection now |
//! | `fulcrum_endpoints_unhealthy` | gauge | endpoints down by their health check now |
//! | `fulcrum_panic` | gauge | 1 while the panic threshold is crossed |
//! | `fulcrum_retries_total`, `fulcrum_hedges_total`, `fulcrum_hedges_won_total`, `fulcrum_retry_budget_exhausted_total` | counter | the retry layer's work |
//! | `fulcrum_endpoint_requests_total` | counter | requests dispatched to the endpoint |
//! | `fulcrum_endpoint_not_sent_total` | counter | of those, never sent (they moved) |
//! | `fulcrum_endpoint_failures_total` | counter | failures (connect, timeout, reset, server) |
//! | `fulcrum_endpoint_cancelled_total` | counter | requests dropped before their end |
//! | `fulcrum_endpoint_overloads_total` | counter | overload answers (429, `RESOURCE_EXHAUSTED`) |
//! | `fulcrum_endpoint_ejections_total` | counter | times ejected |
//! | `fulcrum_endpoint_in_flight` | gauge | requests in flight now |
//! | `fulcrum_endpoint_latency_seconds` | gauge | the peak-EWMA latency estimate |
//! | `fulcrum_endpoint_serving` | gauge | 1 while the endpoint is active (not ejected, unhealthy, disabled, draining) |

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Once, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Label};

use crate::balancer::shared::Shared;
use crate::slot::EndpointState;
use crate::stats::{EndpointStats, Stats};

/// The shortest export interval: more often would only cost CPU.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Records `shared`'s stats every `interval` until the balancer is gone.
/// Runs beside the driver, in its task: it never returns while the
/// balancer lives (a panicking recorder ends the export by waiting for
/// ever instead).
pub(crate) async fn export<S>(shared: Weak<Shared<S>>, interval: Duration) {
    let mut exporter = Exporter::default();
    let mut tick = tokio::time::interval(interval.max(MIN_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let stats = shared.stats();
        drop(shared);
        let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            describe();
            exporter.record(&stats);
        }));
        if let Err(panic) = recorded {
            let message = crate::balancer::error::panic_message(&*panic);
            tracing::error!(
                balancer = %stats.target,
                panic = %message,
                "the metrics recorder panicked: this balancer's metrics export stops"
            );
            std::future::pending::<()>().await;
        }
    }
}

/// Handles, made once per balancer and endpoint: recording through a
/// handle costs no lookup.
#[derive(Default)]
struct Exporter {
    balancer: Option<BalancerHandles>,
    endpoints: HashMap<SocketAddr, EndpointHandles>,
}

struct BalancerHandles {
    endpoints: Gauge,
    ready: Gauge,
    ejected: Gauge,
    unhealthy: Gauge,
    panic: Gauge,
    retries: Counter,
    hedges: Counter,
    hedges_won: Counter,
    budget_exhausted: Counter,
}

struct EndpointHandles {
    /// requests, not sent, failures, cancelled, overloads, ejections.
    counters: [Counter; 6],
    /// Their totals at the last export.
    last: [u64; 6],
    in_flight: Gauge,
    latency: Gauge,
    serving: Gauge,
}

impl Exporter {
    fn record(&mut self, stats: &Stats) {
        let b = self
            .balancer
            .get_or_insert_with(|| BalancerHandles::new(&stats.target));
        b.endpoints.set(stats.endpoints.len() as f64);
        b.ready.set(stats.ready as f64);
        b.ejected.set(stats.ejected as f64);
        b.unhealthy.set(stats.unhealthy as f64);
        b.panic.set(if stats.panic { 1.0 } else { 0.0 });
        b.retries.absolute(stats.retries);
        b.hedges.absolute(stats.hedges);
        b.hedges_won.absolute(stats.hedges_won);
        b.budget_exhausted.absolute(stats.retry_budget_exhausted);
        // An address both in the set and draining (removed, then added
        // again) is recorded once, as the set's member (listed first).
        let mut seen = HashSet::with_capacity(stats.endpoints.len());
        for e in &stats.endpoints {
            if !seen.insert(e.addr) {
                continue;
            }
            let h = self
                .endpoints
                .entry(e.addr)
                .or_insert_with(|| EndpointHandles::new(&stats.target, e.addr));
            h.record(e);
        }
        // Endpoints that left stop being recorded (their series keep their
        // last values, as the exporter decides).
        self.endpoints.retain(|addr, _| seen.contains(addr));
    }
}

impl BalancerHandles {
    fn new(target: &str) -> Self {
        let labels = || vec![Label::new("balancer", target.to_owned())];
        BalancerHandles {
            endpoints: metrics::gauge!("fulcrum_endpoints", labels()),
            ready: metrics::gauge!("fulcrum_endpoints_ready", labels()),
            ejected: metrics::gauge!("fulcrum_endpoints_ejected", labels()),
            unhealthy: metrics::gauge!("fulcrum_endpoints_unhealthy", labels()),
            panic: metrics::gauge!("fulcrum_panic", labels()),
            retries: metrics::counter!("fulcrum_retries_total", labels()),
            hedges: metrics::counter!("fulcrum_hedges_total", labels()),
            hedges_won: metrics::counter!("fulcrum_hedges_won_total", labels()),
            budget_exhausted: metrics::counter!("fulcrum_retry_budget_exhausted_total", labels()),
        }
    }
}

impl EndpointHandles {
    fn new(target: &str, addr: SocketAddr) -> Self {
        let labels = || {
            vec![
                Label::new("balancer", target.to_owned()),
                Label::new("endpoint", addr.to_string()),
            ]
        };
        EndpointHandles {
            counters: [
                metrics::counter!("fulcrum_endpoint_requests_total", labels()),
                metrics::counter!("fulcrum_endpoint_not_sent_total", labels()),
                metrics::counter!("fulcrum_endpoint_failures_total", labels()),
                metrics::counter!("fulcrum_endpoint_cancelled_total", labels()),
                metrics::counter!("fulcrum_endpoint_overloads_total", labels()),
                metrics::counter!("fulcrum_endpoint_ejections_total", labels()),
            ],
            last: [0; 6],
            in_flight: metrics::gauge!("fulcrum_endpoint_in_flight", labels()),
            latency: metrics::gauge!("fulcrum_endpoint_latency_seconds", labels()),
            serving: metrics::gauge!("fulcrum_endpoint_serving", labels()),
        }
    }

    fn record(&mut self, e: &EndpointStats) {
        let totals = [
            e.requests,
            e.not_sent,
            e.failures,
            e.cancelled,
            e.overloads,
            e.ejections,
        ];
        for ((counter, last), total) in self.counters.iter().zip(&mut self.last).zip(totals) {
            counter.increment(growth(*last, total));
            *last = total;
        }
        self.in_flight.set(f64::from(e.in_flight));
        self.latency.set(e.ewma_ms / 1e3);
        let serving = e.state == EndpointState::Active;
        self.serving.set(if serving { 1.0 } else { 0.0 });
    }
}

/// How much a counter grew from `last` to `total`: all of `total` if it
/// went down (the endpoint's counters started again: it left and came
/// back).
fn growth(last: u64, total: u64) -> u64 {
    total.checked_sub(last).unwrap_or(total)
}

/// Help texts, once per process.
fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use metrics::{describe_counter, describe_gauge, Unit};
        describe_gauge!(
            "fulcrum_endpoints",
            "Endpoints in the set, draining ones included."
        );
        describe_gauge!(
            "fulcrum_endpoints_ready",
            "Endpoints that can take requests now."
        );
        describe_gauge!(
            "fulcrum_endpoints_ejected",
            "Endpoints ejected by outlier detection now."
        );
        describe_gauge!(
            "fulcrum_endpoints_unhealthy",
            "Endpoints down by their health check now."
        );
        describe_gauge!("fulcrum_panic", "1 while the panic threshold is crossed.");
        describe_counter!("fulcrum_retries_total", "Retries made by retry layers.");
        describe_counter!("fulcrum_hedges_total", "Hedges sent by retry layers.");
        describe_counter!(
            "fulcrum_hedges_won_total",
            "Hedges whose answer was returned."
        );
        describe_counter!(
            "fulcrum_retry_budget_exhausted_total",
            "Retries and hedges the retry budget refused."
        );
        describe_counter!(
            "fulcrum_endpoint_requests_total",
            "Requests dispatched to the endpoint."
        );
        describe_counter!(
            "fulcrum_endpoint_not_sent_total",
            "Requests dispatched to the endpoint but never sent; they moved."
        );
        describe_counter!("fulcrum_endpoint_failures_total", "Requests that failed.");
        describe_counter!(
            "fulcrum_endpoint_cancelled_total",
            "Requests dropped before their end."
        );
        describe_counter!("fulcrum_endpoint_overloads_total", "Overload answers.");
        describe_counter!(
            "fulcrum_endpoint_ejections_total",
            "Times the endpoint was ejected."
        );
        describe_gauge!("fulcrum_endpoint_in_flight", "Requests in flight now.");
        describe_gauge!(
            "fulcrum_endpoint_latency_seconds",
            Unit::Seconds,
            "The endpoint's peak-EWMA latency estimate."
        );
        describe_gauge!(
            "fulcrum_endpoint_serving",
            "1 while the endpoint is active."
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_only_grow() {
        assert_eq!(growth(0, 10), 10);
        assert_eq!(growth(10, 25), 15);
        assert_eq!(growth(25, 25), 0);
        // Started again from zero: everything since is new.
        assert_eq!(growth(25, 4), 4);
    }
}
