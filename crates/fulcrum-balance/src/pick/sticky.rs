use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Loads, PickContext, Picker, Policy};
use crate::key::{endpoint_hash, mix64};

/// Sticky sessions: the request's key is a session id, and a session stays
/// on the endpoint it was first placed on, across membership changes, until
/// it expires or its endpoint leaves (then it is placed again).
///
/// New sessions are placed by the inner policy (any policy: `ewma`,
/// `least-conn`, a hash policy…). Requests without a key go straight to
/// the inner policy.
///
/// The table has a fixed capacity, allocated once (16 bytes per entry,
/// 65536 entries by default): a flood of unique ids evicts the oldest
/// sessions and never grows memory. Lookups and updates are lock-free; two
/// requests placing the same new session at the same instant may place it
/// twice, and the last write wins.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::pick::{LeastConn, Sticky};
///
/// let policy = Sticky::new(LeastConn).capacity(1 << 20).ttl(Duration::from_secs(1800));
/// # drop(policy);
/// ```
#[derive(Clone)]
pub struct Sticky {
    inner: Arc<dyn Policy>,
    table: Arc<Table>,
}

impl fmt::Debug for Sticky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sticky")
            .field("inner", &self.inner.name())
            .field("capacity", &self.table.entries.len())
            .field("ttl_secs", &self.table.ttl_secs)
            .finish()
    }
}

/// Entries per bucket: a session lives in one bucket, in any of its slots.
const BUCKET: usize = 4;

struct Table {
    /// `[tag, value]` pairs; tag 0 is an empty entry. The value packs the
    /// endpoint's identity (32 bits) and the expiry (seconds, 32 bits).
    entries: Box<[[AtomicU64; 2]]>,
    ttl_secs: u32,
}

fn now_secs() -> u32 {
    // Seconds since the process clock's epoch, from 1 (0 means "empty").
    (fulcrum_core::time::now() / 1_000_000_000) as u32 + 1
}

impl Table {
    fn new(capacity: usize, ttl: Duration) -> Table {
        let capacity = capacity.clamp(BUCKET, 1 << 28).next_power_of_two();
        Table {
            entries: (0..capacity)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            ttl_secs: ttl.as_secs().clamp(1, u64::from(u32::MAX / 2)) as u32,
        }
    }

    fn bucket(&self, tag: u64) -> std::ops::Range<usize> {
        let start = (tag as usize) & (self.entries.len() - 1) & !(BUCKET - 1);
        start..start + BUCKET
    }

    /// The endpoint identity of a live session.
    fn get(&self, tag: u64, now: u32) -> Option<u32> {
        for i in self.bucket(tag) {
            let [t, v] = &self.entries[i];
            if t.load(Ordering::Acquire) == tag {
                let value = v.load(Ordering::Acquire);
                let expiry = value as u32;
                if expiry > now {
                    // Refresh a session past half its life (rarely writes).
                    if expiry - now < self.ttl_secs / 2 {
                        v.store(
                            (value & !0xFFFF_FFFF) | u64::from(now + self.ttl_secs),
                            Ordering::Release,
                        );
                    }
                    return Some((value >> 32) as u32);
                }
            }
        }
        None
    }

    /// Places a session: its own entry, else the entry of its bucket that
    /// expires first (empty and expired ones first of all). Ties, common
    /// when many sessions start in the same second, are broken from a slot
    /// chosen by the session's own bits, so evictions spread over the bucket.
    fn put(&self, tag: u64, endpoint: u32, now: u32) {
        let value = (u64::from(endpoint) << 32) | u64::from(now + self.ttl_secs);
        let bucket = self.bucket(tag);
        let first = (tag >> 60) as usize % BUCKET;
        let mut victim = bucket.start + first;
        let mut oldest = u32::MAX;
        for k in 0..BUCKET {
            let i = bucket.start + (first + k) % BUCKET;
            let [t, v] = &self.entries[i];
            if t.load(Ordering::Acquire) == tag {
                victim = i;
                break;
            }
            let expiry = v.load(Ordering::Acquire) as u32;
            if expiry < oldest {
                oldest = expiry;
                victim = i;
            }
        }
        let [t, v] = &self.entries[victim];
        v.store(value, Ordering::Release);
        t.store(tag, Ordering::Release);
    }
}

impl Sticky {
    /// Sessions placed by `inner`; 65536 sessions, 30 minutes of idleness.
    pub fn new(inner: impl Policy) -> Self {
        Sticky {
            inner: Arc::new(inner),
            table: Arc::new(Table::new(1 << 16, Duration::from_secs(1800))),
        }
    }

    /// How many sessions the table holds at most (rounded up to a power of
    /// two). Replaces the table: existing sessions are forgotten.
    pub fn capacity(mut self, sessions: usize) -> Self {
        let ttl = Duration::from_secs(u64::from(self.table.ttl_secs));
        self.table = Arc::new(Table::new(sessions, ttl));
        self
    }

    /// How long an idle session is remembered (whole seconds, at least 1).
    /// Replaces the table: existing sessions are forgotten.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.table = Arc::new(Table::new(self.table.entries.len(), ttl));
        self
    }

    /// Memory held by the session table, in bytes (fixed at construction).
    pub fn table_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.table.entries)
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
            return self.inner.pick(cx);
        };
        let tag = mix64(key) | 1;
        let now = now_secs();
        if let Some(i) = self
            .table
            .get(tag, now)
            .and_then(|id| self.index.get(&id).copied())
            .filter(|&i| cx.loads().is_active(i))
        {
            return Some(i);
        }
        // A new session, or its endpoint left: place it.
        let i = self.inner.pick(cx)?;
        if let Some(&id) = self.identity.get(i) {
            self.table.put(tag, id, now);
        }
        Some(i)
    }
}

impl Policy for Sticky {
    fn name(&self) -> &str {
        "sticky"
    }

    fn build(&self, loads: &Loads<'_>) -> Box<dyn Picker> {
        let identity: Box<[u32]> = (0..loads.len())
            .map(|i| endpoint_hash(loads.endpoint(i).addr()) as u32)
            .collect();
        let index = identity
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();
        Box::new(StickyPicker {
            inner: self.inner.build(loads),
            table: self.table.clone(),
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

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::super::{LeastConn, RoundRobin};
    use super::*;

    fn pick(f: &Fixture, picker: &dyn Picker, key: u64) -> std::net::SocketAddr {
        let mut rng = fastrand::Rng::with_seed(0);
        let mut cx = PickContext::new(f.loads(), &mut rng, Some(key));
        f.slots[picker.pick(&mut cx).unwrap()].endpoint.addr()
    }

    #[test]
    fn a_session_stays_on_its_endpoint_across_membership_changes() {
        let policy = Sticky::new(RoundRobin::default());
        let before = Fixture::numbered(0..5);
        let picker = policy.build(&before.loads());
        let homes: Vec<_> = (0..50u64).map(|s| pick(&before, &*picker, s)).collect();
        // Round robin spreads new sessions...
        assert!(homes.iter().collect::<std::collections::HashSet<_>>().len() == 5);
        // ...and each session sticks, even after endpoints are added.
        let after = Fixture::numbered(0..8);
        let picker = policy.build(&after.loads());
        for (s, home) in homes.iter().enumerate() {
            assert_eq!(pick(&after, &*picker, s as u64), *home, "session {s} moved");
        }
    }

    #[test]
    fn a_session_whose_endpoint_left_is_placed_again_and_stays() {
        let policy = Sticky::new(LeastConn);
        let all = Fixture::numbered(0..3);
        let picker = policy.build(&all.loads());
        let home = pick(&all, &*picker, 7);
        let rest: Vec<u16> = (0..3u16)
            .filter(|&i| format!("10.0.0.{i}:80") != home.to_string())
            .collect();
        let without = Fixture::numbered(rest);
        let picker = policy.build(&without.loads());
        let new_home = pick(&without, &*picker, 7);
        assert_ne!(new_home, home);
        for _ in 0..10 {
            assert_eq!(pick(&without, &*picker, 7), new_home);
        }
    }

    #[test]
    fn a_flood_of_unique_ids_stays_within_the_memory_bound() {
        let policy = Sticky::new(RoundRobin::default()).capacity(4096);
        let bytes = policy.table_bytes();
        assert_eq!(bytes, 4096 * 16);
        let f = Fixture::numbered(0..10);
        let picker = policy.build(&f.loads());
        // Round robin places each new session on the next endpoint, so a
        // forgotten session would (9 times in 10) come back elsewhere.
        let newest = 999_000..1_000_000u64;
        let mut homes = Vec::new();
        for s in 0..1_000_000u64 {
            let home = pick(&f, &*picker, s);
            if newest.contains(&s) {
                homes.push(home);
            }
        }
        assert_eq!(policy.table_bytes(), bytes, "the table never grows");
        // Nearly all of the newest sessions are remembered (eviction is per
        // bucket of 4, not a global LRU, so a few may have been pushed out).
        let kept = newest
            .zip(&homes)
            .filter(|(s, home)| pick(&f, &*picker, *s) == **home)
            .count();
        eprintln!("sticky: {kept} of the newest 1000 sessions kept after 1M unique ids");
        assert!(kept >= 700, "only {kept} of the newest 1000 sessions kept");
        assert!(kept >= 90, "only {kept} of the newest 100 sessions kept");
    }
}
