//! Real HTTP on loopback for the end-to-end tests and the quickstart: hyper
//! servers with configurable behaviour, and a per-endpoint hyper-util client
//! that the balancer makes one of per endpoint.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use fulcrum::classify::ClassifyHttp;
use fulcrum::{make_fn, Endpoint, MakeFn};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What a test backend does with each request.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answer 200 with its address after this delay.
    Delay(Duration),
    /// Answer 503 at once.
    Unavailable,
    /// Accept the connection and close it without answering.
    Reset,
    /// Answer 200 at once with a body of this many chunks, one every 50 ms.
    Stream(u32),
    /// Answer 503 to this percentage of requests, spread out (never two
    /// in a row below 50 %), 200 to the others.
    Failing(u32),
    /// Accept the request and never answer.
    Hang,
    /// While `healthy` is false, answer 429 with `Retry-After` of this many
    /// seconds (an overloaded server shedding load); 200 otherwise.
    Shedding(u32),
    /// Answer 200 with one chunk of body, then reset the connection.
    ResetMidBody,
    /// Answer 429 with this `Retry-After` value, valid or not.
    RetryAfter(&'static str),
}

fn full(text: String) -> http_body_util::combinators::BoxBody<Bytes, Infallible> {
    Full::new(Bytes::from(text)).boxed()
}

/// A hyper server on 127.0.0.1, on a port the OS picks.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    /// Connections accepted.
    pub connections: Arc<AtomicU64>,
    /// The `Host` (HTTP/1) or `:authority` (HTTP/2) of the last request.
    pub last_host: Arc<std::sync::Mutex<String>>,
    /// What `GET /health` answers: 200 while true, 503 otherwise. Health
    /// checks are not counted as hits.
    pub healthy: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    killed: tokio::sync::watch::Sender<bool>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Backend {
    pub async fn start(behaviour: Behaviour) -> Backend {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), behaviour)
            .await
            .expect("a free port on 127.0.0.1")
    }

    /// A server on `addr` (port 0 for any), or `None` if it is taken.
    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Option<Backend> {
        let listener = TcpListener::bind(addr).await.ok()?;
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let connections = Arc::new(AtomicU64::new(0));
        let accepted = connections.clone();
        let last_host = Arc::new(std::sync::Mutex::new(String::new()));
        let seen_host = last_host.clone();
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let health = healthy.clone();
        let (killed, kill) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let hits = counter.clone();
                let health = health.clone();
                let seen_host = seen_host.clone();
                let mut kill = kill.clone();
                tokio::spawn(async move {
                    if let Behaviour::Reset = behaviour {
                        hits.fetch_add(1, Ordering::Relaxed);
                        // A zero linger makes the close an RST: the client sees a reset.
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        return;
                    }
                    let (reset_tx, mut reset_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let hits = hits.clone();
                        let health = health.clone();
                        let reset_tx = reset_tx.clone();
                        let host = req
                            .headers()
                            .get(hyper::header::HOST)
                            .and_then(|h| h.to_str().ok())
                            .map(str::to_owned)
                            .or_else(|| req.uri().authority().map(|a| a.to_string()))
                            .unwrap_or_default();
                        *seen_host.lock().unwrap() = host.clone();
                        async move {
                            if req.uri().path() == "/health" {
                                let status = if health.load(Ordering::Relaxed) {
                                    StatusCode::OK
                                } else {
                                    StatusCode::SERVICE_UNAVAILABLE
                                };
                                let response = Response::builder()
                                    .status(status)
                                    .body(full(String::new()))
                                    .unwrap();
                                return Ok::<_, Infallible>(response);
                            }
                            let n = hits.fetch_add(1, Ordering::Relaxed);
                            let response = match behaviour {
                                Behaviour::Failing(p) if n * u64::from(p) % 100 >= u64::from(p) => {
                                    Response::new(full(addr.to_string()))
                                }
                                Behaviour::Hang => std::future::pending().await,
                                Behaviour::ResetMidBody => {
                                    let frames = futures_util::stream::unfold(0, move |i| {
                                        let reset_tx = reset_tx.clone();
                                        async move {
                                            if i == 1 {
                                                // The connection goes down mid-body.
                                                let _ = reset_tx.send(());
                                                std::future::pending::<()>().await;
                                            }
                                            let frame =
                                                hyper::body::Frame::data(Bytes::from("part;"));
                                            Some((Ok::<_, Infallible>(frame), i + 1))
                                        }
                                    });
                                    Response::builder()
                                        .header("content-length", "1000")
                                        .body(StreamBody::new(frames).boxed())
                                        .unwrap()
                                }
                                Behaviour::Shedding(secs) if !health.load(Ordering::Relaxed) => {
                                    Response::builder()
                                        .status(StatusCode::TOO_MANY_REQUESTS)
                                        .header("retry-after", secs.to_string())
                                        .body(full("shedding".to_owned()))
                                        .unwrap()
                                }
                                Behaviour::Shedding(_) => Response::new(full(addr.to_string())),
                                Behaviour::RetryAfter(value) => Response::builder()
                                    .status(StatusCode::TOO_MANY_REQUESTS)
                                    .header("retry-after", value)
                                    .body(full("shedding".to_owned()))
                                    .unwrap(),
                                Behaviour::Delay(d) => {
                                    // Even a zero sleep waits for the timer's
                                    // next 1 ms tick.
                                    if !d.is_zero() {
                                        tokio::time::sleep(d).await;
                                    }
                                    Response::new(full(addr.to_string()))
                                }
                                Behaviour::Stream(chunks) => {
                                    let frames =
                                        futures_util::stream::unfold(0, move |i| async move {
                                            if i == chunks {
                                                return None;
                                            }
                                            tokio::time::sleep(Duration::from_millis(50)).await;
                                            let frame =
                                                hyper::body::Frame::data(Bytes::from("chunk;"));
                                            Some((Ok::<_, Infallible>(frame), i + 1))
                                        });
                                    Response::new(StreamBody::new(frames).boxed())
                                }
                                _ => Response::builder()
                                    .status(StatusCode::SERVICE_UNAVAILABLE)
                                    .body(full("unavailable".to_owned()))
                                    .unwrap(),
                            };
                            let mut response = response;
                            if let Ok(value) = hyper::header::HeaderValue::from_str(&host) {
                                response.headers_mut().insert("x-seen-host", value);
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    // HTTP/1.1, or HTTP/2 with prior knowledge.
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let serve = builder.serve_connection(TokioIo::new(stream), service);
                    // Killed: the connection is dropped mid-request.
                    tokio::select! {
                        _ = serve => {}
                        _ = kill.wait_for(|&k| k) => {}
                        _ = reset_rx.recv() => {}
                    }
                });
            }
        });
        Some(Backend {
            addr,
            hits,
            connections,
            last_host,
            healthy,
            task,
            killed,
        })
    }

    /// Stops listening and drops every open connection, as a crashed
    /// process would.
    pub fn kill(&self) {
        self.task.abort();
        let _ = self.killed.send(true);
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

/// Three backends answering in 1 ms on 127.0.0.1, .2 and .3, all on one
/// port (A records carry addresses, not ports): the port and the backends.
pub async fn three_on_one_port() -> (u16, Vec<Backend>) {
    'port: for _ in 0..50 {
        let first = Backend::start(Behaviour::Delay(Duration::from_millis(1))).await;
        let port = first.addr.port();
        let mut backends = vec![first];
        for host in [2, 3] {
            let addr = SocketAddr::from(([127, 0, 0, host], port));
            match Backend::start_on(addr, Behaviour::Delay(Duration::from_millis(1))).await {
                Some(b) => backends.push(b),
                None => continue 'port,
            }
        }
        return (port, backends);
    }
    panic!("no port free on 127.0.0.1-3");
}

/// One endpoint's HTTP client: sends each request to its endpoint's address.
#[derive(Clone)]
pub struct EndpointClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    authority: hyper::http::uri::Authority,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<Request<Empty<Bytes>>> for EndpointClient {
    type Response = Response<Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = BoxFuture<Result<Response<Incoming>, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Empty<Bytes>>) -> Self::Future {
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(hyper::http::uri::Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some("/".parse().unwrap());
        }
        *req.uri_mut() = hyper::Uri::from_parts(parts).expect("a valid uri");
        Box::pin(self.client.request(req))
    }
}

/// Makes an [`EndpointClient`] per endpoint.
pub fn http_maker() -> MakeFn<impl FnMut(&Endpoint) -> EndpointClient + Clone> {
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http();
    make_fn(move |ep: &Endpoint| EndpointClient {
        client: client.clone(),
        authority: ep
            .addr()
            .to_string()
            .parse()
            .expect("a socket address is an authority"),
    })
}

/// 5xx and transport errors are failures; each request is tracked until
/// its response body ends.
pub fn server_errors() -> ClassifyHttp {
    ClassifyHttp
}

/// Reads a whole response body as text.
pub async fn body_text<B>(response: Response<B>) -> String
where
    B: hyper::body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Sends `n` GET requests one after another through `client` (a balancer,
/// or a layer over one), asserting that each succeeds and reading its body.
pub async fn send_ok<S>(client: &mut S, n: usize)
where
    S: tower::Service<
        Request<Empty<Bytes>>,
        Response = Response<fulcrum::classify::TrackedBody<Incoming>>,
    >,
    S::Error: std::fmt::Debug,
{
    use tower::ServiceExt;
    for _ in 0..n {
        let response = client.ready().await.unwrap().call(get("/")).await.unwrap();
        assert!(response.status().is_success());
        body_text(response).await;
    }
}

/// Requests that reached `backends`.
pub fn hits_of(backends: &[Backend]) -> u64 {
    backends.iter().map(Backend::hits).sum()
}

pub fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path).body(Empty::new()).unwrap()
}

/// A health check for the tests: `GET /health` on the endpoint, healthy on
/// 2xx. (The HTTP probe users get ships with the HTTP integration.)
/// `/health` checked every `interval`, no jitter, one probe to rise or
/// fall: a health check whose effect a test can wait for.
pub fn prompt_health_checks(interval: Duration) -> fulcrum::health::HealthChecks {
    fulcrum::health::HealthChecks::new(health_probe())
        .interval(interval)
        .jitter_percent(0)
        .rise(1)
        .fall(1)
}

pub fn health_probe() -> impl fulcrum::health::Probe {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    move |ep: &Endpoint| -> fulcrum::health::ProbeFuture {
        let uri: hyper::Uri = format!("http://{}/health", ep.addr()).parse().unwrap();
        let request = client.request(Request::get(uri).body(Empty::new()).unwrap());
        Box::pin(async move {
            let status = request.await?.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("/health answered {status}").into())
            }
        })
    }
}
