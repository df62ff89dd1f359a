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

/// Pushes `reel_test_toggle <v>` every second for `secs`, and returns the rule's alerts after
/// each push (the last list).
async fn push_for(http: &reqwest::Client, base: &str, v: u8, secs: u64, mut stop: impl FnMut(&[Value]) -> bool, rule_id: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let res = http.post(format!("{base}/api/v1/metrics/write")).body(format!("reel_test_toggle {v}\n")).send().await.expect("push");
        assert!(res.status().is_success(), "{}", res.status());
        let alerts = alerts_of(http, base, rule_id).await;
        if stop(&alerts) || Instant::now() >= deadline {
            return alerts;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A Prometheus-style rule's series drops out of the result when its condition stops; the
/// next time the condition holds, the `for` timer starts over instead of firing at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_episode_waits_its_full_for_duration() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let server = start(&["serve", "--data-dir", data.to_str().expect("utf-8")]).await;
    let base = server.base.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let rule_json = json!({"name": "toggle", "kind": "promql", "expr": "reel_test_toggle > 0", "for_s": 15});
    let rule = post(&http, format!("{base}/api/v1/alert-rules"), None, rule_json).await.expect("rule created");
    let rule_id = rule["id"].as_str().expect("rule id").to_string();

    let firing = |a: &[Value]| a.iter().filter(|a| a["state"] == "firing").count();
    let alerts = push_for(&http, &base, 1, 45, |a| firing(a) == 1, &rule_id).await;
    assert_eq!(firing(&alerts), 1, "the first episode fired: {alerts:?}");
    let alerts = push_for(&http, &base, 0, 30, |a| firing(a) == 0, &rule_id).await;
    assert_eq!(firing(&alerts), 0, "the first episode resolved: {alerts:?}");

    // Holds again: nothing for the first 10 s (a stale timer would fire within 5 s).
    let again = Instant::now();
    let alerts = push_for(&http, &base, 1, 10, |a| firing(a) > 0, &rule_id).await;
    assert_eq!(firing(&alerts), 0, "fired {:?} into the new episode", again.elapsed());
    let alerts = push_for(&http, &base, 1, 30, |a| firing(a) > 0, &rule_id).await;
    assert_eq!(firing(&alerts), 1, "the second episode fired: {alerts:?}");
    assert!(again.elapsed() >= Duration::from_secs(15), "after {:?}", again.elapsed());
}
