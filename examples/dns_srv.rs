//! fulcrum with DNS SRV discovery: weights and priorities from the
//! records, re-resolved as their TTL runs out.
//!
//! Starts an authoritative DNS server in this process (hickory, on
//! 127.0.0.1) publishing `_http._tcp.api.test.internal` with three SRV
//! records, and three HTTP servers they point at: two in priority 0 with
//! weights 3 and 1, one in priority 1 (a backup). Sends requests through
//! `fulcrum::http::Client` with `weighted-round-robin`, prints each
//! server's share, then changes the records and shows the client follow
//! (about 6 s later: the TTL, raised to a 5 s minimum).
//!
//! ```text
//! cargo run --release --example dns_srv
//! ```

#[path = "../crates/fulcrum-discovery/tests/support/dns_server.rs"]
mod dns_server;
#[path = "../tests/support/http.rs"]
mod support;

use std::time::Duration;

use dns_server::{ip, DnsServer, Srv};
use support::{Backend, Behaviour};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ok = Behaviour::Delay(Duration::from_millis(1));
    let servers = [
        Backend::start(ok).await,
        Backend::start(ok).await,
        Backend::start(ok).await,
    ];
    let dns = DnsServer::start().await;
    for host in ["a", "b", "c"] {
        dns.set_ips(&format!("{host}.api"), &[ip("127.0.0.1")], 60)
            .await;
    }
    let ports: Vec<u16> = servers.iter().map(|s| s.addr.port()).collect();
    // (priority, weight, port, target): a and b share priority 0 at 3:1;
    // c is the backup.
    let records = [
        Srv(0, 3, ports[0], "a.api"),
        Srv(0, 1, ports[1], "b.api"),
        Srv(1, 1, ports[2], "c.api"),
    ];
    dns.set_srv("_http._tcp.api", &records, 2).await;

    // The user code: a target naming the SRV records and the resolver.
    let target = format!("dns+srv://{}/_http._tcp.api.test.internal", dns.addr);
    let client = fulcrum::http::Client::builder()
        .target(&target)?
        .policy("weighted-round-robin")?
        .build::<http_body_util::Full<bytes::Bytes>>();

    let names = ["a (priority 0)", "b (priority 0)", "c (priority 1, backup)"];
    let run = |label: &'static str| {
        let client = client.clone();
        let before: Vec<u64> = servers.iter().map(Backend::hits).collect();
        let servers = &servers;
        async move {
            for _ in 0..400 {
                let response = client.get("/").await?;
                response.into_body().bytes().await?;
            }
            println!("{label}:");
            for (i, server) in servers.iter().enumerate() {
                let n = server.hits() - before[i];
                println!(
                    "  {:<26} {:>3} of 400 ({:.0} %)",
                    names[i],
                    n,
                    n as f64 / 4.0
                );
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        }
    };
    run("400 requests, as the records say").await?;

    // The records change: b now weighs as much as a. The client re-resolves
    // when their TTL runs out (2 s here, raised to the 5 s minimum that
    // keeps a client from hammering its resolver).
    let records = [
        Srv(0, 1, ports[0], "a.api"),
        Srv(0, 1, ports[1], "b.api"),
        Srv(1, 1, ports[2], "c.api"),
    ];
    dns.set_srv("_http._tcp.api", &records, 2).await;
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    run("400 more, after b's weight went up to a's").await?;

    println!("\nwhat the balancer knows:");
    for e in client.stats().endpoints {
        println!(
            "  {} ({}): priority {}, weight {}",
            e.addr,
            e.authority.as_deref().unwrap_or("-"),
            e.priority,
            e.weight
        );
    }
    Ok(())
}
