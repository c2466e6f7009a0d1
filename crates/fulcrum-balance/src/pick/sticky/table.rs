//! The session table: fixed capacity, lock-free, each entry framed by a
//! versioned word so that readers never trust a torn or recycled value.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::key::mix64;

/// Entries per bucket: a session lives in one bucket, in any of its slots.
pub(super) const BUCKET: usize = 4;
/// Bit 0 of an entry's word: a writer has claimed the entry and is
/// rewriting it.
const CLAIMED: u64 = 1;
/// Bits 1..16 of the word count the entry's rewrites.
const VERSION_MASK: u64 = 0xFFFE;
/// Bits 16..64 of the word hold the session id (0: empty).
const ID_SHIFT: u32 = 16;

/// A session's 48-bit id (never 0) from its key.
pub(super) fn session_id(key: u64) -> u64 {
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
pub(super) struct Table {
    entries: Box<[[AtomicU64; 2]]>,
    ttl_secs: u32,
}

pub(super) fn now_secs() -> u32 {
    // Seconds since the process clock's epoch, from 1 (0 means "empty").
    (fulcrum_core::time::now() / 1_000_000_000) as u32 + 1
}

/// Table capacity for a requested number of sessions.
pub(super) fn table_capacity(sessions: usize) -> usize {
    sessions.clamp(BUCKET, 1 << 28).next_power_of_two()
}

impl Table {
    pub(super) fn new(capacity: usize, ttl_secs: u32) -> Table {
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
    pub(super) fn get(&self, id: u64, now: u32, accept: impl Fn(u32) -> bool) -> Option<u32> {
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
    pub(super) fn put(&self, id: u64, endpoint: u32, now: u32) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
