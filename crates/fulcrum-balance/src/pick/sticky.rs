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
/// requests placing the same new session at the same instant may each be
/// placed by the inner policy, and the session then settles on one of the
/// endpoints. Endpoints are told apart by 32 bits of their identity hash; if
/// two ever collide (about once in 10⁴ sets of 1000 endpoints), their
/// sessions are shared between them.
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
/// Tag of an empty entry. Real tags are odd.
const EMPTY: u64 = 0;
/// Tag of an entry a writer has claimed and is rewriting.
const CLAIMED: u64 = 2;

/// Sessions in buckets of [`BUCKET`] entries, each `[tag, value]`, where the
/// value packs the endpoint's identity (32 bits) and the expiry (seconds,
/// 32 bits).
///
/// A writer claims an entry (CAS of its tag to [`CLAIMED`]), stores the
/// value, then publishes the tag; a reader loads the tag, the value, and the
/// tag again, and only trusts a value framed by its own tag twice. So a
/// reader never pairs one session's tag with another's value. Refreshing an
/// expiry is a CAS on the value alone.
struct Table {
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
                .map(|_| [AtomicU64::new(EMPTY), AtomicU64::new(0)])
                .collect(),
            // At least 2 s, so that "past half its life" is a real moment.
            ttl_secs: ttl.as_secs().clamp(2, u64::from(u32::MAX / 2)) as u32,
        }
    }

    fn bucket(&self, tag: u64) -> std::ops::Range<usize> {
        let start = (tag as usize) & (self.entries.len() - 1) & !(BUCKET - 1);
        start..start + BUCKET
    }

    /// The endpoint identity of a live session that `accept`s it (its
    /// endpoint still exists and is up), refreshing the expiry past half
    /// its life.
    fn get(&self, tag: u64, now: u32, accept: impl Fn(u32) -> bool) -> Option<u32> {
        for i in self.bucket(tag) {
            let [t, v] = &self.entries[i];
            if t.load(Ordering::Acquire) != tag {
                continue;
            }
            let value = v.load(Ordering::Acquire);
            if t.load(Ordering::Acquire) != tag {
                continue; // rewritten while we read: not ours any more
            }
            let (id, expiry) = ((value >> 32) as u32, value as u32);
            if expiry <= now || !accept(id) {
                continue;
            }
            if 2 * (expiry - now) <= self.ttl_secs {
                let fresh = (value & !0xFFFF_FFFF) | u64::from(now + self.ttl_secs);
                let _ = v.compare_exchange(value, fresh, Ordering::AcqRel, Ordering::Relaxed);
            }
            return Some(id);
        }
        None
    }

    /// Records a session: in its own entry if it has one (other copies,
    /// left by concurrent placements, are cleared), else in the entry of
    /// its bucket that expires first. Ties, common when many sessions start
    /// in the same second, are broken from a slot chosen by the session's
    /// own bits, so evictions spread over the bucket. If a writer holds the
    /// chosen entry, the session is not recorded (it is placed again next
    /// time).
    fn put(&self, tag: u64, endpoint: u32, now: u32) {
        let bucket = self.bucket(tag);
        let first = (tag >> 60) as usize % BUCKET;
        let mut own: Option<usize> = None;
        let mut victim = bucket.start + first;
        let mut oldest = u32::MAX;
        for k in 0..BUCKET {
            let i = bucket.start + (first + k) % BUCKET;
            let [t, v] = &self.entries[i];
            let current = t.load(Ordering::Acquire);
            if current == tag {
                if own.is_none() {
                    own = Some(i);
                } else {
                    self.write(i, tag, EMPTY, 0);
                }
                continue;
            }
            let expiry = if current == EMPTY {
                0
            } else {
                v.load(Ordering::Acquire) as u32
            };
            if expiry < oldest {
                oldest = expiry;
                victim = i;
            }
        }
        let value = (u64::from(endpoint) << 32) | u64::from(now + self.ttl_secs);
        let slot = own.unwrap_or(victim);
        let current = self.entries[slot][0].load(Ordering::Acquire);
        self.write(slot, current, tag, value);
    }

    /// Claims entry `i` (if its tag is still `expected`), stores `value`,
    /// then publishes `tag`.
    fn write(&self, i: usize, expected: u64, tag: u64, value: u64) {
        let [t, v] = &self.entries[i];
        if expected == CLAIMED
            || t.compare_exchange(expected, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
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
        let loads = *cx.loads();
        let home = |id: u32| self.index.get(&id).copied().filter(|&i| loads.is_active(i));
        if let Some(i) = self
            .table
            .get(tag, now, |id| home(id).is_some())
            .and_then(home)
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
    fn concurrent_placements_of_one_session_converge_on_one_endpoint() {
        let policy = Sticky::new(RoundRobin::default());
        let f = Fixture::numbered(0..4);
        let picker: Arc<dyn Picker> = Arc::from(policy.build(&f.loads()));
        let f = Arc::new(f);
        for session in 0..200u64 {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (f, picker) = (f.clone(), picker.clone());
                    std::thread::spawn(move || pick(&f, &*picker, session))
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            // Whatever the race placed, from now on the session has one home.
            let home = pick(&f, &*picker, session);
            for _ in 0..5 {
                assert_eq!(pick(&f, &*picker, session), home, "session {session}");
            }
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
