//! Metrics through the `metrics` facade, as an application's exporter
//! receives them: a recorder installed for this test binary, a balanced
//! HTTP client over real servers, and the series the driver records.

#[path = "support/http.rs"]
mod support;

use std::time::Duration;

use fulcrum::http::Client;
use fulcrum::Endpoint;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::{Backend, Behaviour};

/// Every series: name, `balancer` label, `endpoint` label, value. One
/// snapshot (the debugging recorder resets counters as it reads them).
type Series = Vec<(String, Option<String>, Option<String>, f64)>;

fn series(snapshotter: &Snapshotter) -> Series {
    let snapshot = snapshotter.snapshot().into_vec();
    snapshot
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let label = |l: &str| {
                key.labels()
                    .find(|x| x.key() == l)
                    .map(|x| x.value().to_owned())
            };
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => f64::NAN,
            };
            (
                key.name().to_owned(),
                label("balancer"),
                label("endpoint"),
                value,
            )
        })
        .collect()
}

/// The value of `name` for `endpoint` (or for the balancer, with `None`)
/// of the balancer `orders`.
fn value(series: &Series, name: &str, endpoint: Option<&str>) -> Option<f64> {
    series.iter().find_map(|(n, b, e, v)| {
        (n == name && b.as_deref() == Some("orders") && e.as_deref() == endpoint).then_some(*v)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_gauges_reach_the_installed_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let ok = Backend::start(Behaviour::Delay(Duration::from_millis(1))).await;
    let failing = Backend::start(Behaviour::Unavailable).await;
    let client: Client = Client::builder()
        .endpoints([Endpoint::new(ok.addr), Endpoint::new(failing.addr)])
        .policy("round-robin")
        .unwrap()
        .configure(|b| {
            b.target("orders")
                .export_metrics(Duration::from_millis(100))
        })
        .build();
    for _ in 0..20 {
        let response = client.get("/").await.unwrap();
        response.into_body().bytes().await.unwrap();
    }
    let (ok_addr, failing_addr) = (ok.addr.to_string(), failing.addr.to_string());
    // Counters are read (and reset) by each snapshot: wait for an export
    // that saw all 20 requests, and check that export's series. The
    // failing backend is ejected after 5 failures in a row, so it took 5.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let seen = loop {
        let seen = series(&snapshotter);
        let requests = |addr: &str| value(&seen, "fulcrum_endpoint_requests_total", Some(addr));
        let (ok, failing) = (requests(&ok_addr), requests(&failing_addr));
        if ok
            .zip(failing)
            .is_some_and(|(a, b)| a + b == 20.0 && b >= 5.0)
        {
            break seen;
        }
        assert!(tokio::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let get = |name: &str, endpoint: Option<&str>| value(&seen, name, endpoint);
    assert_eq!(
        get("fulcrum_endpoint_failures_total", Some(&failing_addr)),
        get("fulcrum_endpoint_requests_total", Some(&failing_addr))
    );
    assert_eq!(
        get("fulcrum_endpoint_ejections_total", Some(&failing_addr)),
        Some(1.0)
    );
    assert_eq!(
        get("fulcrum_endpoint_serving", Some(&failing_addr)),
        Some(0.0)
    );
    assert_eq!(get("fulcrum_endpoints_ejected", None), Some(1.0));
    assert_eq!(
        get("fulcrum_endpoint_failures_total", Some(&ok_addr)),
        Some(0.0)
    );
    assert_eq!(get("fulcrum_endpoint_in_flight", Some(&ok_addr)), Some(0.0));
    assert_eq!(get("fulcrum_endpoint_serving", Some(&ok_addr)), Some(1.0));
    let latency = get("fulcrum_endpoint_latency_seconds", Some(&ok_addr)).unwrap();
    assert!(latency > 0.0 && latency < 1.0, "{latency}");
    assert_eq!(get("fulcrum_endpoints", None), Some(2.0));
    assert_eq!(get("fulcrum_panic", None), Some(0.0));
    assert!(get("fulcrum_endpoints_ready", None).is_some());
}
