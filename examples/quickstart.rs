//! fulcrum quickstart: a balanced HTTP client in a few lines.
//!
//! Starts three local HTTP servers (hyper, on 127.0.0.1; one of them slow),
//! then sends requests through `fulcrum::http::Client` with the default
//! policy (`ewma`, P2C on peak-EWMA latency) and prints which server
//! answered and what the balancer saw.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

#[path = "../tests/support/http.rs"]
mod support;

use std::time::Duration;

use support::{Backend, Behaviour};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Three servers: two answer in 2 ms, one in 40 ms.
    let servers = [
        Backend::start(Behaviour::Delay(Duration::from_millis(2))).await,
        Backend::start(Behaviour::Delay(Duration::from_millis(2))).await,
        Backend::start(Behaviour::Delay(Duration::from_millis(40))).await,
    ];
    let target = servers
        .iter()
        .map(|s| s.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");

    // The user code: one line to a client, then requests.
    let client = fulcrum::http::Client::from_target(&target)?;
    let mut served_by = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..200 {
        let response = client.get(format!("/orders/{i}")).await?;
        *served_by
            .entry(response.into_body().text().await?)
            .or_default() += 1;
    }

    println!("200 requests over {target}:");
    for (server, n) in &served_by {
        let note = if server == &servers[2].addr.to_string() {
            "  (the slow one)"
        } else {
            ""
        };
        println!("  {server}: {n}{note}");
    }
    for e in client.stats().endpoints {
        println!(
            "  {} ewma {:.1} ms, {} failures",
            e.addr, e.ewma_ms, e.failures
        );
    }
    Ok(())
}
