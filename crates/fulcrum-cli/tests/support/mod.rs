//! Running the real `fulcrum` binary, as a user does.
#![allow(dead_code)]

use std::process::Output;
use std::time::Duration;

/// Runs `fulcrum ARGS…` to its end, which must come within `limit`.
pub async fn fulcrum_within(limit: Duration, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(limit, child)
        .await
        .expect("fulcrum must not hang")
        .expect("fulcrum runs")
}
