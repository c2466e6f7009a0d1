//! Reads to the replicas, writes to the primary: subsets chosen by
//! endpoint labels, with a fallback when the replicas cannot serve.
//!
//! Starts three local HTTP servers labelled in the target
//! (`;role=primary`, `;role=replica`), routes `GET`s to the replicas and
//! everything else to the primary, then stops both replicas and shows the
//! reads fall back to the primary without an error.
//!
//! ```text
//! cargo run --release --example read_write_split
//! ```

#[path = "../tests/support/http.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use fulcrum::health::HealthChecks;
use fulcrum::http::{Client, HttpProbe};
use fulcrum::subset::{Fallback, Selector, Subset, Subsets};
use http::{Method, Request};
use http_body_util::Full;
use support::{Backend, Behaviour};

type Req = Request<Full<Bytes>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ok = Behaviour::Delay(Duration::from_millis(1));
    let primary = Backend::start(ok).await;
    let replicas = [Backend::start(ok).await, Backend::start(ok).await];
    let target = format!(
        "{};role=primary,{};role=replica,{};role=replica",
        primary.addr, replicas[0].addr, replicas[1].addr
    );

    // The user code: two subsets by label, and which requests go where.
    let subsets = Subsets::new()
        .subset(Subset::new("primary", Selector::label("role", "primary")))
        .subset(
            Subset::new("replicas", Selector::label("role", "replica"))
                .fallback(Fallback::subset("primary")),
        )
        .route("replicas", |req: &Req| req.method() == Method::GET)
        .route("primary", |req: &Req| req.method() != Method::GET);
    let checks = HealthChecks::new(HttpProbe::get("/health")).interval(Duration::from_millis(100));
    let client = Client::builder()
        .target(&target)?
        .policy("round-robin")?
        .health_checks(checks)?
        .subsets(subsets)?
        .build::<Full<Bytes>>();

    let role = |server: &str| {
        if server == primary.addr.to_string() {
            "primary"
        } else {
            "replica"
        }
    };
    let run = |label: &'static str| {
        let client = client.clone();
        async move {
            let mut served = BTreeMap::<(String, String), u32>::new();
            for i in 0..30 {
                let (method, body) = if i % 3 == 0 {
                    (Method::POST, Full::new(Bytes::from("order")))
                } else {
                    (Method::GET, Full::default())
                };
                let request = Request::builder()
                    .method(method.clone())
                    .uri("/orders")
                    .body(body)?;
                let server = client.request(request).await?.into_body().text().await?;
                *served.entry((method.to_string(), server)).or_default() += 1;
            }
            println!("{label}:");
            for ((method, server), n) in &served {
                println!("  {method:<4} -> {server} ({}): {n}", role(server));
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        }
    };
    run("20 reads and 10 writes").await?;

    // Both replicas go away: once their health checks fail (checked every
    // 100 ms, three failures in a row), reads fall back to the primary.
    for replica in &replicas {
        replica.kill();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    run("\nwith both replicas down").await?;
    let stats = client.stats();
    for subset in &stats.subsets {
        println!(
            "subset {}: {} of {} healthy, requests go to {:?}",
            subset.name, subset.healthy, subset.members, subset.routed_to
        );
    }
    Ok(())
}
