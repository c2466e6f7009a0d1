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
    let start = start.min(n);
    // The best so far as `(index, in_flight + 1, weight)`: each endpoint's
    // load is read once per scan.
    let mut best: Option<(usize, u64, u64)> = None;
    let mut consider = |i: usize| {
        if !loads.is_active(i) {
            return;
        }
        let (c, w) = (
            u64::from(loads.in_flight(i)) + 1,
            u64::from(loads.weight(i)),
        );
        // `i` wins unless the best is at most as loaded per unit of weight.
        if best.is_none_or(|(_, bc, bw)| bc * w > c * bw) {
            best = Some((i, c, w));
        }
    };
    // From `start` to the end, then from 0: no division per endpoint.
    (start..n).for_each(&mut consider);
    (0..start).for_each(&mut consider);
    best.map(|(i, _, _)| i)
}
