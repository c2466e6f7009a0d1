//! Waiting for an endpoint: shared by `poll_ready`, and by a call that
//! found nothing to pick (the set changed between `poll_ready` and `call`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum_core::{NoEndpoints, NoEndpointsReason};
use tokio::time::{Instant, Sleep};

use super::{Shared, Snapshot};

/// What a snapshot says to a waiter.
pub(crate) enum Check {
    /// Some endpoint can take a request.
    Ready,
    /// Nothing to serve and nothing will come: fail now.
    Hopeless(NoEndpointsReason),
    /// Nothing yet: wait.
    Wait(NoEndpointsReason),
}

impl<S> Snapshot<S> {
    pub(crate) fn check(&self) -> Check {
        if self.ready.len() > self.down.load(Ordering::Relaxed) {
            Check::Ready
        } else if self.terminal {
            Check::Hopeless(self.empty_reason)
        } else {
            Check::Wait(self.empty_reason)
        }
    }
}

/// One wait: when it began, and its deadline.
pub(crate) struct Waiting {
    since: Instant,
    deadline: Pin<Box<Sleep>>,
}

/// Polls a wait registered under `id`: ready when `check` finds an
/// endpoint, `NoEndpoints` when waiting cannot help or the deadline passes,
/// pending (with the waker registered) otherwise. Ends the wait when ready.
pub(crate) fn poll_wait<S>(
    shared: &Shared<S>,
    id: u64,
    waiting: &mut Option<Waiting>,
    cx: &mut Context<'_>,
    mut check: impl FnMut() -> Check,
) -> Poll<Result<(), NoEndpoints>> {
    let mut reason = match check() {
        Check::Ready => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Ok(()));
        }
        Check::Hopeless(reason) => return Poll::Ready(Err(give_up(shared, id, waiting, reason))),
        Check::Wait(reason) => reason,
    };
    if shared.ready_timeout.is_zero() {
        return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
    }
    // Register, then look again: an update published in between must not
    // be missed.
    shared.register_waiter(id, cx.waker());
    let timeout = shared.ready_timeout;
    let wait = waiting.get_or_insert_with(|| Waiting {
        since: Instant::now(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
    });
    match check() {
        Check::Ready => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Ok(()));
        }
        Check::Hopeless(r) => return Poll::Ready(Err(give_up(shared, id, waiting, r))),
        Check::Wait(r) => reason = r,
    }
    if wait.deadline.as_mut().poll(cx).is_ready() {
        return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
    }
    Poll::Pending
}

/// Ends the wait with `NoEndpoints`.
fn give_up<S>(
    shared: &Shared<S>,
    id: u64,
    waiting: &mut Option<Waiting>,
    reason: NoEndpointsReason,
) -> NoEndpoints {
    let waited = waiting
        .as_ref()
        .map_or(Duration::ZERO, |w| w.since.elapsed());
    end_wait(shared, id, waiting);
    NoEndpoints::new(&*shared.target, reason, waited)
}

#[inline]
pub(crate) fn end_wait<S>(shared: &Shared<S>, id: u64, waiting: &mut Option<Waiting>) {
    if waiting.take().is_some() {
        shared.unregister_waiter(id);
    }
}

/// A request's own wait, when `call` found nothing to pick. Unregisters on
/// drop.
pub(crate) struct CallWait<S> {
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) id: u64,
    pub(crate) waiting: Option<Waiting>,
}

impl<S> Drop for CallWait<S> {
    fn drop(&mut self) {
        end_wait(&self.shared, self.id, &mut self.waiting);
    }
}
