//! The driver's clock: backoffs, ejections, probes and overloads that end, the
//! outlier detection interval, slow-start shares raised, draining endpoints checked for their last
//! request, and spaced publishes.

use std::cmp::Reverse;

use tokio::time::Instant;

use super::{Driver, Maker, DRAIN_CHECK};

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    pub(super) fn next_wake(&mut self) -> Option<Instant> {
        // Drop stale entries from the top of the heap.
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if self.members.get(id).is_some_and(|m| {
                m.retry_at == Some(at)
                    || m.ejection.until() == Some(at)
                    || m.probe_at == Some(at)
                    || m.overload_until == Some(at)
            }) {
                break;
            }
            self.timers.pop();
        }
        let retry = self.timers.peek().map(|&Reverse((at, _))| at);
        // A spacing that has passed is no timer: the batch publishes.
        let now = Instant::now();
        let publish = self.publish_after.filter(|&at| self.dirty && at > now);
        if self.outliers.enabled && self.outlier_at.is_none() && !self.members.is_empty() {
            self.outlier_at = Some(now + self.outliers.interval);
        }
        let members = !self.members.is_empty();
        let region_at = self.regions.as_mut().and_then(|r| {
            if r.at.is_none() && members {
                r.at = Some(now + r.config.every());
            }
            r.at
        });
        [
            retry,
            self.drain_at,
            publish,
            self.outlier_at,
            self.ramp_at,
            region_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn on_timer(&mut self) {
        let now = Instant::now();
        if self.drain_at.is_some_and(|at| at <= now) {
            let before = self.draining.len();
            self.draining.retain(|slot| slot.in_flight.get() > 0);
            self.dirty |= before != self.draining.len();
            self.drain_at = (!self.draining.is_empty()).then(|| now + DRAIN_CHECK);
        }
        let mut readmitted = false;
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(index) = self.members.index_of(id) else {
                continue;
            };
            let m = self.members.at(index);
            let (retry, readmit, probe, unload) = (
                m.retry_at == Some(at),
                m.ejection.until() == Some(at),
                m.probe_at == Some(at),
                m.overload_until == Some(at),
            );
            if retry {
                self.start_make(index);
                self.dirty = true;
            }
            if readmit {
                self.readmit(index);
                readmitted = true;
            }
            if probe {
                self.start_probe(index);
            }
            if unload {
                self.overload_ended(index);
            }
        }
        if readmitted {
            // Room under the maximum ejection percentage: endpoints
            // failing in a row that it refused may be ejected now.
            self.eject_failing_in_a_row();
        }
        if self.ramp_at.is_some_and(|at| at <= now) {
            self.on_ramp_tick();
        }
        if self.outlier_at.is_some_and(|at| at <= now) {
            self.outlier_at = None;
            self.on_outlier_interval();
        }
        if self
            .regions
            .as_ref()
            .and_then(|r| r.at)
            .is_some_and(|at| at <= now)
        {
            self.on_region_tick();
        }
    }
}
