use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::{pick_ramped, previous_as, Loads, PickContext, Picker, Policy};
use crate::key::endpoint_hash;

mod table;
#[cfg(test)]
mod tests;

use table::{now_secs, session_id, table_capacity, Table};

/// Sticky sessions: the request's key is a session id, and a session stays
/// on the endpoint it was first placed on, across membership changes, until
/// it expires or its endpoint leaves (then it is placed again).
///
/// New sessions are placed by the inner policy (any policy: `ewma`,
/// `least-conn`, a hash policy…). Requests without a key go straight to
/// the inner policy.
///
/// Each balancer has its own session table, of a fixed capacity allocated
/// once (16 bytes per entry, 65536 entries by default): a flood of unique
/// ids evicts the oldest sessions and never grows memory. Lookups and
/// updates are lock-free; two requests placing the same new session at the
/// same instant may each be placed by the inner policy, and the session then
/// settles on one of the endpoints. Endpoints are told apart by 32 bits of
/// their identity hash; if two ever collide (about once in 10⁴ sets of 1000
/// endpoints), their sessions are shared between them.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::pick::{LeastConn, Sticky};
///
/// let policy = Sticky::new(LeastConn).capacity(1 << 20).ttl(Duration::from_secs(1800));
/// assert_eq!(policy.table_bytes(), 16 << 20);
/// ```
#[derive(Clone)]
pub struct Sticky {
    inner: Arc<dyn Policy>,
    capacity: usize,
    ttl_secs: u32,
}

impl fmt::Debug for Sticky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sticky")
            .field("inner", &self.inner.name())
            .field("capacity", &self.capacity)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

impl Sticky {
    /// Sessions placed by `inner`; 65536 sessions, 30 minutes of idleness.
    pub fn new(inner: impl Policy) -> Self {
        Sticky {
            inner: Arc::new(inner),
            capacity: 1 << 16,
            ttl_secs: 1800,
        }
    }

    /// How many sessions each balancer's table holds at most (rounded up
    /// to a power of two).
    pub fn capacity(mut self, sessions: usize) -> Self {
        self.capacity = sessions;
        self
    }

    /// How long an idle session is remembered (whole seconds, at least 2).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        // At least 2 s, so that "past half its life" is a real moment.
        self.ttl_secs = ttl.as_secs().clamp(2, u64::from(u32::MAX / 2)) as u32;
        self
    }

    /// Memory held by one balancer's session table, in bytes (fixed when
    /// the balancer builds its first picker).
    pub fn table_bytes(&self) -> usize {
        table_capacity(self.capacity) * std::mem::size_of::<[AtomicU64; 2]>()
    }
}

struct StickyPicker {
    inner: Box<dyn Picker>,
    table: Arc<Table>,
    /// Endpoint identity (low 32 bits of its hash) → index in the `Loads`.
    index: HashMap<u32, usize>,
    identity: Box<[u32]>,
}

impl fmt::Debug for StickyPicker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyPicker")
            .field("endpoints", &self.identity.len())
            .finish()
    }
}

impl Picker for StickyPicker {
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        let Some(key) = cx.key() else {
            return pick_ramped(&*self.inner, cx);
        };
        let id = session_id(key);
        let now = now_secs();
        let loads = *cx.loads();
        let home = |e: u32| self.index.get(&e).copied().filter(|&i| loads.is_active(i));
        if let Some(i) = self
            .table
            .get(id, now, |e| home(e).is_some())
            .and_then(home)
        {
            return Some(i);
        }
        // A new session, or its endpoint left: place it.
        // (New sessions spare an endpoint in slow start.)
        let i = pick_ramped(&*self.inner, cx)?;
        if let Some(&e) = self.identity.get(i) {
            self.table.put(id, e, now);
        }
        Some(i)
    }
}

impl Policy for Sticky {
    fn picks_by_key(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        "sticky"
    }

    fn build(&self, loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        let previous = previous_as::<StickyPicker>(previous);
        let identity: Box<[u32]> = (0..loads.len())
            .map(|i| endpoint_hash(loads.endpoint(i).addr()) as u32)
            .collect();
        let index = identity
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();
        Box::new(StickyPicker {
            inner: self.inner.build(loads, previous.map(|p| &*p.inner)),
            table: previous.map_or_else(
                || Arc::new(Table::new(self.capacity, self.ttl_secs)),
                |p| p.table.clone(),
            ),
            index,
            identity,
        })
    }

    fn uses_latency(&self) -> bool {
        self.inner.uses_latency()
    }

    fn tracks_total_load(&self) -> bool {
        self.inner.tracks_total_load()
    }
}
