use std::sync::atomic::{AtomicU32, Ordering};

/// Requests dispatched to an endpoint and not yet finished.
///
/// Callers pair every [`enter`](InFlight::enter) with one
/// [`exit`](InFlight::exit); fulcrum's balancer does so with a guard that
/// exits on drop, so a cancelled request is never leaked.
#[derive(Debug, Default)]
pub struct InFlight(AtomicU32);

impl InFlight {
    /// Counts one more request; returns the count before it.
    #[inline]
    pub fn enter(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts one request as finished.
    #[inline]
    pub fn exit(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current count.
    #[inline]
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}
