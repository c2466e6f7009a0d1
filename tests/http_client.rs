//! End to end over real sockets: `fulcrum::http::Client` against hyper
//! servers on loopback, HTTP/1.1 and HTTP/2, every policy.

#[path = "../crates/fulcrum-discovery/tests/support/dns_server.rs"]
mod dns_server;
#[path = "support/http.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fulcrum::health::HealthChecks;
use fulcrum::http::key::Header;
use fulcrum::http::{Client, HttpProbe, Protocol};
use fulcrum::{Endpoint, FailureKind};
use http_body_util::Full;
use support::{Backend, Behaviour};

async fn backends(n: usize, behaviour: Behaviour) -> Vec<Backend> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Backend::start(behaviour).await);
    }
    v
}

/// Endpoints discovered under a name, as DNS discovery makes them.
fn named(backends: &[Backend], name: &str) -> Vec<Endpoint> {
    backends
        .iter()
        .map(|b| Endpoint::new(b.addr).with_authority(name))
        .collect()
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_over_http1_and_http2_keeps_the_logical_host() {
    let backends = backends(3, Behaviour::Delay(Duration::from_millis(1))).await;
    for protocol in [Protocol::Http1, Protocol::Http2] {
        for policy in fulcrum::pick::policy_names() {
            let before: Vec<u64> = backends.iter().map(Backend::hits).collect();
            let client: Client = Client::builder()
                .endpoints(named(&backends, "orders.test:8080"))
                .policy(policy)
                .unwrap()
                .protocol(protocol)
                .build();
            for i in 0..30 {
                let response = client.get(format!("/orders/{i}")).await.unwrap();
                assert_eq!(response.status(), 200, "{policy} {protocol:?}");
                assert_eq!(
                    response.headers()["x-seen-host"],
                    "orders.test:8080",
                    "{policy} {protocol:?}: the logical host, not the address"
                );
                let body = response.into_body().text().await.unwrap();
                assert!(body.starts_with("127.0.0.1:"), "{body}");
            }
            let hit: Vec<u64> = backends
                .iter()
                .zip(&before)
                .map(|(b, n)| b.hits() - n)
                .collect();
            assert_eq!(
                hit.iter().sum::<u64>(),
                30,
                "{policy} {protocol:?}: {hit:?}"
            );
            let hashing = fulcrum::pick::by_name(policy).unwrap().picks_by_key();
            if !hashing {
                let used = hit.iter().filter(|&&n| n > 0).count();
                assert!(used >= 2, "{policy} {protocol:?} used one backend: {hit:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_is_the_name_resolved() {
    let mut dns = dns_server::DnsServer::start().await;
    let (port, backends) = support::three_on_one_port().await;
    let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(dns_server::ip);
    dns.set_ips("orders", &ips, 30).await;
    let target = format!("dns://{}/orders.test.internal:{port}", dns.addr);
    let client = Client::from_target(&target).unwrap();
    for _ in 0..30 {
        let response = client.get("/").await.unwrap();
        assert_eq!(
            response.headers()["x-seen-host"],
            format!("orders.test.internal:{port}").as_str()
        );
        response.into_body().bytes().await.unwrap();
    }
    assert!(backends.iter().all(|b| b.hits() > 0), "all three serve");
    dns.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_never_reaches_the_caller_without_retries() {
    let live = backends(3, Behaviour::Delay(Duration::from_millis(1))).await;
    let dead = closed_port().await;
    let mut endpoints: Vec<Endpoint> = live.iter().map(|b| Endpoint::new(b.addr)).collect();
    endpoints.push(Endpoint::new(dead));
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let before: u64 = live.iter().map(Backend::hits).sum();
        let client: Client = Client::builder()
            .endpoints(endpoints.clone())
            .policy("round-robin")
            .unwrap()
            .protocol(protocol)
            .build();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut errors = Vec::new();
                    for _ in 0..50 {
                        match client.get("/").await {
                            Ok(r) => drop(r.into_body().bytes().await.unwrap()),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    errors
                })
            })
            .collect();
        let mut errors = Vec::new();
        for t in tasks {
            errors.extend(t.await.unwrap());
        }
        assert!(
            errors.is_empty(),
            "{protocol:?}: {} errors: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
        let answered: u64 = live.iter().map(Backend::hits).sum::<u64>() - before;
        assert_eq!(answered, 400, "{protocol:?}: each request answered once");
        let stats = client.stats();
        let dead_stats = stats.endpoints.iter().find(|e| e.addr == dead).unwrap();
        assert!(
            dead_stats.failures > 0,
            "the refusals were counted: {dead_stats:?}"
        );
        assert_eq!(
            (dead_stats.requests, dead_stats.failures),
            (dead_stats.not_sent, dead_stats.not_sent),
            "every dispatch to it failed readiness: none was sent"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_connections_are_pooled() {
    let backend = Backend::start(Behaviour::Delay(Duration::ZERO)).await;
    let client: Client = Client::builder()
        .endpoints([Endpoint::new(backend.addr)])
        .build();
    for _ in 0..200 {
        let r = client.get("/").await.unwrap();
        r.into_body().bytes().await.unwrap();
    }
    let opened = backend
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        opened <= 3,
        "200 sequential requests opened {opened} connections"
    );
    assert_eq!(backend.hits(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_body_keeps_its_request_in_flight_until_it_ends() {
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let backend = Backend::start(Behaviour::Stream(6)).await;
        let client: Client = Client::builder()
            .endpoints([Endpoint::new(backend.addr)])
            .protocol(protocol)
            .build();
        let response = client.get("/").await.unwrap();
        let in_flight = || client.stats().endpoints[0].in_flight;
        assert_eq!(
            in_flight(),
            1,
            "{protocol:?}: headers arrived, body still streaming"
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(in_flight(), 1, "{protocol:?}: still streaming");
        let body = response.into_body().text().await.unwrap();
        assert_eq!(body, "chunk;".repeat(6));
        assert_eq!(in_flight(), 0, "{protocol:?}: finished with the body");
        let ep = &client.stats().endpoints[0];
        assert!(
            ep.ewma_ms >= 250.0,
            "latency runs to the end of the body: {} ms",
            ep.ewma_ms
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_response_is_an_error_and_costs_no_other_request() {
    let good = backends(2, Behaviour::Delay(Duration::from_millis(1))).await;
    let bad = Backend::start(Behaviour::ResetMidBody).await;
    let mut endpoints: Vec<Endpoint> = good.iter().map(|b| Endpoint::new(b.addr)).collect();
    endpoints.push(Endpoint::new(bad.addr));
    let client: Client = Client::builder()
        .endpoints(endpoints)
        .policy("round-robin")
        .unwrap()
        .build();
    let (mut ok, mut broken) = (0, 0);
    for _ in 0..60 {
        let response = client
            .get("/")
            .await
            .expect("headers arrive from every backend");
        match response.into_body().bytes().await {
            Ok(_) => ok += 1,
            Err(_) => broken += 1,
        }
    }
    let reached_bad = bad.hits();
    assert_eq!(
        broken, reached_bad,
        "exactly the responses from the resetting backend broke"
    );
    assert_eq!(ok + broken, 60);
    assert!(reached_bad > 0 && ok >= 40, "ok {ok}, broken {broken}");
    let stats = client.stats();
    let bad_stats = stats.endpoints.iter().find(|e| e.addr == bad.addr).unwrap();
    assert_eq!(
        bad_stats.failures, reached_bad,
        "each broken body is a failure: {bad_stats:?}"
    );
    assert_eq!(bad_stats.in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeouts_fail_as_timeouts_and_retries_go_elsewhere() {
    let good = Backend::start(Behaviour::Delay(Duration::from_millis(1))).await;
    let hung = Backend::start(Behaviour::Hang).await;
    let endpoints = [Endpoint::new(good.addr), Endpoint::new(hung.addr)];
    let client: Client = Client::builder()
        .endpoints(endpoints.clone())
        .policy("round-robin")
        .unwrap()
        .request_timeout(Duration::from_millis(100))
        .build();
    let mut timeouts = 0;
    for _ in 0..4 {
        if let Err(e) = client.get("/").await {
            let fulcrum::http::Error::Balancer(balancer_error) = &e else {
                panic!("unexpected error: {e}");
            };
            let fulcrum::ErrorKind::Service { source, .. } = balancer_error.kind() else {
                panic!("unexpected error: {e}");
            };
            assert_eq!(
                FailureKind::of_error(&**source),
                FailureKind::Timeout,
                "{e}"
            );
            assert!(source.to_string().contains("request timeout"), "{source}");
            timeouts += 1;
        }
    }
    assert_eq!(timeouts, 2, "round robin: every other request hangs");

    let retrying: Client = Client::builder()
        .endpoints(endpoints)
        .policy("round-robin")
        .unwrap()
        .request_timeout(Duration::from_millis(100))
        .retries(2)
        .unwrap()
        .build();
    // A POST is not idempotent: never retried. Round robin sends one of
    // the first two to the hung backend.
    let hung_before = hung.hits();
    let mut posts_failed = 0;
    for _ in 0..2 {
        if retrying
            .post("/", Full::new(Bytes::from_static(b"x")))
            .await
            .is_err()
        {
            posts_failed += 1;
        }
    }
    assert_eq!(
        posts_failed, 1,
        "the POST to the hung backend is not retried"
    );
    assert_eq!(hung.hits() - hung_before, 1);
    for _ in 0..6 {
        let r = retrying
            .get("/")
            .await
            .expect("the retry goes to the other endpoint");
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_probe_keeps_requests_off_an_unhealthy_endpoint() {
    let backends = backends(3, Behaviour::Delay(Duration::from_millis(1))).await;
    backends[2]
        .healthy
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let checks = HealthChecks::new(HttpProbe::get("/health").timeout(Duration::from_millis(500)))
        .interval(Duration::from_millis(100))
        .unhealthy_until_probed(true);
    let client: Client = Client::builder()
        .endpoints(named(&backends, "orders.test"))
        .policy("round-robin")
        .unwrap()
        .health_checks(checks)
        .unwrap()
        .build();
    for _ in 0..60 {
        let r = client.get("/").await.unwrap();
        r.into_body().bytes().await.unwrap();
    }
    assert_eq!(
        backends[2].hits(),
        0,
        "the unhealthy backend got no request"
    );
    assert!(backends[0].hits() > 0 && backends[1].hits() > 0);
    // The probe sent the logical host.
    assert_eq!(*backends[2].last_host.lock().unwrap(), "orders.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_key_keeps_a_user_on_one_endpoint() {
    let backends = backends(4, Behaviour::Delay(Duration::ZERO)).await;
    let client: Client<Full<Bytes>, Header> = Client::builder()
        .endpoints(backends.iter().map(|b| Endpoint::new(b.addr)))
        .policy("maglev")
        .unwrap()
        .key(Header::new("x-user"))
        .build();
    let homes = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    for i in 0..80 {
        let user = format!("user-{}", i % 8);
        let req = http::Request::get("/")
            .header("x-user", &user)
            .body(Full::default())
            .unwrap();
        let r = client.request(req).await.unwrap();
        let served_by = r.into_body().text().await.unwrap();
        let mut homes = homes.lock().unwrap();
        let home = homes
            .entry(user.clone())
            .or_insert_with(|| served_by.clone());
        assert_eq!(*home, served_by, "{user} moved");
    }
    let distinct: std::collections::HashSet<_> = homes.lock().unwrap().values().cloned().collect();
    assert!(
        distinct.len() >= 2,
        "8 users spread over the endpoints: {distinct:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uris_and_empty_targets_are_typed_errors() {
    let backend = Backend::start(Behaviour::Delay(Duration::ZERO)).await;
    let client: Client = Client::builder()
        .endpoints([Endpoint::new(backend.addr)])
        .build();
    let err = client.get("not a uri").await.unwrap_err();
    assert!(matches!(err, fulcrum::http::Error::InvalidUri(_)), "{err}");
    assert!(err.to_string().contains("/orders?id=1"), "{err}");

    let err = Client::from_target("dns:///no-port").unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");

    let empty: Client = Client::builder()
        .endpoints([])
        .configure(|b| b.ready_timeout(Duration::from_millis(100)))
        .build();
    let err = empty.get("/").await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("no endpoint"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_retry_after_is_an_overload_without_a_delay() {
    let ok = Backend::start(Behaviour::Delay(Duration::from_millis(1))).await;
    let mut shedding = Vec::new();
    // The fourth does not fit in 64 bits: malformed too. The last is a
    // valid, huge delay: capped.
    for value in ["soon", "-5", "", "99999999999999999999", "999999999"] {
        shedding.push((value, Backend::start(Behaviour::RetryAfter(value)).await));
    }
    let endpoints = std::iter::once(Endpoint::new(ok.addr))
        .chain(shedding.iter().map(|(_, b)| Endpoint::new(b.addr)));
    let client: Client = Client::builder()
        .endpoints(endpoints)
        .policy("round-robin")
        .unwrap()
        .build();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = client.get("/").await.expect("answered, not an error");
        statuses.push(response.status().as_u16());
        response.into_body().bytes().await.unwrap();
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 429, 429, 429, 429, 429],
        "the caller sees each answer"
    );
    let stats = client.stats();
    for (value, backend) in &shedding {
        let e = stats.endpoint(backend.addr).unwrap();
        assert_eq!(e.overloads, 1, "Retry-After {value:?}: {e:?}");
        assert_eq!(e.failures, 0, "an overload is not a failure");
        if *value == "999999999" {
            // Capped at a minute.
            let cut = e.overloaded_for_ms.expect("a valid delay cuts its share");
            assert!(cut <= 60_000.0, "Retry-After {value:?}: {cut} ms");
        } else {
            assert_eq!(e.overloaded_for_ms, None, "Retry-After {value:?}: {e:?}");
        }
        assert_eq!(e.state, fulcrum::EndpointState::Active);
    }
}
