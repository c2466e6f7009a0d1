//! Which region is preferred, and the order of the others: pure functions
//! of the regions' latency estimates.

use std::time::Duration;

/// The preferred region and a challenger that has been faster (beyond the
/// hysteresis) for `held` so far. Regions are indices into the estimates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    /// The region requests go to first.
    pub preferred: Option<usize>,
    /// A faster region and how long it has been faster.
    pub challenger: Option<(usize, Duration)>,
}

/// The choice after `elapsed` more time with `estimates` (seconds, `None`
/// for a region never measured): the fastest measured region when nothing
/// is preferred yet (or the preferred one is gone); another region only
/// once it has been faster than the preferred one by more than
/// `hysteresis` (a share) for `hold`.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::region::{choose, Choice};
///
/// let ms = |v: f64| Some(v / 1e3);
/// let tick = Duration::from_millis(250);
/// let hold = Duration::from_secs(1);
/// let start = choose(Choice::default(), &[ms(20.0), ms(1.0)], tick, 0.2, hold);
/// assert_eq!(start.preferred, Some(1));
/// // Region 0 becomes faster: it takes over only after the hold time.
/// let mut c = start;
/// for _ in 0..4 {
///     c = choose(c, &[ms(0.5), ms(1.0)], tick, 0.2, hold);
/// }
/// assert_eq!(c.preferred, Some(0));
/// ```
pub fn choose(
    previous: Choice,
    estimates: &[Option<f64>],
    elapsed: Duration,
    hysteresis: f64,
    hold: Duration,
) -> Choice {
    let fastest = estimates
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.map(|e| (i, e)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let Some((best, best_estimate)) = fastest else {
        return Choice {
            preferred: previous.preferred.filter(|&p| p < estimates.len()),
            challenger: None,
        };
    };
    let current = previous
        .preferred
        .and_then(|p| estimates.get(p).copied().flatten().map(|e| (p, e)));
    let Some((preferred, estimate)) = current else {
        return Choice {
            preferred: Some(best),
            challenger: None,
        };
    };
    if best == preferred || best_estimate >= estimate * (1.0 - hysteresis) {
        return Choice {
            preferred: Some(preferred),
            challenger: None,
        };
    }
    let held = match previous.challenger {
        Some((c, held)) if c == best => held + elapsed,
        _ => elapsed,
    };
    if held >= hold {
        Choice {
            preferred: Some(best),
            challenger: None,
        }
    } else {
        Choice {
            preferred: Some(preferred),
            challenger: Some((best, held)),
        }
    }
}

/// Each region's rank (0 is served first): the preferred region, then the
/// others by estimate, those never measured last. A region never measured
/// that can serve (`reachable`) ranks 0 with the preferred one, so that it
/// is measured at once; with nothing preferred, every region ranks 0
/// (they serve together until measured).
pub fn ranks(preferred: Option<usize>, estimates: &[Option<f64>], reachable: &[bool]) -> Vec<u32> {
    if preferred.is_none() {
        return vec![0; estimates.len()];
    }
    let first = |i: usize| Some(i) == preferred || (estimates[i].is_none() && reachable[i]);
    let mut order: Vec<usize> = (0..estimates.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| (!first(i), estimates[i].is_none());
        key(a)
            .cmp(&key(b))
            .then_with(|| {
                let (x, y) = (estimates[a].unwrap_or(0.0), estimates[b].unwrap_or(0.0));
                x.total_cmp(&y)
            })
            .then(a.cmp(&b))
    });
    let mut ranks = vec![0; estimates.len()];
    let mut rank = 0;
    for &region in &order {
        if !first(region) {
            rank += 1;
            ranks[region] = rank;
        }
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(250);
    const HOLD: Duration = Duration::from_secs(1);

    fn ms(v: f64) -> Option<f64> {
        Some(v / 1e3)
    }

    #[test]
    fn a_region_a_little_faster_does_not_take_over() {
        let c = choose(Choice::default(), &[ms(10.0), ms(12.0)], TICK, 0.2, HOLD);
        assert_eq!(c.preferred, Some(0));
        // 15 % faster: within the hysteresis, however long.
        let mut c = c;
        for _ in 0..100 {
            c = choose(c, &[ms(10.0), ms(8.6)], TICK, 0.2, HOLD);
        }
        assert_eq!(c.preferred, Some(0));
        assert_eq!(c.challenger, None);
    }

    #[test]
    fn a_faster_region_must_hold_its_lead() {
        let mut c = choose(Choice::default(), &[ms(10.0), ms(20.0)], TICK, 0.2, HOLD);
        // Faster for 3 ticks, then not: the count starts again.
        for _ in 0..3 {
            c = choose(c, &[ms(10.0), ms(5.0)], TICK, 0.2, HOLD);
        }
        assert_eq!((c.preferred, c.challenger), (Some(0), Some((1, 3 * TICK))));
        c = choose(c, &[ms(10.0), ms(9.0)], TICK, 0.2, HOLD);
        assert_eq!(c.challenger, None);
        for _ in 0..3 {
            c = choose(c, &[ms(10.0), ms(5.0)], TICK, 0.2, HOLD);
        }
        assert_eq!(c.preferred, Some(0));
        c = choose(c, &[ms(10.0), ms(5.0)], TICK, 0.2, HOLD);
        assert_eq!(c.preferred, Some(1));
    }

    #[test]
    fn unmeasured_and_vanished_regions() {
        // Nothing measured: nothing preferred, everyone ranks 0.
        let c = choose(Choice::default(), &[None, None], TICK, 0.2, HOLD);
        assert_eq!(c.preferred, None);
        assert_eq!(ranks(None, &[None, ms(1.0)], &[true, true]), [0, 0]);
        // The preferred region vanished (fewer regions): the fastest.
        let c = Choice {
            preferred: Some(2),
            challenger: None,
        };
        assert_eq!(
            choose(c, &[ms(5.0), ms(3.0)], TICK, 0.2, HOLD).preferred,
            Some(1)
        );
    }

    #[test]
    fn the_preferred_region_ranks_first_then_by_estimate() {
        let estimates = [ms(80.0), None, ms(20.0), ms(1.0)];
        assert_eq!(
            ranks(Some(2), &estimates, &[true, false, true, true]),
            [2, 3, 0, 1]
        );
        assert_eq!(
            ranks(Some(3), &estimates, &[true, false, true, true]),
            [2, 3, 1, 0]
        );
        // A region never measured that can serve is measured at once.
        assert_eq!(ranks(Some(3), &estimates, &[true; 4]), [2, 0, 1, 0]);
    }
}
