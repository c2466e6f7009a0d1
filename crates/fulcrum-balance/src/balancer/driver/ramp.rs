//! Slow start in the driver: which endpoints start ramping when they start
//! serving, and the clock that raises their share until the window ends.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{Driver, Maker};
use crate::slot::RAMP_FULL;

/// Shares are raised this often while an endpoint ramps: a fiftieth of the
/// window, within these bounds.
const SHORTEST_TICK: Duration = Duration::from_millis(10);
const LONGEST_TICK: Duration = Duration::from_secs(1);

/// Which members start ramping as this publish begins: those that serve
/// now and did not before, unless they are of the balancer's first set
/// and have never served, or no endpoint that served before still does
/// (there is nobody to spare them).
pub(crate) fn starting_ramps(
    was_serving: &[bool],
    serves: &[bool],
    first_set_never_served: &[bool],
) -> Vec<usize> {
    let someone_kept = was_serving.iter().zip(serves).any(|(&was, &is)| was && is);
    if !someone_kept {
        return Vec::new();
    }
    (0..serves.len())
        .filter(|&i| serves[i] && !was_serving[i] && !first_set_never_served[i])
        .collect()
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// Publishing: members that start serving start their slow start.
    /// Returns whether some serving endpoint ramps while another does not.
    pub(super) fn update_ramps(&mut self, serves: &[bool]) -> bool {
        let Some(slow_start) = self.slow_start.clone() else {
            return false;
        };
        let was: Vec<bool> = self.members.iter().map(|m| m.serving).collect();
        let fresh: Vec<bool> = self
            .members
            .iter()
            .map(|m| m.first_set && !m.has_served)
            .collect();
        let now = Instant::now();
        for i in starting_ramps(&was, serves, &fresh) {
            let m = self.members.at_mut(i);
            m.ramp_since = Some(now);
            m.slot
                .ramp
                .store(share(slow_start.factor(Duration::ZERO)), Ordering::Relaxed);
            tracing::debug!(endpoint = %m.slot.endpoint, window = ?slow_start.window, "slow start");
        }
        for (i, &serves) in serves.iter().enumerate() {
            let m = self.members.at_mut(i);
            m.serving = serves;
            m.has_served |= serves;
            if !serves && m.ramp_since.take().is_some() {
                let full = super::overload::capped(RAMP_FULL, m.overload_until.is_some());
                m.slot.ramp.store(full, Ordering::Relaxed);
            }
        }
        let ramping = self
            .members
            .iter()
            .filter(|m| m.ramp_since.is_some())
            .count();
        let serving = serves.iter().filter(|&&s| s).count();
        if ramping > 0 && self.ramp_at.is_none() {
            self.ramp_at = Some(now + tick(slow_start.window));
        }
        ramping > 0 && ramping < serving
    }

    /// The ramp clock: raises every ramping endpoint's share; those at the
    /// end of their window are done (and the snapshot is published again).
    pub(super) fn on_ramp_tick(&mut self) {
        let Some(slow_start) = self.slow_start.clone() else {
            return;
        };
        let now = Instant::now();
        let mut ramping = false;
        for i in 0..self.members.len() {
            let m = self.members.at_mut(i);
            let Some(since) = m.ramp_since else {
                continue;
            };
            let factor = slow_start.factor(now - since);
            if factor >= 1.0 {
                m.ramp_since = None;
                let full = super::overload::capped(RAMP_FULL, m.overload_until.is_some());
                m.slot.ramp.store(full, Ordering::Relaxed);
                self.dirty = true;
            } else {
                let share = super::overload::capped(share(factor), m.overload_until.is_some());
                m.slot.ramp.store(share, Ordering::Relaxed);
                ramping = true;
            }
        }
        self.ramp_at = ramping.then(|| now + tick(slow_start.window));
    }
}

pub(super) fn tick(window: Duration) -> Duration {
    (window / 50).clamp(SHORTEST_TICK, LONGEST_TICK)
}

/// A factor in `(0, 1]` as a share in units of [`RAMP_FULL`], never 0.
pub(super) fn share(factor: f64) -> u32 {
    ((factor * f64::from(RAMP_FULL)) as u32).clamp(1, RAMP_FULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_that_start_serving_ramp_unless_nobody_can_spare_them() {
        // A fourth endpoint joins three that serve.
        let ramps = starting_ramps(
            &[true, true, true, false],
            &[true, true, true, true],
            &[false, false, false, false],
        );
        assert_eq!(ramps, vec![3]);
        // The first set, made over several publishes, does not ramp.
        let ramps = starting_ramps(&[true, false], &[true, true], &[false, true]);
        assert!(ramps.is_empty());
        // ...but one of it back after an ejection does.
        let ramps = starting_ramps(&[true, false], &[true, true], &[false, false]);
        assert_eq!(ramps, vec![1]);
        // Everything that served is gone: the newcomers take it all.
        let ramps = starting_ramps(&[true, false, false], &[false, true, true], &[false; 3]);
        assert!(ramps.is_empty());
    }

    #[test]
    fn shares_are_never_zero_and_ticks_are_bounded() {
        assert_eq!(share(0.0), 1);
        assert_eq!(share(1.0), RAMP_FULL);
        assert_eq!(share(0.5), RAMP_FULL / 2);
        assert_eq!(tick(Duration::from_secs(5)), Duration::from_millis(100));
        assert_eq!(tick(Duration::from_millis(50)), SHORTEST_TICK);
        assert_eq!(tick(Duration::from_secs(3600)), LONGEST_TICK);
    }
}
