use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use fulcrum_core::BoxError;
use tower_service::Service;

use super::future::RetryFuture;
use super::layer::Settings;
use super::policy::{guarded_clone, RetryPolicy};
use crate::classify::Classify;
use crate::key::KeyExtractor;
use crate::{Balancer, Error, ErrorKind};

/// A [`Balancer`] whose failed requests are retried on other endpoints
/// and whose slow ones may be hedged: made by a
/// [`RetryLayer`](super::RetryLayer).
pub struct Retry<B, P> {
    balancer: B,
    policy: P,
    settings: Arc<Settings>,
}

impl<B, P> Retry<B, P> {
    pub(crate) fn new(balancer: B, policy: P, settings: Arc<Settings>) -> Self {
        Retry {
            balancer,
            policy,
            settings,
        }
    }

    /// The balancer it sends requests through.
    pub fn get_ref(&self) -> &B {
        &self.balancer
    }
}

impl<B: Clone, P: Clone> Clone for Retry<B, P> {
    fn clone(&self) -> Self {
        Retry {
            balancer: self.balancer.clone(),
            policy: self.policy.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<B: fmt::Debug, P> fmt::Debug for Retry<B, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("balancer", &self.balancer)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S, K, C, P, Req: 'static> Service<Req> for Retry<Balancer<S, K, C>, P>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    K: KeyExtractor<Req>,
    C: Classify<S::Response>,
    P: RetryPolicy<Req, C::Response>,
{
    type Response = C::Response;
    type Error = Error;
    type Future = RetryFuture<S, K, C, P, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.balancer.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let settings = &self.settings;
        settings.budget.deposit();
        if let Some(hedger) = &settings.hedger {
            hedger.deposit();
        }
        let spare = match guarded_clone(&self.policy, &req) {
            Ok(spare) => spare,
            Err(message) => {
                return RetryFuture::failed(
                    ErrorKind::Panicked {
                        what: "retry policy",
                        message,
                    }
                    .into(),
                )
            }
        };
        let first = self.balancer.call(req);
        match spare {
            None => RetryFuture::once(first, settings),
            Some(spare) => RetryFuture::retrying(
                first,
                spare,
                self.policy.clone(),
                self.balancer.parts(),
                settings.clone(),
            ),
        }
    }
}
