//! How many retries a client may send: a share of its requests plus a
//! floor per second, over a sliding window (Finagle's `RetryBudget`, which
//! Linkerd uses too).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::RetryConfigError;

/// A retry budget: retries may add `percent` of the requests sent over the
/// last `ttl`, plus `min_per_sec` per second whatever the traffic (so a
/// client sending few requests can still retry). Every request deposits,
/// every retry and hedge withdraws; when the balance is empty the request
/// fails with what its last attempt got, and the `retry_budget_exhausted`
/// counter in [`Stats`](crate::Stats) counts it.
///
/// The default is Finagle's and Linkerd's: 20 % plus 10 per second over
/// 10 s. It bounds the extra load of an outage: with every endpoint
/// failing, a client sends at most 1.2 × its requests plus 10 a second,
/// where three attempts per request would triple it.
///
/// Lock-free: deposits and withdrawals are counted in ten buckets that
/// slide over the window, each one atomic word.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_balance::retry::RetryBudget;
///
/// let budget = RetryBudget::new(0.1, 5, Duration::from_secs(10)).unwrap();
/// assert!(budget.try_withdraw()); // the 5-a-second floor
/// assert!(RetryBudget::new(1.5, 5, Duration::from_secs(10)).is_err());
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    /// Withdrawals allowed per deposit, in thousandths.
    per_deposit: u64,
    /// The floor over the window, in thousandths of a withdrawal.
    reserve: u64,
    /// Width of one bucket, in nanoseconds.
    bucket_ns: u64,
    deposits: [AtomicU64; BUCKETS],
    withdrawals: [AtomicU64; BUCKETS],
    settings: (f64, u32, Duration),
}

const BUCKETS: usize = 10;
/// A bucket word: the bucket's epoch in the high bits, its count in the
/// low `COUNT_BITS`, so that moving to a new epoch and counting is one
/// compare-and-swap.
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(0.2, 10, Duration::from_secs(10)).expect("valid defaults")
    }
}

impl RetryBudget {
    /// A budget of `percent` (0.0–1.0) of requests plus `min_per_sec`
    /// retries per second, over a sliding window of `ttl` (1 s to 60 s).
    pub fn new(percent: f64, min_per_sec: u32, ttl: Duration) -> Result<Self, RetryConfigError> {
        if !(0.0..=1.0).contains(&percent) {
            return Err(RetryConfigError::BudgetPercent(percent));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(RetryConfigError::BudgetWindow(ttl));
        }
        Ok(RetryBudget {
            per_deposit: (percent * 1000.0).round() as u64,
            reserve: u64::from(min_per_sec) * ttl.as_millis() as u64,
            bucket_ns: ttl.as_nanos() as u64 / BUCKETS as u64,
            deposits: Default::default(),
            withdrawals: Default::default(),
            settings: (percent, min_per_sec, ttl),
        })
    }

    /// The share of requests it allows as retries.
    pub fn percent(&self) -> f64 {
        self.settings.0
    }

    /// The retries per second it allows whatever the traffic.
    pub fn min_per_sec(&self) -> u32 {
        self.settings.1
    }

    /// Its window.
    pub fn ttl(&self) -> Duration {
        self.settings.2
    }

    /// Counts a request.
    pub fn deposit(&self) {
        self.deposit_at(fulcrum_core::time::now());
    }

    /// Takes one retry from the budget if the balance allows it.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(fulcrum_core::time::now())
    }

    pub(crate) fn deposit_at(&self, now: u64) {
        add(&self.deposits[self.bucket(now)], self.epoch(now));
    }

    /// Gives back a withdrawal that was not used.
    pub(crate) fn refund(&self) {
        let now = fulcrum_core::time::now();
        sub(&self.withdrawals[self.bucket(now)], self.epoch(now));
    }

    pub(crate) fn try_withdraw_at(&self, now: u64) -> bool {
        let epoch = self.epoch(now);
        let i = self.bucket(now);
        // Withdraw first, then check: two callers racing for the last
        // token may both be refused, never both served.
        add(&self.withdrawals[i], epoch);
        let deposited = sum(&self.deposits, epoch);
        let withdrawn = sum(&self.withdrawals, epoch);
        if self.reserve + deposited * self.per_deposit >= withdrawn * 1000 {
            return true;
        }
        sub(&self.withdrawals[i], epoch);
        false
    }

    /// The bucket's epoch, as stored (masked: it wraps).
    fn epoch(&self, now: u64) -> u64 {
        (now / self.bucket_ns) & EPOCH_MASK
    }

    /// The bucket, from the unmasked epoch: consecutive epochs take
    /// consecutive buckets across the mask's wrap too.
    fn bucket(&self, now: u64) -> usize {
        ((now / self.bucket_ns) % BUCKETS as u64) as usize
    }
}

/// Adds one to the bucket, starting it afresh if it last counted an
/// older epoch.
fn add(word: &AtomicU64, epoch: u64) {
    let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
        Some(if w >> COUNT_BITS == epoch {
            w + 1
        } else {
            (epoch << COUNT_BITS) | 1
        })
    });
}

/// Takes one back, if the bucket still counts this epoch.
fn sub(word: &AtomicU64, epoch: u64) {
    let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
        (w >> COUNT_BITS == epoch && w & COUNT_MASK > 0).then_some(w - 1)
    });
}

/// The counts of the buckets within the window ending at `epoch`.
fn sum(words: &[AtomicU64; BUCKETS], epoch: u64) -> u64 {
    words
        .iter()
        .map(|w| w.load(Ordering::Relaxed))
        .filter(|w| epoch.wrapping_sub(w >> COUNT_BITS) & EPOCH_MASK < BUCKETS as u64)
        .map(|w| w & COUNT_MASK)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn withdrawals(budget: &RetryBudget, now: u64, tries: u32) -> u32 {
        (0..tries).filter(|_| budget.try_withdraw_at(now)).count() as u32
    }

    #[test]
    fn the_floor_alone_allows_min_per_sec_times_the_window() {
        let budget = RetryBudget::default();
        assert_eq!(withdrawals(&budget, 100 * SEC, 1000), 100);
    }

    #[test]
    fn deposits_add_their_share() {
        let budget = RetryBudget::new(0.2, 0, Duration::from_secs(10)).unwrap();
        for _ in 0..1000 {
            budget.deposit_at(100 * SEC);
        }
        assert_eq!(withdrawals(&budget, 100 * SEC, 1000), 200);
    }

    #[test]
    fn the_window_slides() {
        let budget = RetryBudget::new(0.5, 0, Duration::from_secs(10)).unwrap();
        for _ in 0..100 {
            budget.deposit_at(100 * SEC);
        }
        assert_eq!(withdrawals(&budget, 100 * SEC, 30), 30);
        // Still in the window: 20 left.
        assert_eq!(withdrawals(&budget, 105 * SEC, 100), 20);
        // The deposits have expired, the last withdrawals not yet.
        assert_eq!(withdrawals(&budget, 111 * SEC, 100), 0);
        for _ in 0..10 {
            budget.deposit_at(116 * SEC);
        }
        // Both old deposits and withdrawals have expired.
        assert_eq!(withdrawals(&budget, 116 * SEC, 100), 5);
    }

    #[test]
    fn a_steady_outage_is_held_to_the_share_plus_the_floor() {
        // 1000 requests a second for 5 s, every one wanting two retries.
        let budget = RetryBudget::default();
        let mut retries = 0;
        for ms in 0..5000u64 {
            let now = 50 * SEC + ms * 1_000_000;
            budget.deposit_at(now);
            retries += withdrawals(&budget, now, 2);
        }
        assert!(retries <= 100 + 1000, "{retries}");
        assert!(retries >= 1000, "{retries}");
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        assert!(matches!(
            RetryBudget::new(-0.1, 1, Duration::from_secs(10)),
            Err(RetryConfigError::BudgetPercent(_))
        ));
        assert!(matches!(
            RetryBudget::new(f64::NAN, 1, Duration::from_secs(10)),
            Err(RetryConfigError::BudgetPercent(_))
        ));
        assert!(matches!(
            RetryBudget::new(0.2, 1, Duration::from_millis(10)),
            Err(RetryConfigError::BudgetWindow(_))
        ));
    }
}
