use std::fmt;

use super::hashed::{identities, picker, HashOptions, HashTable};
use super::{Loads, Picker, Policy};
use crate::key::mix64;

/// Consistent hashing on a ring (ketama style).
///
/// Each endpoint owns points on a 64-bit ring in proportion to its weight
/// (at least one); a key belongs to the first point at or after its hash,
/// and falls back clockwise. Removing one of `n` equal endpoints moves only
/// its own keys (~1/n). Balance improves with points: ~10 % relative spread
/// at 100 per endpoint, ~3 % at 1000. A pick is O(1) whatever the ring's
/// size: a direct index over the top bits of the key gives the first point
/// of the key's stretch of the ring (two points on average), and a
/// branch-free count over the next 8 points finds the key's point.
///
/// # Ring size
///
/// An endpoint of average weight gets [`vnodes`](Self::vnodes) points (256
/// by default), so the ring would have `vnodes × endpoints` points; as in
/// Envoy and gRPC that total is kept within
/// [`min_points`](Self::min_points) (1,024 by default, for sets of 1 to 3
/// endpoints) and [`max_points`](Self::max_points) (2^20 = 1,048,576 by
/// default, reached from 4,096 endpoints on), and points are shared out in
/// proportion to weight within it. Every endpoint keeps at least one point,
/// so a set larger than `max_points` gets one point per endpoint.
///
/// The default maximum keeps ~100 points per endpoint up to 10,000
/// endpoints, as `vnodes(100)` would (a ~10 % spread of shares; the
/// busiest of 10,000 endpoints gets ~1.4× the mean), in ~14 MiB (12 bytes
/// a point and an index of 2), built in well under 100 ms. Beyond it the
/// spread grows as `1 / √(points per endpoint)`; raise the maximum for
/// large sets that need a tighter balance, or use [`Maglev`](super::Maglev),
/// whose table keeps every endpoint within ~1 % of its share.
///
/// ```
/// use fulcrum_balance::pick::{HashOptions, RingHash};
///
/// let policy = RingHash::default()
///     .vnodes(1000)
///     .max_points(1 << 22)
///     .options(HashOptions::default().balance_factor(1.25));
/// # drop(policy);
/// ```
#[derive(Clone, Debug)]
pub struct RingHash {
    vnodes: u32,
    min_points: u64,
    max_points: u64,
    options: HashOptions,
}

/// The largest `min_points` and `max_points` accepted (Envoy's limit too).
const POINTS_LIMIT: u64 = 1 << 23;

impl Default for RingHash {
    fn default() -> Self {
        RingHash {
            vnodes: 256,
            min_points: 1024,
            max_points: 1 << 20,
            options: HashOptions::default(),
        }
    }
}

impl RingHash {
    /// Points per endpoint of average weight (256 by default), within the
    /// ring's bounds ([`min_points`](Self::min_points),
    /// [`max_points`](Self::max_points)).
    pub fn vnodes(mut self, vnodes: u32) -> Self {
        self.vnodes = vnodes.max(1);
        self
    }

    /// Points on the whole ring at least (1,024 by default, at most 2^23):
    /// small sets get more than `vnodes` points per endpoint, for balance.
    pub fn min_points(mut self, points: u64) -> Self {
        self.min_points = points.clamp(1, POINTS_LIMIT);
        self
    }

    /// Points on the whole ring at most (2^20 by default, at most 2^23):
    /// large sets get fewer than `vnodes` points per endpoint, in proportion
    /// to their weights, but every endpoint at least one. Bounds the
    /// ring's memory (~14 bytes a point) and build time.
    pub fn max_points(mut self, points: u64) -> Self {
        self.max_points = points.clamp(1, POINTS_LIMIT);
        self
    }

    /// Balance factor and fallback policy.
    pub fn options(mut self, options: HashOptions) -> Self {
        self.options = options;
        self
    }
}

/// How many points each endpoint of `endpoints` (identity, weight) gets:
/// `vnodes` per endpoint of average weight, the total brought within
/// `[min_points, max_points]`, in proportion to weight, at least one each.
/// Integer arithmetic throughout: the same in every client.
pub(crate) fn point_counts(
    endpoints: &[(u64, u32)],
    vnodes: u32,
    min_points: u64,
    max_points: u64,
) -> Vec<u64> {
    let n = endpoints.len() as u64;
    // Every endpoint keeps a point, whatever the maximum.
    let max_points = max_points.max(n);
    let wanted = (u64::from(vnodes) * n).clamp(min_points.min(max_points), max_points);
    let weights: Vec<u128> = endpoints
        .iter()
        .map(|&(_, w)| u128::from(w.max(1)))
        .collect();
    let total: u128 = weights.iter().sum::<u128>().max(1);
    // round(points · w / total), at least 1.
    let count =
        |points: u64, w: u128| ((2 * u128::from(points) * w + total) / (2 * total)).max(1) as u64;
    let sum = |points: u64| weights.iter().map(|&w| count(points, w)).sum::<u64>();
    let mut points = wanted;
    if sum(points) > max_points {
        // Rounding up and the one-point floor overshoot the maximum: the
        // largest total that fits (sum(0) = n fits).
        let (mut fits, mut over) = (0, points);
        while over - fits > 1 {
            let mid = fits + (over - fits) / 2;
            if sum(mid) <= max_points {
                fits = mid;
            } else {
                over = mid;
            }
        }
        points = fits;
    }
    weights.iter().map(|&w| count(points, w)).collect()
}

pub(crate) struct Ring {
    /// Each point's owner and the top half of its position, sorted by
    /// position (ties by the owner's identity), then [`WINDOW`] sentinels:
    /// what a lookup reads.
    points: Box<[Point]>,
    /// The bottom half of each point's position, read only when the top
    /// halves cannot tell.
    low: Box<[u32]>,
    /// `starts[b]`: the index of the first point at or after `b << shift`.
    starts: Box<[u32]>,
    shift: u32,
    /// How far a fallback walks before giving up (then: least loaded).
    max_steps: usize,
}

/// A point on the ring: the top 32 bits of its position, and its owner.
#[derive(Clone, Copy, Debug)]
struct Point {
    high: u32,
    owner: u32,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("points", &self.low.len())
            .field("buckets", &self.starts.len())
            .finish()
    }
}

/// Points a lookup compares at once, without branching; all but about one
/// bucket in 1,000 hold fewer.
const WINDOW: usize = 8;

/// log2 of the index's buckets per point: one bucket per two points on
/// average (an index of 2 bytes a point).
const BUCKETS_PER_POINT_LOG2: i32 = -1;

impl Ring {
    pub(crate) fn new(
        endpoints: &[(u64, u32)],
        vnodes: u32,
        min_points: u64,
        max_points: u64,
    ) -> Ring {
        let n = endpoints.len();
        let counts = point_counts(endpoints, vnodes, min_points, max_points);
        let mut ring: Vec<(u64, u32)> = Vec::with_capacity(counts.iter().sum::<u64>() as usize);
        for (i, (&(hash, _), &count)) in endpoints.iter().zip(&counts).enumerate() {
            // An endpoint's points do not depend on the others': with more or
            // fewer points, it gains or loses only its last ones.
            ring.extend((0..count).map(|j| (mix64(hash ^ mix64(j + 1)), i as u32)));
        }
        // Ties (astronomically rare) are broken by identity, never by index,
        // so that every client builds the same ring.
        ring.sort_unstable_by(|&(a, i), &(b, j)| {
            a.cmp(&b)
                .then_with(|| endpoints[i as usize].0.cmp(&endpoints[j as usize].0))
        });
        // The index: 2^bits buckets over the top bits of the ring (at most
        // 32 bits, so that a bucket's points share their top halves' start).
        let log2 = ring.len().max(1).ilog2() as i32;
        let bits = (log2 + BUCKETS_PER_POINT_LOG2).clamp(1, 30) as u32;
        let shift = 64 - bits;
        let mut starts = Vec::with_capacity(1 << bits);
        let mut i = 0;
        for bucket in 0..1u64 << bits {
            while i < ring.len() && ring[i].0 >> shift < bucket {
                i += 1;
            }
            starts.push(i as u32);
        }
        let sentinel = Point {
            high: u32::MAX,
            owner: u32::MAX,
        };
        Ring {
            max_steps: ring.len().min(4 * n + 16),
            points: ring
                .iter()
                .map(|&(at, owner)| Point {
                    high: (at >> 32) as u32,
                    owner,
                })
                .chain([sentinel; WINDOW])
                .collect(),
            low: ring.iter().map(|&(at, _)| at as u32).collect(),
            starts: starts.into(),
            shift,
        }
    }

    /// How many points there are.
    #[inline]
    fn len(&self) -> usize {
        self.low.len()
    }

    /// The position of point `i` (`i` < len).
    #[inline]
    fn at(&self, i: usize) -> u64 {
        u64::from(self.points[i].high) << 32 | u64::from(self.low[i])
    }

    /// The index of a key's point: the first at or after it, clockwise.
    #[inline]
    fn home(&self, key: u64) -> usize {
        let start = self.starts[(key >> self.shift) as usize] as usize;
        // Every point before `start` is below the key, every point of a
        // later bucket above it: the key's point is `start` plus the number
        // of points of its bucket below it. Counted on the top halves of
        // positions, branch-free, in the (sorted) window from `start`.
        let high = (key >> 32) as u32;
        let window: &[Point; WINDOW] = self.points[start..start + WINDOW]
            .try_into()
            .expect("WINDOW sentinels");
        let (below, equal) = window.iter().fold((0, false), |(below, equal), p| {
            (below + usize::from(p.high < high), equal | (p.high == high))
        });
        let i = if below < WINDOW && !equal {
            start + below
        } else {
            // A crowded bucket, or a point whose top half is the key's
            // (about 1 key in 4,000 at 2^20 points): compare whole positions.
            let mut i = start + below;
            while i < self.len() && self.at(i) < key {
                i += 1;
            }
            i
        };
        // Past the last point: round to the first.
        if i == self.len() {
            0
        } else {
            i
        }
    }

    /// The points (position, owner), in ring order (for tests).
    #[cfg(test)]
    pub(crate) fn points(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        (0..self.len()).map(|i| (self.at(i), self.points[i].owner as usize))
    }

    /// Buckets with more points than a window (for tests).
    #[cfg(test)]
    pub(crate) fn crowded_buckets(&self) -> usize {
        self.starts
            .iter()
            .zip(self.starts.iter().skip(1).chain([&(self.len() as u32)]))
            .filter(|&(a, b)| (b - a) as usize >= WINDOW)
            .count()
    }

    /// The index of a key's point (for tests).
    #[cfg(test)]
    pub(crate) fn home_of(&self, key: u64) -> usize {
        self.home(key)
    }
}

/// Owners of the ring's points, clockwise from a key.
pub(crate) struct Clockwise<'a> {
    /// The points, without the sentinels.
    points: &'a [Point],
    pos: usize,
    left: usize,
}

impl Iterator for Clockwise<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let owner = self.points[self.pos].owner as usize;
        self.pos += 1;
        if self.pos == self.points.len() {
            self.pos = 0;
        }
        Some(owner)
    }
}

impl HashTable for Ring {
    type Order<'a> = Clockwise<'a>;

    #[inline]
    fn order(&self, key: u64) -> Clockwise<'_> {
        Clockwise {
            points: &self.points[..self.len()],
            pos: self.home(key),
            left: self.max_steps,
        }
    }
}

impl Policy for RingHash {
    fn picks_by_key(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        "ring-hash"
    }

    fn build(&self, loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        picker(
            Ring::new(
                &identities(loads),
                self.vnodes,
                self.min_points,
                self.max_points,
            ),
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
