use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fulcrum_core::BoxError;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::wait::{poll_wait, CallWait};
use super::{Classifier, Error, Outcome, Picked, Shared};
use crate::slot::Slot;

/// The dispatch time of a request that is not timed (see
/// [`Policy::uses_latency`](crate::pick::Policy::uses_latency)).
pub(crate) const UNTIMED: u64 = u64::MAX;

/// Counts a request against its endpoint from dispatch until it is dropped.
///
/// On completion it records the latency (or the failure penalty); if the
/// request is dropped unfinished (cancelled, timed out above us) it records
/// the time so far, so an endpoint whose requests are always abandoned still
/// looks slow.
struct LoadGuard {
    slot: Arc<Slot>,
    /// The generation of the service this request holds.
    generation: u32,
    start: u64,
    recorded: bool,
}

impl LoadGuard {
    #[inline]
    fn new(slot: Arc<Slot>, generation: u32, start: u64) -> Self {
        slot.in_flight.enter();
        if let Some(total) = &slot.total {
            total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        LoadGuard {
            slot,
            generation,
            start,
            recorded: false,
        }
    }

    #[inline]
    fn finish(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.record_elapsed(),
            Outcome::Failure => {
                self.slot
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.slot.ewma.record_failure(fulcrum_core::time::now());
            }
        }
        self.recorded = true;
    }

    #[inline]
    fn record_elapsed(&self) {
        if self.start != UNTIMED {
            let now = fulcrum_core::time::now();
            self.slot.ewma.record(now.saturating_sub(self.start), now);
        }
    }
}

impl Drop for LoadGuard {
    #[inline]
    fn drop(&mut self) {
        if !self.recorded {
            self.record_elapsed();
        }
        self.slot.in_flight.exit();
        if let Some(total) = &self.slot.total {
            total.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, F> {
        // Waiting for an endpoint to pick (none when `call` ran).
        Waiting { req: Option<Req>, wait: CallWait<S> },
        // Waiting for the chosen endpoint's service to be ready.
        Ready { svc: S, req: Option<Req> },
        Called { #[pin] fut: F },
        Failed { error: Option<Error> },
    }
}

pin_project! {
    /// The response future of a [`Balancer`](crate::Balancer).
    ///
    /// Drives the chosen endpoint's service: its readiness, then the call.
    /// If readiness fails, the endpoint is marked unavailable and the request
    /// moves to another endpoint (it has not been sent). If `call` found no
    /// endpoint to pick (the set changed since `poll_ready`), it first waits
    /// for one, under the balancer's readiness deadline.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, S::Future>,
        guard: Option<LoadGuard>,
        classify: Classifier<S::Response, S::Error>,
        seed: u64,
        // The affinity key, for picking again in the policy's order.
        key: Option<u64>,
        moves: u32,
    }
}

impl<S, Req> fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field(
                "endpoint",
                &self.guard.as_ref().map(|g| g.slot.endpoint.addr()),
            )
            .finish()
    }
}

/// A request whose endpoint fails readiness moves at most this many times.
const MAX_MOVES: u32 = 3;

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
{
    #[inline]
    pub(crate) fn dispatch(
        picked: Picked<S>,
        req: Req,
        start: u64,
        classify: Classifier<S::Response, S::Error>,
        seed: u64,
        key: Option<u64>,
    ) -> Self {
        ResponseFuture {
            state: State::Ready {
                svc: picked.service,
                req: Some(req),
            },
            guard: Some(LoadGuard::new(picked.slot, picked.generation, start)),
            classify,
            seed,
            key,
            moves: 0,
        }
    }

    pub(crate) fn waiting(
        req: Req,
        wait: CallWait<S>,
        classify: Classifier<S::Response, S::Error>,
        seed: u64,
        key: Option<u64>,
    ) -> Self {
        ResponseFuture {
            state: State::Waiting {
                req: Some(req),
                wait,
            },
            guard: None,
            classify,
            seed,
            key,
            moves: 0,
        }
    }
}

/// Takes the endpoint of a request whose service failed readiness out of
/// service (telling the driver, which backs it off), and returns the
/// balancer's shared state if the balancer still exists.
fn take_out_of_service<S: Send + Sync + 'static>(guard: &LoadGuard) -> Option<Arc<Shared<S>>> {
    let newly_down = guard.slot.mark_not_ready(guard.generation);
    let shared = guard.slot.owner.upgrade()?.downcast::<Shared<S>>().ok()?;
    if newly_down {
        let snap = shared.snapshot.load();
        if snap.ready.iter().any(|s| Arc::ptr_eq(s, &guard.slot)) {
            snap.down.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        shared.notify_driver.notify_one();
    }
    Some(shared)
}

/// Another active endpoint from the balancer's current snapshot.
fn pick_another<S: Clone>(shared: &Shared<S>, seed: u64, key: Option<u64>) -> Option<Picked<S>> {
    let snap = shared.snapshot.load();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (i, _) = snap.choose(&mut rng, key)?;
    Some(snap.take(i))
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Waiting { req, wait } => {
                    let CallWait {
                        shared,
                        id,
                        waiting,
                    } = wait;
                    let ready =
                        poll_wait(shared, *id, waiting, cx, || shared.snapshot.load().check());
                    match std::task::ready!(ready) {
                        Err(e) => {
                            let error = Some(Error::NoEndpoints(e));
                            this.state.set(State::Failed { error });
                        }
                        Ok(()) => {
                            let snap = shared.snapshot.load();
                            *this.seed = this.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                            let mut rng = fastrand::Rng::with_seed(*this.seed);
                            match snap.choose(&mut rng, *this.key) {
                                Some((i, now)) => {
                                    let picked = snap.take(i);
                                    let start = now.unwrap_or_else(fulcrum_core::time::now);
                                    *this.guard =
                                        Some(LoadGuard::new(picked.slot, picked.generation, start));
                                    let req = req.take();
                                    this.state.set(State::Ready {
                                        svc: picked.service,
                                        req,
                                    });
                                }
                                None => {
                                    // A stale view (endpoints retired, their
                                    // successors still being made): let the
                                    // driver publish, and look again.
                                    cx.waker().wake_by_ref();
                                    return Poll::Pending;
                                }
                            }
                        }
                    }
                }
                StateProj::Ready { svc, req } => match svc.poll_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => {
                        if let Some(guard) = this.guard.as_ref() {
                            guard.slot.mark_ready();
                        }
                        let Some(req) = req.take() else {
                            // Unreachable: the request is taken only here.
                            return Poll::Pending;
                        };
                        let fut = svc.call(req);
                        this.state.set(State::Called { fut });
                    }
                    Poll::Ready(Err(e)) => {
                        let Some(mut guard) = this.guard.take() else {
                            return Poll::Pending;
                        };
                        // Not sent: no latency sample, just the readiness failure.
                        guard.recorded = true;
                        let endpoint = guard.slot.endpoint.addr();
                        *this.seed = this.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        *this.moves += 1;
                        let next = take_out_of_service::<S>(&guard)
                            .filter(|_| *this.moves <= MAX_MOVES)
                            .and_then(|shared| pick_another(&shared, *this.seed, *this.key));
                        drop(guard);
                        match next {
                            Some(picked) if picked.slot.endpoint.addr() != endpoint => {
                                let req = req.take();
                                let start = fulcrum_core::time::now();
                                *this.guard =
                                    Some(LoadGuard::new(picked.slot, picked.generation, start));
                                this.state.set(State::Ready {
                                    svc: picked.service,
                                    req,
                                });
                            }
                            _ => {
                                let error = Error::NotReady {
                                    endpoint,
                                    source: e.into(),
                                };
                                this.state.set(State::Failed { error: Some(error) });
                            }
                        }
                    }
                },
                StateProj::Called { fut } => {
                    let result = std::task::ready!(fut.poll(cx));
                    let outcome = (this.classify)(&result);
                    let endpoint = match this.guard.take() {
                        Some(mut guard) => {
                            guard.finish(outcome);
                            Some(guard.slot.endpoint.addr())
                        }
                        None => None,
                    };
                    return Poll::Ready(result.map_err(|e| Error::Service {
                        endpoint: endpoint.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
                        source: e.into(),
                    }));
                }
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(|| {
                        Error::NoEndpoints(fulcrum_core::NoEndpoints::new(
                            "",
                            fulcrum_core::NoEndpointsReason::AllUnavailable,
                            std::time::Duration::ZERO,
                        ))
                    })))
                }
            }
        }
    }
}
