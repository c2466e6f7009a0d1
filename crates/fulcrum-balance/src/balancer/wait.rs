//! Waiting for an endpoint: shared by `poll_ready`, `ready_all`, and a
//! call that found nothing to pick (the set changed between `poll_ready`
//! and `call`).
//!
//! A wait registers its waker (woken by every snapshot the driver
//! publishes) and a deadline, the balancer's readiness timeout. When a
//! deadline passes with nothing to pick, the balancer fails fast: new
//! waits fail at once until the driver publishes an endpoint again, so an
//! outage costs callers no waiting and holds no waiters.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum_core::{NoEndpoints, NoEndpointsReason};
use tokio::time::{Instant, Sleep};

use super::error::Error;
use super::shared::Shared;
use super::snapshot::Check;

/// One wait: when it began, and its deadline.
pub(crate) struct Waiting {
    since: Instant,
    deadline: Pin<Box<Sleep>>,
}

/// Polls a wait registered under `id`: ready when `check` finds an
/// endpoint, an error when waiting cannot help or the deadline passes,
/// pending (with the waker registered) otherwise. Ends the wait when ready.
pub(crate) fn poll_wait<S>(
    shared: &Shared<S>,
    id: u64,
    waiting: &mut Option<Waiting>,
    cx: &mut Context<'_>,
    mut check: impl FnMut() -> Check,
) -> Poll<Result<(), Error>> {
    let reason = match check() {
        Check::Ready => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Ok(()));
        }
        Check::Stopped => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Err(Error::DriverStopped));
        }
        Check::Hopeless(reason) => return Poll::Ready(Err(give_up(shared, id, waiting, reason))),
        Check::Wait(reason) => reason,
    };
    let fail_fast = shared.control.fail_fast.load(Ordering::Acquire) && waiting.is_none();
    if shared.ready_timeout.is_zero() || fail_fast {
        return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
    }
    // Register, then look again: an update published in between must not
    // be missed.
    if !shared.register_waiter(id, cx.waker()) {
        tracing::warn!(
            target = %shared.target,
            max_waiters = shared.max_waiters,
            "too many requests waiting for an endpoint; failing this one at once"
        );
        return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
    }
    let timeout = shared.ready_timeout;
    let wait = waiting.get_or_insert_with(|| Waiting {
        since: Instant::now(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
    });
    let reason = match check() {
        Check::Ready => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Ok(()));
        }
        Check::Stopped => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Err(Error::DriverStopped));
        }
        Check::Hopeless(r) => return Poll::Ready(Err(give_up(shared, id, waiting, r))),
        Check::Wait(r) => r,
    };
    if wait.deadline.as_mut().poll(cx).is_ready() {
        shared.control.fail_fast.store(true, Ordering::Release);
        return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
    }
    Poll::Pending
}

/// Ends the wait with `NoEndpoints`, naming the last discovery error.
fn give_up<S>(
    shared: &Shared<S>,
    id: u64,
    waiting: &mut Option<Waiting>,
    reason: NoEndpointsReason,
) -> Error {
    let waited = waiting
        .as_ref()
        .map_or(Duration::ZERO, |w| w.since.elapsed());
    end_wait(shared, id, waiting);
    let mut e = NoEndpoints::new(&*shared.target, reason, waited);
    if let Some(cause) = shared.snapshot.load().discovery_error.as_deref() {
        e = e.with_cause(cause);
    }
    Error::NoEndpoints(e)
}

#[inline]
pub(crate) fn end_wait<S>(shared: &Shared<S>, id: u64, waiting: &mut Option<Waiting>) {
    if waiting.take().is_some() {
        shared.unregister_waiter(id);
    }
}

/// A wait of its own, for a request or a `ready_all` call. Unregisters on
/// drop.
pub(crate) struct OwnWait<S> {
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) id: u64,
    pub(crate) waiting: Option<Waiting>,
}

impl<S> OwnWait<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>) -> Self {
        let (id, _) = shared.new_id();
        OwnWait {
            shared,
            id,
            waiting: None,
        }
    }

    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        check: impl FnMut(&Shared<S>) -> Check,
    ) -> Poll<Result<(), Error>> {
        let OwnWait {
            shared,
            id,
            waiting,
        } = self;
        let mut check = check;
        poll_wait(shared, *id, waiting, cx, || check(shared))
    }
}

impl<S> Drop for OwnWait<S> {
    fn drop(&mut self) {
        end_wait(&self.shared, self.id, &mut self.waiting);
    }
}
