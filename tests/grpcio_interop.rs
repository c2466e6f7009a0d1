//! Interop with gRPC peers nobody here wrote: Python grpcio servers
//! (`tests/interop/grpcio_greeter.py`) behind `fulcrum::grpc::Channel`,
//! through the tonic-generated client. One says NOT_SERVING on the
//! standard health service; one goes away mid-run.
//!
//! They need `python3` with `pip install grpcio grpcio-health-checking`;
//! `.ci/run` installs them and runs these with `--ignored`.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use fulcrum::grpc::demo::greeter::greeter_client::GreeterClient;
use fulcrum::grpc::demo::greeter::{HelloRequest, HelloStreamRequest};
use fulcrum::grpc::{Channel, GrpcHealthProbe};
use fulcrum::health::HealthChecks;
use fulcrum::{Endpoint, EndpointState};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tonic::Code;

/// A grpcio server process; it exits when its stdin closes (see
/// [`Peer::leave`]), or when this is dropped.
struct Peer {
    addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Peer {
    async fn start(args: &[&str]) -> Peer {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/grpcio_greeter.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the grpcio server starts within 20 s")
            .unwrap()
            .expect("it prints LISTENING (is grpcio installed?)");
        let addr = line
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .unwrap();
        Peer { addr, child, stdin }
    }

    /// Goes away: the server stops accepting, sends GOAWAY, and cancels
    /// what is still running after half a second.
    fn leave(&mut self) {
        self.stdin = None;
    }

    async fn exited(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.child.wait())
            .await
            .is_ok()
    }
}

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with grpcio and grpcio-health-checking; .ci/run runs it"]
async fn grpcio_servers_not_serving_and_going_away() {
    let serving = [Peer::start(&[]).await, Peer::start(&[]).await];
    let not_serving = Peer::start(&["--not-serving"]).await;
    let mut leaving = Peer::start(&[]).await;
    let peers = [&serving[0], &serving[1], &not_serving, &leaving];
    let endpoints = peers
        .iter()
        .map(|p| Endpoint::new(p.addr).with_authority("greeter.interop:50051"));
    let checks = HealthChecks::new(GrpcHealthProbe::new().timeout(Duration::from_secs(1)))
        .interval(Duration::from_millis(200))
        .fall(1)
        .unhealthy_until_probed(true);
    let channel = Channel::builder()
        .endpoints(endpoints)
        .health_checks(checks)
        .unwrap()
        .build();
    let mut client = GreeterClient::new(channel.clone());
    // Until three have passed a first check, fewer than half are healthy
    // and the panic threshold would spread calls over all four.
    let warm = tokio::time::Instant::now() + Duration::from_secs(10);
    while channel
        .stats()
        .endpoints
        .iter()
        .filter(|e| e.probe_healthy == Some(true))
        .count()
        < 3
    {
        assert!(tokio::time::Instant::now() < warm, "{:?}", channel.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Three seconds of calls, four at a time; the fourth server leaves
    // after one and a half.
    let leave_at = tokio::time::Instant::now() + Duration::from_millis(1_500);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let callers: Vec<_> = (0..4)
        .map(|caller| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let (mut ok, mut errors, mut servers) = (0u32, Vec::new(), Vec::new());
                let mut i = 0;
                while tokio::time::Instant::now() < deadline && i < 5_000 {
                    i += 1;
                    match client.say_hello(hello(&format!("{caller}/{i}"))).await {
                        Ok(reply) => {
                            let reply = reply.into_inner();
                            assert_eq!(reply.message, format!("Hello, {caller}/{i}!"));
                            ok += 1;
                            servers.push(reply.server);
                        }
                        Err(status) => errors.push(status),
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                (ok, errors, servers)
            })
        })
        .collect();
    tokio::time::sleep_until(leave_at).await;
    leaving.leave();
    let (mut ok, mut errors, mut servers) = (0, Vec::new(), Vec::new());
    for caller in callers {
        let (o, e, s) = caller.await.unwrap();
        ok += o;
        errors.extend(e);
        servers.extend(s);
    }
    assert!(leaving.exited(Duration::from_secs(5)).await, "it left");
    let count = |addr: SocketAddr| servers.iter().filter(|s| **s == addr.to_string()).count();
    eprintln!(
        "{ok} calls answered, {} failed; serving {} and {}, not serving {}, leaving {}",
        errors.len(),
        count(serving[0].addr),
        count(serving[1].addr),
        count(not_serving.addr),
        count(leaving.addr)
    );
    assert!(ok > 200, "{ok} calls in 3 s");
    assert_eq!(count(not_serving.addr), 0, "NOT_SERVING got calls");
    assert!(count(serving[0].addr) > 0 && count(serving[1].addr) > 0);
    assert!(count(leaving.addr) > 0, "it served before it left");
    // Only calls racing its going away may fail: UNAVAILABLE (dispatched
    // as its GOAWAY arrived) or CANCELLED (grpcio cancels the calls still
    // running when its grace period ends).
    assert!(
        errors.len() <= 4,
        "{} failed: {:?}",
        errors.len(),
        errors.first()
    );
    for status in &errors {
        assert!(
            matches!(status.code(), Code::Unavailable | Code::Cancelled),
            "{status:?}"
        );
    }
    let stats = channel.stats();
    let gone = stats.endpoint(leaving.addr).unwrap();
    assert!(
        gone.probe_healthy == Some(false) || gone.state != EndpointState::Active,
        "{gone:?}"
    );
    let sick = stats.endpoint(not_serving.addr).unwrap();
    assert_eq!(sick.probe_healthy, Some(false));

    // A server-streaming call to a grpcio server counts in flight until
    // its stream ends.
    let request = HelloStreamRequest {
        name: "stream".into(),
        count: 3,
        interval_ms: 50,
    };
    let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    let server: SocketAddr = first.server.parse().unwrap();
    assert_eq!(channel.stats().endpoint(server).unwrap().in_flight, 1);
    while stream.message().await.unwrap().is_some() {}
    assert_eq!(channel.stats().endpoint(server).unwrap().in_flight, 0);
}
