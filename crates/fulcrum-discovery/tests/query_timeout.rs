//! `DiscoveryConfig::query_timeout` bounds one whole resolution: against a
//! resolver that never answers, discovery fails with an error naming the
//! resolver and the timeout, after about `query_timeout` and no later.
//!
//! The silent resolver is a UDP socket and a TCP listener on one port of
//! 127.0.0.1 that receive (and accept) but never reply, so that neither
//! transport fails fast with "connection refused". A slow one is the
//! in-process DNS server of `tests/dns.rs`, told to answer late.

#[path = "support/dns_server.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fulcrum_discovery::{Discovery, DiscoveryConfig, DiscoveryError};
use futures_util::StreamExt;
use hickory_server::proto::rr::RecordType;
use support::{DnsServer, Srv};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// Long enough that a resolution taking two query timeouts (one retry of
/// every query, as hickory's `attempts = 1` did) or more misses [`LATEST`]
/// by far, while leaving a generous margin for a loaded machine.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// `query_timeout` and a margin.
const LATEST: Duration = Duration::from_millis(1500);
/// Not instantly: the resolver was really waited for (timers never fire
/// early; a little slack for clock granularity).
const EARLIEST: Duration = Duration::from_millis(950);

/// A resolver that receives queries and never answers them. Its tasks end
/// with the test's runtime.
struct SilentResolver {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for SilentResolver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl SilentResolver {
    async fn start() -> SilentResolver {
        for _ in 0..50 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            let Ok(tcp) = TcpListener::bind(addr).await else {
                continue;
            };
            let udp_task = tokio::spawn(async move {
                // Read and drop every query, so the socket stays healthy.
                let mut buf = [0u8; 4096];
                while udp.recv_from(&mut buf).await.is_ok() {}
            });
            let tcp_task = tokio::spawn(async move {
                // Accept and hold every connection open, silently.
                let mut held = Vec::new();
                while let Ok((conn, _)) = tcp.accept().await {
                    held.push(conn);
                }
            });
            return SilentResolver {
                addr,
                tasks: vec![udp_task, tcp_task],
            };
        }
        panic!("no free port for both UDP and TCP");
    }
}

fn config() -> DiscoveryConfig {
    DiscoveryConfig {
        query_timeout: QUERY_TIMEOUT,
        // After the first error, do not retry within the test's time.
        error_backoff: Duration::from_secs(60),
        ..DiscoveryConfig::default()
    }
}

/// The error is a resolver failure for `name` that says which resolver
/// did not answer within how long, and what to do.
fn assert_timeout_error(err: &DiscoveryError, name: &str, resolver: SocketAddr) {
    let DiscoveryError::Resolve { name: got, reason } = err else {
        panic!("expected a resolver failure, got {err:?}");
    };
    assert_eq!(got, name, "{err}");
    assert_eq!(
        reason,
        &format!("the resolver {resolver} did not answer within 1s"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "resolving `{name}` failed: the resolver {resolver} did not answer within 1s; \
             check that the resolver is reachable and answers for this name"
        )
    );
}

/// Runs `resolution` (bounded by a hard ceiling so that the test cannot
/// hang), and checks it took between [`EARLIEST`] and [`LATEST`].
async fn timed<T>(what: &str, resolution: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = timeout(Duration::from_secs(10), resolution)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"));
    let took = started.elapsed();
    assert!(
        took <= LATEST,
        "{what} took {took:?}, more than query_timeout ({QUERY_TIMEOUT:?}) allows"
    );
    assert!(
        took >= EARLIEST,
        "{what} failed after only {took:?}: the resolver was not waited for"
    );
    out
}

#[tokio::test]
async fn resolve_against_a_silent_resolver_fails_within_the_query_timeout() {
    let silent = SilentResolver::start().await;
    let discovery = Discovery::new(&format!("dns://{}/api.internal:8080", silent.addr))
        .unwrap()
        .with_config(config());
    let err = timed("resolve()", discovery.resolve())
        .await
        .expect_err("nothing answered");
    assert_timeout_error(&err, "api.internal", silent.addr);
}

#[tokio::test]
async fn srv_resolve_against_a_silent_resolver_fails_within_the_query_timeout() {
    let silent = SilentResolver::start().await;
    let discovery = Discovery::new(&format!("dns+srv://{}/_http._tcp.internal", silent.addr))
        .unwrap()
        .with_config(config());
    let err = timed("SRV resolve()", discovery.resolve())
        .await
        .expect_err("nothing answered");
    assert_timeout_error(&err, "_http._tcp.internal", silent.addr);
}

#[tokio::test]
async fn the_stream_reports_a_silent_resolver_within_the_query_timeout() {
    let silent = SilentResolver::start().await;
    let (mut stream, _refresh) =
        Discovery::new(&format!("dns://{}/api.internal:8080", silent.addr))
            .unwrap()
            .with_config(config())
            .stream();
    let first = timed("the stream's first item", stream.next())
        .await
        .expect("the stream goes on after an error");
    let err = first.expect_err("nothing answered");
    assert_timeout_error(&err, "api.internal", silent.addr);
}

#[tokio::test]
async fn srv_and_target_lookups_share_one_query_timeout() {
    // The SRV answer comes late (but within the timeout); its target has no
    // address in the answer, and its address lookups are never answered in
    // time. Each query alone is within `query_timeout`; together they are
    // not, and the resolution fails at `query_timeout`.
    let dns = DnsServer::start().await;
    dns.set_srv("_http._tcp", &[Srv(0, 1, 80, "slow")], 30)
        .await;
    dns.delay(RecordType::SRV, QUERY_TIMEOUT * 8 / 10);
    dns.delay(RecordType::A, Duration::from_secs(30));
    dns.delay(RecordType::AAAA, Duration::from_secs(30));
    let discovery = Discovery::new(&format!("dns+srv://{}/_http._tcp.test.internal", dns.addr))
        .unwrap()
        .with_config(config());
    let err = timed("SRV resolve() with a slow target", discovery.resolve())
        .await
        .expect_err("the target's address never came");
    assert_timeout_error(&err, "_http._tcp.test.internal", dns.addr);
}
