//! Where endpoints are probed: the driver runs the balancer's
//! [`HealthChecks`](crate::health::HealthChecks) on every member, and
//! where a probe's verdict takes an endpoint down or brings it back.

use std::cmp::Reverse;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;

use fulcrum_core::BoxError;
use futures_util::FutureExt;
use tokio::time::Instant;

use super::{Driver, Maker};
use crate::balancer::error::panic_message;

/// A running probe: `(member id, its result)`.
pub(super) type ProbeRun = Pin<Box<dyn Future<Output = (u64, Result<(), BoxError>)> + Send>>;

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// Schedules the first probe of a new member (at `index`).
    pub(super) fn schedule_first_probe(&mut self, index: usize) {
        let Some(checks) = &self.checks else {
            return;
        };
        let at = Instant::now() + checks.first_wait(&mut self.rng);
        let m = self.members.at_mut(index);
        m.probe_at = Some(at);
        self.timers.push(Reverse((at, m.id)));
    }

    /// Probes member `index` now. The probe's call and future run under
    /// `catch_unwind` and within the timeout: a panic or a probe that
    /// never ends is a failed probe, not a stopped driver.
    pub(super) fn start_probe(&mut self, index: usize) {
        let Some(checks) = &self.checks else {
            return;
        };
        let m = self.members.at_mut(index);
        m.probe_at = None;
        let id = m.id;
        let timeout = checks.timeout;
        let probe = match catch_unwind(AssertUnwindSafe(|| checks.probe.probe(&m.slot.endpoint))) {
            Ok(probe) => probe,
            Err(panic) => {
                let e = format!("the probe panicked ({})", panic_message(&*panic));
                self.probing
                    .push(Box::pin(async move { (id, Err(BoxError::from(e))) }));
                return;
            }
        };
        // Cancelled if the member is removed meanwhile.
        let (probe, abort) = futures_util::future::abortable(probe);
        m.probe_abort = Some(abort);
        self.probing.push(Box::pin(async move {
            let probe = probe.map(|r| r.unwrap_or_else(|_| Err("removed".into())));
            let result =
                match tokio::time::timeout(timeout, AssertUnwindSafe(probe).catch_unwind()).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(panic)) => Err(BoxError::from(format!(
                        "the probe panicked ({})",
                        panic_message(&*panic)
                    ))),
                    Err(_) => Err(BoxError::from(format!(
                        "the probe did not answer within {timeout:?}"
                    ))),
                };
            (id, result)
        }));
    }

    /// A probe of member `id` ended: its verdict may change, and its next
    /// probe is scheduled.
    pub(super) fn on_probed(&mut self, id: u64, result: Result<(), BoxError>) {
        let Some(checks) = &self.checks else {
            return;
        };
        let (rise, fall) = (checks.rise, checks.fall);
        let next = Instant::now() + checks.next_wait(&mut self.rng);
        // Removed meanwhile: nothing to record.
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        m.probe_abort = None;
        let passed = result.is_ok();
        let counter = if passed {
            &m.slot.probes_passed
        } else {
            &m.slot.probes_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let awaited = m.verdict.awaits_first_probe();
        let verdict = m.verdict.record(passed, rise, fall);
        // A first probe that failed leaves it unhealthy, but makes it a
        // candidate in panic mode: the serving set may change.
        if awaited && verdict.is_none() {
            self.dirty = true;
        }
        if let Some(healthy) = verdict {
            m.slot.set_probe_verdict(healthy);
            if healthy {
                // Its samples while it was down (failures, their penalty
                // blended into the first answers) describe an outage, not
                // its latency: it starts over like a new endpoint.
                if !awaited {
                    m.slot.ewma.reset();
                }
                tracing::info!(endpoint = %m.slot.endpoint, "endpoint passed its probe: back in service");
            } else {
                let error = result.as_ref().err().map(ToString::to_string);
                tracing::warn!(
                    endpoint = %m.slot.endpoint,
                    error = error.as_deref().unwrap_or(""),
                    failed_in_a_row = fall,
                    "endpoint failed its probe: out of service until it passes"
                );
            }
            self.dirty = true;
        } else if let Err(e) = &result {
            tracing::debug!(endpoint = %m.slot.endpoint, error = %e, "probe failed");
        }
        m.probe_at = Some(next);
        self.timers.push(Reverse((next, id)));
    }
}
