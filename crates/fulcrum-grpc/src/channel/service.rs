use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use fulcrum_balance::classify::ClassifyHttp;
use fulcrum_balance::key::{KeyExtractor, NoKey};
use fulcrum_balance::{Balancer, Manager, Stats};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tonic::Status;
use tower_service::Service;

use super::status::status_of;
use super::{Body, Builder};

/// The body of a request a tonic client sends.
pub type RequestBody = tonic::body::Body;

type Inner<K> = Balancer<fulcrum_http::connection::EndpointService<RequestBody>, K, ClassifyHttp>;

/// A balanced gRPC channel: give it to any tonic-generated client
/// (`GreeterClient::new(channel)`), and each call goes to one of the
/// target's endpoints, picked by the policy, over that endpoint's HTTP/2
/// connection. See the [crate docs](crate).
///
/// `Clone` (clones share endpoints, connections and load; clone it per
/// task as you would tonic's `Channel`); there is no `Buffer` in front
/// of it. Errors are `tonic::Status` with the code a gRPC client expects:
/// `UNAVAILABLE` when no endpoint could take the call.
pub struct Channel<K = NoKey> {
    inner: Inner<K>,
    // A readiness failure, reported by `call` as a status: tonic's
    // generated clients turn a `poll_ready` error into `UNKNOWN`.
    failed: Option<fulcrum_balance::Error>,
}

impl<K> Clone for Channel<K> {
    fn clone(&self) -> Self {
        Channel {
            inner: self.inner.clone(),
            failed: None,
        }
    }
}

impl<K> fmt::Debug for Channel<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("balancer", &self.inner)
            .finish()
    }
}

impl Channel {
    /// Starts configuring a channel; see [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A channel to `target` with every default (the `ewma` policy, a 1 s
    /// connect timeout); call it inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let channel = fulcrum_grpc::Channel::from_target("dns:///greeter.internal:50051")?;
    /// // let mut client = GreeterClient::new(channel);
    /// # drop(channel);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_target(target: &str) -> Result<Channel, fulcrum_discovery::TargetError> {
        Ok(Builder::new().target(target)?.build())
    }
}

impl<K> Channel<K> {
    pub(crate) fn new(inner: Inner<K>) -> Self {
        Channel {
            inner,
            failed: None,
        }
    }

    /// What the balancer knows: every endpoint's state, load, counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Drains, disables, enables and re-weights endpoints at runtime.
    pub fn manager(&self) -> Manager {
        self.inner.manager()
    }
}

impl<K> Service<Request<RequestBody>> for Channel<K>
where
    K: KeyExtractor<Request<RequestBody>>,
{
    type Response = Response<Body>;
    type Error = Status;
    type Future = ResponseFuture;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        // A failure no call took (the caller gave up between readiness and
        // call) is stale: ask again.
        self.failed = None;
        if let Err(error) = std::task::ready!(self.inner.poll_ready(cx)) {
            self.failed = Some(error);
        }
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        match self.failed.take() {
            None => ResponseFuture {
                state: State::Sent {
                    inner: self.inner.call(req),
                },
            },
            Some(error) => ResponseFuture {
                state: State::Failed {
                    status: Some(status_of(error)),
                },
            },
        }
    }
}

type BalancerFuture = fulcrum_balance::ResponseFuture<
    fulcrum_http::connection::EndpointService<RequestBody>,
    Request<RequestBody>,
    ClassifyHttp,
>;

pin_project! {
    /// The response future of a [`Channel`].
    pub struct ResponseFuture {
        #[pin]
        state: State,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Sent { #[pin] inner: BalancerFuture },
        Failed { status: Option<Status> },
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Status>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sent { inner } => match std::task::ready!(inner.poll(cx)) {
                Ok(response) => Poll::Ready(Ok(
                    response.map(|body| Body::new(fulcrum_http::Body::new(body)))
                )),
                Err(error) => Poll::Ready(Err(status_of(error))),
            },
            StateProj::Failed { status } => Poll::Ready(Err(status.take().unwrap_or_else(|| {
                Status::internal("a channel future polled after it completed")
            }))),
        }
    }
}
