//! The demo's backends: HTTP servers on loopback, each with a part to play.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;

/// What a backend does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    /// Answers in about 2 ms.
    Normal,
    /// Answers in about 40 ms: 20× slower.
    Slow,
    /// Answers 503 to one request in five.
    Failing,
    /// Normal, but dies a third of the way through each run and comes
    /// back at two thirds.
    Dies,
}

const NORMAL: Duration = Duration::from_millis(2);
const SLOW: Duration = Duration::from_millis(40);

/// A running backend.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    pub(crate) role: Role,
    alive: Arc<AtomicBool>,
    down: tokio::sync::watch::Sender<bool>,
}

impl Backend {
    pub(crate) async fn start(role: Role) -> Result<Backend, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (down, _) = tokio::sync::watch::channel(false);
        let backend = Backend {
            addr,
            role,
            alive: Arc::new(AtomicBool::new(true)),
            down,
        };
        backend.serve(listener);
        Ok(backend)
    }

    fn serve(&self, listener: TcpListener) {
        let (role, alive) = (self.role, self.alive.clone());
        let mut down = self.down.subscribe();
        let count = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = down.wait_for(|&d| d) => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (count, alive) = (count.clone(), alive.clone());
                let mut down = down.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let n = count.fetch_add(1, Ordering::Relaxed);
                        let healthy = alive.load(Ordering::Relaxed);
                        async move { Ok::<_, Infallible>(answer(role, n, healthy, req).await) }
                    });
                    let serve = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = serve => {}
                        // A crash: open connections drop mid-request.
                        _ = down.wait_for(|&d| d) => {}
                    }
                });
            }
        });
    }

    /// Crashes: stops listening and drops every open connection.
    pub(crate) fn kill(&self) {
        self.alive.store(false, Ordering::Relaxed);
        // `send_replace`: the value changes even with nobody listening.
        self.down.send_replace(true);
    }

    /// Comes back on the same address.
    pub(crate) async fn revive(&self) -> Result<(), String> {
        if !*self.down.borrow() {
            return Ok(());
        }
        self.down.send_replace(false);
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                self.alive.store(true, Ordering::Relaxed);
                self.serve(listener);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("could not listen on {} again", self.addr))
    }
}

async fn answer(
    role: Role,
    n: u64,
    healthy: bool,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let status = |s: StatusCode| {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = s;
        r
    };
    if req.uri().path() == "/health" {
        return status(if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        });
    }
    match role {
        Role::Failing if n.is_multiple_of(5) => status(StatusCode::SERVICE_UNAVAILABLE),
        Role::Slow => {
            tokio::time::sleep(SLOW).await;
            Response::new(Full::new(Bytes::from_static(b"ok")))
        }
        _ => {
            tokio::time::sleep(NORMAL).await;
            Response::new(Full::new(Bytes::from_static(b"ok")))
        }
    }
}
