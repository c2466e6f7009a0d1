use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Instant;

use futures_util::future::{FutureExt, Shared};
use http::uri::Authority;
use http::HeaderValue;
use hyper::client::conn::{http1, http2};

use super::connect::{connect, Sender};
use super::error::ConnectError;
use super::{ConnectionConfig, Protocol, TlsTarget};

type H2Connect<B> =
    Pin<Box<dyn Future<Output = Result<http2::SendRequest<B>, ConnectError>> + Send>>;

/// An HTTP/2 connection being made, shared by every request waiting for it.
pub(crate) type Joining<B> = Shared<H2Connect<B>>;

/// One endpoint's connections, shared by every clone of its service.
///
/// The lock guards only the list of connections, never I/O: a checkout
/// holds it for a scan of this endpoint's open connections.
pub(crate) struct Pool<B> {
    pub(crate) addr: SocketAddr,
    pub(crate) config: ConnectionConfig,
    /// `:authority` for requests that do not name their own.
    pub(crate) authority: Authority,
    /// The same, as a `Host` header.
    pub(crate) host: HeaderValue,
    /// With TLS: the configuration and the name to verify.
    pub(crate) tls: Option<TlsTarget>,
    /// Open HTTP/1 connections: idle ones, and busy ones put back as soon
    /// as their request was sent (their handle says when they are ready
    /// again, after the response body has been read).
    http1: Mutex<VecDeque<Kept<B>>>,
    http2: Mutex<H2<B>>,
}

struct Kept<B> {
    sender: http1::SendRequest<B>,
    last_used: Instant,
}

struct H2<B> {
    sender: Option<http2::SendRequest<B>>,
    connecting: Option<Joining<B>>,
}

/// What a request needs to be sent: a connection now, or one on its way.
pub(crate) enum Checkout<B> {
    Ready(Sender<B>),
    Connect(Pin<Box<dyn Future<Output = Result<Sender<B>, ConnectError>> + Send>>),
    Join(Joining<B>),
}

impl<B> Pool<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<fulcrum_core::BoxError>,
{
    pub(crate) fn new(addr: SocketAddr, config: ConnectionConfig, authority: Authority) -> Self {
        let host = HeaderValue::from_str(authority.as_str())
            .expect("an authority is a valid header value");
        #[cfg(feature = "tls")]
        let tls = config
            .tls
            .as_ref()
            .map(|tls| TlsTarget::new(tls, config.protocol, &authority));
        #[cfg(not(feature = "tls"))]
        let tls = None;
        Pool {
            addr,
            config,
            authority,
            host,
            tls,
            http1: Mutex::new(VecDeque::new()),
            http2: Mutex::new(H2 {
                sender: None,
                connecting: None,
            }),
        }
    }

    /// A connection ready for a request, or how to get one.
    pub(crate) fn checkout(&self) -> Checkout<B> {
        match self.config.protocol {
            Protocol::Http1 => match self.idle_http1() {
                Some(sender) => Checkout::Ready(Sender::Http1(sender)),
                None => Checkout::Connect(Box::pin(connect(
                    self.addr,
                    Protocol::Http1,
                    self.config.connect_timeout,
                    self.tls.clone(),
                ))),
            },
            Protocol::Http2 => {
                let mut h2 = lock(&self.http2);
                if let Some(sender) = h2.sender.as_ref().filter(|s| !s.is_closed()) {
                    return Checkout::Ready(Sender::Http2(sender.clone()));
                }
                h2.sender = None;
                let joining = h2.connecting.get_or_insert_with(|| {
                    let (addr, timeout) = (self.addr, self.config.connect_timeout);
                    let tls = self.tls.clone();
                    let connecting: H2Connect<B> = Box::pin(async move {
                        match connect(addr, Protocol::Http2, timeout, tls).await? {
                            Sender::Http2(sender) => Ok(sender),
                            Sender::Http1(_) => unreachable!("asked for HTTP/2"),
                        }
                    });
                    connecting.shared()
                });
                Checkout::Join(joining.clone())
            }
        }
    }

    /// An HTTP/2 connection was made (or failed): later requests use it
    /// (or try again).
    pub(crate) fn joined(
        &self,
        joining: &Joining<B>,
        result: &Result<http2::SendRequest<B>, ConnectError>,
    ) {
        let mut h2 = lock(&self.http2);
        // A late waiter of an older connect must not clear a newer one.
        if h2.connecting.as_ref().is_some_and(|c| c.ptr_eq(joining)) {
            h2.connecting = None;
        }
        if let Ok(sender) = result {
            if h2.sender.as_ref().is_none_or(|s| s.is_closed()) {
                h2.sender = Some(sender.clone());
            }
        }
    }

    /// The most recently used HTTP/1 connection that is ready for a
    /// request; closed connections, and ones idle past the timeout, are
    /// dropped on the way.
    fn idle_http1(&self) -> Option<http1::SendRequest<B>> {
        let now = Instant::now();
        let idle_timeout = self.config.idle_timeout;
        let mut kept = lock(&self.http1);
        let expired =
            |k: &Kept<B>| k.sender.is_ready() && now.duration_since(k.last_used) > idle_timeout;
        kept.retain(|k| !k.sender.is_closed() && !expired(k));
        let i = kept.iter().rposition(|k| k.sender.is_ready())?;
        kept.remove(i).map(|k| k.sender)
    }

    /// Keeps an HTTP/1 connection whose request was just sent: it serves
    /// the next request once its response has been read.
    pub(crate) fn put_back(&self, sender: http1::SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let mut kept = lock(&self.http1);
        kept.push_back(Kept {
            sender,
            last_used: Instant::now(),
        });
        // Only idle connections count against the limit: busy ones are
        // serving requests and come back when their responses are read.
        let max_idle = self.config.max_idle.max(1);
        while kept.iter().filter(|k| k.sender.is_ready()).count() > max_idle {
            match kept.iter().position(|k| k.sender.is_ready()) {
                Some(i) => drop(kept.remove(i)),
                None => break,
            }
        }
    }
}

/// The pool's lists stay consistent across a panic elsewhere (every
/// critical section is a few field updates), so a poisoned lock is used
/// as is.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
