//! Alert analysis end to end on `reel up`: with more than a thousand series
//! in the node's metrics store, a fault injected into one appliance (errors
//! on its object requests) fires an alert within a minute, and its top
//! suspects include that appliance's own error or latency series.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_in_one_appliance_fires_an_alert_that_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = up_demo(dir.path()).await;
    let base = server.base.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    // A viewer's token and the appliances it may use.
    let (token, profile) = sign_up(&http, &base, "alerts@example.com", "premium").await;
    let play = post(&http, format!("{base}/api/v1/playback"), Some(&token), json!({"profile_id": profile, "title_id": "demo-colony"}))
        .await
        .expect("playback");
    let media_token = play["token"].as_str().expect("token").to_string();
    let appliances: Vec<(String, String)> = play["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .filter_map(|u| Some((u["appliance_id"].as_str()?.to_string(), u["url"].as_str()?.to_string())))
        .collect();
    assert!(appliances.len() >= 2, "the demo fleet: {play}");
    let (victim, victim_url) = appliances[1].clone();

    // Background: steady viewing on every appliance, and a thousand more
    // series pushed by a client.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (http, stop, appliances, media_token) = (http.clone(), stop.clone(), appliances.clone(), media_token.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (_, url) in &appliances {
                    let _ = http.get(format!("{url}/media/{media_token}/demo-colony/360p/index.m3u8")).send().await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let noise = {
        let (http, stop, base) = (http.clone(), stop.clone(), base.clone());
        tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut text = String::from("# TYPE synthetic_load gauge\n");
                for i in 0..1200u64 {
                    let v = ((i * 7919 + round * 104_729) % 1000) as f64 / 10.0;
                    text.push_str(&format!("synthetic_load{{shard=\"s{}\",host=\"h{}\"}} {v}\n", i % 40, i));
                }
                let _ = http.post(format!("{base}/api/v1/metrics/write")).body(text).send().await;
                round += 1;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };

    let rule = http
        .post(format!("{base}/api/v1/alert-rules"))
        .json(&json!({"name": "edge errors", "expr": "sum by (appliance) (rate(edge_errors_total[30s]))", "op": ">", "threshold": 0.5, "for_s": 5}))
        .send()
        .await
        .expect("rule");
    assert_eq!(rule.status(), 201, "{:?}", rule.text().await);
    // The same condition written the Prometheus way: a filtering expression.
    let promql = http
        .post(format!("{base}/api/v1/alert-rules"))
        .json(&json!({"name": "edge errors (promql)", "kind": "promql", "expr": "sum by (appliance) (rate(edge_errors_total[30s])) > 0.5", "for_s": 5}))
        .send()
        .await
        .expect("promql rule");
    assert_eq!(promql.status(), 201, "{:?}", promql.text().await);
    let promql_rule: Value = promql.json().await.expect("rule json");
    let bad_kind = http.post(format!("{base}/api/v1/alert-rules")).json(&json!({"name": "x", "kind": "vibes", "expr": "up"})).send().await.expect("bad kind");
    assert_eq!(bad_kind.status(), 422);
    // A bad rule is refused with the position of the mistake.
    let bad = http.post(format!("{base}/api/v1/alert-rules")).json(&json!({"name": "bad", "expr": "sum(rate(x[1m]"})).send().await.expect("bad rule");
    assert_eq!(bad.status(), 400);

    // A quiet baseline, then the fault.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let alerts: Value = http.get(format!("{base}/api/v1/alerts")).send().await.expect("alerts").json().await.expect("json");
    assert_eq!(alerts["alerts"].as_array().map(Vec::len), Some(0), "nothing fires before the fault: {alerts}");
    let set = http.post(format!("{victim_url}/chaos")).json(&json!({"error_rate": 0.9})).send().await.expect("chaos");
    assert_eq!(set.status(), 200);
    let injected = Instant::now();

    // Both rules fire within a minute of the fault.
    let (fired, fired_promql) = loop {
        let alerts: Value = http.get(format!("{base}/api/v1/alerts")).send().await.expect("alerts").json().await.expect("json");
        let list = alerts["alerts"].as_array().cloned().unwrap_or_default();
        let threshold = list.iter().find(|a| a["name"] == "edge errors").cloned();
        let promql = list.iter().find(|a| a["rule_id"] == promql_rule["id"]).cloned();
        if let (Some(a), Some(b)) = (threshold, promql) {
            break (a, b);
        }
        assert!(injected.elapsed() < Duration::from_secs(60), "both rules fire within a minute of the fault: {alerts}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(fired_promql["labels"]["appliance"], victim, "the promql rule names the faulty appliance: {fired_promql}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::join!(load, noise);
    assert_eq!(fired["state"], "firing");
    assert_eq!(fired["labels"]["appliance"], victim, "the alert is about the faulty appliance: {fired}");
    let ranked_of = fired["suspects"]["ranked_of"].as_u64().unwrap_or(0);
    assert!(ranked_of >= 1000, "ranked against {ranked_of} series");
    let top: Vec<&Value> = fired["suspects"]["top"].as_array().expect("top").iter().take(5).collect();
    let own = top.iter().any(|s| {
        let name = s["series"]["__name__"].as_str().unwrap_or("");
        s["series"]["appliance"] == victim.as_str() && (name.contains("error") || name.contains("duration") || name.contains("http_requests"))
    });
    assert!(own, "the appliance's own error or latency series is among the top suspects: {top:#?}");
    for s in &top {
        assert!(s["evidence"]["correlation"].is_number() && s["score"].is_number(), "{s}");
    }
    // And published as an event for remediation.
    let events: Value = http.get(format!("{base}/api/v1/events")).send().await.expect("events").json().await.expect("json");
    assert!(
        events["events"].as_array().expect("events").iter().any(|e| e["kind"] == "alert.fired" && e["subject"] == fired["id"]),
        "{events}"
    );
    drop(server);
}
