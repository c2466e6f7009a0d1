//! Point-in-time statistics of a balancer, serialisable to JSON.
//!
//! ```
//! # use fulcrum_balance::stats::Stats;
//! let stats = Stats::default();
//! let json = serde_json::to_string(&stats).unwrap();
//! assert!(json.contains("\"endpoints\":[]"));
//! ```

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::balancer::ejection_reason;
use crate::health::EjectionReason;
use crate::slot::{EndpointState, Slot, NO_WEIGHT_OVERRIDE, RAMP_FULL};

/// A balancer's state: see [`Balancer::stats`](crate::Balancer::stats).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// The balancer's target name.
    pub target: String,
    /// The policy's name.
    pub policy: String,
    /// How many snapshots the driver has published (changes applied).
    pub version: u64,
    /// Endpoints that can take requests now.
    pub ready: usize,
    /// Endpoints whose service is still being made.
    pub warming: usize,
    /// A wait for an endpoint ran out with nothing to pick: new requests
    /// fail at once until an endpoint is back.
    pub fail_fast: bool,
    /// The driver has stopped: every request fails with `DriverStopped`.
    pub driver_stopped: bool,
    /// Fewer endpoints of the set are healthy than the panic threshold:
    /// the most preferred tier's ejected and unhealthy endpoints serve too.
    pub panic: bool,
    /// The tiers serving now, most preferred first, with their share of
    /// requests: one tier, unless the preferred one is short of healthy
    /// endpoints and spills over.
    pub tiers: Vec<TierShare>,
    /// How many times the set of serving tiers changed.
    pub tier_changes: u64,
    /// Each subset (see [`subset`](crate::subset)), with where its
    /// requests go now; empty without subsets.
    pub subsets: Vec<SubsetStats>,
    /// How many times some subset's requests changed destination (to a
    /// fallback, or back).
    pub subset_changes: u64,
    /// Zone-aware routing (see [`zone`](crate::zone)), when configured.
    pub zones: Option<ZoneStats>,
    /// Nearest-region routing (see [`region`](crate::region)), when
    /// configured.
    pub regions: Option<RegionStats>,
    /// Endpoints ejected by outlier detection now.
    pub ejected: usize,
    /// Endpoints down by their active health check now.
    pub unhealthy: usize,
    /// The last discovery error, if the latest discovery attempt failed.
    pub discovery_error: Option<String>,
    /// Retries made by retry layers over this balancer (see
    /// [`retry`](crate::retry)), free moves of unsent requests included;
    /// hedges are counted in `hedges`.
    pub retries: u64,
    /// Hedges sent by retry layers over this balancer.
    pub hedges: u64,
    /// Hedges whose answer was the one returned.
    pub hedges_won: u64,
    /// Retries and hedges the retry budget refused. (Hedges held back by
    /// hedging's own extra-load limit are not counted.)
    pub retry_budget_exhausted: u64,
    /// Every endpoint of the current set, then those still draining.
    pub endpoints: Vec<EndpointStats>,
}

/// Where zone-aware routing sends this client's requests now.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ZoneStats {
    /// The client's zone.
    pub zone: String,
    /// The share of requests kept in it, 0–1 (when the split is off, its
    /// endpoints' part of the serving weight: 0 when none of them serves).
    pub local_share: f64,
    /// The share that spills to other zones, 0–1.
    pub spill: f64,
    /// Whether the split applies now: false in panic mode, below the
    /// minimum number of endpoints, or with no endpoint (requests then go
    /// to the whole tier, whatever the zone).
    pub split: bool,
    /// Each zone's share of requests, the client's first; `zone` is `None`
    /// for endpoints with no zone.
    pub shares: Vec<ZoneShare>,
}

/// Where nearest-region routing sends this client's requests now.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegionStats {
    /// The region requests go to first; `None` until one is measured (or
    /// when it is the endpoints with no region).
    pub preferred: Option<String>,
    /// How many times the preferred region changed.
    pub changes: u64,
    /// Every region, in rank order.
    pub regions: Vec<RegionShare>,
}

/// A region: its latency estimate, rank and share of requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegionShare {
    /// The region; `None` for endpoints with no region.
    pub region: Option<String>,
    /// Its latency estimate, in milliseconds; `None` until measured.
    pub latency_ms: Option<f64>,
    /// Its rank: 0 is served first.
    pub rank: u32,
    /// Its share of requests now, 0–1.
    pub share: f64,
}

/// A zone and its share of requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ZoneShare {
    /// The zone; `None` for endpoints with no zone.
    pub zone: Option<String>,
    /// Its share of requests, 0–1.
    pub share: f64,
}

/// A serving tier and its share of requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TierShare {
    /// Its priority (lower is preferred; SRV priority, 1 for backups).
    pub priority: u32,
    /// Its share of requests, 0–1.
    pub share: f64,
}

/// A subset now: its endpoints, and where its requests go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubsetStats {
    /// The subset's name.
    pub name: String,
    /// Endpoints of the set its selector selects, in any state.
    pub members: usize,
    /// ... of which are healthy (service made, in service, not ejected,
    /// not down by their health check), in any of the subset's tiers.
    pub healthy: usize,
    /// Where its requests go now.
    pub routed_to: SubsetRoute,
}

/// Where a subset's requests go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubsetRoute {
    /// To its own endpoints.
    Own,
    /// To another subset, by name: its fallback.
    Subset(String),
    /// To any endpoint of the set: its fallback.
    AnyEndpoint,
    /// Nowhere: its requests fail with `NoEndpoints` (reason
    /// `SubsetEmpty`), or wait while its endpoints are being made.
    Fail,
}

/// A balancer's counts, without the per-endpoint detail of [`Stats`]:
/// cheap enough to poll. See [`Balancer::counts`](crate::Balancer::counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// How many snapshots the driver has published.
    pub version: u64,
    /// Endpoints in the current set.
    pub members: usize,
    /// Endpoints the current snapshot can pick (some may have been taken
    /// out of service since it was published).
    pub ready: usize,
    /// Endpoints whose service is still being made.
    pub warming: usize,
    /// Removed endpoints still finishing requests.
    pub draining: usize,
}

/// One endpoint's state and counters.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointStats {
    /// Its address.
    pub addr: SocketAddr,
    /// Its logical authority, if known.
    pub authority: Option<String>,
    /// Its zone, if known.
    pub zone: Option<String>,
    /// Its region, if known.
    pub region: Option<String>,
    /// Its configured weight.
    pub weight: u32,
    /// Its priority tier.
    pub priority: u32,
    /// Its life-cycle state.
    pub state: EndpointState,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Peak-EWMA latency estimate, in milliseconds.
    pub ewma_ms: f64,
    /// Requests dispatched to it (those in `not_sent` included).
    pub requests: u64,
    /// Requests dispatched to it that were never sent, and went out again:
    /// its service failed readiness (a refused connection; counted in
    /// `failures` too), or gave the request back
    /// ([`Unsent`](fulcrum_core::Unsent): the connection closed before the
    /// request was written; not a failure).
    pub not_sent: u64,
    /// Requests that failed (errors, failed readiness, classified failures).
    pub failures: u64,
    /// Requests dropped before they finished (see `CancelledAs`).
    pub cancelled: u64,
    /// Requests the endpoint refused as overloaded (429, `RESOURCE_EXHAUSTED`).
    pub overloads: u64,
    /// Why outlier detection ejected it, while it is ejected. (In panic an
    /// ejected endpoint serves: its state is then `active`.)
    pub ejected: Option<EjectionReason>,
    /// How often outlier detection has ejected it.
    pub ejections: u64,
    /// Failures in a row, ended by a success (counted while the
    /// consecutive-failure detector is on).
    pub failures_in_a_row: u32,
    /// What its active health check says (`None` without health checks).
    /// In panic an unhealthy endpoint serves: its state is then `active`.
    pub probe_healthy: Option<bool>,
    /// Probes it passed.
    pub probes_passed: u64,
    /// Probes it failed (errors, timeouts, panics).
    pub probes_failed: u64,
    /// Disabled (or drained) by the balancer's manager.
    pub disabled: bool,
    /// The weight its manager set, overriding `weight`.
    pub weight_override: Option<u32>,
    /// The part of its share it takes now, in `(0, 1)`, while in slow
    /// start or overloaded; `None` once it takes its full share.
    pub share: Option<f64>,
    /// How long it stays overloaded (the `Retry-After` of its last
    /// overload answer, at most 60 s), in milliseconds; `None` when it is
    /// not.
    pub overloaded_for_ms: Option<f64>,
}

impl EndpointStats {
    pub(crate) fn read(slot: &Slot, now: u64) -> Self {
        EndpointStats {
            addr: slot.endpoint.addr(),
            authority: slot.endpoint.authority().map(str::to_owned),
            zone: slot.endpoint.zone().map(str::to_owned),
            region: slot.endpoint.region().map(str::to_owned),
            weight: slot.weight.load(Ordering::Relaxed),
            priority: slot.priority.load(Ordering::Relaxed),
            state: slot.state(),
            in_flight: slot.in_flight.get(),
            ewma_ms: slot.ewma.estimate(now) / 1e6,
            requests: slot.in_flight.started(),
            failures: slot.failures.load(Ordering::Relaxed),
            not_sent: slot.not_sent.load(Ordering::Relaxed),
            cancelled: slot.cancelled.load(Ordering::Relaxed),
            overloads: slot.overloads.load(Ordering::Relaxed),
            ejected: ejection_reason(slot),
            ejections: slot.ejections.load(Ordering::Relaxed),
            failures_in_a_row: slot.failures_in_a_row(),
            probe_healthy: slot.probe_verdict(),
            probes_passed: slot.probes_passed.load(Ordering::Relaxed),
            probes_failed: slot.probes_failed.load(Ordering::Relaxed),
            disabled: slot.disabled.load(Ordering::Relaxed),
            weight_override: Some(slot.weight_override.load(Ordering::Relaxed))
                .filter(|&w| w != NO_WEIGHT_OVERRIDE),
            share: {
                let ramp = slot.ramp.load(Ordering::Relaxed);
                (ramp < RAMP_FULL).then(|| f64::from(ramp) / f64::from(RAMP_FULL))
            },
            overloaded_for_ms: {
                let until = slot.overloaded_until.load(Ordering::Relaxed);
                (until > now).then(|| (until - now) as f64 / 1e6)
            },
        }
    }
}

impl Stats {
    /// The stats of the endpoint at `addr`, if it is known.
    pub fn endpoint(&self, addr: SocketAddr) -> Option<&EndpointStats> {
        self.endpoints.iter().find(|e| e.addr == addr)
    }
}
