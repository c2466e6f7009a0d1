//! End to end over real sockets: tonic-generated clients over
//! `fulcrum::grpc::Channel` against tonic servers on loopback, every
//! policy, streaming, `grpc.health.v1`, statuses.

#[path = "support/grpc.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fulcrum::grpc::demo::greeter::greeter_client::GreeterClient;
use fulcrum::grpc::demo::greeter::{HelloRequest, HelloStreamRequest};
use fulcrum::grpc::key::Metadata;
use fulcrum::grpc::{Channel, GrpcHealthProbe};
use fulcrum::health::HealthChecks;
use fulcrum::Endpoint;
use support::{Behaviour, GrpcBackend};
use tonic::Code;

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));

/// Endpoints discovered under a name, as DNS discovery makes them.
fn named(backends: &[GrpcBackend], name: &str) -> Vec<Endpoint> {
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

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

fn calls(backends: &[GrpcBackend]) -> Vec<u64> {
    backends.iter().map(GrpcBackend::calls).collect()
}

/// Waits (at most 5 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_client_works_unchanged_over_every_policy() {
    let backends = support::three().await;
    for policy in fulcrum::pick::policy_names() {
        let before = calls(&backends);
        let channel = Channel::builder()
            .endpoints(named(&backends, "greeter.test:50051"))
            .policy(policy)
            .unwrap()
            .build();
        let mut client = GreeterClient::new(channel.clone());
        for i in 0..30 {
            let reply = client
                .say_hello(hello(&format!("call {i}")))
                .await
                .unwrap_or_else(|e| panic!("{policy}: {e:?}"))
                .into_inner();
            assert_eq!(reply.message, format!("Hello, call {i}!"));
            assert!(reply.server.starts_with("127.0.0.1:"), "{reply:?}");
        }
        let hit: Vec<u64> = calls(&backends)
            .iter()
            .zip(&before)
            .map(|(now, then)| now - then)
            .collect();
        assert_eq!(hit.iter().sum::<u64>(), 30, "{policy}: {hit:?}");
        if !fulcrum::pick::by_name(policy).unwrap().picks_by_key() {
            let used = hit.iter().filter(|&&n| n > 0).count();
            assert!(used >= 2, "{policy} used one server: {hit:?}");
        }
        for b in &backends {
            let seen = b.authority.lock().unwrap().clone();
            assert!(
                seen.is_empty() || seen == "greeter.test:50051",
                "{policy}: the logical authority, not the address: {seen}"
            );
        }
        let stats = channel.stats();
        assert_eq!(stats.endpoints.iter().map(|e| e.requests).sum::<u64>(), 30);
        assert!(stats.endpoints.iter().all(|e| e.failures == 0));
    }
    assert!(backends
        .iter()
        .all(|b| *b.authority.lock().unwrap() == "greeter.test:50051"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_key_keeps_a_user_on_one_server() {
    let backends = support::three().await;
    let channel = Channel::builder()
        .endpoints(named(&backends, "greeter.test"))
        .policy("ring-hash")
        .unwrap()
        .key(Metadata::new("x-user-id"))
        .build();
    let mut client = GreeterClient::new(channel);
    let mut homes = std::collections::BTreeSet::new();
    for user in 0..12 {
        let mut servers = std::collections::BTreeSet::new();
        for _ in 0..8 {
            let mut request = tonic::Request::new(hello("x"));
            request
                .metadata_mut()
                .insert("x-user-id", format!("user-{user}").parse().unwrap());
            servers.insert(client.say_hello(request).await.unwrap().into_inner().server);
        }
        assert_eq!(servers.len(), 1, "user-{user} moved: {servers:?}");
        homes.extend(servers);
    }
    assert!(homes.len() >= 2, "twelve users on one server: {homes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_call_stays_in_flight_until_its_stream_ends() {
    let backends = support::three().await;
    let channel = Channel::builder()
        .endpoints(named(&backends, "greeter.test"))
        .build();
    let mut client = GreeterClient::new(channel.clone());
    let request = HelloStreamRequest {
        name: "stream".into(),
        count: 5,
        interval_ms: 40,
    };
    let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("a first reply");
    let server: SocketAddr = first.server.parse().unwrap();
    let in_flight = |channel: &Channel| channel.stats().endpoint(server).unwrap().in_flight;
    assert_eq!(in_flight(&channel), 1, "streaming: still in flight");
    let mut replies = 1;
    while let Some(reply) = stream.message().await.unwrap() {
        assert_eq!(reply.server, first.server);
        replies += 1;
    }
    assert_eq!(replies, 5);
    assert_eq!(in_flight(&channel), 0, "the stream ended");
    let endpoint = channel.stats().endpoint(server).unwrap().clone();
    assert_eq!((endpoint.requests, endpoint.failures), (1, 0));
    // Latency ran to the end of the stream (5 × 40 ms), not to the headers.
    assert!(endpoint.ewma_ms >= 100.0, "{}", endpoint.ewma_ms);

    // A stream dropped half-way is a cancelled call, and leaves no load.
    let request = HelloStreamRequest {
        name: "dropped".into(),
        count: 100,
        interval_ms: 20,
    };
    let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    drop(stream);
    let server: SocketAddr = first.server.parse().unwrap();
    eventually("the dropped stream leaves no load", || {
        in_flight(&channel) == 0
    })
    .await;
    let endpoint = channel.stats().endpoint(server).unwrap().clone();
    assert_eq!(endpoint.cancelled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_serving_server_gets_no_call_until_it_serves_again() {
    for probe in [GrpcHealthProbe::new(), GrpcHealthProbe::new().check_only()] {
        let backends = support::three().await;
        backends[2].set_serving(false).await;
        let checks = HealthChecks::new(probe.clone().timeout(Duration::from_millis(500)))
            .interval(Duration::from_millis(100))
            .rise(1)
            .fall(1)
            .unhealthy_until_probed(true);
        let channel = Channel::builder()
            .endpoints(named(&backends, "greeter.test"))
            .policy("round-robin")
            .unwrap()
            .health_checks(checks)
            .unwrap()
            .build();
        // Until two have passed a first check, fewer than half are
        // healthy and the panic threshold spreads calls over all three.
        eventually("two pass their first check", || {
            let stats = channel.stats();
            let passed = stats.endpoints.iter();
            passed.filter(|e| e.probe_healthy == Some(true)).count() == 2
        })
        .await;
        let mut client = GreeterClient::new(channel.clone());
        for _ in 0..60 {
            client.say_hello(hello("x")).await.unwrap();
        }
        assert_eq!(backends[2].calls(), 0, "{probe:?}: NOT_SERVING got a call");
        assert!(backends[0].calls() > 0 && backends[1].calls() > 0);
        let stats = channel.stats();
        let sick = stats.endpoint(backends[2].addr).unwrap();
        assert_eq!(sick.probe_healthy, Some(false));
        // The check carried the logical authority.
        assert_eq!(*backends[2].authority.lock().unwrap(), "greeter.test");

        // It serves again: the probe sees it and calls reach it.
        backends[2].set_serving(true).await;
        eventually("the probe re-admits it", || {
            let stats = channel.stats();
            let e = stats.endpoint(backends[2].addr);
            e.is_some_and(|e| e.probe_healthy == Some(true))
        })
        .await;
        for _ in 0..30 {
            client.say_hello(hello("x")).await.unwrap();
        }
        assert!(
            backends[2].calls() >= 5,
            "{probe:?}: {}",
            backends[2].calls()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_health_service_is_unhealthy() {
    let backends = [
        GrpcBackend::start(OK).await,
        GrpcBackend::start_without_health(OK).await,
    ];
    let checks = HealthChecks::new(GrpcHealthProbe::new())
        .interval(Duration::from_millis(100))
        .fall(1);
    let channel = Channel::builder()
        .endpoints(named(&backends, "greeter.test"))
        .health_checks(checks)
        .unwrap()
        .build();
    eventually("the probe fails it", || {
        let stats = channel.stats();
        let e = stats.endpoint(backends[1].addr);
        e.is_some_and(|e| e.probe_healthy == Some(false))
    })
    .await;
    let mut client = GreeterClient::new(channel);
    let before = backends[1].calls();
    for _ in 0..20 {
        client.say_hello(hello("x")).await.unwrap();
    }
    assert_eq!(backends[1].calls(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_endpoint_ever_passes_its_first_check_the_panic_threshold_serves() {
    // Neither has the health service: every check fails. Better to try
    // them than to fail every call.
    let backends = [
        GrpcBackend::start_without_health(OK).await,
        GrpcBackend::start_without_health(OK).await,
    ];
    let checks = HealthChecks::new(GrpcHealthProbe::new())
        .interval(Duration::from_millis(100))
        .unhealthy_until_probed(true);
    let channel = Channel::builder()
        .endpoints(named(&backends, "greeter.test"))
        .health_checks(checks)
        .unwrap()
        .build();
    let mut client = GreeterClient::new(channel.clone());
    for _ in 0..10 {
        client.say_hello(hello("x")).await.unwrap();
    }
    assert_eq!(backends[0].calls() + backends[1].calls(), 10);
    let stats = channel.stats();
    assert!(stats
        .endpoints
        .iter()
        .all(|e| e.probe_healthy == Some(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_going_away_mid_run_fails_at_most_a_refused_stream() {
    let mut backends = support::three().await;
    let channel = Channel::builder()
        .endpoints(named(&backends, "greeter.test"))
        .policy("round-robin")
        .unwrap()
        .build();
    let callers: Vec<_> = (0..4)
        .map(|caller| {
            let mut client = GreeterClient::new(channel.clone());
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..100 {
                    if let Err(status) = client.say_hello(hello(&format!("{caller}/{i}"))).await {
                        errors.push(status);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                errors
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gone = backends[2].addr;
    backends[2].shut_down().await;
    let mut errors = Vec::new();
    for caller in callers {
        errors.extend(caller.await.unwrap());
    }
    // Calls picked after the GOAWAY move: its connection fails readiness,
    // a new one is refused. A call still queued when the GOAWAY arrived
    // comes back unsent from hyper, and the balancer sends it again. Only
    // a stream already written and then refused by the GOAWAY may fail,
    // as UNAVAILABLE (hyper cannot give its body back).
    assert!(
        errors.len() <= 2,
        "{} of 400 failed: {:?}",
        errors.len(),
        errors.first()
    );
    for status in &errors {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    let stats = channel.stats();
    let gone = stats.endpoint(gone).unwrap();
    assert!(gone.requests > 0, "it served before going away");
    // Calls picked after it left found its connection refused and moved.
    assert!(gone.not_sent > 0, "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoint_is_unavailable_not_unknown() {
    // Nothing listens.
    let channel = Channel::builder()
        .endpoints([Endpoint::new(closed_port().await)])
        .configure(|b| b.ready_timeout(Duration::from_millis(300)))
        .build();
    let mut client = GreeterClient::new(channel);
    let status = client.say_hello(hello("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("refused") || status.message().contains("no endpoint"),
        "{status:?}"
    );

    // No endpoints at all.
    let channel = Channel::builder()
        .endpoints([])
        .configure(|b| b.ready_timeout(Duration::from_millis(100)))
        .build();
    let status = GreeterClient::new(channel)
        .say_hello(hello("x"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("no endpoint"), "{status:?}");

    // A bad target is a typed error before any call.
    let error = Channel::from_target("dns:///no port here").unwrap_err();
    assert!(!error.to_string().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_classify_their_endpoint() {
    let backends = [
        GrpcBackend::start(OK).await,
        GrpcBackend::start(Behaviour::Fail(Code::Unavailable)).await,
        GrpcBackend::start(Behaviour::Fail(Code::NotFound)).await,
        GrpcBackend::start(Behaviour::Pushback("250")).await,
        GrpcBackend::start(Behaviour::Pushback("-5")).await,
        GrpcBackend::start(Behaviour::Pushback("soon")).await,
    ];
    let channel = Channel::builder()
        .endpoints(named(&backends, "greeter.test"))
        .policy("round-robin")
        .unwrap()
        .build();
    let mut client = GreeterClient::new(channel.clone());
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(match client.say_hello(hello("x")).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        });
    }
    codes.sort_by_key(|c| *c as i32);
    assert_eq!(
        codes,
        [
            Code::Ok,
            Code::NotFound,
            Code::ResourceExhausted,
            Code::ResourceExhausted,
            Code::ResourceExhausted,
            Code::Unavailable
        ],
        "the server's status reaches the caller unchanged"
    );
    let stats = channel.stats();
    let of = |b: &GrpcBackend| stats.endpoint(b.addr).unwrap().clone();
    assert_eq!(of(&backends[0]).failures, 0);
    assert_eq!(of(&backends[1]).failures, 1, "UNAVAILABLE is a failure");
    assert_eq!(
        of(&backends[2]).failures,
        0,
        "NOT_FOUND is the caller's problem"
    );
    let pushed = of(&backends[3]);
    assert_eq!(pushed.overloads, 1);
    assert_eq!(pushed.failures, 0, "an overload, not a failure");
    // A malformed pushback is an overload without a delay: no panic, no
    // share cut, and the call is answered.
    for b in &backends[4..] {
        let e = of(b);
        assert_eq!(e.overloads, 1, "{e:?}");
    }
}
