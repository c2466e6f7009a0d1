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

use super::error::{Error, ErrorKind};
use super::shared::Shared;
use super::snapshot::Check;

/// One wait: when it began, and its deadline.
pub(crate) struct Waiting {
    since: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl Waiting {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self::since(Instant::now(), timeout)
    }

    /// A wait that began at `since`.
    pub(crate) fn since(since: Instant, timeout: Duration) -> Self {
        Waiting {
            since,
            deadline: Box::pin(tokio::time::sleep_until(later(since, timeout))),
        }
    }

    pub(crate) fn began(&self) -> Instant {
        self.since
    }

    /// Whether the deadline has passed, registering the waker if not.
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

/// Polls a wait registered under `id`: ready when `check` finds an
/// endpoint (with when the wait began, if it had to wait), an error when
/// waiting cannot help or the deadline passes, pending (with the waker
/// registered) otherwise. Ends the wait when ready.
pub(crate) fn poll_wait<S>(
    shared: &Shared<S>,
    id: u64,
    waiting: &mut Option<Waiting>,
    cx: &mut Context<'_>,
    mut check: impl FnMut() -> Check,
) -> Poll<Result<Option<Instant>, Error>> {
    let reason = match check() {
        // The fast path: nothing was waiting.
        Check::Ready if waiting.is_none() => return Poll::Ready(Ok(None)),
        Check::Ready => return Poll::Ready(Ok(end_wait(shared, id, waiting))),
        Check::Stopped => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Err(Error::driver_stopped()));
        }
        Check::Hopeless(reason) => return Poll::Ready(Err(give_up(shared, id, waiting, reason))),
        Check::Wait(reason) => reason,
    };
    let fail_fast = shared.control.fail_fast.load(Ordering::SeqCst) && waiting.is_none();
    if shared.ready_timeout.is_zero() || fail_fast {
        return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
    }
    // Register, then look again: an update published in between must not
    // be missed.
    if !shared.register_waiter(id, cx.waker(), waiting.is_none()) {
        tracing::warn!(
            target = %shared.target,
            max_waiters = shared.max_waiters,
            "too many requests waiting for an endpoint; failing this one at once"
        );
        return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
    }
    let timeout = shared.ready_timeout;
    let wait = waiting.get_or_insert_with(|| Waiting::new(timeout));
    let reason = match check() {
        Check::Ready => return Poll::Ready(Ok(end_wait(shared, id, waiting))),
        Check::Stopped => {
            end_wait(shared, id, waiting);
            return Poll::Ready(Err(Error::driver_stopped()));
        }
        Check::Hopeless(r) => return Poll::Ready(Err(give_up(shared, id, waiting, r))),
        Check::Wait(r) => r,
    };
    if wait.deadline.as_mut().poll(cx).is_ready() {
        // A subset still warming says nothing of the rest of the set: only
        // a wait for the whole set turns fail-fast on.
        if reason == NoEndpointsReason::SubsetEmpty {
            return Poll::Ready(Err(give_up(shared, id, waiting, reason)));
        }
        // Fail fast from now on, unless an endpoint was published meanwhile
        // (the driver clears the flag after publishing: look again after
        // setting it, so that neither side's write is lost).
        shared.control.fail_fast.store(true, Ordering::SeqCst);
        if let Check::Ready = check() {
            shared.control.fail_fast.store(false, Ordering::SeqCst);
            return Poll::Ready(Ok(end_wait(shared, id, waiting)));
        }
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
    e.into()
}

/// Ends a wait, if one is under way; returns when it began.
#[inline]
pub(crate) fn end_wait<S>(
    shared: &Shared<S>,
    id: u64,
    waiting: &mut Option<Waiting>,
) -> Option<Instant> {
    let wait = waiting.take()?;
    shared.unregister_waiter(id);
    Some(wait.since)
}

/// A wait of its own, for a request or a `ready_all` call. Unregisters on
/// drop.
pub(crate) struct OwnWait<S> {
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) id: u64,
    pub(crate) waiting: Option<Waiting>,
}

/// `at + d`, saturating a year ahead instead of panicking on overflow.
pub(crate) fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(365 * 86_400))
}

impl<S> OwnWait<S> {
    /// A request's wait for an endpoint, counted from `since` (when
    /// `poll_ready` began waiting for it) or from now.
    pub(crate) fn new(shared: Arc<Shared<S>>, since: Option<Instant>) -> Self {
        let id = shared.next_id();
        let waiting = since.map(|since| Waiting::since(since, shared.ready_timeout));
        if waiting.is_some() {
            // Admitted before: it stays admitted (see `register_waiter`).
            shared.register_waiter(id, std::task::Waker::noop(), false);
        }
        OwnWait {
            shared,
            id,
            waiting,
        }
    }

    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        check: impl FnMut(&Shared<S>) -> Check,
    ) -> Poll<Result<Option<Instant>, Error>> {
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

/// Waits until every endpoint of the applied set has been made, up to
/// `timeout`: [`Balancer::ready_all`](crate::Balancer::ready_all). Not a
/// request: it neither fails fast nor counts against `max_waiters`, and its
/// deadline sets no fail-fast state.
pub(crate) async fn all_made<S>(shared: &Arc<Shared<S>>, timeout: Duration) -> Result<(), Error> {
    let id = shared.next_id();
    let mut wait = Waiting::new(timeout);
    let result = std::future::poll_fn(|cx| {
        let done = || {
            let snap = shared.snapshot.load();
            if snap.stopped {
                Some(Err(Error::driver_stopped()))
            } else if snap.has_set && snap.warming == 0 {
                Some(Ok(()))
            } else {
                None
            }
        };
        if let Some(result) = done() {
            return Poll::Ready(result);
        }
        shared.register_waiter(id, cx.waker(), false);
        if let Some(result) = done() {
            return Poll::Ready(result);
        }
        if wait.poll_deadline(cx) {
            let snap = shared.snapshot.load();
            let waited = wait.began().elapsed();
            return Poll::Ready(Err(if snap.has_set {
                ErrorKind::WarmingUp {
                    made: snap.members.len() - snap.warming,
                    total: snap.members.len(),
                    waited,
                }
                .into()
            } else {
                let mut e = NoEndpoints::new(&*shared.target, snap.empty_reason, waited);
                if let Some(cause) = snap.discovery_error.as_deref() {
                    e = e.with_cause(cause);
                }
                e.into()
            }));
        }
        Poll::Pending
    })
    .await;
    shared.unregister_waiter(id);
    result
}
