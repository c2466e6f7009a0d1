use std::net::SocketAddr;
use std::time::Duration;

use fulcrum_core::BoxError;
use http_body::Body;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::error::ConnectError;
use super::{Protocol, TlsTarget};

/// An open connection's request handle.
pub(crate) enum Sender<B> {
    Http1(http1::SendRequest<B>),
    Http2(http2::SendRequest<B>),
}

/// HTTP/2 connections send a PING after this long without traffic, so a
/// peer that vanished is noticed even while idle.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Opens a connection to `addr` (with TLS for `tls`) and runs its
/// handshakes, all within `timeout`; the connection itself runs on a task
/// of its own until every handle to it is dropped or the peer closes it.
pub(crate) async fn connect<B>(
    addr: SocketAddr,
    protocol: Protocol,
    timeout: Duration,
    tls: Option<TlsTarget>,
) -> Result<Sender<B>, ConnectError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let open = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ConnectError::io(addr, e))?;
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        match tls {
            None => handshake(TokioIo::new(stream), protocol, addr).await,
            #[cfg(feature = "tls")]
            Some(tls) => {
                let stream = tls
                    .connect(stream)
                    .await
                    .map_err(|e| ConnectError::tls(addr, e))?;
                handshake(TokioIo::new(stream), protocol, addr).await
            }
            #[cfg(not(feature = "tls"))]
            Some(never) => match never {},
        }
    };
    match tokio::time::timeout(timeout, open).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::timed_out(addr, timeout)),
    }
}

/// The HTTP handshake on an open connection.
async fn handshake<IO, B>(
    io: TokioIo<IO>,
    protocol: Protocol,
    addr: SocketAddr,
) -> Result<Sender<B>, ConnectError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    {
        match protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io)
                    .await
                    .map_err(|e| ConnectError::handshake(addr, e))?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%addr, error = %e, "HTTP/1 connection ended");
                    }
                });
                Ok(Sender::Http1(sender))
            }
            Protocol::Http2 => {
                let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .keep_alive_interval(H2_KEEP_ALIVE)
                    .handshake(io)
                    .await
                    .map_err(|e| ConnectError::handshake(addr, e))?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%addr, error = %e, "HTTP/2 connection ended");
                    }
                });
                Ok(Sender::Http2(sender))
            }
        }
    }
}
