//! A rule's `for` timer survives a crash: a condition pending for 20 of its
//! 30 seconds when the node is killed fires about 10 seconds of pending
//! later after the restart, not 30 seconds after it (the timer is kept in
//! the metrics store as `ALERTS_FOR_STATE`, Prometheus' scheme: the time
//! the node was down does not count).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn alerts_of(http: &reqwest::Client, base: &str, rule_id: &str) -> Vec<Value> {
    let alerts: Value = http.get(format!("{base}/api/v1/alerts")).send().await.expect("alerts").json().await.expect("json");
    alerts["alerts"].as_array().expect("alerts").iter().filter(|a| a["rule_id"] == rule_id).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_timer_resumes_after_a_crash() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let args = ["serve", "--data-dir", data.to_str().expect("utf-8")];
    let server = start(&args).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    let rule_json = json!({"name": "always", "kind": "promql", "expr": "vector(1) > 0", "for_s": 30});
    let rule = post(&http, format!("{}/api/v1/alert-rules", server.base), None, rule_json).await.expect("rule created");
    let rule_id = rule["id"].as_str().expect("rule id").to_string();
    let created = Instant::now();

    // Pending (evaluated every 5 s) for about 20 s, then killed.
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert!(alerts_of(&http, &server.base, &rule_id).await.is_empty(), "fired before its 30 s");
    drop(server);
    let killed = Instant::now();
    let server = start(&args).await;

    // A fresh timer would fire 30 s after the first evaluation after the
    // restart (35 s or more); the resumed one has about 10 s to go.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fired_after = loop {
        if let Some(a) = alerts_of(&http, &server.base, &rule_id).await.first() {
            assert_eq!(a["state"], "firing");
            break killed.elapsed();
        }
        assert!(Instant::now() < deadline, "the alert never fired after the restart");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        fired_after < Duration::from_secs(27),
        "fired {fired_after:?} after the crash: the pending timer started over"
    );
    assert!(created.elapsed() >= Duration::from_secs(30), "fired before the rule's 30 s");
}
