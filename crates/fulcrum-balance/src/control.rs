//! The part of a balancer's shared state that endpoints and requests reach
//! without knowing the inner service type: how to tell the driver, how the
//! published snapshot stands, and settings read when a request ends.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use tokio::sync::Notify;

use crate::classify::CancelledAs;

#[derive(Debug)]
pub(crate) struct Control {
    /// Request path → driver: an endpoint was taken out of service.
    pub(crate) notify_driver: Notify,
    /// Version of the snapshot published last.
    pub(crate) version: AtomicU64,
    /// Ready endpoints of that snapshot taken out of service since it was
    /// published (the driver's next snapshot leaves them out). While it
    /// equals the ready count there is nothing to pick: requests wait
    /// instead of failing.
    pub(crate) down: AtomicUsize,
    /// A wait for an endpoint ran out with nothing to pick: fail at once
    /// until the driver publishes an endpoint again.
    pub(crate) fail_fast: AtomicBool,
    /// What a cancelled request counts as.
    pub(crate) cancelled: CancelledAs,
}

impl Control {
    pub(crate) fn new(cancelled: CancelledAs) -> Self {
        Control {
            notify_driver: Notify::new(),
            version: AtomicU64::new(0),
            down: AtomicUsize::new(0),
            fail_fast: AtomicBool::new(false),
            cancelled,
        }
    }
}
