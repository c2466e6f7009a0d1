//! `fulcrum simulate subsetting`, run as a user runs it.

mod support;

use std::time::Duration;

use support::fulcrum_within;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn deterministic_subsetting_is_even_and_rendezvous_churns_less() {
    let args = |method| {
        [
            "simulate",
            "subsetting",
            "--clients",
            "1000",
            "--endpoints",
            "100",
            "--subset",
            "10",
            "--churn",
            "10",
            "--method",
            method,
        ]
    };
    let out = fulcrum_within(LIMIT, &args("deterministic")).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("connections=10000 full_mesh=100000"),
        "{text}"
    );
    assert!(text.contains("min=100 mean=100.0 max=100"), "{text}");
    let moved = |text: &str| -> u64 {
        let at = text.find(" moved=").unwrap() + " moved=".len();
        text[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let deterministic_moved = moved(&text);

    let out = fulcrum_within(LIMIT, &args("rendezvous")).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("replaced=10 endpoints"), "{text}");
    assert!(moved(&text) * 3 < deterministic_moved, "{text}");
}

#[tokio::test]
async fn a_scenario_that_cannot_work_is_a_usage_error() {
    let out = fulcrum_within(
        LIMIT,
        &[
            "simulate",
            "subsetting",
            "--clients",
            "10",
            "--endpoints",
            "5",
            "--subset",
            "6",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("more than the 5 endpoints"), "{err}");
}
