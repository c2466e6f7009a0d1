//! What the hash pickers share: the key → endpoint order of a table, the
//! fallback policy for requests without a key, ordered fallback past
//! endpoints that are down, and bounded load.

use std::fmt;
use std::sync::Arc;

use super::cost::least_loaded;
use super::ramp::pick_ramped;
use super::{previous_as, Loads, PeakEwmaP2c, PickContext, Picker, Policy};
use crate::key::{endpoint_hash, mix64};

/// Options of the hash policies (`ring-hash`, `maglev`, `rendezvous`).
///
/// ```
/// use fulcrum_balance::pick::{HashOptions, Maglev, PendingP2c};
///
/// let policy = Maglev::default().options(
///     HashOptions::default().balance_factor(1.25).fallback(PendingP2c),
/// );
/// # drop(policy);
/// ```
#[derive(Clone)]
pub struct HashOptions {
    pub(crate) balance_factor: Option<f64>,
    pub(crate) fallback: Arc<dyn Policy>,
}

impl fmt::Debug for HashOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashOptions")
            .field("balance_factor", &self.balance_factor)
            .field("fallback", &self.fallback.name())
            .finish()
    }
}

impl Default for HashOptions {
    fn default() -> Self {
        HashOptions {
            balance_factor: None,
            fallback: Arc::new(PeakEwmaP2c),
        }
    }
}

impl HashOptions {
    /// Bounded-load consistent hashing (Mirrokni, Thorup, Zadimoghaddam):
    /// an endpoint already at `⌈c · (in flight + 1) · weight / total weight⌉`
    /// requests is skipped in the picker's fallback order. `c` is clamped to
    /// at least 1; 1.25 is typical. Keeping the total in-flight count costs
    /// a shared atomic update per request.
    pub fn balance_factor(mut self, c: f64) -> Self {
        self.balance_factor = (c.is_finite()).then_some(c.max(1.0));
        self
    }

    /// The policy for requests without a key (`ewma` by default).
    pub fn fallback(mut self, policy: impl Policy) -> Self {
        self.fallback = Arc::new(policy);
        self
    }

    /// The fallback policy, shared.
    pub fn fallback_arc(mut self, policy: Arc<dyn Policy>) -> Self {
        self.fallback = policy;
        self
    }

    /// [`Policy::uses_latency`] of a hash policy with these options: the
    /// table never reads latency, the fallback may.
    pub(crate) fn uses_latency(&self) -> bool {
        self.fallback.uses_latency()
    }

    /// [`Policy::tracks_total_load`] of a hash policy with these options.
    pub(crate) fn tracks_total_load(&self) -> bool {
        self.balance_factor.is_some() || self.fallback.tracks_total_load()
    }
}

/// A key → endpoint order: home first, then the fallbacks.
pub(crate) trait HashTable: Send + Sync + fmt::Debug + 'static {
    /// Candidate indices (into the `Loads` the table was built from) for a
    /// mixed key. Finite; may repeat an index.
    type Order<'a>: Iterator<Item = usize>
    where
        Self: 'a;

    fn order(&self, key: u64) -> Self::Order<'_>;
}

/// The endpoints as hash tables see them: identity hash and weight, by
/// index in the `Loads`.
pub(crate) fn identities(loads: &Loads<'_>) -> Vec<(u64, u32)> {
    (0..loads.len())
        .map(|i| (endpoint_hash(loads.endpoint(i).addr()), loads.weight(i)))
        .collect()
}

/// Candidates tried in the policy's order before settling for the least
/// loaded endpoint. The ready set is rebuilt without down endpoints, and
/// with c ≥ 1 some endpoint is always under its bound, so a short walk
/// finds one; the cap keeps the worst case (rendezvous rescans n endpoints
/// per step) at O(32 n).
const MAX_CANDIDATES: usize = 32;

/// The picker of every hash policy.
pub(crate) struct HashPicker<T> {
    table: T,
    fallback: Box<dyn Picker>,
    factor: Option<f64>,
    total_weight: f64,
}

impl<T: fmt::Debug> fmt::Debug for HashPicker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPicker")
            .field("table", &self.table)
            .field("factor", &self.factor)
            .finish()
    }
}

/// Builds the picker of a hash policy over `loads`; the fallback picker
/// takes over the state of the one it replaces.
pub(crate) fn picker<T: HashTable>(
    table: T,
    loads: &Loads<'_>,
    options: &HashOptions,
    previous: Option<&dyn Picker>,
) -> Box<dyn Picker> {
    let previous_fallback = previous_as::<HashPicker<T>>(previous).map(|p| &*p.fallback);
    let total_weight = (0..loads.len())
        .map(|i| f64::from(loads.weight(i)))
        .sum::<f64>();
    Box::new(HashPicker {
        table,
        fallback: options.fallback.build(loads, previous_fallback),
        factor: options.balance_factor,
        total_weight: total_weight.max(1.0),
    })
}

impl<T: HashTable> Picker for HashPicker<T> {
    #[inline]
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        let n = cx.loads().len();
        if n == 0 {
            return None;
        }
        let Some(key) = cx.key() else {
            return pick_ramped(&*self.fallback, cx);
        };
        let loads = *cx.loads();
        let order = self.table.order(mix64(key)).take(MAX_CANDIDATES);
        // Two loops, not one with an optional bound: an `Option<f64>` that
        // is `None` leaves its payload uninitialised, and the compiler may
        // compute the bound from it anyway and select afterwards; garbage
        // that happens to be subnormal costs a microcode assist per pick
        // (measured: 7 ns vs 120 ns for the same table).
        // An endpoint in slow start takes only the keys it admits.
        // A subset's view keeps no total: the bound then sums its own.
        let total = match self.factor {
            Some(_) => loads
                .total_in_flight()
                .or_else(|| Some((0..n).map(|i| u64::from(loads.in_flight(i))).sum())),
            None => None,
        };
        let found = match (self.factor, total) {
            (Some(c), Some(total)) => {
                // ⌈c · (total in flight + 1) · w / W⌉ per endpoint.
                let per_weight = c * (total as f64 + 1.0) / self.total_weight;
                let fits = |i: usize| {
                    let cap = (per_weight * f64::from(loads.weight(i))).ceil();
                    loads.is_active(i)
                        && f64::from(loads.in_flight(i)) + 1.0 <= cap
                        && loads.admits_key(i, key)
                };
                bounded_walk(order, n, fits)
            }
            _ => bounded_walk(order, n, |i| loads.is_active(i) && loads.admits_key(i, key)),
        };
        if found.is_some() {
            return found;
        }
        // Every candidate is down or over its bound: the least loaded.
        least_loaded(&loads, (key % n as u64) as usize)
    }
}

/// The first candidate of `order` that is in range and fits.
#[inline]
fn bounded_walk(
    mut order: impl Iterator<Item = usize>,
    n: usize,
    fits: impl Fn(usize) -> bool,
) -> Option<usize> {
    order.find(|&i| i < n && fits(i))
}
