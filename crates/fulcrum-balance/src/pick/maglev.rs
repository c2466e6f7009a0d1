use std::collections::BinaryHeap;

use super::hashed::{identities, picker, HashOptions, HashTable};
use super::{Loads, Picker, Policy};
use crate::key::mix64;

/// Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted.
///
/// A lookup table of a prime size (65537 by default) is filled by each
/// endpoint in turn along its own permutation, so each owns a share of the
/// entries in proportion to its weight (within a fraction of a percent); a
/// key is one table lookup, O(1). Removing one of `n` endpoints moves its
/// keys plus a little more (~1.6 % in total for 1 of 100). Fallbacks rehash
/// the key.
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

impl Maglev {
    /// The table size: the next prime at or above `size` (and at least 7).
    /// It should be well above the number of endpoints (100× gives ~1 %
    /// imbalance).
    pub fn table_size(mut self, size: u64) -> Self {
        let mut m = size.clamp(7, 1 << 26);
        while !is_prime(m) {
            m += 1;
        }
        self.table_size = m;
        self
    }

    /// Balance factor and fallback policy.
    pub fn options(mut self, options: HashOptions) -> Self {
        self.options = options;
        self
    }
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

#[derive(Debug)]
pub(crate) struct MaglevTable {
    table: Box<[u32]>,
    max_steps: u64,
}

impl MaglevTable {
    pub(crate) fn new(endpoints: &[(u64, u32)], size: u64) -> MaglevTable {
        let n = endpoints.len();
        if n == 0 {
            return MaglevTable {
                table: Box::new([]),
                max_steps: 0,
            };
        }
        let m = size as usize;
        // Fill in identity order, not index order: every client, whatever
        // order it learned the endpoints in, builds the same table.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by_key(|&i| endpoints[i].0);
        let offset: Vec<u64> = endpoints.iter().map(|&(h, _)| mix64(h) % size).collect();
        let skip: Vec<u64> = endpoints
            .iter()
            .map(|&(h, _)| mix64(h ^ 0x5851_F42D_4C95_7F2D) % (size - 1) + 1)
            .collect();
        // Each endpoint's next turn comes at (taken + 1) / weight: a heap
        // serves turns in that order (ties by identity), so weights are
        // honoured in O(M log n) whatever their spread.
        let mut turns: BinaryHeap<Turn> = order
            .iter()
            .map(|&i| Turn {
                taken: 0,
                weight: u64::from(endpoints[i].1.max(1)),
                identity: endpoints[i].0,
                index: i,
            })
            .collect();
        let mut next = vec![0u64; n];
        let mut table = vec![u32::MAX; m];
        let mut filled = 0;
        while filled < m {
            let Some(mut turn) = turns.pop() else { break };
            let i = turn.index;
            loop {
                let slot = ((offset[i] + next[i] * skip[i]) % size) as usize;
                next[i] += 1;
                if table[slot] == u32::MAX {
                    table[slot] = i as u32;
                    filled += 1;
                    break;
                }
            }
            turn.taken += 1;
            turns.push(turn);
        }
        MaglevTable {
            table: table.into(),
            max_steps: 4 * n as u64 + 16,
        }
    }
}

/// Table entries for a key: its own, then those of rehashed keys.
pub(crate) struct Probes<'a> {
    table: &'a [u32],
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
        Some(self.table[(k % self.table.len() as u64) as usize] as usize)
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
