//! A fast monotonic clock shared by everything that measures latency.
//!
//! Every request reads the clock twice (dispatch and completion). On the VMs
//! fulcrum is benchmarked on, `std::time::Instant::now()` costs ~25–45 ns;
//! quanta's TSC-backed clock costs ~10 ns, so fulcrum reads time through
//! [`now`]. Timestamps are nanoseconds since the first read in this process.
//!
//! ```
//! let a = fulcrum_core::time::now();
//! let b = fulcrum_core::time::now();
//! assert!(b >= a);
//! ```

use std::sync::OnceLock;

struct Clock {
    clock: quanta::Clock,
    epoch: u64,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

fn clock() -> &'static Clock {
    CLOCK.get_or_init(|| {
        let clock = quanta::Clock::new();
        let epoch = clock.raw();
        Clock { clock, epoch }
    })
}

/// Nanoseconds since this process first read the clock. Monotonic.
#[inline]
pub fn now() -> u64 {
    let c = clock();
    c.clock.delta_as_nanos(c.epoch, c.clock.raw())
}
