//! Where an endpoint is ejected and re-admitted: the driver runs the
//! outlier detectors of [`crate::health`] on its members.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::{Driver, Maker};
use crate::health::ejection::admit;
use crate::health::outlier::{interval_outliers, Answers};
use crate::health::EjectionReason;
use crate::slot::{EndpointState, Slot};

/// Encodes an ejection reason in `Slot::ejection_reason` (0: not ejected).
fn reason_code(reason: EjectionReason) -> u32 {
    match reason {
        EjectionReason::ConsecutiveFailures => 1,
        EjectionReason::SuccessRate => 2,
        EjectionReason::FailurePercent => 3,
    }
}

/// The reason stored in a slot, if it is ejected.
pub(crate) fn ejection_reason(slot: &Slot) -> Option<EjectionReason> {
    match slot.ejection_reason.load(Ordering::Relaxed) {
        1 => Some(EjectionReason::ConsecutiveFailures),
        2 => Some(EjectionReason::SuccessRate),
        3 => Some(EjectionReason::FailurePercent),
        _ => None,
    }
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// The cumulative answers of an endpoint, as outlier detection counts
    /// them.
    fn cumulative_answers(&self, slot: &Slot) -> Answers {
        // `abandoned` counts only when cancellations count as failures.
        let failed = slot.failures.load(Ordering::Relaxed) + slot.abandoned.load(Ordering::Relaxed);
        Answers {
            total: slot.in_flight.finished(),
            failed,
        }
    }

    fn ejected_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.ejection.is_ejected())
            .count()
    }

    /// Endpoints that failed the consecutive-failure threshold in a row
    /// are ejected (as far as the maximum percentage allows).
    pub(super) fn eject_failing_in_a_row(&mut self) {
        let threshold = self.control.failures_to_eject;
        if threshold == 0 {
            return;
        }
        let failing: Vec<usize> = (0..self.members.len())
            .filter(|&i| {
                let m = self.members.at(i);
                !m.ejection.is_ejected()
                    && m.slot.state() == EndpointState::Active
                    && m.slot.failures_in_a_row() >= threshold
            })
            .collect();
        if failing.is_empty() {
            return;
        }
        let chosen = admit(
            &self.outliers,
            &failing,
            self.ejected_count(),
            self.members.len(),
        );
        for i in chosen {
            self.eject(i, EjectionReason::ConsecutiveFailures);
        }
    }

    /// The interval ended: success rates and failure percentages decide
    /// ejections; endpoints in service are forgiven one past ejection.
    pub(super) fn on_outlier_interval(&mut self) {
        let answers: Vec<Answers> = (0..self.members.len())
            .map(|i| {
                let cumulative = self.cumulative_answers(&self.members.at(i).slot);
                self.members.at_mut(i).ejection.interval_answers(cumulative)
            })
            .collect();
        let outliers: Vec<(usize, EjectionReason)> = interval_outliers(&self.outliers, &answers)
            .into_iter()
            .filter(|&(i, _)| {
                let m = self.members.at(i);
                !m.ejection.is_ejected() && m.slot.state() == EndpointState::Active
            })
            .collect();
        for i in 0..self.members.len() {
            self.members.at_mut(i).ejection.interval_passed();
        }
        let chosen = admit(
            &self.outliers,
            &outliers,
            self.ejected_count(),
            self.members.len(),
        );
        for (i, reason) in chosen {
            self.eject(i, reason);
        }
        // Consecutive failures refused by the maximum percentage may fit now.
        self.eject_failing_in_a_row();
    }

    fn eject(&mut self, index: usize, reason: EjectionReason) {
        let now = Instant::now();
        let od = self.outliers.clone();
        let m = self.members.at_mut(index);
        if !m.slot.eject() {
            return;
        }
        let (until, length) = m.ejection.eject(&od, reason, now, &mut self.rng);
        m.slot.forget_failures();
        m.slot.ejections.fetch_add(1, Ordering::Relaxed);
        m.slot
            .ejection_reason
            .store(reason_code(reason), Ordering::Relaxed);
        let id = m.id;
        tracing::warn!(
            endpoint = %m.slot.endpoint,
            ?reason,
            ejected_for = ?length,
            "endpoint ejected as an outlier"
        );
        self.timers.push(std::cmp::Reverse((until, id)));
        self.dirty = true;
    }

    /// The ejection of member `index` is over.
    pub(super) fn readmit(&mut self, index: usize) {
        let m = self.members.at_mut(index);
        m.ejection.readmit();
        m.slot.ejection_reason.store(0, Ordering::Relaxed);
        m.slot.forget_failures();
        // Its latency samples, too, describe what got it ejected.
        m.slot.ewma.reset();
        // The publish that follows sets its state: active if it serves, or
        // held out for another reason (its probe, its manager).
        tracing::info!(endpoint = %m.slot.endpoint, "ejected endpoint re-admitted");
        self.dirty = true;
    }
}
