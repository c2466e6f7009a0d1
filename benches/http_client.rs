//! HTTP throughput: `fulcrum::http::Client` over 3 local backends against
//! hyper-util's `Client` sending to the same 3 in turn (each URI names
//! one), the same load, side by side in one run. What fulcrum adds (discovery, a pick per request, load
//! tracked to the end of each body) must cost under 5 % of throughput.
//!
//! Run: `cargo bench --bench http_client` (`-- --requests N --concurrency
//! C`, 40000 and 16 by default). Backends answer at once, so the client
//! side is what is measured; both clients keep HTTP/1.1 connections
//! alive. The runs alternate, five each, and the medians are compared.

#[path = "../tests/support/http.rs"]
mod backends;
mod load;

use std::time::Duration;

use backends::{Backend, Behaviour};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

fn main() {
    load::main(40_000, 16, run);
}

async fn run(n: u64, c: usize) {
    let now = Behaviour::Delay(Duration::ZERO);
    let backends = [
        Backend::start(now).await,
        Backend::start(now).await,
        Backend::start(now).await,
    ];
    let target = backends
        .iter()
        .map(|b| b.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");
    println!("http_client: GET / to backends answering at once, {n} requests, {c} in flight");
    load::header("");

    let fulcrum: fulcrum::http::Client = fulcrum::http::Client::from_target(&target).unwrap();
    let hyper: HyperClient<_, Full<Bytes>> = HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http();
    // hyper-util has no balancer: it gets the same three backends in turn,
    // each request's URI naming one.
    let direct: Vec<String> = backends
        .iter()
        .map(|b| format!("http://{}/", b.addr))
        .collect();

    let (mut fulcrum_rps, mut hyper_rps) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let run = load::drive(
            &format!("fulcrum Client, 3 backends #{round}"),
            fulcrum.clone(),
            n,
            c,
            |_| {
                http::Request::get("/")
                    .body(Full::<Bytes>::default())
                    .unwrap()
            },
        )
        .await;
        load::row(&run, "");
        fulcrum_rps.push(run.rps());
        let uris = direct.clone();
        let run = load::drive(
            &format!("hyper-util Client, 3 in turn #{round}"),
            tower::service_fn({
                let hyper = hyper.clone();
                move |req| hyper.request(req)
            }),
            n,
            c,
            move |i| {
                http::Request::get(uris[i as usize % uris.len()].as_str())
                    .body(Full::<Bytes>::default())
                    .unwrap()
            },
        )
        .await;
        load::row(&run, "");
        hyper_rps.push(run.rps());
    }
    println!();
    let (fulcrum_rps, hyper_rps) = (load::median(fulcrum_rps), load::median(hyper_rps));
    println!(
        "ratio throughput fulcrum/hyper-util={:.3} (median of 5: {fulcrum_rps:.0} / {hyper_rps:.0} req/s; target >= 0.95)",
        fulcrum_rps / hyper_rps
    );
}
