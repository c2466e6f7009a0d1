use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use fulcrum_balance::classify::ClassifyHttp;
use fulcrum_balance::key::{KeyExtractor, NoKey};
use fulcrum_balance::retry::{Retry, RetryFuture};
use fulcrum_balance::{Balancer, Manager, Stats};
use fulcrum_core::BoxError;
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::retry::Idempotent;
use super::{Body, Builder, Error};
use crate::connection::EndpointService;

type Inner<B, K> = Retry<Balancer<EndpointService<B>, K, ClassifyHttp>, Idempotent>;

/// A balanced HTTP client: each request goes to one of the target's
/// endpoints, picked by the policy, over that endpoint's pooled
/// connections. See the [crate docs](crate).
///
/// It is a `tower::Service<http::Request<B>>` (call `ready` then `call`,
/// or the convenience methods, which take `&self`), `Clone` (clones share
/// the endpoints, connections and load), and stops its background driver
/// when the last clone is dropped.
pub struct Client<B = Full<Bytes>, K = NoKey> {
    inner: Inner<B, K>,
}

impl<B, K> Clone for Client<B, K> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<B, K> fmt::Debug for Client<B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("balancer", self.inner.get_ref())
            .finish()
    }
}

impl Client {
    /// Starts configuring a client; see [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A client for `target` with every default (the `ewma` policy,
    /// HTTP/1.1, no retries); call it inside a tokio runtime.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = fulcrum_http::Client::from_target("dns:///orders.internal:8080")?;
    /// let response = client.get("/orders/42").await?;
    /// println!("{}", response.into_body().text().await?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_target(target: &str) -> Result<Client, fulcrum_discovery::TargetError> {
        Ok(Builder::new().target(target)?.build())
    }
}

impl<B, K> Client<B, K> {
    pub(crate) fn new(inner: Inner<B, K>) -> Self {
        Client { inner }
    }

    /// What the balancer knows: every endpoint's state, load, counters.
    pub fn stats(&self) -> Stats {
        self.inner.get_ref().stats()
    }

    /// Drains, disables, enables and re-weights endpoints at runtime.
    pub fn manager(&self) -> Manager {
        self.inner.get_ref().manager()
    }
}

impl<B, K> Client<B, K>
where
    B: http_body::Body + Clone + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    K: KeyExtractor<Request<B>>,
{
    /// Sends `req` and returns the response once its headers arrive; its
    /// body streams from [`Body`].
    pub async fn request(&self, req: Request<B>) -> Result<Response<Body>, Error> {
        let mut client = self.clone();
        std::future::poll_fn(|cx| client.poll_ready(cx)).await?;
        Ok(client.call(req).await?)
    }

    /// `GET uri`: a path (`/orders/42`) or an absolute URI.
    pub async fn get<U>(&self, uri: U) -> Result<Response<Body>, Error>
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
        B: Default,
    {
        self.send(Method::GET, uri, B::default()).await
    }

    /// `POST uri` with `body`.
    pub async fn post<U>(&self, uri: U, body: impl Into<B>) -> Result<Response<Body>, Error>
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.send(Method::POST, uri, body.into()).await
    }

    async fn send<U>(&self, method: Method, uri: U, body: B) -> Result<Response<Body>, Error>
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(Error::InvalidUri)?;
        self.request(req).await
    }
}

impl<B, K> Service<Request<B>> for Client<B, K>
where
    B: http_body::Body + Clone + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    K: KeyExtractor<Request<B>>,
{
    type Response = Response<Body>;
    type Error = fulcrum_balance::Error;
    type Future = ResponseFuture<B, K>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<B>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of a [`Client`].
    pub struct ResponseFuture<B, K>
    where
        B: http_body::Body,
        B: Send,
        B: Unpin,
        B: 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        #[pin]
        inner: RetryFuture<EndpointService<B>, K, ClassifyHttp, Idempotent, Request<B>>,
    }
}

impl<B, K> fmt::Debug for ResponseFuture<B, K>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B, K> Future for ResponseFuture<B, K>
where
    B: http_body::Body + Clone + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    K: KeyExtractor<Request<B>>,
{
    type Output = Result<Response<Body>, fulcrum_balance::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = std::task::ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(response.map(Body::new)))
    }
}
