//! Moving a request that was not sent: its endpoint's service failed
//! readiness (the endpoint goes out of service), or gave the request back
//! unsent (no mark against the endpoint). Either way the request goes to
//! an endpoint picked afresh, within its moves and its readiness deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use fulcrum_core::{BoxError, Unsent};
use tokio::time::Instant;
use tower_service::Service;

use super::{FutureProj, State, StateProj};
use crate::balancer::error::{Error, ErrorKind};
use crate::balancer::shared::Shared;
use crate::balancer::snapshot::Picked;
use crate::balancer::wait::later;
use crate::classify::Completion;
use crate::pick::Tried;
use crate::subset::SubsetId;

/// A request that was not sent moves at most this many times.
const MAX_MOVES: u32 = 3;

/// The chosen service failed readiness (or ran out of patience): the
/// request was not sent. The endpoint goes out of service, and the request
/// to another endpoint (`Ready`) or to `Failed`.
#[cold]
#[inline(never)]
pub(super) fn not_ready<S, Req, C>(this: &mut FutureProj<'_, S, Req, C>, failure: BoxError)
where
    S: Service<Req> + Clone + Send + Sync + 'static,
{
    let Some(completion) = this.completion.take() else {
        driver_gone(this);
        return;
    };
    let req = match this.state.as_mut().project() {
        StateProj::Ready { req, .. } => req.take(),
        _ => None,
    };
    let slot = completion.slot().clone();
    let endpoint = slot.endpoint.addr();
    let generation = completion.generation();
    slot.failures.fetch_add(1, Ordering::Relaxed);
    slot.not_sent.fetch_add(1, Ordering::Relaxed);
    slot.take_out_of_service(generation);
    let shared = owner::<S>(&completion);
    completion.not_sent();
    match (next_endpoint(this, shared), req) {
        // Another endpoint, or this one made afresh.
        (Some(picked), Some(req))
            if picked.slot.endpoint.addr() != endpoint || picked.generation != generation =>
        {
            if let Some(p) = this.patience.as_mut() {
                let next = later(Instant::now(), p.share).min(p.deadline);
                if let Some(timer) = p.timer.as_mut() {
                    timer.as_mut().reset(next);
                }
            }
            ready_at(this, picked, req);
        }
        _ => this.state.set(State::failed(
            ErrorKind::NotReady {
                endpoint,
                source: failure,
            }
            .into(),
        )),
    }
}

/// The endpoint's service gave the request back, never sent (its
/// connection closed first): it goes out again, to an endpoint picked
/// afresh (this one, reconnected, or another), without a retry and
/// without a mark against the endpoint. Counted in `not_sent`, and in
/// the request's moves.
#[cold]
#[inline(never)]
pub(super) fn send_again<S, Req, C>(this: &mut FutureProj<'_, S, Req, C>, unsent: Unsent<Req>)
where
    S: Service<Req> + Clone + Send + Sync + 'static,
{
    let (req, source) = unsent.into_parts();
    let Some(completion) = this.completion.take() else {
        driver_gone(this);
        return;
    };
    let endpoint = completion.endpoint().addr();
    completion.slot().not_sent.fetch_add(1, Ordering::Relaxed);
    let shared = owner::<S>(&completion);
    completion.not_sent();
    // Not sent: a retry layer must not count it as an attempt that failed.
    *this.sent_to = 0;
    match (next_endpoint(this, shared), req) {
        (Some(picked), Some(req)) => ready_at(this, picked, req),
        _ => this.state.set(State::failed(
            ErrorKind::NotReady { endpoint, source }.into(),
        )),
    }
}

/// The request's next endpoint, if its moves and its readiness deadline
/// allow one.
fn next_endpoint<S, Req, C>(
    this: &mut FutureProj<'_, S, Req, C>,
    shared: Option<Arc<Shared<S>>>,
) -> Option<Picked<S>>
where
    S: Service<Req> + Clone,
{
    *this.seed = this.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    this.route.moved();
    let time_left = this.patience.as_ref().map(|p| p.deadline > Instant::now());
    shared
        .filter(|_| this.route.moves() <= MAX_MOVES && time_left != Some(false))
        .and_then(|shared| {
            pick_another(
                &shared,
                *this.seed,
                *this.key,
                this.route.subset(),
                this.avoid.as_deref(),
            )
        })
}

/// The request goes to `picked`: a completion of its own, and `Ready`.
fn ready_at<S, Req, C>(this: &mut FutureProj<'_, S, Req, C>, picked: Picked<S>, req: Req)
where
    S: Service<Req>,
{
    *this.completion = Some(Completion::begin(
        picked.slot,
        picked.generation,
        fulcrum_core::time::now(),
        picked.counts_total,
    ));
    this.state.set(State::Ready {
        svc: picked.service,
        req: Some(req),
    });
}

/// The request has no completion to move: its balancer is gone.
fn driver_gone<S, Req, C>(this: &mut FutureProj<'_, S, Req, C>)
where
    S: Service<Req>,
{
    this.state.set(State::failed(Error::driver_stopped()));
}

/// The balancer a request's endpoint belongs to, if it still exists.
fn owner<S: Send + Sync + 'static>(completion: &Completion) -> Option<Arc<Shared<S>>> {
    completion
        .slot()
        .owner
        .upgrade()?
        .downcast::<Shared<S>>()
        .ok()
}

/// Another active endpoint from the balancer's current snapshot.
fn pick_another<S: Clone>(
    shared: &Shared<S>,
    seed: u64,
    key: Option<u64>,
    subset: Option<SubsetId>,
    avoid: Option<&Tried>,
) -> Option<Picked<S>> {
    let snap = shared.snapshot.load();
    let mut rng = fastrand::Rng::with_seed(seed);
    match avoid {
        Some(tried) => snap.choose_avoiding(&mut rng, key, subset, tried),
        None => snap.choose(&mut rng, key, subset),
    }
}
