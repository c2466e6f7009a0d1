//! Driving load through a balanced client: the engine under `fulcrum bench`
//! and `fulcrum demo`.

mod progress;
mod report;
mod svg;

pub(crate) use progress::Progress;
pub(crate) use report::Report;
pub(crate) use svg::plot_cdf;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use fulcrum_balance::key::{hash_bytes, KeyExtractor};
use fulcrum_http::Client;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};

/// The clients `bench` and `demo` drive.
pub(crate) type LoadClient = Client<Full<Bytes>, HashHeader>;

/// Keys a request by one header (the `--hash-header`), or by nothing.
#[derive(Clone, Debug, Default)]
pub(crate) struct HashHeader(pub(crate) Option<HeaderName>);

impl KeyExtractor<Request<Full<Bytes>>> for HashHeader {
    fn key(&self, req: &Request<Full<Bytes>>) -> Option<u64> {
        let value = req.headers().get(self.0.as_ref()?)?;
        Some(hash_bytes(value.as_bytes()))
    }
}

/// What to send.
#[derive(Clone, Debug)]
pub(crate) struct Load {
    pub(crate) requests: u64,
    pub(crate) concurrency: usize,
    /// The request path: a gRPC method's with `grpc`.
    pub(crate) path: String,
    /// Unary gRPC calls with an empty message, instead of `GET`s.
    pub(crate) grpc: bool,
    /// Request `i` carries this header with the value `key-{i mod keys}`.
    pub(crate) hash: Option<(HeaderName, u64)>,
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: std::time::Duration,
    /// Some errors, for the user to see what went wrong.
    pub(crate) first_errors: Vec<String>,
}

/// How long one request, body included, may take before it counts as an
/// error.
const REQUEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Waits for Ctrl-C, then sets `stop` (the run ends after the requests in
/// flight, each bounded by the request limit); a second Ctrl-C exits at
/// once with status 130.
pub(crate) fn stop_on_ctrl_c(stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::Relaxed);
            eprintln!("fulcrum: stopping after the requests in flight (Ctrl-C again to quit now)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    })
}

/// Latencies are recorded in microseconds, up to an hour.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Sends `load` through `client` from `concurrency` tasks; each request
/// counts until its body has been read. `done` counts finished requests as
/// they finish; `stop` ends the run early (Ctrl-C).
pub(crate) async fn drive(
    client: &LoadClient,
    load: &Load,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Measured {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..load.concurrency.max(1))
        .map(|_| {
            let (client, load) = (client.clone(), load.clone());
            let (next, done, stop) = (next.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut m = Measured {
                    latency_us: histogram(),
                    ok: 0,
                    errors: 0,
                    elapsed: Default::default(),
                    first_errors: Vec::new(),
                };
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= load.requests {
                        break;
                    }
                    let t = Instant::now();
                    // Headers and body together: a server that stalls a
                    // body half-way must not stall the run.
                    let result =
                        match tokio::time::timeout(REQUEST_LIMIT, send(&client, &load, i)).await {
                            Ok(result) => result,
                            Err(_) => Err(format!("no complete response within {REQUEST_LIMIT:?}")),
                        };
                    m.latency_us
                        .saturating_record(t.elapsed().as_micros().max(1) as u64);
                    match result {
                        Ok(()) => m.ok += 1,
                        Err(e) => {
                            m.errors += 1;
                            if m.first_errors.len() < 3 {
                                m.first_errors.push(e);
                            }
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                m
            })
        })
        .collect();
    let mut total = Measured {
        latency_us: histogram(),
        ok: 0,
        errors: 0,
        elapsed: Default::default(),
        first_errors: Vec::new(),
    };
    for worker in workers {
        // A worker cannot panic short of a bug; its requests then count as lost.
        let Ok(m) = worker.await else { continue };
        let _ = total.latency_us.add(&m.latency_us);
        total.ok += m.ok;
        total.errors += m.errors;
        for e in m.first_errors {
            if total.first_errors.len() < 3 {
                total.first_errors.push(e);
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// The method `bench --protocol grpc` calls by default: any server with
/// the standard health service answers it, and an empty message is a
/// valid request for it (the whole server's health).
pub(crate) const HEALTH_CHECK_METHOD: &str = "/grpc.health.v1.Health/Check";

/// One length-prefixed gRPC message: uncompressed, zero bytes long (an
/// empty protobuf message).
const EMPTY_GRPC_MESSAGE: &[u8] = &[0, 0, 0, 0, 0];

/// One request: `Ok` for a 2xx–4xx answer read to its end (for gRPC, a
/// `grpc-status` of 0).
async fn send(client: &LoadClient, load: &Load, i: u64) -> Result<(), String> {
    let mut req = if load.grpc {
        Request::post(load.path.as_str())
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(Full::new(Bytes::from_static(EMPTY_GRPC_MESSAGE)))
    } else {
        Request::get(load.path.as_str()).body(Full::default())
    }
    .map_err(|e| e.to_string())?;
    if let Some((name, keys)) = &load.hash {
        let value = format!("key-{}", i % keys.max(&1));
        if let Ok(value) = HeaderValue::from_str(&value) {
            req.headers_mut().insert(name.clone(), value);
        }
    }
    let response = client.request(req).await.map_err(|e| error_chain(&e))?;
    let (head, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("response body from the server broke off: {e}"))?;
    if load.grpc {
        // Trailers-only responses carry the status in their headers.
        let trailers = body.trailers();
        return grpc_status(trailers.unwrap_or(&head.headers), &head);
    }
    if head.status.is_server_error() {
        return Err(format!("the server answered {}", head.status));
    }
    Ok(())
}

/// `Ok` for `grpc-status: 0`; else the status and its message.
fn grpc_status(trailers: &http::HeaderMap, head: &http::response::Parts) -> Result<(), String> {
    let field = |name: &str| {
        trailers
            .get(name)
            .or_else(|| head.headers.get(name))
            .and_then(|v| v.to_str().ok())
    };
    match field("grpc-status") {
        Some("0") => Ok(()),
        Some(code) => Err(format!(
            "the server answered grpc-status {code}: {}",
            field("grpc-message").unwrap_or("")
        )),
        None => Err(format!(
            "the server answered HTTP {} without a grpc-status: is it a gRPC server?",
            head.status
        )),
    }
}

/// An error and its causes, on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}
