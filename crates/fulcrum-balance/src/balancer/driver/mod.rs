//! The background driver: the only writer of a balancer's snapshot.
//!
//! It applies endpoint-set updates as diffs ([`members`]), makes one inner
//! service per endpoint (with a timeout, cancelled when the endpoint is
//! removed), backs off endpoints taken out of service and makes their
//! service afresh after the backoff, tracks draining endpoints, and
//! publishes a new immutable snapshot ([`publish`]) — whether or not
//! requests flow. It runs outlier detection ([`outliers`]) and active
//! health checks ([`probing`]) on its clock ([`timers`]). It stops when the
//! last balancer handle is dropped.
//!
//! It is built to stay cheap and alive:
//!
//! * events are handled in batches: everything ready at once (a whole set
//!   of endpoints made) is applied, then published once; the driver yields
//!   to the runtime after every [`BATCH_BUDGET`] of work, and publishes a
//!   batch that runs past [`MAX_BATCH`];
//! * a picker is rebuilt only when the serving set or a weight changed, and
//!   when rebuilding is expensive, publishes are spaced so that rebuilding
//!   takes a bounded share of a core (large rebuilds run on the blocking
//!   pool);
//! * user code (the maker and its futures, the policy, the endpoint
//!   source) runs under `catch_unwind`: a panic is a failed make, a
//!   fallback picker, or an ended source, with an error logged;
//! * if the driver stops anyway, it publishes a snapshot that fails every
//!   request at once with `ErrorKind::DriverStopped`.

mod hosts;
mod making;
mod manual;
mod members;
mod outliers;
mod overload;
mod parts;
mod probing;
mod publish;
mod ramp;
mod ready;
mod regions;
mod subsets;
mod subsetting;
mod tiers;
mod timers;
mod zones;

pub(crate) use outliers::ejection_reason;
pub(crate) use overload::MAX_RETRY_AFTER;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use fulcrum_core::load::EwmaConfig;
use fulcrum_core::{BoxError, Endpoint, EndpointSet};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tower_service::Service;

use super::config::{Backoff, RefreshFn, Settings};
use super::error::panic_message;
use super::manage::Command;
use super::shared::Shared;
use super::snapshot::Snapshot;
use crate::control::Control;
use crate::health::{HealthChecks, OutlierDetection, SlowStart};
use crate::pick::Policy;
use crate::slot::Slot;
use crate::updates::BoxUpdates;
use members::Members;

/// What makes the endpoints' services: any `tower::Service<Endpoint>`
/// whose futures can be driven on another task.
pub(crate) trait Maker<S>:
    Service<Endpoint, Response = S, Future: Send + 'static, Error: Into<BoxError>> + Send + 'static
{
}

impl<S, M> Maker<S> for M where
    M: Service<Endpoint, Response = S, Future: Send + 'static, Error: Into<BoxError>>
        + Send
        + 'static
{
}

/// How often draining endpoints are checked for their last request.
const DRAIN_CHECK: Duration = Duration::from_millis(100);

/// Work done in one slice of a batch before the driver yields to the
/// runtime.
const BATCH_BUDGET: Duration = Duration::from_millis(2);

/// A batch longer than this is published even if more events are ready.
const MAX_BATCH: Duration = Duration::from_millis(50);

/// `(member id, the service, or why it could not be made)`; `None` when the
/// make was cancelled (its endpoint was removed).
type MakeFuture<S> = Pin<Box<dyn Future<Output = (u64, Option<Result<S, BoxError>>)> + Send>>;

enum Event<S> {
    Stop,
    Update(Option<Result<EndpointSet, BoxError>>),
    /// The maker is ready (or failed) for the next queued endpoint.
    MakerReady(Result<(), BoxError>),
    Made(u64, Option<Result<S, BoxError>>),
    NotReady,
    Timer,
    /// A probe of member `id` ended.
    Probed(u64, Result<(), BoxError>),
    Command(Command),
}

/// What discovery has said so far.
#[derive(Default)]
struct Discovered {
    ever_had_endpoints: bool,
    latest_set_empty: bool,
    has_set: bool,
    ended: bool,
    error: Option<Arc<str>>,
}

pub(crate) struct Driver<S, M> {
    shared: Weak<Shared<S>>,
    control: Arc<Control>,
    stop: oneshot::Receiver<()>,
    make: M,
    updates: Option<BoxUpdates>,
    /// Asks discovery to re-resolve early when endpoints fail: they may
    /// have moved.
    refresh: Option<RefreshFn>,
    policy: Arc<dyn Policy>,
    /// Total requests in flight, kept only when the policy reads it.
    total: Option<Arc<AtomicU64>>,
    ewma: EwmaConfig,
    backoff: Backoff,
    make_timeout: Duration,
    rng: fastrand::Rng,
    members: Members<S>,
    draining: Vec<Arc<Slot>>,
    making: FuturesUnordered<MakeFuture<S>>,
    /// Active health checks, if configured, and the probes running.
    checks: Option<HealthChecks>,
    probing: FuturesUnordered<probing::ProbeRun>,
    /// Members waiting for the maker to be ready. The driver never awaits
    /// inside a handler: a maker with backpressure (a concurrency limit)
    /// must not stop it from finishing the makes that free its capacity.
    to_make: VecDeque<u64>,
    /// Backoffs: `(when, member id)`; stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// When draining endpoints are next checked for their last request.
    drain_at: Option<Instant>,
    discovered: Discovered,
    /// A change is waiting to be published.
    dirty: bool,
    /// Publishing waits until then (expensive rebuilds are spaced).
    publish_after: Option<Instant>,
    /// How long the last picker rebuild took.
    last_build: Duration,
    outliers: OutlierDetection,
    /// When outlier detection's interval next ends.
    outlier_at: Option<Instant>,
    /// The panic threshold and the overprovisioning factor.
    thresholds: hosts::Thresholds,
    /// The last snapshot was published in panic.
    panic: bool,
    /// The priorities of the tiers that last served, and how many times
    /// they changed.
    serving_tiers: Vec<u32>,
    tier_changes: u64,
    /// The subsets, where each one's requests went at the last publish,
    /// and how many times that changed.
    subsets: Arc<[crate::subset::SubsetRule]>,
    zone_aware: Option<crate::zone::ZoneAware>,
    /// Nearest-region routing's state; `None` when off.
    regions: Option<regions::Regions>,
    subset_routes: Vec<crate::subset::resolve::RouteTo>,
    subset_served: Vec<bool>,
    subset_changes: u64,
    slow_start: Option<SlowStart>,
    /// Commands of the balancer's managers, and the overrides they set.
    commands: mpsc::UnboundedReceiver<Command>,
    overrides: manual::Overrides,
    /// Manager commands answered once the next snapshot is published (so
    /// that they are in effect when the caller hears back).
    after_publish: Vec<oneshot::Sender<Result<(), super::ManageError>>>,
    /// When ramping endpoints' shares are next raised.
    ramp_at: Option<Instant>,
    /// Some publish has had an endpoint to serve: later members are not
    /// of the first set.
    ever_served: bool,
    version: u64,
    /// Publishes the stopped snapshot if the driver ends (or is dropped
    /// unstarted) while balancers exist. Last, so it drops last.
    _stop_guard: StopGuard<S>,
}

async fn next_update(updates: &mut Option<BoxUpdates>) -> Option<Result<EndpointSet, BoxError>> {
    match updates {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// An endpoint source whose panic ends it with an error instead of taking
/// the driver down.
fn unwind_safe(updates: BoxUpdates) -> BoxUpdates {
    AssertUnwindSafe(updates)
        .catch_unwind()
        .map(|item| match item {
            Ok(item) => item,
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::error!(panic = %message, "the endpoint source panicked; keeping the last set");
                Err(BoxError::from(format!(
                    "the endpoint source panicked ({message}); keeping the last set"
                )))
            }
        })
        .boxed()
}

/// Publishes a stopped snapshot when the driver ends while balancers still
/// exist (it failed, or its runtime shut down), so requests fail at once.
struct StopGuard<S> {
    shared: Weak<Shared<S>>,
}

impl<S> Drop for StopGuard<S> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let last = shared.snapshot.load_full();
            shared.publish(Snapshot::stopped(&last));
            shared.wake_waiters();
            if std::thread::panicking() {
                tracing::error!(target = %shared.target, "the balancer's driver panicked; requests now fail");
            } else {
                tracing::warn!(target = %shared.target, "the balancer's driver stopped; requests now fail");
            }
        }
    }
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Weak<Shared<S>>,
        control: Arc<Control>,
        stop: oneshot::Receiver<()>,
        make: M,
        updates: BoxUpdates,
        refresh: Option<RefreshFn>,
        commands: mpsc::UnboundedReceiver<Command>,
        settings: &Settings,
        seed: u64,
    ) -> Self {
        let policy = settings.policy.clone();
        let shared_for_guard = shared.clone();
        Driver {
            shared,
            control,
            stop,
            make,
            updates: Some(unwind_safe(match &settings.subsetting {
                Some(s) => subsetting::subsetted(updates, s.clone()),
                None => updates,
            })),
            refresh,
            total: policy
                .tracks_total_load()
                .then(|| Arc::new(AtomicU64::new(0))),
            policy,
            ewma: settings.ewma.clone(),
            backoff: settings.backoff,
            make_timeout: settings.make_timeout,
            rng: fastrand::Rng::with_seed(seed ^ 0xD1B5_4A32_D192_ED03),
            members: Members::default(),
            draining: Vec::new(),
            making: FuturesUnordered::new(),
            checks: settings.checks.clone(),
            probing: FuturesUnordered::new(),
            to_make: VecDeque::new(),
            timers: BinaryHeap::new(),
            drain_at: None,
            discovered: Discovered {
                latest_set_empty: true,
                ..Discovered::default()
            },
            dirty: false,
            publish_after: None,
            last_build: Duration::ZERO,
            outliers: settings.outliers.clone(),
            outlier_at: None,
            thresholds: hosts::Thresholds {
                panic: settings.panic_threshold,
                overprovisioning: settings.overprovisioning,
            },
            panic: false,
            serving_tiers: Vec::new(),
            tier_changes: 0,
            slow_start: settings.slow_start.clone(),
            subsets: settings.subsets.clone(),
            zone_aware: settings.zone_aware.clone(),
            regions: settings.nearest_region.clone().map(regions::Regions::new),
            subset_routes: Vec::new(),
            subset_served: Vec::new(),
            subset_changes: 0,
            ramp_at: None,
            ever_served: false,
            commands,
            overrides: Default::default(),
            after_publish: Vec::new(),
            version: 0,
            _stop_guard: StopGuard {
                shared: shared_for_guard,
            },
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let event = self.next_event().await;
            if !self.handle(event) {
                return;
            }
            // Everything else ready now joins the batch. The driver yields
            // after each slice of work, and publishes once the batch is
            // drained, so a whole set made at once is one rebuild; after
            // `MAX_BATCH` it publishes anyway, so that a source that is
            // always ready cannot hold changes back.
            let batch = std::time::Instant::now();
            let mut slice = batch;
            while let Some(event) = self.next_event().now_or_never() {
                if !self.handle(event) {
                    return;
                }
                if slice.elapsed() > BATCH_BUDGET {
                    if batch.elapsed() > MAX_BATCH {
                        break;
                    }
                    tokio::task::yield_now().await;
                    slice = std::time::Instant::now();
                }
            }
            if self.dirty && self.may_publish() && !self.publish().await {
                return;
            }
        }
    }

    fn handle(&mut self, event: Event<S>) -> bool {
        match event {
            Event::Stop => return false,
            Event::Update(update) => self.on_update(update),
            Event::MakerReady(ready) => self.on_maker_ready(ready),
            Event::Made(id, Some(made)) => self.on_made(id, made),
            Event::Made(_, None) => {}
            Event::NotReady => self.on_not_ready(),
            Event::Timer => self.on_timer(),
            Event::Probed(id, result) => self.on_probed(id, result),
            Event::Command(command) => self.on_command(command),
        }
        true
    }

    async fn next_event(&mut self) -> Event<S> {
        // Forget queued makes of endpoints removed meanwhile.
        while let Some(&id) = self.to_make.front() {
            if self.members.get(id).is_some() {
                break;
            }
            self.to_make.pop_front();
        }
        let wake_at = self.next_wake();
        let make = &mut self.make;
        tokio::select! {
            biased;
            _ = &mut self.stop => Event::Stop,
            Some((id, made)) = self.making.next(), if !self.making.is_empty() => Event::Made(id, made),
            ready = poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| make.poll_ready(cx))) {
                Ok(Poll::Ready(r)) => Poll::Ready(r.map_err(Into::into)),
                Ok(Poll::Pending) => Poll::Pending,
                Err(panic) => Poll::Ready(Err(BoxError::from(format!(
                    "the maker panicked in poll_ready ({})", panic_message(&*panic)
                )))),
            }), if !self.to_make.is_empty() => Event::MakerReady(ready),
            () = self.control.notify_driver.notified() => Event::NotReady,
            Some(command) = self.commands.recv() => Event::Command(command),
            Some((id, result)) = self.probing.next(), if !self.probing.is_empty() => Event::Probed(id, result),
            () = sleep_until(wake_at) => Event::Timer,
            update = next_update(&mut self.updates) => Event::Update(update),
        }
    }
}
