use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of the packed word that count requests in flight; the rest count
/// finished requests.
const IN_FLIGHT_BITS: u32 = 24;
const IN_FLIGHT_MASK: u64 = (1 << IN_FLIGHT_BITS) - 1;
/// `exit` moves one request from "in flight" to "finished" in one add.
const EXIT: u64 = (1 << IN_FLIGHT_BITS) - 1;

/// Requests dispatched to an endpoint and not yet finished, plus how many
/// have finished.
///
/// Both counts live in one atomic word, so entering and leaving cost one
/// atomic add each and the total is free: `started = finished + in_flight`.
/// Up to 16.7 million requests can be in flight at once per endpoint; the
/// finished count wraps after 2^40 (about a trillion).
///
/// Callers pair every [`enter`](InFlight::enter) with one
/// [`exit`](InFlight::exit); fulcrum's balancer does so with a guard that
/// exits on drop, so a cancelled request is never leaked.
///
/// ```
/// use fulcrum_core::load::InFlight;
///
/// let load = InFlight::default();
/// load.enter();
/// load.enter();
/// load.exit();
/// assert_eq!((load.get(), load.finished(), load.started()), (1, 1, 2));
/// ```
#[derive(Debug, Default)]
pub struct InFlight(AtomicU64);

impl InFlight {
    /// Counts one more request in flight.
    #[inline]
    pub fn enter(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request as finished.
    #[inline]
    pub fn exit(&self) {
        self.0.fetch_add(EXIT, Ordering::Relaxed);
    }

    /// Requests in flight now.
    #[inline]
    pub fn get(&self) -> u32 {
        (self.0.load(Ordering::Relaxed) & IN_FLIGHT_MASK) as u32
    }

    /// Requests finished so far.
    pub fn finished(&self) -> u64 {
        self.0.load(Ordering::Relaxed) >> IN_FLIGHT_BITS
    }

    /// Requests started so far (finished + in flight), read at one instant.
    pub fn started(&self) -> u64 {
        let v = self.0.load(Ordering::Relaxed);
        (v >> IN_FLIGHT_BITS) + (v & IN_FLIGHT_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_enter_exit_balance_out() {
        let load = std::sync::Arc::new(InFlight::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let load = load.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        load.enter();
                        load.exit();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((load.get(), load.finished()), (0, 400_000));
    }
}
