//! `fulcrum bench --protocol grpc`, run as a user runs it: the real binary
//! against tonic servers in this process on loopback.

mod support;

use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_grpc::demo::greeter::greeter_server::GreeterServer;
use fulcrum_grpc::demo::DemoGreeter;
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

async fn fulcrum(args: &[&str]) -> Output {
    support::fulcrum_within(Duration::from_secs(120), args).await
}

/// A tonic server of `greeter.Greeter` and `grpc.health.v1`, serving or
/// not; counts `SayHello` calls.
async fn server(serving: bool) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let greeter = DemoGreeter::new(addr.to_string()).delay(Duration::from_millis(1));
    let calls = greeter.calls();
    let (reporter, health) = tonic_health::server::health_reporter();
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    tokio::spawn(async move {
        let _keep = reporter;
        let _ = tonic::transport::Server::builder()
            .add_service(GreeterServer::new(greeter))
            .add_service(health)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    (addr, calls)
}

/// A static target naming `servers`.
fn target_of(servers: &[(SocketAddr, Arc<AtomicU64>)]) -> String {
    let addrs: Vec<String> = servers.iter().map(|(a, _)| a.to_string()).collect();
    addrs.join(",")
}

fn json_report(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

fn requests_to(report: &Value, addr: SocketAddr) -> u64 {
    report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["addr"] == addr.to_string())
        .map_or(0, |e| e["requests"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_grpc_calls_the_method_on_every_server() {
    let servers = [server(true).await, server(true).await, server(true).await];
    let target = target_of(&servers);
    let out = fulcrum(&[
        "bench",
        &target,
        "--protocol",
        "grpc",
        "--grpc-method",
        "/greeter.Greeter/SayHello",
        "--policy",
        "round-robin",
        "--requests",
        "300",
        "--concurrency",
        "6",
        "--json",
    ])
    .await;
    let report = json_report(&out);
    assert_eq!(report["ok"], 300, "{report}");
    assert_eq!(report["errors"], 0);
    for (addr, calls) in &servers {
        assert_eq!(
            calls.load(Ordering::Relaxed),
            100,
            "round robin: a third each"
        );
        assert_eq!(requests_to(&report, *addr), 100);
    }

    // The default method is the standard health check.
    let out = fulcrum(&[
        "bench",
        &target,
        "--protocol",
        "grpc",
        "--requests",
        "30",
        "--json",
    ])
    .await;
    assert_eq!(json_report(&out)["ok"], 30);

    // A method the servers do not have: every call fails, exit 1, and
    // the status says why.
    let out = fulcrum(&[
        "bench",
        &target,
        "--protocol",
        "grpc",
        "--grpc-method",
        "/greeter.Greeter/Missing",
        "--requests",
        "10",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("grpc-status 12"), "UNIMPLEMENTED: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_grpc_with_health_checks_spares_a_not_serving_server() {
    let servers = [server(true).await, server(true).await, server(false).await];
    let target = target_of(&servers);
    let out = fulcrum(&[
        "bench",
        &target,
        "--protocol",
        "grpc",
        "--grpc-method",
        "/greeter.Greeter/SayHello",
        "--health-check",
        "grpc",
        "--requests",
        "2000",
        "--concurrency",
        "8",
        "--json",
    ])
    .await;
    let report = json_report(&out);
    assert_eq!(report["ok"], 2000, "{report}");
    let sick = servers[2].1.load(Ordering::Relaxed);
    assert!(sick < 100, "NOT_SERVING got {sick} of 2000 calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grpc_arguments_exit_2_with_one_line() {
    for args in [
        &["bench", "127.0.0.1:1", "--protocol", "grpc", "--path", "/x"][..],
        &[
            "bench",
            "127.0.0.1:1",
            "--protocol",
            "grpc",
            "--grpc-method",
            "Check",
        ],
        &["bench", "127.0.0.1:1", "--grpc-method", "/a.B/C"],
        &["bench", "127.0.0.1:1", "--protocol", "quic"],
        &[
            "bench",
            "127.0.0.1:1",
            "--protocol",
            "grpc",
            "--retries",
            "2",
        ],
    ] {
        let out = fulcrum(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
}
