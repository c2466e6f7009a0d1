//! fulcrum over gRPC: a tonic-generated client, unchanged, over a balanced
//! channel with `grpc.health.v1` health checks.
//!
//! Starts three local tonic servers of the demo `greeter.Greeter` service
//! (one slow, one whose health service says NOT_SERVING), then calls
//! `SayHello` through `GreeterClient::new(channel)` and prints which server
//! answered and what the balancer saw.
//!
//! ```text
//! cargo run --release --example grpc
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use fulcrum::grpc::demo::greeter::greeter_client::GreeterClient;
use fulcrum::grpc::demo::greeter::greeter_server::GreeterServer;
use fulcrum::grpc::demo::greeter::HelloRequest;
use fulcrum::grpc::demo::DemoGreeter;
use fulcrum::grpc::{Channel, GrpcHealthProbe};
use fulcrum::health::HealthChecks;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fast = start(Duration::from_millis(2), true).await;
    let slow = start(Duration::from_millis(40), true).await;
    let sick = start(Duration::from_millis(2), false).await;
    let target = format!("{fast},{slow},{sick}");

    // The user code: a channel from a target, health checks, and the
    // generated client as tonic made it.
    let checks = HealthChecks::new(GrpcHealthProbe::new())
        .interval(Duration::from_secs(1))
        .unhealthy_until_probed(true);
    let channel = Channel::builder()
        .target(&target)?
        .health_checks(checks)?
        .build();
    let mut client = GreeterClient::new(channel.clone());

    let mut served_by = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..200 {
        let reply = client
            .say_hello(HelloRequest {
                name: format!("caller {i}"),
            })
            .await?;
        *served_by.entry(reply.into_inner().server).or_default() += 1;
    }

    println!("200 calls over {target}:");
    for addr in [fast, slow, sick] {
        let n = served_by.get(&addr.to_string()).copied().unwrap_or(0);
        let note = match addr {
            a if a == slow => "  (answers in 40 ms)",
            a if a == sick => "  (its health service says NOT_SERVING)",
            _ => "",
        };
        println!("  {addr}: {n}{note}");
    }
    println!("\nwhat the balancer saw:");
    for e in channel.stats().endpoints {
        println!(
            "  {}: {} calls, latency estimate {:.1} ms, health check {}",
            e.addr,
            e.requests,
            e.ewma_ms,
            match e.probe_healthy {
                Some(true) => "passing",
                Some(false) => "failing",
                None => "not run yet",
            }
        );
    }
    Ok(())
}

/// A tonic server of `greeter.Greeter` with the standard health service,
/// answering after `delay`.
async fn start(delay: Duration, serving: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (health, health_service) = tonic_health::server::health_reporter();
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status("", status).await;
    let greeter = DemoGreeter::new(addr.to_string()).delay(delay);
    tokio::spawn(async move {
        let _health = health;
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(greeter))
            .add_service(health_service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
    });
    addr
}
