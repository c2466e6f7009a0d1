//! Making endpoints' services, and backing off those whose service failed:
//! the driver's side of readiness.

use std::cmp::Reverse;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use fulcrum_core::BoxError;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::FutureExt;
use tokio::time::Instant;

use super::{Driver, Maker};
use crate::balancer::error::panic_message;
use crate::slot::EndpointState;

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// `now + delay`, at least 1 ms ahead (a zero backoff must not spin the
    /// driver) and without overflow (a huge one must not panic it).
    pub(super) fn retry_time(&mut self, failures: u32) -> (Instant, Duration) {
        let delay = self
            .backoff
            .delay(failures, &mut self.rng)
            .max(Duration::from_millis(1));
        let now = Instant::now();
        let at = now
            .checked_add(delay)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        (at, delay)
    }

    /// The maker is ready: make the service of the first queued member.
    pub(super) fn on_maker_ready(&mut self, ready: Result<(), BoxError>) {
        let Some(id) = self.to_make.pop_front() else {
            return;
        };
        let Some(endpoint) = self.members.get(id).map(|m| m.slot.endpoint.clone()) else {
            return;
        };
        if let Err(e) = ready {
            return self.on_made(id, Err(e));
        }
        let fut = match catch_unwind(AssertUnwindSafe(|| self.make.call(endpoint))) {
            Ok(fut) => fut,
            Err(panic) => {
                let message = panic_message(&*panic);
                return self.on_made(id, Err(format!("the maker panicked ({message})").into()));
            }
        };
        let timeout = self.make_timeout;
        let made = async move {
            match tokio::time::timeout(timeout, AssertUnwindSafe(fut).catch_unwind()).await {
                Ok(Ok(Ok(service))) => Ok(service),
                Ok(Ok(Err(e))) => Err(e.into()),
                Ok(Err(panic)) => Err(BoxError::from(format!(
                    "making the service panicked ({})",
                    panic_message(&*panic)
                ))),
                Err(_) => Err(BoxError::from(format!(
                    "making the service took longer than {timeout:?} (the make timeout)"
                ))),
            }
        };
        let (abort, registration) = AbortHandle::new_pair();
        if let Some(member) = self.members.get_mut(id) {
            member.making = Some(abort);
        }
        let made = Abortable::new(made, registration);
        self.making
            .push(Box::pin(async move { (id, made.await.ok()) }));
    }

    pub(super) fn on_made(&mut self, id: u64, made: Result<S, BoxError>) {
        let Some(member) = self.members.get_mut(id) else {
            return; // removed while it was being made
        };
        member.making = None;
        self.dirty = true;
        match made {
            Ok(service) => {
                if member.slot.generation() > 0 {
                    // Made again after being out of service: its old
                    // samples (failures, timeouts) describe a connection
                    // that is gone; it starts over like a new endpoint.
                    member.slot.ewma.reset();
                    member.slot.forget_failures();
                }
                member.service = Some(service);
                member.slot.install();
                // Held out for another reason, it stays out until the
                // publish decides (in panic it may serve).
                if let Some(index) = self.members.index_of(id) {
                    if let Some(state) = self.held_out_as(index) {
                        self.members.at(index).slot.hold_out(state);
                    }
                }
            }
            Err(e) => {
                let slot = member.slot.clone();
                let failures = slot.bump_not_ready_streak();
                let (at, delay) = self.retry_time(failures);
                tracing::warn!(
                    endpoint = %slot.endpoint,
                    error = %e,
                    retry_in = ?delay,
                    "could not make the endpoint's service"
                );
                slot.set_state(EndpointState::Unavailable);
                if let Some(member) = self.members.get_mut(id) {
                    member.service = None;
                    member.retry_at = Some(at);
                }
                self.timers.push(Reverse((at, id)));
                self.ask_for_refresh();
            }
        }
    }

    /// Endpoints were taken out of service: discovery may know better.
    pub(super) fn ask_for_refresh(&self) {
        if let Some(refresh) = &self.refresh {
            refresh();
        }
    }

    pub(super) fn on_not_ready(&mut self) {
        let down: Vec<u64> = self
            .members
            .iter()
            .filter(|m| m.slot.state() == EndpointState::Unavailable && m.retry_at.is_none())
            .map(|m| m.id)
            .collect();
        for id in &down {
            let Some(streak) = self.members.get(*id).map(|m| m.slot.not_ready_streak()) else {
                continue;
            };
            let (at, delay) = self.retry_time(streak.max(1));
            if let Some(m) = self.members.get_mut(*id) {
                tracing::debug!(endpoint = %m.slot.endpoint, retry_in = ?delay, "endpoint taken out of service");
                // Its service failed; a fresh one is made after the backoff.
                m.service = None;
                m.retry_at = Some(at);
            }
            self.timers.push(Reverse((at, *id)));
        }
        if !down.is_empty() {
            self.dirty = true;
            self.ask_for_refresh();
        }
        self.eject_failing_in_a_row();
        self.note_overloads();
    }
}
