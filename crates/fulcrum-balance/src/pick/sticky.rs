use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{pick_ramped, previous_as, Loads, PickContext, Picker, Policy};
use crate::key::{endpoint_hash, mix64};

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

/// Entries per bucket: a session lives in one bucket, in any of its slots.
const BUCKET: usize = 4;
/// Bit 0 of an entry's word: a writer has claimed the entry and is
/// rewriting it.
const CLAIMED: u64 = 1;
/// Bits 1..16 of the word count the entry's rewrites.
const VERSION_MASK: u64 = 0xFFFE;
/// Bits 16..64 of the word hold the session id (0: empty).
const ID_SHIFT: u32 = 16;

/// A session's 48-bit id (never 0) from its key.
fn session_id(key: u64) -> u64 {
    (mix64(key) >> ID_SHIFT).max(1)
}

/// Sessions in buckets of [`BUCKET`] entries, each `[word, value]`. The word
/// packs the session id, a rewrite version and the claimed bit; the value
/// packs the endpoint's identity (32 bits) and the expiry (seconds, 32 bits).
///
/// A writer claims an entry (CAS setting [`CLAIMED`]), stores the value,
/// then publishes the word with the next version; a reader loads the word,
/// the value, and the word again, and only trusts a value framed by the
/// same word twice. The version makes that hold even when the entry was
/// rewritten in between and came back to the same session (an A-B-A): it
/// would take 32768 rewrites between two loads to fool a reader. Refreshing
/// an expiry is a CAS on the value alone.
struct Table {
    entries: Box<[[AtomicU64; 2]]>,
    ttl_secs: u32,
}

fn now_secs() -> u32 {
    // Seconds since the process clock's epoch, from 1 (0 means "empty").
    (fulcrum_core::time::now() / 1_000_000_000) as u32 + 1
}

/// Table capacity for a requested number of sessions.
fn table_capacity(sessions: usize) -> usize {
    sessions.clamp(BUCKET, 1 << 28).next_power_of_two()
}

impl Table {
    fn new(capacity: usize, ttl_secs: u32) -> Table {
        Table {
            entries: (0..table_capacity(capacity))
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            ttl_secs,
        }
    }

    fn bucket(&self, id: u64) -> std::ops::Range<usize> {
        let start = (id as usize) & (self.entries.len() - 1) & !(BUCKET - 1);
        start..start + BUCKET
    }

    /// The endpoint identity of a live session that `accept`s it (its
    /// endpoint still exists and is up), refreshing the expiry past half
    /// its life.
    fn get(&self, id: u64, now: u32, accept: impl Fn(u32) -> bool) -> Option<u32> {
        for i in self.bucket(id) {
            let [w, v] = &self.entries[i];
            let word = w.load(Ordering::Acquire);
            if word >> ID_SHIFT != id || word & CLAIMED != 0 {
                continue;
            }
            let value = v.load(Ordering::Acquire);
            if w.load(Ordering::Acquire) != word {
                continue; // rewritten while we read: not trusted
            }
            let (endpoint, expiry) = ((value >> 32) as u32, value as u32);
            if expiry <= now || !accept(endpoint) {
                continue;
            }
            if 2 * (expiry - now) <= self.ttl_secs {
                let fresh = (value & !0xFFFF_FFFF) | u64::from(now + self.ttl_secs);
                let _ = v.compare_exchange(value, fresh, Ordering::AcqRel, Ordering::Relaxed);
            }
            return Some(endpoint);
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
    fn put(&self, id: u64, endpoint: u32, now: u32) {
        let bucket = self.bucket(id);
        let first = (id >> 44) as usize % BUCKET;
        let mut own: Option<(usize, u64)> = None;
        let mut victim = (bucket.start + first, u64::MAX);
        let mut oldest = u32::MAX;
        for k in 0..BUCKET {
            let i = bucket.start + (first + k) % BUCKET;
            let [w, v] = &self.entries[i];
            let word = w.load(Ordering::Acquire);
            let occupant = word >> ID_SHIFT;
            if occupant == id {
                if own.is_none() {
                    own = Some((i, word));
                } else {
                    self.write(i, word, 0, 0);
                }
                continue;
            }
            let expiry = if occupant == 0 {
                0
            } else {
                v.load(Ordering::Acquire) as u32
            };
            if expiry < oldest {
                oldest = expiry;
                victim = (i, word);
            }
        }
        let value = (u64::from(endpoint) << 32) | u64::from(now + self.ttl_secs);
        let (slot, word) = own.unwrap_or(victim);
        if word != u64::MAX {
            self.write(slot, word, id, value);
        }
    }

    /// Claims entry `i` (if its word is still `expected`), stores `value`,
    /// then publishes `id` with the next version.
    fn write(&self, i: usize, expected: u64, id: u64, value: u64) {
        let [w, v] = &self.entries[i];
        if expected & CLAIMED != 0
            || w.compare_exchange(
                expected,
                expected | CLAIMED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        v.store(value, Ordering::Release);
        let version = (expected + 2) & VERSION_MASK;
        w.store((id << ID_SHIFT) | version, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::super::TestEndpoints as Fixture;
    use super::super::{LeastConn, RoundRobin};
    use super::*;

    fn pick(f: &Fixture, picker: &dyn Picker, key: u64) -> std::net::SocketAddr {
        let mut rng = fastrand::Rng::with_seed(0);
        let mut cx = PickContext::new(f.loads(), &mut rng, Some(key));
        f.slots[picker.pick(&mut cx).unwrap()].endpoint.addr()
    }

    #[test]
    fn a_session_stays_on_its_endpoint_across_membership_changes() {
        let policy = Sticky::new(RoundRobin);
        let before = Fixture::numbered(0..5);
        let picker = policy.build(&before.loads(), None);
        let homes: Vec<_> = (0..50u64).map(|s| pick(&before, &*picker, s)).collect();
        // Round robin spreads new sessions...
        assert!(homes.iter().collect::<std::collections::HashSet<_>>().len() == 5);
        // ...and each session sticks, even after endpoints are added.
        let after = Fixture::numbered(0..8);
        let picker = policy.build(&after.loads(), Some(&*picker));
        for (s, home) in homes.iter().enumerate() {
            assert_eq!(pick(&after, &*picker, s as u64), *home, "session {s} moved");
        }
    }

    #[test]
    fn a_session_whose_endpoint_left_is_placed_again_and_stays() {
        let policy = Sticky::new(LeastConn);
        let all = Fixture::numbered(0..3);
        let picker = policy.build(&all.loads(), None);
        let home = pick(&all, &*picker, 7);
        let rest: Vec<u16> = (0..3u16)
            .filter(|&i| format!("10.0.0.{i}:80") != home.to_string())
            .collect();
        let without = Fixture::numbered(rest);
        let picker = policy.build(&without.loads(), Some(&*picker));
        let new_home = pick(&without, &*picker, 7);
        assert_ne!(new_home, home);
        for _ in 0..10 {
            assert_eq!(pick(&without, &*picker, 7), new_home);
        }
    }

    #[test]
    fn concurrent_placements_of_one_session_converge_on_one_endpoint() {
        let policy = Sticky::new(RoundRobin);
        let f = Fixture::numbered(0..4);
        let picker: Arc<dyn Picker> = Arc::from(policy.build(&f.loads(), None));
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
        let policy = Sticky::new(RoundRobin).capacity(4096);
        let bytes = policy.table_bytes();
        assert_eq!(bytes, 4096 * 16);
        let f = Fixture::numbered(0..10);
        let picker = policy.build(&f.loads(), None);
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

    #[test]
    fn two_balancers_from_one_policy_keep_separate_sessions() {
        let policy = Sticky::new(RoundRobin);
        let f = Fixture::numbered(0..4);
        let a = policy.build(&f.loads(), None);
        let b = policy.build(&f.loads(), None);
        // Each balancer places session 1 with its own rotation: both on the
        // first endpoint, and then each keeps its own record.
        let home_a = pick(&f, &*a, 1);
        for s in 2..5 {
            pick(&f, &*b, s);
        }
        let home_b = pick(&f, &*b, 1);
        assert_eq!(home_a, f.addr(0));
        assert_ne!(home_b, home_a, "b placed session 1 itself");
        for _ in 0..10 {
            assert_eq!(pick(&f, &*a, 1), home_a);
            assert_eq!(pick(&f, &*b, 1), home_b);
        }
    }

    /// An entry rewritten to another session and back to the first (an
    /// A-B-A) never shows a reader the word it saw before: a reader that
    /// loaded the word, then the value, then the word again cannot pair the
    /// first session's word with a value written in between.
    #[test]
    fn an_entry_rewritten_back_to_its_session_has_a_new_word() {
        let table = Table::new(BUCKET, 60);
        let (a, b) = (1u64 << 20, 2u64 << 20);
        let word = |t: &Table| t.entries[0][0].load(Ordering::Acquire);
        table.write(0, word(&table), a, 1);
        let seen = word(&table);
        table.write(0, seen, b, 2);
        table.write(0, word(&table), a, 3);
        let after = word(&table);
        assert_eq!(after >> ID_SHIFT, a);
        assert_ne!(after, seen, "the version tells the two writes of `a` apart");
        // Versions wrap after 32768 rewrites, never sooner.
        let mut versions = std::collections::HashSet::new();
        for i in 0..32_768u64 {
            table.write(0, word(&table), a, i);
            assert!(
                versions.insert(word(&table)),
                "a version repeated after {i} rewrites"
            );
        }
    }
}
