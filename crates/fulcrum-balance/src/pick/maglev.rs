use std::collections::BinaryHeap;

use super::hashed::{identities, picker, HashOptions, HashTable};
use super::{Loads, Picker, Policy};
use crate::key::mix64;

/// Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted.
///
/// A lookup table of a prime size is filled by each endpoint in turn along
/// its own permutation, so each owns a share of the entries in proportion to
/// its weight (within one entry); a key is one table lookup, O(1). Removing
/// one of `n` endpoints moves its keys plus a little more (~1.6 % in total
/// for 1 of 100). Fallbacks rehash the key.
///
/// # Table size
///
/// The table has at least 100 entries per endpoint, so that no endpoint
/// owns more than ~1 % above its share, and at least the configured
/// [`table_size`](Self::table_size) (65,537 by default): it is the smallest
/// prime at or above
/// `table_size × 2^k`, for the smallest `k ≥ 0` with
/// `table_size × 2^k ≥ 100 × endpoints`. Up to 655 endpoints that is 65,537
/// entries; 10,000 endpoints get 1,048,601.
///
/// The size doubles in steps rather than following `100 × endpoints`
/// exactly because a key's entry depends on the size: were the size to
/// change with every endpoint added or removed, each such change would move
/// nearly every key. In steps, the size changes only when the set crosses a
/// doubling, and each endpoint has 100 to 200 entries.
///
/// Entries are `u16` while there are at most 65,535 endpoints (`u32`
/// above): 200 to 400 bytes per endpoint, 2 MiB at 10,000 endpoints.
///
/// ```
/// use fulcrum_balance::pick::Maglev;
///
/// let policy = Maglev::default().table_size(131_071);
/// # drop(policy);
/// ```
#[derive(Clone, Debug)]
pub struct Maglev {
    table_size: u64,
    options: HashOptions,
}

impl Default for Maglev {
    fn default() -> Self {
        Maglev {
            table_size: 65_537,
            options: HashOptions::default(),
        }
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// The smallest prime at or above `n`.
fn next_prime(mut n: u64) -> u64 {
    while !is_prime(n) {
        n += 1;
    }
    n
}

/// Entries per endpoint at least: the table grows past the configured size
/// to keep this many.
const ENTRIES_PER_ENDPOINT: u64 = 100;

impl Maglev {
    /// The smallest table: the next prime at or above `size` (at least 7,
    /// at most 2^26). The table grows past it with the number of endpoints,
    /// in steps of doubling (see the [table size](Self#table-size)); a
    /// larger minimum only helps sets too small to reach it.
    pub fn table_size(mut self, size: u64) -> Self {
        self.table_size = next_prime(size.clamp(7, 1 << 26));
        self
    }

    /// Balance factor and fallback policy.
    pub fn options(mut self, options: HashOptions) -> Self {
        self.options = options;
        self
    }
}

/// The size of the table for `n` endpoints with the configured minimum
/// `min`: see [`Maglev`]'s table size. Always a prime (every endpoint's
/// permutation must reach every entry), at least 7.
pub(crate) fn table_size_for(min: u64, n: usize) -> u64 {
    let wanted = (n as u64).saturating_mul(ENTRIES_PER_ENDPOINT);
    let mut size = min.max(7);
    while size < wanted {
        size = size.saturating_mul(2);
    }
    next_prime(size)
}

/// An endpoint's place in the population order: its next turn is at
/// `(taken + 1) / weight`; the heap pops the earliest.
#[derive(PartialEq, Eq)]
struct Turn {
    taken: u64,
    weight: u64,
    identity: u64,
    index: usize,
}

impl Ord for Turn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // (a+1)/wa < (b+1)/wb ⇔ (a+1)·wb < (b+1)·wa; reversed for a max-heap.
        let mine = u128::from(self.taken + 1) * u128::from(other.weight);
        let theirs = u128::from(other.taken + 1) * u128::from(self.weight);
        theirs
            .cmp(&mine)
            .then_with(|| other.identity.cmp(&self.identity))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The table's entries: endpoint indices, as narrow as they fit.
#[derive(Debug)]
enum Entries {
    /// At most 65,535 endpoints.
    Narrow(Box<[u16]>),
    Wide(Box<[u32]>),
}

impl Entries {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Entries::Narrow(t) => t.len(),
            Entries::Wide(t) => t.len(),
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn get(&self, slot: usize) -> usize {
        match self {
            Entries::Narrow(t) => usize::from(t[slot]),
            Entries::Wide(t) => t[slot] as usize,
        }
    }
}

#[derive(Debug)]
pub(crate) struct MaglevTable {
    table: Entries,
    max_steps: u64,
}

/// An entry not filled yet, while building.
const EMPTY: u32 = u32::MAX;

impl MaglevTable {
    /// The table of `endpoints` (identity, weight) with at least `min_size`
    /// entries (a prime), grown with the set (see [`table_size_for`]).
    pub(crate) fn new(endpoints: &[(u64, u32)], min_size: u64) -> MaglevTable {
        let n = endpoints.len();
        if n == 0 {
            return MaglevTable {
                table: Entries::Wide(Box::new([])),
                max_steps: 0,
            };
        }
        let size = table_size_for(min_size, n);
        let m = size as usize;
        // Fill in identity order, not index order: every client, whatever
        // order it learned the endpoints in, builds the same table.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by_key(|&i| endpoints[i].0);
        // Endpoint i's permutation is offset + j·skip (mod size), j = 0, 1, …;
        // `next` is its next position, stepped by addition (no division).
        let mut next: Vec<u64> = endpoints.iter().map(|&(h, _)| mix64(h) % size).collect();
        let skip: Vec<u64> = endpoints
            .iter()
            .map(|&(h, _)| mix64(h ^ 0x5851_F42D_4C95_7F2D) % (size - 1) + 1)
            .collect();
        let mut table = vec![EMPTY; m];
        // Endpoint i takes the next free entry along its permutation.
        let mut take = |i: usize, table: &mut [u32]| loop {
            let slot = next[i];
            next[i] += skip[i];
            if next[i] >= size {
                next[i] -= size;
            }
            if table[slot as usize] == EMPTY {
                table[slot as usize] = i as u32;
                return;
            }
        };
        let weight = |i: usize| u64::from(endpoints[i].1.max(1));
        if (1..n).all(|i| weight(i) == weight(0)) {
            // Equal weights: turns go round in identity order, exactly as
            // the heap below would serve them, without its O(log n).
            let mut filled = 0;
            'rounds: loop {
                for &i in &order {
                    take(i, &mut table);
                    filled += 1;
                    if filled == m {
                        break 'rounds;
                    }
                }
            }
        } else {
            // Each endpoint's next turn comes at (taken + 1) / weight: a heap
            // serves turns in that order (ties by identity), so weights are
            // honoured in O(M log n) whatever their spread.
            let mut turns: BinaryHeap<Turn> = order
                .iter()
                .map(|&i| Turn {
                    taken: 0,
                    weight: weight(i),
                    identity: endpoints[i].0,
                    index: i,
                })
                .collect();
            for _ in 0..m {
                let mut turn = turns.pop().expect("one turn per endpoint");
                take(turn.index, &mut table);
                turn.taken += 1;
                turns.push(turn);
            }
        }
        let table = if n <= usize::from(u16::MAX) {
            Entries::Narrow(table.into_iter().map(|i| i as u16).collect())
        } else {
            Entries::Wide(table.into())
        };
        MaglevTable {
            table,
            max_steps: 4 * n as u64 + 16,
        }
    }

    /// The table's size (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The endpoint of entry `slot` (for tests).
    #[cfg(test)]
    pub(crate) fn entry(&self, slot: usize) -> usize {
        self.table.get(slot)
    }
}

/// Table entries for a key: its own, then those of rehashed keys.
pub(crate) struct Probes<'a> {
    table: &'a Entries,
    key: u64,
    step: u64,
    max_steps: u64,
}

impl Iterator for Probes<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.step >= self.max_steps || self.table.is_empty() {
            return None;
        }
        let k = if self.step == 0 {
            self.key
        } else {
            mix64(self.key.wrapping_add(self.step))
        };
        self.step += 1;
        Some(self.table.get((k % self.table.len() as u64) as usize))
    }
}

impl HashTable for MaglevTable {
    type Order<'a> = Probes<'a>;

    #[inline]
    fn order(&self, key: u64) -> Probes<'_> {
        Probes {
            table: &self.table,
            key,
            step: 0,
            max_steps: self.max_steps,
        }
    }
}

impl Policy for Maglev {
    fn picks_by_key(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        "maglev"
    }

    fn build(&self, loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        picker(
            MaglevTable::new(&identities(loads), self.table_size),
            loads,
            &self.options,
            previous,
        )
    }

    fn uses_latency(&self) -> bool {
        self.options.uses_latency()
    }

    fn tracks_total_load(&self) -> bool {
        self.options.tracks_total_load()
    }
}
