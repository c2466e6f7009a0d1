//! fulcrum's hash affinity: the same user on the same server, every time,
//! in every client, and little movement when a server leaves.
//!
//! Starts four local HTTP servers and sends each of 12 users' requests
//! (header `x-user-id`) through `fulcrum::http::Client` with the `maglev`
//! policy. Prints where each user went, then takes one server out (as a
//! manager would for maintenance) and shows that only its users moved.
//!
//! ```text
//! cargo run --release --example affinity
//! ```

#[path = "../tests/support/http.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use fulcrum::http::key::Header;
use fulcrum::http::Client;
use http_body_util::Full;
use support::{Backend, Behaviour};

/// Where each user's requests went: user → server.
async fn homes(
    client: &Client<Full<Bytes>, Header>,
) -> Result<BTreeMap<u32, String>, Box<dyn std::error::Error>> {
    let mut homes = BTreeMap::new();
    for user in 0..12u32 {
        for _ in 0..5 {
            let request = http::Request::get("/cart")
                .header("x-user-id", format!("user-{user}"))
                .body(Full::default())?;
            let server = client.request(request).await?.into_body().text().await?;
            let home = homes.entry(user).or_insert_with(|| server.clone());
            assert_eq!(*home, server, "user-{user} moved between requests");
        }
    }
    Ok(homes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ok = Behaviour::Delay(Duration::from_millis(1));
    let servers = [
        Backend::start(ok).await,
        Backend::start(ok).await,
        Backend::start(ok).await,
        Backend::start(ok).await,
    ];
    let target = servers
        .iter()
        .map(|s| s.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");

    // The user code: a hash policy and the key it reads.
    let client: Client<Full<Bytes>, Header> = Client::builder()
        .target(&target)?
        .policy("maglev")?
        .key(Header::new("x-user-id"))
        .build();

    let before = homes(&client).await?;
    println!("12 users, 5 requests each, with maglev on x-user-id:");
    for (user, server) in &before {
        println!("  user-{user:<2} -> {server}");
    }

    // One server goes out of service: only its users move.
    let leaving = servers[0].addr;
    client.manager().disable(leaving).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = homes(&client).await?;
    println!("\nwith {leaving} disabled:");
    let mut moved = 0;
    for (user, server) in &after {
        let was = &before[user];
        let note = if was == server {
            String::new()
        } else {
            moved += 1;
            format!("  (moved from {was})")
        };
        println!("  user-{user:<2} -> {server}{note}");
    }
    let had = before
        .values()
        .filter(|s| **s == leaving.to_string())
        .count();
    println!("\n{moved} users moved; {had} had been on the disabled server.");
    Ok(())
}
