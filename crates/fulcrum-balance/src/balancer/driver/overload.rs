//! Overloaded endpoints: one that answered "overloaded, retry after d"
//! (429 or 503 with `Retry-After`, gRPC `RESOURCE_EXHAUSTED` with a
//! pushback) takes a small share of requests until `d` has passed, instead
//! of being ejected: it is alive and said when to come back. Then its share
//! returns, through slow start when configured.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{Driver, Maker};
use crate::slot::RAMP_FULL;

/// An overloaded endpoint's share of what it would take: 1/20.
pub(crate) const OVERLOAD_SHARE: u32 = RAMP_FULL / 20;

/// The longest `Retry-After` honoured: a server that asks for an hour (or
/// a header set by mistake) is taken at its word for a minute at a time.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The share an endpoint takes: its slow-start share, capped while it is
/// overloaded.
pub(super) fn capped(share: u32, overloaded: bool) -> u32 {
    if overloaded {
        share.min(OVERLOAD_SHARE)
    } else {
        share
    }
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// The request path said an endpoint is newly overloaded: each member
    /// whose overload runs past what the driver knew gets its end on the
    /// clock; a newly overloaded one gets its share cut.
    pub(super) fn note_overloads(&mut self) {
        let now_ns = fulcrum_core::time::now();
        let now = Instant::now();
        for i in 0..self.members.len() {
            let m = self.members.at_mut(i);
            let until_ns = m.slot.overloaded_until.load(Ordering::Relaxed);
            if until_ns <= now_ns || m.overload_until.is_some() {
                // Not overloaded, or its end is on the clock already (and
                // checked again then, in case it was pushed back).
                continue;
            }
            let until = now + Duration::from_nanos(until_ns - now_ns);
            m.overload_until = Some(until);
            let share = m.slot.ramp.load(Ordering::Relaxed);
            m.slot.ramp.store(capped(share, true), Ordering::Relaxed);
            tracing::info!(
                endpoint = %m.slot.endpoint,
                retry_after = ?(until - now),
                "endpoint overloaded: its share is cut until its Retry-After passes"
            );
            let id = m.id;
            self.timers.push(Reverse((until, id)));
            self.dirty = true;
        }
    }

    /// Member `index`'s overload has run its course, unless answers since
    /// pushed it back: its share returns (through slow start when
    /// configured).
    pub(super) fn overload_ended(&mut self, index: usize) {
        let now_ns = fulcrum_core::time::now();
        let now = Instant::now();
        let slow_start = self.slow_start.clone();
        let m = self.members.at_mut(index);
        let until_ns = m.slot.overloaded_until.load(Ordering::Relaxed);
        if until_ns > now_ns {
            let until = now + Duration::from_nanos(until_ns - now_ns);
            m.overload_until = Some(until);
            let id = m.id;
            self.timers.push(Reverse((until, id)));
            return;
        }
        m.overload_until = None;
        tracing::info!(endpoint = %m.slot.endpoint, "endpoint no longer overloaded");
        match slow_start {
            Some(slow_start) if m.serving => {
                m.ramp_since = Some(now);
                m.slot.ramp.store(
                    super::ramp::share(slow_start.factor(Duration::ZERO)),
                    Ordering::Relaxed,
                );
                if self.ramp_at.is_none() {
                    self.ramp_at = Some(now + super::ramp::tick(slow_start.window));
                }
            }
            _ if m.ramp_since.is_none() => m.slot.ramp.store(RAMP_FULL, Ordering::Relaxed),
            _ => {}
        }
        self.dirty = true;
    }

    /// Publishing: overloaded members keep their cut share whatever slow
    /// start set. Returns whether some serving endpoint takes less than
    /// its full share while another takes it all (picks then honour
    /// shares).
    pub(super) fn shares_limited(&self, serves: &[bool]) -> bool {
        let mut limited = 0;
        let mut serving = 0;
        for (i, &serves) in serves.iter().enumerate() {
            let m = self.members.at(i);
            if m.overload_until.is_some() {
                let share = m.slot.ramp.load(Ordering::Relaxed);
                m.slot.ramp.store(capped(share, true), Ordering::Relaxed);
            }
            if serves {
                serving += 1;
                limited += usize::from(m.slot.ramp.load(Ordering::Relaxed) < RAMP_FULL);
            }
        }
        limited > 0 && limited < serving
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overload_caps_the_share_and_never_raises_it() {
        assert_eq!(capped(RAMP_FULL, true), OVERLOAD_SHARE);
        assert_eq!(capped(1, true), 1, "a share already lower stays");
        assert_eq!(capped(RAMP_FULL / 2, false), RAMP_FULL / 2);
    }
}
