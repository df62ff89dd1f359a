//! A node's metrics store, end to end: requests to `reel serve` are counted,
//! collected into its time-series store, queried by PromQL over the API and
//! with `reel metrics query`; a bad query points at its position; and after
//! `kill -9` the samples already stored are still there.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

async fn instant(http: &reqwest::Client, base: &str, q: &str) -> (u16, serde_json::Value) {
    let res = http.get(format!("{base}/api/v1/metrics/query")).query(&[("query", q)]).send().await.expect("query");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json"))
}

fn scalar_of(v: &serde_json::Value) -> Option<f64> {
    v.pointer("/data/result/0/value/1")?.as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_stored_queried_and_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8").to_string();
    let mut server = start(&["serve", "--data-dir", &data]).await;
    let http = reqwest::Client::new();
    for _ in 0..7 {
        http.get(format!("{}/api/v1/genres", server.base)).send().await.expect("genres");
    }
    // The node collects every 5 s.
    let q = "sum(http_server_requests_total{route=\"/api/v1/genres\"})";
    let mut seen = None;
    for _ in 0..60 {
        let (status, body) = instant(&http, &server.base, q).await;
        assert_eq!(status, 200, "{body}");
        seen = scalar_of(&body);
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(seen, Some(7.0), "seven requests counted and stored");

    // A range query in Prometheus' shape.
    let now = reel_now();
    let res = http
        .get(format!("{}/api/v1/metrics/query_range", server.base))
        .query(&[("query", "sum by (status) (http_server_requests_total)"), ("start", &format!("{}", now - 60.0)), ("end", &format!("{now}")), ("step", "5")])
        .send()
        .await
        .expect("range");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["data"]["resultType"], "matrix", "{body}");

    // A parse error says where.
    let (status, body) = instant(&http, &server.base, "sum by (status (x)").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_query");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.starts_with("at 15:")), "{body}");
    // Bad ranges are validation errors.
    let res = http
        .get(format!("{}/api/v1/metrics/query_range", server.base))
        .query(&[("query", "up"), ("start", "100"), ("end", "50"), ("step", "5")])
        .send()
        .await
        .expect("range");
    assert_eq!(res.status(), 422);

    // The CLI, against the running node.
    let out = Command::new(env!("CARGO_BIN_EXE_reel")).args(["metrics", "query", "--url", &server.base, q]).output().expect("cli");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 7"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = Command::new(env!("CARGO_BIN_EXE_reel")).args(["metrics", "query", "--url", &server.base, "rate(("]).output().expect("cli");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reel: at "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line when stderr is not a terminal: {err}");

    // kill -9, then a new node on the same data: what was stored is there.
    server.child.kill().expect("kill -9");
    let _ = server.child.wait();
    drop(server);
    let again = start(&["serve", "--data-dir", &data]).await;
    let (status, body) = instant(&http, &again.base, "max_over_time(http_server_requests_total{route=\"/api/v1/genres\"}[10m])").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(scalar_of(&body), Some(7.0), "the stored samples survived: {body}");
}

fn reel_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
