//! gRPC: fulcrum's balanced channel against tonic's own
//! `Channel::balance_list`, over the same 3 tonic servers, through the
//! same tonic-generated client, side by side in one run.
//!
//! Run: `cargo bench --bench grpc` (`-- --requests N --concurrency C`,
//! 20000 and 16 by default). First the servers answer at once
//! (throughput; the median of five alternating runs each), then one of them
//! answers in 40 ms and the others in 2 ms (tail latency).

mod load;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fulcrum::grpc::demo::greeter::greeter_client::GreeterClient;
use fulcrum::grpc::demo::greeter::greeter_server::GreeterServer;
use fulcrum::grpc::demo::greeter::HelloRequest;
use fulcrum::grpc::demo::DemoGreeter;
use hdrhistogram::Histogram;
use tokio_stream::wrappers::TcpListenerStream;

fn main() {
    load::main(20_000, 16, run);
}

/// A tonic server of the demo greeter answering after `delay`.
async fn server(delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let greeter = DemoGreeter::new(addr.to_string()).delay(delay);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(greeter))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

type Shares = std::collections::HashMap<String, u64>;

/// `n` unary calls from `c` tasks, each with its own clone of `client`.
/// Also returns how many calls each server (by address) answered.
async fn drive<T>(label: &str, client: GreeterClient<T>, n: u64, c: usize) -> (load::Run, Shares)
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let (mut client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let (mut ok, mut errors, mut shares) = (0, 0, Shares::new());
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let request = HelloRequest {
                        name: "bench".into(),
                    };
                    let call = client.say_hello(request);
                    match tokio::time::timeout(Duration::from_secs(10), call).await {
                        Ok(Ok(reply)) => {
                            ok += 1;
                            *shares.entry(reply.into_inner().server).or_default() += 1;
                        }
                        _ => errors += 1,
                    }
                    latency.saturating_record(t.elapsed().as_micros().max(1) as u64);
                }
                (latency, ok, errors, shares)
            })
        })
        .collect();
    let mut run = load::Run {
        label: label.to_owned(),
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
    };
    let mut shares = Shares::new();
    for task in tasks {
        let (latency, ok, errors, answered) = task.await.unwrap();
        run.latency_us.add(&latency).unwrap();
        run.ok += ok;
        run.errors += errors;
        for (server, calls) in answered {
            *shares.entry(server).or_default() += calls;
        }
    }
    run.elapsed = started.elapsed();
    (run, shares)
}

fn channels(addrs: &[SocketAddr]) -> (fulcrum::grpc::Channel, tonic::transport::Channel) {
    let target = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let ours = fulcrum::grpc::Channel::from_target(&target).unwrap();
    let endpoints = addrs
        .iter()
        .map(|a| tonic::transport::Endpoint::from_shared(format!("http://{a}")).unwrap());
    let theirs = tonic::transport::Channel::balance_list(endpoints);
    (ours, theirs)
}

async fn run(n: u64, c: usize) {
    println!("grpc: SayHello over 3 tonic servers on loopback, {n} calls, {c} in flight");
    load::header("");
    let fast = [
        server(Duration::ZERO).await,
        server(Duration::ZERO).await,
        server(Duration::ZERO).await,
    ];
    let (ours, theirs) = channels(&fast);
    let (mut ours_rps, mut theirs_rps) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let (run, _) = drive(
            &format!("fulcrum Channel (ewma) #{round}"),
            GreeterClient::new(ours.clone()),
            n,
            c,
        )
        .await;
        load::row(&run, "");
        ours_rps.push(run.rps());
        let (run, _) = drive(
            &format!("tonic balance_list #{round}"),
            GreeterClient::new(theirs.clone()),
            n,
            c,
        )
        .await;
        load::row(&run, "");
        theirs_rps.push(run.rps());
    }

    println!();
    let tail_n = (n / 4).max(1_000);
    let one_slow = [
        server(Duration::from_millis(2)).await,
        server(Duration::from_millis(2)).await,
        server(Duration::from_millis(40)).await,
    ];
    println!("one server at 40 ms, two at 2 ms, {tail_n} calls:");
    load::header("shares %");
    let (ours, theirs) = channels(&one_slow);
    // Each server's share of the calls, the slow one last.
    let shares = |answered: &Shares, run: &load::Run| {
        let share = |a: &SocketAddr| {
            let calls = answered.get(&a.to_string()).copied().unwrap_or(0);
            format!("{:.0}", 100.0 * calls as f64 / run.ok.max(1) as f64)
        };
        one_slow.iter().map(share).collect::<Vec<_>>().join("/")
    };
    let (slow_ours, answered) = drive(
        "fulcrum Channel (ewma)",
        GreeterClient::new(ours),
        tail_n,
        c,
    )
    .await;
    load::row(&slow_ours, &shares(&answered, &slow_ours));
    let (slow_theirs, answered) =
        drive("tonic balance_list", GreeterClient::new(theirs), tail_n, c).await;
    load::row(&slow_theirs, &shares(&answered, &slow_theirs));

    println!();
    let (ours_rps, theirs_rps) = (load::median(ours_rps), load::median(theirs_rps));
    println!(
        "ratio throughput fulcrum/tonic={:.3} (median of 5: {ours_rps:.0} / {theirs_rps:.0} calls/s; target >= 1.0)",
        ours_rps / theirs_rps
    );
    println!(
        "ratio p99 one-slow fulcrum/tonic={:.3} ({:.2} ms / {:.2} ms; target < 1)",
        slow_ours.ms(0.99) / slow_theirs.ms(0.99),
        slow_ours.ms(0.99),
        slow_theirs.ms(0.99)
    );
}
