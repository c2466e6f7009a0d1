use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fulcrum_core::Endpoint;

use super::{FailureKind, Outcome};
use crate::slot::Slot;

/// The dispatch time of a request that is not timed (see
/// [`Policy::uses_latency`](crate::pick::Policy::uses_latency)).
pub(crate) const UNTIMED: u64 = u64::MAX;

/// What a cancelled request ([`Outcome::Cancelled`]) counts as, set with
/// [`Builder::cancelled`](crate::Builder::cancelled). It is always counted
/// in the endpoint's `cancelled` stat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelledAs {
    /// The time it ran is a lower bound on the endpoint's latency (the
    /// default): the estimate rises to it if it is higher. An endpoint whose
    /// requests are always abandoned (a black hole behind a timeout) looks
    /// at least as slow as the timeout, and load-aware policies avoid it;
    /// a caller dropping requests early neither counts against an endpoint
    /// nor makes it look faster.
    #[default]
    Slow,
    /// A failure ([`FailureKind::Timeout`]): counted in `failures`, with
    /// the latency penalty.
    Failure,
    /// Nothing beyond the `cancelled` count.
    Nothing,
}

/// One request's hold on its endpoint, from dispatch until it finishes.
///
/// While it lives the request counts in the endpoint's in-flight load. A
/// [`Classify`](super::Classify) finishes it with an [`Outcome`], at once or
/// (moved into a streamed response) at the end of the stream. Dropped
/// unfinished, it finishes as [`Outcome::Cancelled`].
pub struct Completion {
    slot: Arc<Slot>,
    start: u64,
    /// The generation of the service the request went to (high 32 bits)
    /// and the flags below (low bits), in one word: written and read whole,
    /// so that moving a `Completion` right after it was made reads what
    /// one store wrote (four one-byte fields made the CPU stall on
    /// store forwarding, a measurable share of a request's cost).
    meta: u64,
}

/// Finished: its outcome is recorded.
const DONE: u64 = 1;
/// The request was never handed to the service (or was given back): it
/// counts against nothing. Set by the response future when it drops or
/// moves an unsent request, so that sending one writes nothing here.
const UNSENT: u64 = 1 << 1;
/// The balancer keeps a total in-flight count (bounded load).
const COUNTS_TOTAL: u64 = 1 << 2;
/// Its response arrived (a body is being read): dropped now, the endpoint
/// did answer, and outlier detection does not count it.
const ANSWERED: u64 = 1 << 3;

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("endpoint", &self.slot.endpoint.addr())
            .field("done", &self.is(DONE))
            .finish()
    }
}

impl Completion {
    /// Counts a request against `slot` from now on.
    #[inline]
    pub(crate) fn begin(slot: Arc<Slot>, generation: u32, start: u64, counts_total: bool) -> Self {
        slot.in_flight.enter();
        if counts_total {
            if let Some(total) = &slot.total {
                total.fetch_add(1, Ordering::Relaxed);
            }
        }
        Completion {
            slot,
            start,
            meta: (u64::from(generation) << 32) | if counts_total { COUNTS_TOTAL } else { 0 },
        }
    }

    #[inline]
    fn is(&self, flag: u64) -> bool {
        self.meta & flag != 0
    }

    /// Its response arrived; what remains is reading the body.
    #[cfg(feature = "http")]
    pub(crate) fn mark_answered(&mut self) {
        self.meta |= ANSWERED;
    }

    /// The endpoint the request went to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.slot.endpoint
    }

    /// Finishes the request with `outcome`.
    #[inline]
    pub fn finish(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    pub(crate) fn generation(&self) -> u32 {
        (self.meta >> 32) as u32
    }

    /// The request was never sent (its endpoint failed readiness, or its
    /// service gave it back): it leaves the in-flight count with no
    /// outcome.
    pub(crate) fn not_sent(mut self) {
        self.mark_unsent();
    }

    /// The request will not be sent: dropped, this counts against nothing.
    pub(crate) fn mark_unsent(&mut self) {
        self.meta |= UNSENT;
    }

    #[inline]
    fn leave(&self) {
        self.slot.in_flight.exit();
        if self.is(COUNTS_TOTAL) {
            if let Some(total) = &self.slot.total {
                total.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    #[inline]
    fn record_elapsed(&self) {
        if self.start != UNTIMED {
            let now = fulcrum_core::time::now();
            self.slot.ewma.record(now.saturating_sub(self.start), now);
        }
    }

    fn record_failure(&self, kind: FailureKind, current: bool) {
        self.slot.failures.fetch_add(1, Ordering::Relaxed);
        if current {
            self.slot.ewma.record_failure(fulcrum_core::time::now());
            self.count_in_a_row();
        }
        if kind == FailureKind::Connect {
            // The endpoint cannot be reached: out of service now, for the
            // readiness backoff, and discovery is asked to look again.
            self.slot.take_out_of_service(self.generation());
        }
    }

    /// The endpoint asked for no requests for `after`: its share is cut
    /// until then (by the driver, told when the overload is new).
    #[cold]
    fn overloaded_for(&self, after: std::time::Duration, now: u64) {
        let after = after.min(crate::balancer::MAX_RETRY_AFTER);
        let until = now.saturating_add(after.as_nanos() as u64);
        let before = self
            .slot
            .overloaded_until
            .fetch_max(until, Ordering::Relaxed);
        if before <= now {
            self.slot.control.notify_driver.notify_one();
        }
    }

    /// One more failure in a row, for outlier detection.
    fn count_in_a_row(&self) {
        if self.slot.control.failures_to_eject > 0 {
            let n = self.slot.count_failure();
            // Only an active endpoint can be ejected: the driver is not
            // woken for one that is out already.
            if self.slot.is_active() {
                self.slot.control.failed_in_a_row(n);
            }
        }
    }

    /// Dropped before it was finished: cancelled if it was sent, else it
    /// just leaves the in-flight count.
    #[inline(never)]
    fn drop_unfinished(&mut self) {
        if self.is(UNSENT) {
            self.meta |= DONE;
            self.leave();
        } else {
            self.record(Outcome::Cancelled);
        }
    }

    #[inline(always)]
    fn record(&mut self, outcome: Outcome) {
        if self.is(DONE) {
            return;
        }
        self.meta |= DONE;
        // The common case, inline: a success on the current service.
        if outcome == Outcome::Success && self.slot.generation() == self.generation() {
            self.record_elapsed();
            self.slot.mark_ready();
            self.leave();
            return;
        }
        self.record_other(outcome);
    }

    /// Every outcome but a success on the current service.
    #[inline(never)]
    fn record_other(&mut self, outcome: Outcome) {
        // A request that went to a service since replaced (its endpoint was
        // taken out and made again) is counted, but its latency says
        // nothing about the new connection, whose estimate starts afresh.
        let current = self.slot.generation() == self.generation();
        match outcome {
            Outcome::Success => {
                if current {
                    self.record_elapsed();
                    // It served a request: its backoff starts over.
                    self.slot.mark_ready();
                }
            }
            Outcome::Failure(kind) => self.record_failure(kind, current),
            Outcome::Overload { retry_after } => {
                self.slot.overloads.fetch_add(1, Ordering::Relaxed);
                if current {
                    let now = fulcrum_core::time::now();
                    // With a delay, its share is cut for exactly that long;
                    // without, its cost takes one failure's penalty.
                    match retry_after.filter(|d| !d.is_zero()) {
                        Some(after) => self.overloaded_for(after, now),
                        None => self.slot.ewma.record_failure(now),
                    }
                }
            }
            Outcome::Cancelled => {
                self.slot.cancelled.fetch_add(1, Ordering::Relaxed);
                // Abandoned before any answer: for outlier detection, a
                // failure (an endpoint that hangs is an outlier).
                let control = &self.slot.control;
                if !self.is(ANSWERED)
                    && control.cancelled_as_failure
                    && control.cancelled != CancelledAs::Failure
                {
                    self.slot.abandoned.fetch_add(1, Ordering::Relaxed);
                    if current {
                        self.count_in_a_row();
                    }
                }
                match self.slot.control.cancelled {
                    CancelledAs::Slow if current && self.start != UNTIMED => {
                        // It took at least this long: a lower bound.
                        let now = fulcrum_core::time::now();
                        let elapsed = now.saturating_sub(self.start);
                        self.slot.ewma.record_at_least(elapsed, now);
                    }
                    CancelledAs::Failure => self.record_failure(FailureKind::Timeout, current),
                    _ => {}
                }
            }
        }
        self.leave();
    }
}

impl Drop for Completion {
    #[inline]
    fn drop(&mut self) {
        if !self.is(DONE) {
            self.drop_unfinished();
        }
    }
}
