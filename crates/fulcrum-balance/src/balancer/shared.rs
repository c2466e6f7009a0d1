//! State shared by every clone of a balancer (and, weakly, by its driver
//! and its in-flight requests).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use super::manage::Command;
use super::snapshot::Snapshot;
use crate::control::Control;
use crate::key::mix64;
use crate::stats::{EndpointStats, Stats};

/// Counters of the retry layers over one balancer.
#[derive(Debug, Default)]
pub(crate) struct RetryCounts {
    /// Attempts after the first (free moves of unsent requests included).
    pub(crate) retries: AtomicU64,
    /// Hedges sent.
    pub(crate) hedges: AtomicU64,
    /// Hedges whose answer was the one returned.
    pub(crate) hedges_won: AtomicU64,
    /// Retries and hedges refused by the budget.
    pub(crate) budget_exhausted: AtomicU64,
}

impl RetryCounts {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) type DriverFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) struct Shared<S> {
    /// The current snapshot. Replace it with [`publish`](Self::publish)
    /// only: handles notice a new one by `published`.
    pub(crate) snapshot: ArcSwap<Snapshot<S>>,
    /// Counts the snapshots published: a handle checks its cached snapshot
    /// is current with one load of it.
    published: AtomicU64,
    pub(crate) control: Arc<Control>,
    pub(crate) target: Arc<str>,
    pub(crate) policy_name: String,
    pub(crate) ready_timeout: Duration,
    pub(crate) max_waiters: usize,
    /// The policy reads latency: time every request.
    pub(crate) time_all: bool,
    /// Requests and `poll_ready` calls waiting for an endpoint. Touched only
    /// when there is none, never on the request path.
    waiters: Mutex<HashMap<u64, Waker>>,
    /// The driver, until it is spawned (builder outside a runtime).
    pub(crate) pending_driver: Mutex<Option<DriverFuture>>,
    driver_started: AtomicBool,
    next_id: AtomicU64,
    seed: u64,
    /// What retry layers over this balancer did (see `retry`).
    pub(crate) retries: RetryCounts,
    /// Commands for the driver from [`Manager`](super::Manager)s.
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    /// Dropped with the last balancer; the driver then stops.
    _stop: oneshot::Sender<()>,
}

impl<S> Shared<S> {
    /// Makes `snapshot` the one requests pick from.
    pub(crate) fn publish(&self, snapshot: Snapshot<S>) {
        self.snapshot.store(Arc::new(snapshot));
        // After the store: a handle that sees the new count loads a
        // snapshot at least this new.
        self.published.fetch_add(1, Ordering::Release);
    }

    /// How many snapshots have been published (see [`Current`]).
    #[inline]
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// A point-in-time view of every endpoint: state, load, counters.
    pub(crate) fn stats(&self) -> Stats {
        let snap = self.snapshot.load();
        let now = fulcrum_core::time::now();
        Stats {
            target: self.target.to_string(),
            policy: self.policy_name.clone(),
            version: snap.version,
            ready: snap.ready.iter().filter(|s| s.is_active()).count(),
            warming: snap.warming,
            fail_fast: self.control.fail_fast.load(Ordering::Relaxed),
            driver_stopped: snap.stopped,
            panic: snap.panic,
            tiers: snap
                .tier_shares
                .iter()
                .map(|&(priority, share)| crate::stats::TierShare {
                    priority,
                    share: f64::from(share) / 1e6,
                })
                .collect(),
            tier_changes: snap.tier_changes,
            subsets: snap.subset_stats.to_vec(),
            subset_changes: snap.subset_changes,
            zones: snap.zone_stats.as_deref().cloned(),
            regions: snap.region_stats.as_deref().cloned(),
            ejected: snap
                .members
                .iter()
                .filter(|s| crate::balancer::ejection_reason(s).is_some())
                .count(),
            unhealthy: snap
                .members
                .iter()
                .filter(|s| s.probe_verdict() == Some(false))
                .count(),
            discovery_error: snap.discovery_error.as_deref().map(str::to_owned),
            retries: read_counter(&self.retries.retries),
            hedges: read_counter(&self.retries.hedges),
            hedges_won: read_counter(&self.retries.hedges_won),
            retry_budget_exhausted: read_counter(&self.retries.budget_exhausted),
            endpoints: snap
                .members
                .iter()
                .chain(snap.draining.iter())
                .map(|slot| EndpointStats::read(slot, now))
                .collect(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        control: Arc<Control>,
        target: &str,
        policy_name: &str,
        ready_timeout: Duration,
        max_waiters: usize,
        time_all: bool,
        seed: u64,
        stop: oneshot::Sender<()>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Self {
        Shared {
            snapshot: ArcSwap::from_pointee(Snapshot::initial()),
            published: AtomicU64::new(0),
            control,
            target: target.into(),
            policy_name: policy_name.to_owned(),
            ready_timeout,
            max_waiters,
            time_all,
            waiters: Mutex::new(HashMap::new()),
            pending_driver: Mutex::new(None),
            driver_started: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            seed,
            commands,
            retries: RetryCounts::default(),
            _stop: stop,
        }
    }

    pub(crate) fn start_driver(&self) {
        if self.driver_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut pending = self
            .pending_driver
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(driver) = pending.take() {
            handle.spawn(driver);
            self.driver_started.store(true, Ordering::Release);
        }
    }

    /// Registers a waiter. A new wait (`admit`) is refused (false) when
    /// `max_waiters` are already waiting; a wait already admitted always
    /// re-registers (waking empties the map).
    pub(crate) fn register_waiter(&self, id: u64, waker: &Waker, admit: bool) -> bool {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let full = admit && waiters.len() >= self.max_waiters;
        match waiters.get_mut(&id) {
            Some(w) => w.clone_from(waker),
            None if full => return false,
            None => {
                waiters.insert(id, waker.clone());
            }
        }
        true
    }

    pub(crate) fn unregister_waiter(&self, id: u64) {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    #[cfg(test)]
    pub(crate) fn waiter_count(&self) -> usize {
        self.waiters.lock().unwrap().len()
    }

    pub(crate) fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, waker) in waiters {
            waker.wake();
        }
    }

    /// A new id, for a clone or a wait.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new id for a clone, and an independent, reproducible random
    /// stream for it.
    pub(crate) fn new_id(&self) -> (u64, fastrand::Rng) {
        let id = self.next_id();
        let rng =
            fastrand::Rng::with_seed(mix64(self.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        (id, rng)
    }
}

fn read_counter(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A handle's copy of the current snapshot. Checking it is current costs
/// one load of the publish count, where an `ArcSwap` load costs a fence
/// (and `arc_swap::Cache` an out-of-line call). An idle handle keeps the
/// snapshot it last used, and the services of endpoints removed since,
/// until its next request.
pub(crate) struct Current<S> {
    seen: u64,
    snapshot: Arc<Snapshot<S>>,
}

impl<S> Current<S> {
    pub(crate) fn new(shared: &Shared<S>) -> Self {
        let seen = shared.published();
        Current {
            seen,
            snapshot: shared.snapshot.load_full(),
        }
    }

    /// The current snapshot.
    #[inline]
    pub(crate) fn load(&mut self, shared: &Shared<S>) -> &Arc<Snapshot<S>> {
        let published = shared.published();
        if published != self.seen {
            self.refresh(shared, published);
        }
        &self.snapshot
    }

    #[cold]
    #[inline(never)]
    fn refresh(&mut self, shared: &Shared<S>, published: u64) {
        self.snapshot = shared.snapshot.load_full();
        self.seen = published;
    }
}
