use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum_core::{BoxError, Unsent};
use pin_project_lite::pin_project;

mod moves;

use moves::{not_ready, send_again};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::error::{Error, ErrorKind};
use super::snapshot::{Check, Snapshot};
use super::wait::{later, OwnWait};
use crate::classify::{Classify, Completion};
use crate::pick::Tried;
use crate::subset::SubsetId;

pin_project! {
    #[project = StateProj]
    enum State<S, Req, F> {
        // Waiting for an endpoint to pick (none when `call` ran).
        // Boxed, as this state and the next are rare: the future stays
        // small (moved without a `memcpy` call) on the fast path.
        Waiting { req: Option<Req>, wait: Box<OwnWait<S>> },
        // Waiting for the chosen endpoint's service to be ready.
        Ready { svc: S, req: Option<Req> },
        Called { #[pin] fut: F },
        Failed { error: Option<Error> },
    }
}

impl<S, Req, F> State<S, Req, F> {
    fn failed(error: Error) -> Self {
        State::Failed { error: Some(error) }
    }
}

pin_project! {
    /// The response future of a [`Balancer`](crate::Balancer).
    ///
    /// Drives the chosen endpoint's service: its readiness, then the call,
    /// then hands the result and the request's [`Completion`] to the
    /// classifier. If readiness fails, or does not come within the
    /// endpoint's share of the readiness deadline, the endpoint is taken out
    /// of service and the request moves to another endpoint (it has not
    /// been sent). If `call` found no endpoint to pick (the set changed
    /// since `poll_ready`), it first waits for one. No request waits longer
    /// than the readiness deadline before it is sent.
    #[project = FutureProj]
    pub struct ResponseFuture<S, Req, C>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, S::Future>,
        completion: Option<Completion>,
        classify: C,
        seed: u64,
        // The affinity key, for picking again in the policy's order.
        key: Option<u64>,
        // The subset the request is routed to (for picking again in it),
        // and how many times it moved.
        route: Route,
        // Set when the request had to wait (in `poll_ready`, for an endpoint
        // to pick, or for the chosen service): its deadlines. Boxed, as
        // rarely needed: the future stays small on the fast path.
        patience: Option<Box<Patience>>,
        // Endpoints a retry of this request avoids (see `retry`); boxed,
        // as only retries and hedges have any.
        avoid: Option<Box<Tried>>,
        // The address hash of the endpoint the request was sent to (0
        // until sent).
        sent_to: u64,
    }

    impl<S, Req, C> PinnedDrop for ResponseFuture<S, Req, C>
    where
        S: Service<Req>,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped before its service took the request: it was never
            // sent, and counts against nothing. (Once called, dropping it
            // cancels the request.)
            if let Some(completion) = this.completion.as_mut() {
                if !matches!(this.state.project(), StateProj::Called { .. }) {
                    completion.mark_unsent();
                }
            }
        }
    }
}

/// How a request was routed: what picking it again (when it has to move)
/// needs.
#[derive(Clone, Copy)]
pub(crate) struct Routing<'a> {
    /// The affinity key.
    pub(crate) key: Option<u64>,
    /// The subset its route chose.
    pub(crate) subset: Option<SubsetId>,
    /// The endpoints a retry or hedge avoids.
    pub(crate) tried: Option<&'a Tried>,
}

/// A request's subset and the times it moved, in one word written whole:
/// moving the future right after `call` made it then reads what one store
/// wrote (two narrow fields made the CPU stall on store forwarding).
#[derive(Clone, Copy)]
struct Route(u64);

impl Route {
    const ROUTED: u64 = 1 << 16;

    #[inline]
    fn new(subset: Option<SubsetId>) -> Self {
        Route(subset.map_or(0, |s| Self::ROUTED | u64::from(s.0)))
    }

    #[inline]
    fn subset(self) -> Option<SubsetId> {
        (self.0 & Self::ROUTED != 0).then_some(SubsetId(self.0 as u16))
    }

    #[inline]
    fn moves(self) -> u32 {
        (self.0 >> 32) as u32
    }

    #[inline]
    fn moved(&mut self) {
        self.0 += 1 << 32;
    }
}

/// What a retry or hedge avoids when it has to move: the endpoints
/// already tried.
#[inline]
fn avoided(tried: Option<&Tried>) -> Option<Box<Tried>> {
    match tried {
        Some(t) if !t.is_empty() => Some(boxed(t)),
        _ => None,
    }
}

#[cold]
#[inline(never)]
fn boxed(tried: &Tried) -> Box<Tried> {
    Box::new(*tried)
}

/// Deadlines of a request that had to wait.
struct Patience {
    /// The request's own: the balancer's readiness deadline from the first
    /// time it had to wait.
    deadline: Instant,
    /// How long one endpoint may keep it waiting.
    share: Duration,
    /// The current endpoint's deadline, once its service was not ready.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Patience {
    /// A request that began waiting at `since`.
    fn since(since: Instant, timeout: Duration) -> Box<Self> {
        Box::new(Patience {
            deadline: later(since, timeout),
            share: share(timeout),
            timer: None,
        })
    }
}

impl<S, Req, C> fmt::Debug for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("completion", &self.completion)
            .finish()
    }
}

impl<S, Req, C> ResponseFuture<S, Req, C>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
{
    /// A request sent to `snap.ready[i]`, dispatched at `start`.
    #[inline]
    pub(crate) fn dispatch(
        (snap, i): (&Snapshot<S>, usize),
        req: Req,
        start: u64,
        classify: C,
        seed: u64,
        routing: Routing<'_>,
        waited_since: Option<Instant>,
    ) -> Self {
        let Routing { key, subset, tried } = routing;
        let slot = &snap.ready[i];
        let patience = waited_since.map(|since| Patience::since(since, slot.control.ready_timeout));
        ResponseFuture {
            state: State::Ready {
                svc: snap.services[i].clone(),
                req: Some(req),
            },
            completion: Some(Completion::begin(
                slot.clone(),
                snap.generations[i],
                start,
                snap.counts_total(i),
            )),
            classify,
            seed,
            key,
            route: Route::new(subset),
            patience,
            avoid: avoided(tried),
            sent_to: 0,
        }
    }

    /// A request waiting for an endpoint to pick.
    pub(crate) fn waiting(
        req: Req,
        wait: OwnWait<S>,
        classify: C,
        seed: u64,
        routing: Routing<'_>,
    ) -> Self {
        let Routing { key, subset, tried } = routing;
        ResponseFuture {
            state: State::Waiting {
                req: Some(req),
                wait: Box::new(wait),
            },
            completion: None,
            classify,
            seed,
            key,
            route: Route::new(subset),
            patience: None,
            avoid: avoided(tried),
            sent_to: 0,
        }
    }

    /// The address hash of the endpoint this request was sent to, or is
    /// about to be sent to; `None` while it waits for one.
    pub(crate) fn chosen(&self) -> Option<u64> {
        match &self.completion {
            Some(c) => Some(c.slot().addr_hash),
            None => (self.sent_to != 0).then_some(self.sent_to),
        }
    }

    /// Whether the request has left for its endpoint.
    pub(crate) fn was_sent(&self) -> bool {
        self.sent_to != 0
    }

    /// The endpoint of a request that is waiting for its answer.
    pub(crate) fn awaiting(&self) -> Option<std::net::SocketAddr> {
        self.completion.as_ref().map(|c| c.endpoint().addr())
    }

    pub(crate) fn failed(error: Error, classify: C) -> Self {
        ResponseFuture {
            state: State::failed(error),
            completion: None,
            classify,
            seed: 0,
            key: None,
            route: Route::new(None),
            patience: None,
            avoid: None,
            sent_to: 0,
        }
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    Req: 'static,
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    C: Classify<S::Response>,
{
    type Output = Result<C::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                // The fast path: the chosen service is ready, the request
                // is sent.
                StateProj::Ready { svc, req } => match svc.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        if this.patience.is_some() {
                            *this.patience = None;
                        }
                        if let Some(c) = this.completion.as_ref() {
                            *this.sent_to = c.slot().addr_hash;
                        }
                        let Some(req) = req.take() else {
                            // Unreachable: the request is taken only here.
                            return Poll::Pending;
                        };
                        let fut = svc.call(req);
                        this.state.set(State::Called { fut });
                    }
                    Poll::Ready(Err(e)) => not_ready(&mut this, e.into()),
                    Poll::Pending => match patience_ran_out(&mut this, cx) {
                        Some(failure) => not_ready(&mut this, failure),
                        None => return Poll::Pending,
                    },
                },
                StateProj::Called { fut } => {
                    let result = match std::task::ready!(fut.poll(cx)).map_err(Into::into) {
                        Err(error) if error.is::<Unsent<Req>>() => {
                            if let Ok(unsent) = error.downcast::<Unsent<Req>>() {
                                send_again(&mut this, *unsent);
                            }
                            continue;
                        }
                        result => result,
                    };
                    let Some(completion) = this.completion.take() else {
                        return Poll::Pending;
                    };
                    let endpoint = completion.endpoint().addr();
                    let classify = &*this.classify;
                    let classified =
                        catch_unwind(AssertUnwindSafe(|| classify.classify(result, completion)));
                    return Poll::Ready(match classified {
                        Ok(Ok(response)) => Ok(response),
                        Ok(Err(source)) => Err(ErrorKind::Service { endpoint, source }.into()),
                        Err(panic) => Err(Error::panicked("classifier", panic)),
                    });
                }
                StateProj::Waiting { .. } => std::task::ready!(poll_waiting(&mut this, cx)),
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(Error::driver_stopped)));
                }
            }
        }
    }
}

/// `call` found nothing to pick: waits for an endpoint (under the
/// readiness deadline) and moves to `Ready` with it, or to `Failed`. Ready
/// only with an endpoint in hand: a view where the count says "ready" but
/// every endpoint just went down waits (woken by the driver's next
/// snapshot) instead of spinning.
#[cold]
#[inline(never)]
fn poll_waiting<S, Req, C>(this: &mut FutureProj<'_, S, Req, C>, cx: &mut Context<'_>) -> Poll<()>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
{
    let StateProj::Waiting { req, wait } = this.state.as_mut().project() else {
        return Poll::Ready(());
    };
    *this.seed = this.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut rng = fastrand::Rng::with_seed(*this.seed);
    let key = *this.key;
    let subset = this.route.subset();
    let avoid = this.avoid.as_deref();
    let mut picked = None;
    let ready = wait.poll(cx, |shared| {
        let snap = shared.snapshot.load();
        let choose = |rng: &mut fastrand::Rng| match avoid {
            Some(tried) => snap.choose_avoiding(rng, key, subset, tried),
            None => snap.choose(rng, key, subset),
        };
        match snap.check_for(&shared.control, subset) {
            Check::Ready => match choose(&mut rng) {
                Some(p) => {
                    picked = Some(p);
                    Check::Ready
                }
                // A subset's wait says so: it must not turn fail-fast on
                // for the whole balancer.
                None if subset.is_some() => {
                    Check::Wait(fulcrum_core::NoEndpointsReason::SubsetEmpty)
                }
                None => Check::Wait(fulcrum_core::NoEndpointsReason::AllUnavailable),
            },
            other => other,
        }
    });
    match std::task::ready!(ready) {
        Err(e) => this.state.set(State::failed(e)),
        Ok(since) => {
            let Some(picked) = picked else {
                return Poll::Pending;
            };
            if let Some(since) = since {
                *this.patience = Some(Patience::since(since, picked.slot.control.ready_timeout));
            }
            let start = picked.now.unwrap_or_else(fulcrum_core::time::now);
            *this.completion = Some(Completion::begin(
                picked.slot,
                picked.generation,
                start,
                picked.counts_total,
            ));
            let req = req.take();
            this.state.set(State::Ready {
                svc: picked.service,
                req,
            });
        }
    }
    Poll::Ready(())
}

/// The chosen service is not ready yet: `Some(why)` once it has had its
/// share of the request's readiness deadline, `None` (with a timer
/// registered) before.
#[cold]
#[inline(never)]
fn patience_ran_out<S, Req, C>(
    this: &mut FutureProj<'_, S, Req, C>,
    cx: &mut Context<'_>,
) -> Option<BoxError>
where
    S: Service<Req>,
{
    let timeout = this.completion.as_ref()?.slot().control.ready_timeout;
    let patience = this
        .patience
        .get_or_insert_with(|| Patience::since(Instant::now(), timeout));
    let (deadline, share) = (patience.deadline, patience.share);
    let timer = patience.timer.get_or_insert_with(|| {
        let first = later(Instant::now(), share).min(deadline);
        Box::pin(tokio::time::sleep_until(first))
    });
    if timer.as_mut().poll(cx).is_pending() {
        return None;
    }
    Some(format!("not ready within {share:?}").into())
}

/// How long one endpoint may keep a request waiting for readiness: a third
/// of the readiness deadline, so that a request can still move twice.
fn share(timeout: Duration) -> Duration {
    timeout / 3
}
