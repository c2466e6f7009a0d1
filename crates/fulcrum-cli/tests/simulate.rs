//! `fulcrum simulate subsetting`, run as a user runs it.

mod support;

use std::time::Duration;

use support::fulcrum_within;

const LIMIT: Duration = Duration::from_secs(60);

/// The scenario, every method side by side: deterministic
/// subsetting uses 2 % of the full mesh, gives every endpoint the same
/// clients and requests, and removing 1 % of the endpoints changes under
/// 2 % of each client's subset; random subsetting (A68) and rendezvous
/// spread wider.
#[tokio::test]
async fn every_method_side_by_side() {
    let args = [
        "simulate",
        "subsetting",
        "--clients",
        "1000",
        "--endpoints",
        "1000",
        "--subset",
        "20",
        "--churn",
        "1",
        "--json",
    ];
    let out = fulcrum_within(LIMIT, &args).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |method: &str| {
        rows.iter()
            .find(|r| r["method"] == method)
            .unwrap_or_else(|| panic!("no {method} in {text}"))
            .clone()
    };
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap();
    let d = row("deterministic");
    assert_eq!(d["connections"], 20_000);
    assert!((f(&d, "full_mesh_percent") - 2.0).abs() < 1e-9);
    assert!(f(&d, "clients_max_over_mean") <= 1.10, "{d}");
    assert!(f(&d, "requests_max_over_mean") <= 1.10, "{d}");
    assert_eq!(d["removed"], 10);
    assert!(f(&d, "subset_changed_percent") <= 2.0, "{d}");
    for wide in ["random", "rendezvous"] {
        let r = row(wide);
        assert_eq!(r["connections"], 20_000);
        assert!(f(&r, "clients_max_over_mean") > 1.3, "{r}");
    }
    assert_eq!(row("none")["connections"], 1_000_000);

    // The table a user reads: one line per method, after a header.
    let out = fulcrum_within(LIMIT, &args[..10]).await;
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.starts_with("subsetting: 1000 clients, 1000 endpoints"),
        "{table}"
    );
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("deterministic"))
        .unwrap();
    assert!(line.contains("20 / 20.0 / 20"), "{table}");
}

#[tokio::test]
async fn a_scenario_that_cannot_work_is_a_usage_error() {
    for (args, says) in [
        (
            ["--clients", "10", "--endpoints", "5", "--subset", "6"],
            "more than the 5 endpoints",
        ),
        (
            ["--clients", "10", "--endpoints", "5", "--subset", "0"],
            "subset must be at least 1",
        ),
    ] {
        let mut all = vec!["simulate", "subsetting"];
        all.extend(args);
        let out = fulcrum_within(LIMIT, &all).await;
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
