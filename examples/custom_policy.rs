//! A policy of your own: the `Policy` and `Picker` traits, unit-tested
//! without a balancer, then used by a real client.
//!
//! The policy here is "active / passive": every request goes to the first
//! endpoint (in address order) that can take it; the others stand by. The
//! balancer keeps doing its part: when the active server stops accepting
//! connections, it is taken out of service and the requests move to the
//! next one, with no error.
//!
//! ```text
//! cargo run --release --example custom_policy
//! ```

#[path = "../tests/support/http.rs"]
mod support;

use std::time::Duration;

use fulcrum::pick::{Loads, PickContext, Picker, Policy, TestEndpoints};
use support::{Backend, Behaviour};

/// Every request to the lowest address that can serve.
#[derive(Debug)]
struct ActivePassive;

impl Picker for ActivePassive {
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        // The picker sees only endpoints that can take requests now,
        // indexed 0..len; lowest address first.
        let loads = cx.loads();
        (0..loads.len()).min_by_key(|&i| loads.endpoint(i).addr())
    }
}

impl Policy for ActivePassive {
    fn name(&self) -> &str {
        "active-passive"
    }

    fn build(&self, _loads: &Loads<'_>, _previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        Box::new(ActivePassive)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Unit-test the picker on its own.
    let endpoints = TestEndpoints::equal(3);
    assert_eq!(endpoints.counts(&ActivePassive, 10, 1), vec![10, 0, 0]);

    let ok = Behaviour::Delay(Duration::from_millis(1));
    let mut servers = [
        Backend::start(ok).await,
        Backend::start(ok).await,
        Backend::start(ok).await,
    ];
    servers.sort_by_key(|s| s.addr);
    let target = servers
        .iter()
        .map(|s| s.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");

    let client = fulcrum::http::Client::builder()
        .target(&target)?
        .policy_value(ActivePassive)
        // A GET caught on the dead server's open connection is retried on
        // another endpoint (picked by the same policy).
        .retries(2)?
        .build::<http_body_util::Full<bytes::Bytes>>();

    let send = |n: usize| {
        let client = client.clone();
        async move {
            let mut served = std::collections::BTreeMap::<String, usize>::new();
            for _ in 0..n {
                let server = client.get("/").await?.into_body().text().await?;
                *served.entry(server).or_default() += 1;
            }
            Ok::<_, Box<dyn std::error::Error>>(served)
        }
    };
    println!(
        "100 requests with {}: {:?}",
        ActivePassive.name(),
        send(100).await?
    );

    // The active server goes away.
    let gone = servers[0].addr;
    servers[0].kill();
    println!("{gone} stopped; 100 more: {:?}", send(100).await?);
    let stats = client.stats();
    let dead = stats.endpoint(gone).expect("still listed");
    println!(
        "errors seen by the caller: none. At {gone}: {} requests never sent (refused \
         connections move requests without a retry); {} retried elsewhere by the retry layer",
        dead.not_sent, stats.retries
    );
    Ok(())
}
