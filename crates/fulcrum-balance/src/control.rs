//! The part of a balancer's shared state that endpoints and requests reach
//! without knowing the inner service type: how to tell the driver, how the
//! published snapshot stands, and settings read when a request ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::classify::CancelledAs;

#[derive(Debug)]
pub(crate) struct Control {
    /// Request path → driver: an endpoint was taken out of service, or
    /// failed the outlier threshold in a row.
    pub(crate) notify_driver: Notify,
    /// `version << DOWN_BITS | down`: the version of the snapshot published
    /// last, and how many of its ready endpoints were taken out of service
    /// since (the driver's next snapshot leaves them out). One word, so a
    /// take-down is counted against the snapshot that listed the endpoint
    /// and a publish resets the count in the same write. While the count
    /// equals the ready count there is nothing to pick: requests wait
    /// instead of failing.
    down: AtomicU64,
    /// A wait for an endpoint ran out with nothing to pick: fail at once
    /// until the driver publishes an endpoint again.
    pub(crate) fail_fast: AtomicBool,
    /// What a cancelled request counts as.
    pub(crate) cancelled: CancelledAs,
    /// How long a request may wait before it is sent.
    pub(crate) ready_timeout: Duration,
    /// Failures in a row that make the driver look at an endpoint for
    /// ejection (0: never).
    pub(crate) failures_to_eject: u32,
    /// A cancelled request counts as a failure for outlier detection.
    pub(crate) cancelled_as_failure: bool,
}

const DOWN_BITS: u32 = 24;
const DOWN_MASK: u64 = (1 << DOWN_BITS) - 1;

impl Control {
    pub(crate) fn new(cancelled: CancelledAs, ready_timeout: Duration) -> Self {
        Control {
            notify_driver: Notify::new(),
            down: AtomicU64::new(0),
            fail_fast: AtomicBool::new(false),
            cancelled,
            ready_timeout,
            failures_to_eject: 0,
            cancelled_as_failure: false,
        }
    }

    /// With outlier detection's request-path settings.
    pub(crate) fn outliers(mut self, od: &crate::health::OutlierDetection) -> Self {
        if od.enabled {
            self.failures_to_eject = od.consecutive_failures;
            self.cancelled_as_failure = od.cancelled_as_failure;
        }
        self
    }

    /// Request path: an endpoint has failed `n` times in a row. The driver
    /// is told at the threshold and every threshold failures after (an
    /// ejection the maximum percentage refused is tried again), not at
    /// every failure.
    #[inline]
    pub(crate) fn failed_in_a_row(&self, n: u32) {
        let t = self.failures_to_eject;
        if t > 0 && n >= t && (n - t).is_multiple_of(t) {
            self.notify_driver.notify_one();
        }
    }

    /// Ready endpoints of snapshot `version` taken out of service since it
    /// was published (0 for any other version).
    #[inline]
    pub(crate) fn down_in(&self, version: u64) -> usize {
        let word = self.down.load(Ordering::Acquire);
        if word >> DOWN_BITS == version & (u64::MAX >> DOWN_BITS) {
            (word & DOWN_MASK) as usize
        } else {
            0
        }
    }

    /// An endpoint listed as ready by snapshot `version` was taken out of
    /// service; counted only if that snapshot is still the current one.
    pub(crate) fn count_down(&self, version: u64) {
        let _ = self
            .down
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word >> DOWN_BITS == version & (u64::MAX >> DOWN_BITS)
                    && word & DOWN_MASK < DOWN_MASK)
                    .then_some(word + 1)
            });
    }

    /// Snapshot `version` is published: nothing of it is down yet.
    pub(crate) fn published(&self, version: u64) {
        self.down.store(version << DOWN_BITS, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_downs_count_against_the_current_snapshot_only() {
        let c = Control::new(CancelledAs::default(), Duration::from_secs(1));
        c.published(7);
        c.count_down(7);
        c.count_down(6); // a slot of an older snapshot
        assert_eq!((c.down_in(7), c.down_in(8)), (1, 0));
        c.published(8);
        assert_eq!((c.down_in(7), c.down_in(8)), (0, 0));
        c.count_down(7);
        assert_eq!(c.down_in(8), 0);
    }
}
