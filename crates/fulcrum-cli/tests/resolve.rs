//! `fulcrum resolve`, run as a user runs it: the real binary, against an
//! authoritative DNS server in this process.

mod support;

#[path = "../../fulcrum-discovery/tests/support/dns_server.rs"]
mod dns_server;

use std::process::Output;
use std::time::Duration;

use dns_server::{ip, DnsServer, Srv};

async fn fulcrum(args: &[&str]) -> Output {
    support::fulcrum_within(Duration::from_secs(20), args).await
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn json_for_a_static_list() {
    let o = fulcrum(&["resolve", "127.0.0.2:8080,127.0.0.3:8080=5", "--json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"target\":\"127.0.0.2:8080,127.0.0.3:8080=5\",\"endpoints\":[\
         {\"addr\":\"127.0.0.2:8080\",\"weight\":1,\"priority\":0},\
         {\"addr\":\"127.0.0.3:8080\",\"weight\":5,\"priority\":0}]}\n"
    );
}

/// Labels (a static entry's `;key=value`, zone and region among them) are
/// shown as the static syntax writes them, in the table and in JSON.
#[tokio::test]
async fn labels_are_shown() {
    let target = "127.0.0.2:8080;role=primary;zone=eu-1a;region=eu,127.0.0.3:8080";
    let o = fulcrum(&["resolve", target]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.lines().nth(1).unwrap().ends_with("LABELS"), "{table}");
    assert!(
        table.contains("zone=eu-1a;region=eu;role=primary"),
        "{table}"
    );
    assert!(
        table.lines().nth(3).unwrap().trim_end().ends_with('-'),
        "{table}"
    );
    let o = fulcrum(&["resolve", target, "--json"]).await;
    assert!(
        stdout(&o)
            .contains("\"zone\":\"eu-1a\",\"region\":\"eu\",\"labels\":{\"role\":\"primary\"}"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test]
async fn srv_records_as_json_and_as_a_table() {
    let dns = DnsServer::start().await;
    dns.set_ips("a", &[ip("127.0.0.2")], 30).await;
    dns.set_ips("b", &[ip("127.0.0.3")], 30).await;
    dns.set_srv(
        "_http._tcp",
        &[Srv(1, 10, 8080, "a"), Srv(2, 0, 8081, "b")],
        30,
    )
    .await;
    let target = format!("dns+srv://{}/_http._tcp.test.internal", dns.addr);
    let o = fulcrum(&["resolve", &target, "--json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["target"], target.as_str());
    assert_eq!(
        v["endpoints"],
        serde_json::json!([
            {"addr": "127.0.0.2:8080", "weight": 10, "priority": 1},
            {"addr": "127.0.0.3:8081", "weight": 0, "priority": 2},
        ])
    );
    let o = fulcrum(&["resolve", &target]).await;
    let table = stdout(&o);
    assert!(table.contains("2 endpoints"), "{table}");
    assert!(table.contains("a.test.internal:8080"), "{table}");
}

#[tokio::test]
async fn watch_prints_one_line_per_change_until_time_is_up() {
    let dns = DnsServer::start().await;
    dns.set_ips("api", &[ip("127.0.0.2")], 1).await;
    let target = format!("dns://{}/api.test.internal:80", dns.addr);
    let watch = {
        let target = target.clone();
        tokio::spawn(async move { fulcrum(&["resolve", &target, "--json", "--watch", "8"]).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dns.set_ips("api", &[ip("127.0.0.2"), ip("127.0.0.3")], 1)
        .await;
    let started = tokio::time::Instant::now();
    let o = watch.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&o));
    assert_eq!(lines[0]["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(lines[1]["endpoints"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_targets_exit_2_with_one_line() {
    for target in [
        "dns:///api",
        "http://x:1",
        "",
        "127.0.0.1:80,,",
        "dns+srv:///api.internal",
        "\n",
    ] {
        let o = fulcrum(&["resolve", target]).await;
        assert_eq!(o.status.code(), Some(2), "{target:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("fulcrum: invalid target"), "{err}");
    }
    let o = fulcrum(&["resolve", "127.0.0.1:80", "--watch", "-1"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[tokio::test]
async fn resolver_failures_exit_1() {
    let dns = DnsServer::start().await;
    let o = fulcrum(&[
        "resolve",
        &format!("dns://{}/nowhere.test.internal:80", dns.addr),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("NXDOMAIN"), "{}", stderr(&o));
    // Nothing listens on port 1: the query times out (UDP) or is refused (TCP).
    let o = fulcrum(&["resolve", "dns://127.0.0.1:1/api.test.internal:80"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resolving `api.test.internal` failed"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn watch_that_never_finds_a_set_exits_1_and_absurd_durations_exit_2() {
    let o = fulcrum(&[
        "resolve",
        "dns://127.0.0.1:1/api.test.internal:80",
        "--watch",
        "3",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let o = fulcrum(&["resolve", "127.0.0.1:80", "--watch", "1e19"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = fulcrum(&["resolve", "127.0.0.1:80", "--watch", "NaN"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// A locality map places endpoints by address; a bad one is a usage error.
#[tokio::test]
async fn a_locality_map_places_endpoints() {
    let target = "first(127.0.0.2:8080, 127.0.0.3:8080;zone=own)";
    let map = "127.0.0.0/30;zone=z1;region=r1,127.0.0.0/8;zone=z2";
    let o = fulcrum(&["resolve", target, "--locality-map", map]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = stdout(&o);
    let line = |addr: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(addr))
            .unwrap()
            .to_owned()
    };
    assert!(
        line("127.0.0.2:8080").ends_with("zone=z1;region=r1"),
        "{table}"
    );
    assert!(
        line("127.0.0.3:8080").ends_with("zone=own;region=r1"),
        "{table}"
    );
    assert!(
        line("127.0.0.3:8080").contains("65536"),
        "the second part's tier: {table}"
    );
    let o = fulcrum(&["resolve", target, "--locality-map", "10.0.0.0/8"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs `;zone=Z`"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    let o = fulcrum(&["resolve", "first(127.0.0.2:8080"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unbalanced"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
}
