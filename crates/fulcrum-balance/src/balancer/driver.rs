//! The background driver: the only writer of a balancer's snapshot.
//!
//! It applies endpoint-set updates (diffing whole sets), makes one inner
//! service per endpoint, backs off endpoints that failed readiness and makes
//! their service afresh after the backoff, tracks draining endpoints, and
//! publishes a new immutable [`Snapshot`] after every change — whether or not
//! requests flow. It stops when the last balancer handle is dropped.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use fulcrum_core::load::EwmaConfig;
use fulcrum_core::{BoxError, Endpoint, EndpointSet, NoEndpointsReason};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use tower_service::Service;

use super::builder::{Backoff, RefreshFn};
use super::{Shared, Snapshot};
use crate::pick::{Loads, Policy};
use crate::slot::{EndpointState, Slot};
use crate::updates::BoxUpdates;

/// How often draining endpoints are checked for their last request.
const DRAIN_CHECK: Duration = Duration::from_millis(100);

type MakeFuture<S> = Pin<Box<dyn Future<Output = (u64, Result<S, BoxError>)> + Send>>;

struct Member<S> {
    /// Distinguishes a re-added endpoint from an old make still in flight.
    id: u64,
    slot: Arc<Slot>,
    service: Option<S>,
    retry_at: Option<Instant>,
}

enum Event<S> {
    Stop,
    Update(Option<Result<EndpointSet, BoxError>>),
    /// The maker is ready (or failed) for the next queued endpoint.
    MakerReady(Result<(), BoxError>),
    Made(u64, Result<S, BoxError>),
    NotReady,
    Timer,
}

pub(crate) struct Driver<S, M> {
    shared: Weak<Shared<S>>,
    notify: Arc<Notify>,
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
    rng: fastrand::Rng,
    members: Vec<Member<S>>,
    draining: Vec<Arc<Slot>>,
    making: FuturesUnordered<MakeFuture<S>>,
    /// Members waiting for the maker to be ready. The driver never awaits
    /// inside a handler: a maker with backpressure (a concurrency limit)
    /// must not stop it from finishing the makes that free its capacity.
    to_make: VecDeque<u64>,
    /// When draining endpoints are next checked for their last request.
    drain_at: Option<Instant>,
    next_id: u64,
    ever_had_endpoints: bool,
    latest_set_empty: bool,
    discovery_ended: bool,
    discovery_error: Option<Arc<str>>,
    version: u64,
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

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Service<Endpoint, Response = S> + Send + 'static,
    M::Future: Send + 'static,
    M::Error: Into<BoxError>,
{
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Weak<Shared<S>>,
        notify: Arc<Notify>,
        stop: oneshot::Receiver<()>,
        make: M,
        updates: BoxUpdates,
        refresh: Option<RefreshFn>,
        policy: Arc<dyn Policy>,
        ewma: EwmaConfig,
        backoff: Backoff,
        seed: u64,
    ) -> Self {
        Driver {
            shared,
            notify,
            stop,
            make,
            updates: Some(updates),
            refresh,
            total: policy
                .tracks_total_load()
                .then(|| Arc::new(AtomicU64::new(0))),
            policy,
            ewma,
            backoff,
            rng: fastrand::Rng::with_seed(seed ^ 0xD1B5_4A32_D192_ED03),
            members: Vec::new(),
            draining: Vec::new(),
            making: FuturesUnordered::new(),
            to_make: VecDeque::new(),
            drain_at: None,
            next_id: 0,
            ever_had_endpoints: false,
            latest_set_empty: true,
            discovery_ended: false,
            discovery_error: None,
            version: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let event = self.next_event().await;
            let changed = match event {
                Event::Stop => return,
                Event::Update(update) => self.on_update(update),
                Event::MakerReady(ready) => self.on_maker_ready(ready),
                Event::Made(id, made) => self.on_made(id, made),
                Event::NotReady => self.on_not_ready(),
                Event::Timer => self.on_timer(),
            };
            if changed && !self.publish() {
                return;
            }
        }
    }

    async fn next_event(&mut self) -> Event<S> {
        // Forget queued makes of endpoints removed meanwhile.
        while let Some(&id) = self.to_make.front() {
            if self.members.iter().any(|m| m.id == id) {
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
            ready = poll_fn(|cx| make.poll_ready(cx)), if !self.to_make.is_empty() => {
                Event::MakerReady(ready.map_err(Into::into))
            }
            () = self.notify.notified() => Event::NotReady,
            () = sleep_until(wake_at) => Event::Timer,
            update = next_update(&mut self.updates) => Event::Update(update),
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let retry = self.members.iter().filter_map(|m| m.retry_at).min();
        retry.into_iter().chain(self.drain_at).min()
    }

    /// `now + delay`, at least 1 ms ahead (a zero backoff must not spin the
    /// driver) and without overflow (a huge one must not panic it).
    fn retry_time(&mut self, failures: u32) -> (Instant, Duration) {
        let delay = self
            .backoff
            .delay(failures, &mut self.rng)
            .max(Duration::from_millis(1));
        let now = Instant::now();
        let at = now
            .checked_add(delay)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        (at, delay)
    }

    fn new_member(&mut self, endpoint: Endpoint) -> Member<S> {
        let owner: Weak<dyn Any + Send + Sync> = self.shared.clone();
        self.next_id += 1;
        Member {
            id: self.next_id,
            slot: Arc::new(Slot::new(endpoint, &self.ewma, owner, self.total.clone())),
            service: None,
            retry_at: None,
        }
    }

    /// Queues the member at `index` for a new service.
    fn start_make(&mut self, index: usize) {
        let m = &mut self.members[index];
        m.slot.set_state(EndpointState::Warming);
        m.service = None;
        m.retry_at = None;
        self.to_make.push_back(m.id);
    }

    /// The maker is ready: make the service of the first queued member.
    fn on_maker_ready(&mut self, ready: Result<(), BoxError>) -> bool {
        let Some(id) = self.to_make.pop_front() else {
            return false;
        };
        let Some(endpoint) = self
            .members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.slot.endpoint.clone())
        else {
            return false;
        };
        match ready {
            Ok(()) => {
                let fut = self.make.call(endpoint);
                self.making
                    .push(Box::pin(async move { (id, fut.await.map_err(Into::into)) }));
                false
            }
            Err(e) => self.on_made(id, Err(e)),
        }
    }

    fn retire(&mut self, member: Member<S>) {
        member.slot.set_state(EndpointState::Draining);
        if member.slot.in_flight.get() > 0 {
            self.draining.push(member.slot);
            self.drain_at
                .get_or_insert_with(|| Instant::now() + DRAIN_CHECK);
        }
    }

    fn on_update(&mut self, update: Option<Result<EndpointSet, BoxError>>) -> bool {
        let set = match update {
            None => {
                tracing::debug!("endpoint discovery ended; keeping the last set");
                self.updates = None;
                self.discovery_ended = true;
                return true;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "endpoint discovery failed; keeping the last good set");
                self.discovery_error = Some(e.to_string().into());
                return true;
            }
            Some(Ok(set)) => set,
        };
        if set.duplicates() > 0 {
            tracing::warn!(
                duplicates = set.duplicates(),
                "endpoint set repeats addresses; the first occurrence of each is used"
            );
        }
        self.discovery_error = None;
        self.ever_had_endpoints |= !set.is_empty();
        self.latest_set_empty = set.is_empty();

        let mut old: HashMap<SocketAddr, Member<S>> = self
            .members
            .drain(..)
            .map(|m| (m.slot.endpoint.addr(), m))
            .collect();
        let mut to_make = Vec::new();
        for endpoint in set.iter() {
            match old.remove(&endpoint.addr()) {
                Some(m) if m.slot.endpoint.same_identity(endpoint) => {
                    m.slot.weight.store(endpoint.weight(), Ordering::Relaxed);
                    m.slot
                        .priority
                        .store(endpoint.priority(), Ordering::Relaxed);
                    self.members.push(m);
                }
                replaced => {
                    if let Some(m) = replaced {
                        self.retire(m);
                    }
                    let m = self.new_member(endpoint.clone());
                    to_make.push(self.members.len());
                    self.members.push(m);
                }
            }
        }
        for (_, m) in old {
            self.retire(m);
        }
        for index in to_make {
            self.start_make(index);
        }
        true
    }

    fn on_made(&mut self, id: u64, made: Result<S, BoxError>) -> bool {
        let Some(member) = self.members.iter_mut().find(|m| m.id == id) else {
            return false; // removed while it was being made
        };
        match made {
            Ok(service) => {
                member.service = Some(service);
                member.slot.install();
            }
            Err(e) => {
                let failures = member.slot.not_ready_streak.fetch_add(1, Ordering::Relaxed) + 1;
                let slot = member.slot.clone();
                let (at, delay) = self.retry_time(failures);
                tracing::warn!(
                    endpoint = %slot.endpoint,
                    error = %e,
                    retry_in = ?delay,
                    "could not make the endpoint's service"
                );
                slot.set_state(EndpointState::Unavailable);
                if let Some(member) = self.members.iter_mut().find(|m| m.id == id) {
                    member.service = None;
                    member.retry_at = Some(at);
                }
                self.ask_for_refresh();
            }
        }
        true
    }

    /// Requests marked endpoints unavailable: schedule their comeback.
    fn ask_for_refresh(&self) {
        if let Some(refresh) = &self.refresh {
            refresh();
        }
    }

    fn on_not_ready(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.members.len() {
            let m = &self.members[i];
            if m.slot.state() == EndpointState::Unavailable
                && m.retry_at.is_none()
                && !self.to_make.contains(&m.id)
            {
                let failures = m.slot.not_ready_streak.load(Ordering::Relaxed).max(1);
                let (at, delay) = self.retry_time(failures);
                let m = &mut self.members[i];
                tracing::debug!(endpoint = %m.slot.endpoint, retry_in = ?delay, "endpoint failed readiness");
                // The service failed; a fresh one is made after the backoff.
                m.service = None;
                m.retry_at = Some(at);
                changed = true;
            }
        }
        if changed {
            self.ask_for_refresh();
        }
        changed
    }

    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        let mut changed = false;
        if self.drain_at.is_some_and(|at| at <= now) {
            let before = self.draining.len();
            self.draining.retain(|slot| slot.in_flight.get() > 0);
            changed |= before != self.draining.len();
            self.drain_at = (!self.draining.is_empty()).then(|| now + DRAIN_CHECK);
        }
        let due: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].retry_at.is_some_and(|at| at <= now))
            .collect();
        for index in due {
            self.start_make(index);
            changed = true;
        }
        changed
    }

    fn empty_reason(&self) -> NoEndpointsReason {
        if !self.ever_had_endpoints {
            if self.discovery_ended {
                NoEndpointsReason::DiscoveryEnded
            } else {
                NoEndpointsReason::NeverHadAny
            }
        } else if self.latest_set_empty {
            if self.discovery_ended {
                NoEndpointsReason::DiscoveryEnded
            } else {
                NoEndpointsReason::SetBecameEmpty
            }
        } else {
            NoEndpointsReason::AllUnavailable
        }
    }

    /// Builds and swaps in a new snapshot. False once every balancer is gone.
    fn publish(&mut self) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let active: Vec<&Member<S>> = self
            .members
            .iter()
            .filter(|m| m.service.is_some() && m.slot.state() == EndpointState::Active)
            .collect();
        // Priority tiers (SRV priority): only the most preferred tier with
        // an active endpoint serves; the next one takes over when it has none.
        let tier = active
            .iter()
            .map(|m| m.slot.priority.load(Ordering::Relaxed))
            .min();
        let active: Vec<&Member<S>> = active
            .into_iter()
            .filter(|m| Some(m.slot.priority.load(Ordering::Relaxed)) == tier)
            .collect();
        // Weight 0 is a standby: used only when no positive weight is ready,
        // and then all count equally.
        let any_positive = active
            .iter()
            .any(|m| m.slot.weight.load(Ordering::Relaxed) > 0);
        let ready: Vec<&Member<S>> = active
            .into_iter()
            .filter(|m| !any_positive || m.slot.weight.load(Ordering::Relaxed) > 0)
            .collect();
        let slots: Box<[Arc<Slot>]> = ready.iter().map(|m| m.slot.clone()).collect();
        let weights: Box<[u32]> = ready
            .iter()
            .map(|m| m.slot.weight.load(Ordering::Relaxed).max(1))
            .collect();
        let services: Box<[S]> = ready.iter().filter_map(|m| m.service.clone()).collect();
        let generations: Box<[u32]> = ready.iter().map(|m| m.slot.generation()).collect();
        let picker = self.policy.build(&Loads::new(&slots, &weights));
        self.version += 1;
        let terminal = self.discovery_ended && self.members.is_empty();
        let has_ready = !slots.is_empty();
        shared.snapshot.store(Arc::new(Snapshot {
            ready: slots,
            down: Default::default(),
            weights,
            services,
            generations,
            picker,
            total: self.total.clone(),
            members: self.members.iter().map(|m| m.slot.clone()).collect(),
            draining: self.draining.clone().into(),
            empty_reason: self.empty_reason(),
            terminal,
            discovery_error: self.discovery_error.clone(),
            version: self.version,
        }));
        if has_ready || terminal {
            shared.wake_waiters();
        }
        true
    }
}
