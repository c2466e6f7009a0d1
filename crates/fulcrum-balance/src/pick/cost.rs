//! Comparisons the load-aware pickers share.

use super::{Loads, PickContext};

/// Power of two choices: two distinct random endpoints, the one for which
/// `a_wins(loads, a, b, now)` holds, else the other. `now` is read only when
/// `with_clock` (latency-aware costs need it).
#[inline]
pub(crate) fn power_of_two(
    cx: &mut PickContext<'_>,
    with_clock: bool,
    a_wins: impl Fn(&Loads<'_>, usize, usize, u64) -> bool,
) -> Option<usize> {
    match cx.loads().len() {
        0 => None,
        1 => Some(0),
        _ => {
            let (a, b) = cx.two_random();
            let now = if with_clock { cx.now() } else { 0 };
            Some(if a_wins(cx.loads(), a, b, now) { a } else { b })
        }
    }
}

/// `(in_flight_a + 1) / weight_a <= (in_flight_b + 1) / weight_b`, without
/// division. The `+ 1` makes weights count on idle endpoints too.
#[inline]
pub(crate) fn pending_le(loads: &Loads<'_>, a: usize, b: usize) -> bool {
    let ca = u64::from(loads.in_flight(a)) + 1;
    let cb = u64::from(loads.in_flight(b)) + 1;
    ca * u64::from(loads.weight(b)) <= cb * u64::from(loads.weight(a))
}

/// The active endpoint with the least `(in_flight + 1) / weight`, scanning
/// from `start` so that ties are shared.
pub(crate) fn least_loaded(loads: &Loads<'_>, start: usize) -> Option<usize> {
    let n = loads.len();
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = (start + k) % n;
        if loads.is_active(i) && best.is_none_or(|b| !pending_le(loads, b, i)) {
            best = Some(i);
        }
    }
    best
}
