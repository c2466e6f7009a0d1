//! `fulcrum bench` and `fulcrum demo`, run as a user runs them: the real
//! binary, against HTTP servers in this process on loopback.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

async fn fulcrum(args: &[&str]) -> Output {
    support::fulcrum_within(Duration::from_secs(120), args).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An HTTP/1.1 server answering 200 after 1 ms; counts requests.
async fn server() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_: Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        async {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, hits)
}

/// Three servers, and a static target naming them.
async fn three_servers() -> (String, Vec<(SocketAddr, Arc<AtomicU64>)>) {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(server().await);
    }
    let target = servers
        .iter()
        .map(|(a, _)| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    (target, servers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_json_reports_every_request_and_every_endpoint() {
    let (target, servers) = three_servers().await;
    let out = fulcrum(&[
        "bench",
        &target,
        "--policy",
        "round-robin",
        "--requests",
        "300",
        "--concurrency",
        "8",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "policy",
        "requests",
        "ok",
        "errors",
        "duration_secs",
        "throughput_rps",
        "latency_ms",
        "endpoints",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(report["policy"], "round-robin");
    assert_eq!(report["requests"], 300);
    assert_eq!(report["ok"], 300);
    assert_eq!(report["errors"], 0);
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            report["latency_ms"][p].as_f64().unwrap() >= 1.0,
            "{p}: {report}"
        );
    }
    let endpoints = report["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3);
    for ((addr, hits), e) in servers.iter().zip(endpoints) {
        let hits = hits.load(Ordering::Relaxed);
        assert_eq!(hits, 100, "round robin: an even split");
        let reported = endpoints
            .iter()
            .find(|e| e["addr"] == addr.to_string().as_str())
            .unwrap();
        assert_eq!(reported["requests"], hits, "{e}");
        assert_eq!(reported["errors"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_with_a_hash_header_keeps_each_key_on_one_endpoint() {
    let (target, servers) = three_servers().await;
    // One key: every request goes to one endpoint.
    let out = fulcrum(&[
        "bench",
        &target,
        "--policy",
        "maglev",
        "--requests",
        "200",
        "--hash-header",
        "x-user",
        "--keys",
        "1",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut hits: Vec<u64> = servers
        .iter()
        .map(|(_, h)| h.load(Ordering::Relaxed))
        .collect();
    hits.sort_unstable();
    assert_eq!(hits, [0, 0, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_2_with_one_line() {
    let (addr, _) = server().await;
    let addr = addr.to_string();
    for (args, says) in [
        (vec!["bench", "dns:///no-port"], "port"),
        (vec!["bench", &addr, "--policy", "fastest"], "round-robin"),
        (vec!["bench", &addr, "--health-check", "ping"], "http:/path"),
        (vec!["bench", &addr, "--hedge", "soon"], "20ms"),
        (vec!["bench", &addr, "--balance-factor", "0.5"], "above 1"),
        (vec!["bench", &addr, "--protocol", "ftp"], "http or grpc"),
        (vec!["bench", &addr, "--path", "no-slash"], "/health"),
        // clap's own errors, on one line too (a bare `fulcrum` prints the
        // help instead; see below).
        (vec!["bench"], "<TARGET>"),
        (vec!["bench", &addr, "--bogus"], "--bogus"),
        (vec!["bench", &addr, "--requests", "many"], "many"),
        (vec!["frob"], "frob"),
    ] {
        let out = fulcrum(&args).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_reports_errors_and_exits_1() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = fulcrum(&["bench", &dead, "--requests", "50", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a report all the same");
    assert_eq!(report["requests"], 50);
    assert_eq!(report["errors"], 50);
    assert!(
        text(&out.stderr).contains("every request failed"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_json_and_plot() {
    let plot = std::env::temp_dir().join(format!("fulcrum-demo-{}.svg", std::process::id()));
    let plot_arg = plot.to_string_lossy().into_owned();
    let out = fulcrum(&["demo", "--json", "--requests", "300", "--plot", &plot_arg]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let demo: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let backends = demo["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 10);
    assert_eq!(backends[7]["role"], "slow");
    let runs = demo["runs"].as_array().unwrap();
    let policies: Vec<&str> = runs.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert!(
        policies.contains(&"ewma") && policies.contains(&"maglev"),
        "{policies:?}"
    );
    assert_eq!(policies.last(), Some(&"ewma+health+hedge"));
    for run in runs {
        assert_eq!(run["requests"], 300, "{run}");
        let sent: u64 = run["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["requests"].as_u64().unwrap())
            .sum();
        assert!(sent >= 300, "every request was sent somewhere: {run}");
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    let _ = std::fs::remove_file(&plot);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), runs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_is_not_an_error_and_a_bare_fulcrum_shows_it() {
    let out = fulcrum(&["--help"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("bench"), "{}", text(&out.stdout));
    let out = fulcrum(&["bench", "--help"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--grpc-method"));
    let out = fulcrum(&[]).await;
    assert_eq!(out.status.code(), Some(2), "no command is a usage error");
    assert!(text(&out.stderr).contains("Usage: fulcrum <COMMAND>"));
}

/// `--zone a` over six endpoints in zones a and b (placed by the locality
/// map): every request stays in zone a, and the report says so per zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_zone_keeps_requests_in_the_clients_zone() {
    let mut servers = Vec::new();
    for _ in 0..6 {
        servers.push(server().await);
    }
    // Zone a: the first three; b: the others (one per entry, by address).
    let target: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, (addr, _))| format!("{addr};zone={}", if i < 3 { "a" } else { "b" }))
        .collect();
    let target = target.join(",");
    let out = fulcrum(&[
        "bench",
        &target,
        "--zone",
        "a",
        "--requests",
        "300",
        "--concurrency",
        "4",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let zones = report["zones"].as_array().unwrap();
    assert_eq!(zones[0]["zone"], "a", "{report}");
    assert_eq!(zones[0]["local"], true);
    assert_eq!(zones[0]["share"], 1.0, "{report}");
    let in_b: u64 = servers[3..]
        .iter()
        .map(|(_, h)| h.load(Ordering::Relaxed))
        .sum();
    assert_eq!(in_b, 0);

    let table = fulcrum(&["bench", &target, "--zone", "a", "--requests", "50"]).await;
    let table = text(&table.stdout);
    assert!(table.contains("a (local)"), "{table}");
    assert!(table.contains("zone=b"), "{table}");
    let bad = fulcrum(&["bench", &target, "--zone", " "]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--zone needs a zone name"),
        "{}",
        text(&bad.stderr)
    );
}
