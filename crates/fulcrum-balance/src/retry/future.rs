use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum_core::BoxError;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::decide::{next, Attempted, Next, Tally};
use super::layer::Settings;
use super::policy::{guarded_clone, guarded_retry_response, RetryPolicy};
use crate::balancer::shared::{RetryCounts, Shared};
use crate::classify::Classify;
use crate::key::KeyExtractor;
use crate::pick::Tried;
use crate::{Balancer, Error, ErrorKind, ResponseFuture};

pin_project! {
    /// One attempt: the balancer's future, under the per-attempt timeout.
    struct Attempt<S, Req, C>
    where
        S: Service<Req>,
    {
        #[pin]
        fut: ResponseFuture<S, Req, C>,
        #[pin]
        deadline: Option<Sleep>,
        timeout: Option<Duration>,
        // When it started (clock nanoseconds), for the hedging estimate.
        started: u64,
        hedge: bool,
    }
}

/// How an attempt ended.
struct Ended<R> {
    result: Result<R, Error>,
    /// The request left for its endpoint (a per-attempt timeout may fire
    /// before it did).
    sent: bool,
    /// The address hash of its endpoint, if it had one.
    endpoint: Option<u64>,
    started: u64,
    hedge: bool,
}

impl<S, Req: 'static, C> Attempt<S, Req, C>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    C: Classify<S::Response>,
{
    fn new(fut: ResponseFuture<S, Req, C>, settings: &Settings, hedge: bool) -> Self {
        let timeout = settings.per_try_timeout;
        Attempt {
            fut,
            deadline: timeout.map(tokio::time::sleep),
            timeout,
            started: match &settings.hedger {
                Some(_) => fulcrum_core::time::now(),
                None => 0,
            },
            hedge,
        }
    }

    fn poll_end(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ended<C::Response>> {
        let mut this = self.project();
        let result = match this.fut.as_mut().poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let Some(deadline) = this.deadline.as_pin_mut() else {
                    return Poll::Pending;
                };
                std::task::ready!(deadline.poll(cx));
                Err(ErrorKind::TimedOut {
                    endpoint: this.fut.awaiting(),
                    after: this.timeout.unwrap_or_default(),
                }
                .into())
            }
        };
        let endpoint = this.fut.chosen().or_else(|| {
            let addr = result.as_ref().err().and_then(Error::endpoint)?;
            Some(crate::key::endpoint_hash(addr))
        });
        Poll::Ready(Ended {
            sent: this.fut.was_sent(),
            result,
            endpoint,
            started: *this.started,
            hedge: *this.hedge,
        })
    }
}

/// What a retryable request keeps for its further attempts.
struct Retrying<S, K, C, P, Req> {
    spare: Req,
    policy: P,
    shared: Arc<Shared<S>>,
    key: Arc<K>,
    classify: C,
    settings: Arc<Settings>,
    tried: Tried,
    tally: Tally,
    hedged: bool,
}

impl<S, K, C, P, Req: 'static> Retrying<S, K, C, P, Req>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    K: KeyExtractor<Req>,
    C: Classify<S::Response>,
    P: RetryPolicy<Req, C::Response>,
{
    /// A copy of the request for another attempt; `None` if it cannot be
    /// copied (the policy declined or panicked).
    fn copy(&self) -> Option<Req> {
        guarded_clone(&self.policy, &self.spare).ok()?
    }

    /// Another attempt with `req`, on an endpoint not tried yet.
    fn attempt(&self, req: Req, hedge: bool) -> Attempt<S, Req, C> {
        let mut balancer =
            Balancer::from_shared(self.shared.clone(), self.key.clone(), self.classify.clone());
        let fut = balancer.call_avoiding(req, Some(&self.tried));
        Attempt::new(fut, &self.settings, hedge)
    }

    fn counts(&self) -> &RetryCounts {
        &self.shared.retries
    }
}

pin_project! {
    /// The response future of a [`Retry`](super::Retry): the request's
    /// attempts, one at a time, or two while a hedge runs.
    #[project = RetryFutureProj]
    pub struct RetryFuture<S, K, C, P, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        first: Option<Attempt<S, Req, C>>,
        #[pin]
        second: Option<Attempt<S, Req, C>>,
        #[pin]
        hedge_timer: Option<Sleep>,
        failed: Option<Error>,
        retrying: Option<Retrying<S, K, C, P, Req>>,
    }
}

impl<S, K, C, P, Req> fmt::Debug for RetryFuture<S, K, C, P, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryFuture")
            .field("retryable", &self.retrying.is_some())
            .field("hedging", &self.second.is_some())
            .finish()
    }
}

impl<S, K, C, P, Req: 'static> RetryFuture<S, K, C, P, Req>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    K: KeyExtractor<Req>,
    C: Classify<S::Response>,
    P: RetryPolicy<Req, C::Response>,
{
    pub(crate) fn failed(error: Error) -> Self {
        RetryFuture {
            first: None,
            second: None,
            hedge_timer: None,
            failed: Some(error),
            retrying: None,
        }
    }

    /// A request that is not retried: one attempt.
    pub(crate) fn once(first: ResponseFuture<S, Req, C>, settings: &Settings) -> Self {
        RetryFuture {
            first: Some(Attempt::new(first, settings, false)),
            second: None,
            hedge_timer: None,
            failed: None,
            retrying: None,
        }
    }

    pub(crate) fn retrying(
        first: ResponseFuture<S, Req, C>,
        spare: Req,
        policy: P,
        (shared, key, classify): (Arc<Shared<S>>, Arc<K>, C),
        settings: Arc<Settings>,
    ) -> Self {
        let hedge_timer = settings
            .hedger
            .as_ref()
            .filter(|_| settings.max_attempts >= 2)
            .and_then(|h| h.delay())
            .map(tokio::time::sleep);
        RetryFuture {
            first: Some(Attempt::new(first, &settings, false)),
            second: None,
            hedge_timer,
            failed: None,
            retrying: Some(Retrying {
                spare,
                policy,
                shared,
                key,
                classify,
                settings,
                tried: Tried::default(),
                tally: Tally::default(),
                hedged: false,
            }),
        }
    }
}

type Proj<'a, S, K, C, P, Req> = RetryFutureProj<'a, S, K, C, P, Req>;

impl<S, K, C, P, Req: 'static> Future for RetryFuture<S, K, C, P, Req>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    K: KeyExtractor<Req>,
    C: Classify<S::Response>,
    P: RetryPolicy<Req, C::Response>,
{
    type Output = Result<C::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(error) = this.failed.take() {
            return Poll::Ready(Err(error));
        }
        loop {
            if let Some(timer) = this.hedge_timer.as_mut().as_pin_mut() {
                if timer.poll(cx).is_ready() {
                    this.hedge_timer.set(None);
                    hedge(&mut this);
                }
            }
            let mut ended = None;
            if let Some(attempt) = this.first.as_mut().as_pin_mut() {
                if let Poll::Ready(end) = attempt.poll_end(cx) {
                    this.first.set(None);
                    ended = Some(end);
                }
            }
            if ended.is_none() {
                if let Some(attempt) = this.second.as_mut().as_pin_mut() {
                    if let Poll::Ready(end) = attempt.poll_end(cx) {
                        this.second.set(None);
                        ended = Some(end);
                    }
                }
            }
            let Some(ended) = ended else {
                return Poll::Pending;
            };
            if let Some(result) = after(&mut this, ended) {
                return Poll::Ready(result);
            }
        }
    }
}

/// An attempt ended: `Some(result)` for the caller, or `None` when
/// another attempt is under way (one in flight, or a retry just started).
fn after<S, K, C, P, Req: 'static>(
    this: &mut Proj<'_, S, K, C, P, Req>,
    ended: Ended<C::Response>,
) -> Option<Result<C::Response, Error>>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    K: KeyExtractor<Req>,
    C: Classify<S::Response>,
    P: RetryPolicy<Req, C::Response>,
{
    let Some(r) = this.retrying.as_mut() else {
        return Some(ended.result);
    };
    if let (Some(hedger), true) = (&r.settings.hedger, ended.result.is_ok()) {
        hedger.record(fulcrum_core::time::now().saturating_sub(ended.started));
    }
    let attempted = Attempted::of(&ended.result, ended.sent, |response| {
        guarded_retry_response::<P, Req, C::Response>(&r.policy, response)
    });
    if matches!(attempted, Attempted::Answered | Attempted::Final) {
        if attempted == Attempted::Answered {
            if ended.hedge {
                RetryCounts::add(&r.counts().hedges_won);
            }
            // The attempt it beat took at least this long: without the
            // sample, the percentile would sink as hedges win.
            let losing = [this.first.as_ref(), this.second.as_ref()]
                .into_iter()
                .find_map(|a| a.as_pin_ref().map(|a| a.get_ref().started));
            if let (Some(hedger), Some(started)) = (&r.settings.hedger, losing) {
                hedger.record(fulcrum_core::time::now().saturating_sub(started));
            }
        }
        return Some(ended.result);
    }
    if let Some(endpoint) = ended.endpoint {
        r.tried.insert_hash(endpoint);
    }
    match attempted {
        Attempted::NotSent => r.tally.not_sent += 1,
        _ => r.tally.sent += 1,
    }
    if this.first.is_some() || this.second.is_some() {
        // A hedge is still running: its answer decides.
        return None;
    }
    match next(attempted, r.tally, r.settings.max_attempts) {
        Next::Return => Some(ended.result),
        Next::Retry { spends_budget } => {
            // The copy first: a policy that declines (or panics) now hands
            // back the last result, with no budget spent.
            let Some(req) = r.copy() else {
                return Some(ended.result);
            };
            if spends_budget && !r.settings.budget.try_withdraw() {
                RetryCounts::add(&r.counts().budget_exhausted);
                tracing::debug!(target = %r.shared.target, "retry budget exhausted; not retrying");
                return Some(ended.result);
            }
            let attempt = r.attempt(req, false);
            RetryCounts::add(&r.counts().retries);
            tracing::debug!(
                target = %r.shared.target,
                attempts = r.tally.sent + r.tally.not_sent,
                free = !spends_budget,
                "retrying on another endpoint"
            );
            this.first.set(Some(attempt));
            None
        }
    }
}

/// The hedge delay ran out with the first attempt still running: a second
/// one goes to another endpoint, if the attempts and both budgets allow.
fn hedge<S, K, C, P, Req: 'static>(this: &mut Proj<'_, S, K, C, P, Req>)
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    K: KeyExtractor<Req>,
    C: Classify<S::Response>,
    P: RetryPolicy<Req, C::Response>,
{
    let Some(r) = this.retrying.as_mut() else {
        return;
    };
    let running = match (
        this.first.as_ref().as_pin_ref(),
        this.second.as_ref().as_pin_ref(),
    ) {
        (Some(a), None) | (None, Some(a)) => a,
        _ => return,
    };
    let Some(hedger) = &r.settings.hedger else {
        return;
    };
    if r.hedged || r.tally.sent + 2 > r.settings.max_attempts {
        return;
    }
    let Some(req) = r.copy() else {
        return;
    };
    if !hedger.try_withdraw() {
        return;
    }
    if !r.settings.budget.try_withdraw() {
        hedger.refund();
        RetryCounts::add(&r.counts().budget_exhausted);
        return;
    }
    if let Some(endpoint) = running.fut.chosen() {
        r.tried.insert_hash(endpoint);
    }
    let attempt = r.attempt(req, true);
    r.hedged = true;
    RetryCounts::add(&r.counts().hedges);
    tracing::debug!(target = %r.shared.target, "hedging a slow request on another endpoint");
    if this.first.is_none() {
        this.first.set(Some(attempt));
    } else {
        this.second.set(Some(attempt));
    }
}
