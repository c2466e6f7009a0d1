//! Metrics through the `metrics` facade, as an application's exporter
//! receives them: a recorder installed for this test binary, a balanced
//! HTTP client over real servers, and the series the driver records.

#[path = "support/http.rs"]
mod support;

use std::time::Duration;

use fulcrum::http::Client;
use fulcrum::Endpoint;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use support::{Backend, Behaviour};

/// Name, `balancer` label, `endpoint` label.
type Id = (String, Option<String>, Option<String>);

/// A recorder that keeps every counter's total and every gauge's last
/// value, as a Prometheus exporter would show them.
#[derive(Clone, Default)]
struct Keep {
    counters: Arc<Mutex<HashMap<Id, Arc<AtomicU64>>>>,
    gauges: Arc<Mutex<HashMap<Id, Arc<AtomicU64>>>>,
}

fn id(key: &Key) -> Id {
    let label = |name: &str| {
        key.labels()
            .find(|l| l.key() == name)
            .map(|l| l.value().to_owned())
    };
    (key.name().to_owned(), label("balancer"), label("endpoint"))
}

impl Recorder for Keep {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(counters.entry(id(key)).or_default().clone())
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut gauges = self.gauges.lock().unwrap();
        Gauge::from_arc(gauges.entry(id(key)).or_default().clone())
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

impl Keep {
    /// `name` for `endpoint` (or the balancer, with `None`) of `orders`.
    fn get(&self, name: &str, endpoint: Option<&str>) -> Option<f64> {
        let id = (
            name.to_owned(),
            Some("orders".to_owned()),
            endpoint.map(str::to_owned),
        );
        if let Some(c) = self.counters.lock().unwrap().get(&id) {
            return Some(c.load(Ordering::Relaxed) as f64);
        }
        let gauges = self.gauges.lock().unwrap();
        gauges
            .get(&id)
            .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_gauges_reach_the_installed_recorder() {
    let recorder = Keep::default();
    metrics::set_global_recorder(recorder.clone()).expect("the only recorder of this binary");

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
    // The failing backend is ejected after 5 failures in a row, so it
    // took about 5. Wait (at most 5 s) for an export that shows it all.
    let get = |name: &str, endpoint: Option<&str>| recorder.get(name, endpoint);
    let requests = |addr: &str| get("fulcrum_endpoint_requests_total", Some(addr));
    let exported = || {
        let (ok, failing) = (requests(&ok_addr), requests(&failing_addr));
        ok.zip(failing)
            .is_some_and(|(a, b)| a + b == 20.0 && b >= 5.0)
            && get("fulcrum_endpoint_failures_total", Some(&failing_addr))
                == requests(&failing_addr)
            && get("fulcrum_endpoint_ejections_total", Some(&failing_addr)) == Some(1.0)
            && get("fulcrum_endpoints_ejected", None) == Some(1.0)
            && get("fulcrum_endpoint_serving", Some(&failing_addr)) == Some(0.0)
            && get("fulcrum_endpoint_serving", Some(&ok_addr)) == Some(1.0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !exported() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters {:?}, gauges {:?}",
            recorder.counters.lock().unwrap(),
            recorder.gauges.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        get("fulcrum_endpoint_failures_total", Some(&ok_addr)),
        Some(0.0)
    );
    assert_eq!(get("fulcrum_endpoint_in_flight", Some(&ok_addr)), Some(0.0));
    let latency = get("fulcrum_endpoint_latency_seconds", Some(&ok_addr)).unwrap();
    assert!(latency > 0.0 && latency < 1.0, "{latency}");
    assert_eq!(get("fulcrum_endpoints", None), Some(2.0));
    assert_eq!(get("fulcrum_endpoints_ready", None), Some(1.0));
    assert_eq!(get("fulcrum_panic", None), Some(0.0));
    assert_eq!(get("fulcrum_retries_total", None), Some(0.0));
}
