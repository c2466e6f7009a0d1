use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fulcrum_core::{BoxError, Unsent};
use http::header::HOST;
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use sync_wrapper::SyncWrapper;
use tower_service::Service;

use super::connect::Sender;
use super::error::{ConnectError, RequestTimeout};
use super::pool::{Checkout, Pool};

/// The response future of an [`EndpointService`].
pub type EndpointFuture =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send>>;

/// One endpoint's HTTP client, as the balancer's inner service: the
/// [`Connector`](super::Connector) makes one per endpoint.
///
/// **Readiness is having a connection.** `poll_ready` checks out an idle
/// connection from the endpoint's pool, or opens one; a connection that
/// cannot be made fails readiness with a [`ConnectError`], so the balancer
/// sends the request elsewhere — it was never sent. `call` then sends the
/// request on that connection, with the endpoint's authority as `Host` /
/// `:authority` unless the request names its own. If the connection closes
/// before the request is written (the server's `GOAWAY`, an idle
/// connection the server just closed), the request comes back as an
/// [`Unsent`] error and the balancer sends it again.
pub struct EndpointService<B> {
    pool: Arc<Pool<B>>,
    // Sync for the balancer's snapshot, which shares services between
    // threads; only this clone ever touches its checkout.
    state: SyncWrapper<State<B>>,
}

enum State<B> {
    Idle,
    Waiting(Checkout<B>),
    Ready(Sender<B>),
}

impl<B> EndpointService<B> {
    pub(crate) fn new(pool: Arc<Pool<B>>) -> Self {
        EndpointService {
            pool,
            state: SyncWrapper::new(State::Idle),
        }
    }
}

impl<B> Clone for EndpointService<B> {
    fn clone(&self) -> Self {
        EndpointService {
            pool: self.pool.clone(),
            state: SyncWrapper::new(State::Idle),
        }
    }
}

impl<B> fmt::Debug for EndpointService<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointService")
            .field("addr", &self.pool.addr)
            .field("authority", &self.pool.authority)
            .finish()
    }
}

impl<B> Service<Request<B>> for EndpointService<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let state = self.state.get_mut();
        // A connection taken from the pool may turn out closed: try the
        // next one, then a new one. A new one that closes before its first
        // request fails readiness (the server accepts and hangs up).
        let mut fresh = false;
        loop {
            match state {
                State::Idle => {
                    *state = match self.pool.checkout() {
                        Checkout::Ready(sender) => State::Ready(sender),
                        waiting => State::Waiting(waiting),
                    }
                }
                // Never stored: a ready checkout becomes `State::Ready`.
                State::Waiting(Checkout::Ready(_)) => *state = State::Idle,
                State::Waiting(Checkout::Connect(connecting)) => {
                    let result = std::task::ready!(connecting.as_mut().poll(cx));
                    fresh = true;
                    match result {
                        Ok(sender) => *state = State::Ready(sender),
                        Err(e) => {
                            *state = State::Idle;
                            return Poll::Ready(Err(e.into()));
                        }
                    }
                }
                State::Waiting(Checkout::Join(joining)) => {
                    let result = std::task::ready!(Pin::new(&mut *joining).poll(cx));
                    self.pool.joined(joining, &result);
                    fresh = true;
                    match result {
                        Ok(sender) => *state = State::Ready(Sender::Http2(sender)),
                        Err(e) => {
                            *state = State::Idle;
                            return Poll::Ready(Err(e.into()));
                        }
                    }
                }
                State::Ready(sender) => {
                    let ready = match sender {
                        Sender::Http1(s) => s.poll_ready(cx),
                        Sender::Http2(s) => s.poll_ready(cx),
                    };
                    match std::task::ready!(ready) {
                        Ok(()) => return Poll::Ready(Ok(())),
                        Err(e) if fresh => {
                            *state = State::Idle;
                            let error = ConnectError::handshake(self.pool.addr, e);
                            return Poll::Ready(Err(error.into()));
                        }
                        Err(_) => *state = State::Idle,
                    }
                }
            }
        }
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let pool = self.pool.clone();
        let sender = match std::mem::replace(self.state.get_mut(), State::Idle) {
            State::Ready(sender) => sender,
            other => {
                *self.state.get_mut() = other;
                return Box::pin(std::future::ready(Err(
                    "EndpointService::call without a ready connection (poll_ready first)".into(),
                )));
            }
        };
        let timeout = pool.config.request_timeout;
        let addr = pool.addr;
        if req.uri().scheme() == Some(&Scheme::HTTPS) && pool.tls.is_none() {
            return Box::pin(std::future::ready(Err(format!(
                "{} asks for https, but this client has no TLS configured (ConnectionConfig::tls, \
                 feature `tls`); it was not sent in plain text",
                req.uri()
            )
            .into())));
        }
        let named = Named::of(&req);
        let sent = match sender {
            Sender::Http1(mut sender) => {
                to_origin_form(&mut req, &pool);
                let sent = sender.try_send_request(req);
                pool.put_back(sender);
                futures_util::future::Either::Left(sent)
            }
            Sender::Http2(mut sender) => {
                to_absolute_form(&mut req, &pool);
                futures_util::future::Either::Right(sender.try_send_request(req))
            }
        };
        Box::pin(async move {
            let response = match timeout {
                None => sent.await,
                Some(limit) => match tokio::time::timeout(limit, sent).await {
                    Ok(response) => response,
                    Err(_) => return Err(RequestTimeout::new(addr, limit).into()),
                },
            };
            // A request the connection never wrote (it closed first) goes
            // back to the balancer, which sends it again.
            response.map_err(|mut e| match e.take_message() {
                Some(mut req) => {
                    named.restore(&mut req);
                    BoxError::from(Unsent::new(req, e.into_error()))
                }
                None => BoxError::from(e.into_error()),
            })
        })
    }
}

/// What a request named itself before it was addressed to an endpoint,
/// restored if it comes back unsent: the next endpoint must not get this
/// one's `Host`. In the common case (a path, no `Host`) nothing is copied.
struct Named {
    /// The URI, if it named a scheme or an authority; a path is kept by
    /// the request itself.
    absolute: Option<Uri>,
    host: Option<http::HeaderValue>,
}

impl Named {
    fn of<B>(req: &Request<B>) -> Self {
        let uri = req.uri();
        Named {
            absolute: (uri.scheme().is_some() || uri.authority().is_some()).then(|| uri.clone()),
            host: req.headers().get(HOST).cloned(),
        }
    }

    fn restore<B>(self, req: &mut Request<B>) {
        *req.uri_mut() = match self.absolute {
            Some(uri) => uri,
            None => Uri::from(
                req.uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            ),
        };
        match self.host {
            Some(host) => req.headers_mut().insert(HOST, host),
            None => req.headers_mut().remove(HOST),
        };
    }
}

/// HTTP/1: the request line carries the path; `Host` the authority (the
/// request's own `Host`, else its URI's authority, else the endpoint's).
fn to_origin_form<B>(req: &mut Request<B>, pool: &Pool<B>) {
    if !req.headers().contains_key(HOST) {
        let host = req
            .uri()
            .authority()
            .and_then(|a| http::HeaderValue::from_str(host_of(a)).ok())
            .unwrap_or_else(|| pool.host.clone());
        req.headers_mut().insert(HOST, host);
    }
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(path);
    }
}

/// HTTP/2: the URI carries scheme and authority (`:authority` from the
/// request's own `Host`, else its URI's authority, else the endpoint's).
fn to_absolute_form<B>(req: &mut Request<B>, pool: &Pool<B>) {
    let authority = match req.headers_mut().remove(HOST) {
        Some(host) => host.to_str().ok().and_then(|h| h.parse().ok()),
        None => None,
    }
    .or_else(|| {
        let authority = req.uri().authority()?;
        let host = host_of(authority);
        // Credentials in a URI never travel in `:authority` (RFC 9113).
        if host.len() == authority.as_str().len() {
            Some(authority.clone())
        } else {
            host.parse().ok()
        }
    })
    .unwrap_or_else(|| pool.authority.clone());
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    if parts.scheme.is_none() {
        parts.scheme = Some(if pool.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        });
    }
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
}

/// An authority without its `user:password@` part, if any: credentials in
/// a URI are never sent as `Host` or `:authority`.
fn host_of(authority: &http::uri::Authority) -> &str {
    let text = authority.as_str();
    text.rsplit_once('@').map_or(text, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ConnectionConfig;

    fn pool() -> Pool<http_body_util::Empty<bytes::Bytes>> {
        Pool::new(
            "127.0.0.1:8080".parse().unwrap(),
            ConnectionConfig::default(),
            "orders.internal:8080".parse().unwrap(),
        )
    }

    fn request(uri: &str) -> Request<http_body_util::Empty<bytes::Bytes>> {
        Request::get(uri).body(Default::default()).unwrap()
    }

    #[test]
    fn http1_keeps_the_logical_host() {
        let pool = pool();
        let mut req = request("/orders?id=1");
        to_origin_form(&mut req, &pool);
        assert_eq!(req.uri(), "/orders?id=1");
        assert_eq!(req.headers()[HOST], "orders.internal:8080");

        let mut req = request("http://api.example/x");
        to_origin_form(&mut req, &pool);
        assert_eq!(req.uri(), "/x");
        assert_eq!(req.headers()[HOST], "api.example");

        let mut req = request("/y");
        req.headers_mut()
            .insert(HOST, "named.example".parse().unwrap());
        to_origin_form(&mut req, &pool);
        assert_eq!(req.headers()[HOST], "named.example");

        let mut req = request("http://user:secret@api.example:8080/z");
        to_origin_form(&mut req, &pool);
        assert_eq!(req.headers()[HOST], "api.example:8080", "no credentials");
    }

    #[test]
    fn a_request_given_back_names_itself_again() {
        let pool = pool();
        for uri in ["/orders?id=1", "http://api.example/x"] {
            for host in [None, Some("named.example")] {
                let fresh = || {
                    let mut req = request(uri);
                    if let Some(host) = host {
                        req.headers_mut().insert(HOST, host.parse().unwrap());
                    }
                    req
                };
                for form in [to_origin_form::<_>, to_absolute_form::<_>] {
                    let mut req = fresh();
                    let named = Named::of(&req);
                    form(&mut req, &pool);
                    named.restore(&mut req);
                    assert_eq!(req.uri(), fresh().uri(), "{uri} {host:?}");
                    assert_eq!(req.headers().get(HOST), fresh().headers().get(HOST));
                }
            }
        }
    }

    #[test]
    fn http2_carries_the_authority_in_the_uri() {
        let pool = pool();
        let mut req = request("/orders");
        to_absolute_form(&mut req, &pool);
        assert_eq!(req.uri(), "http://orders.internal:8080/orders");
        assert!(!req.headers().contains_key(HOST));

        let mut req = request("/y");
        req.headers_mut()
            .insert(HOST, "named.example".parse().unwrap());
        to_absolute_form(&mut req, &pool);
        assert_eq!(req.uri(), "http://named.example/y");
        assert!(!req.headers().contains_key(HOST));

        let mut req = request("http://user:secret@api.example/z");
        to_absolute_form(&mut req, &pool);
        assert_eq!(req.uri(), "http://api.example/z", "no credentials");
    }
}
