//! The control plane's metrics: requests counted and timed by route,
//! playback starts, and the players' quality-of-experience beacons, exposed
//! as Prometheus text at `/metrics`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

macro_rules! on_each_backend {
    (|$srv:ident| $body:block) => {{
        async fn scenario($srv: &TestServer) $body
        common::run(Options::default(), |srv| async move { scenario(&srv).await }).await
    }};
}

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn requests_plays_and_player_beacons_show_up_in_metrics() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("premium").await;
        let started = srv.play(&user, &user.profile_id, &srv.fx.teen_movie).await;
        let stream = str_at(&started, "/id");
        let qoe = format!("/api/v1/playback/{stream}/qoe");
        srv.post(&qoe).auth(&user.token).json(&json!({"startup_ms": 850, "rebuffers": 2, "rebuffer_ms": 1200, "bitrate_kbps": 2500})).send().await.expect_status(204);
        srv.post(&qoe).auth(&user.token).json(&json!({"errors": 1})).send().await.expect_status(204);
        // Bad beacons are clear errors and count nothing.
        srv.post(&qoe).auth(&user.token).json(&json!({"startup_ms": -5})).send().await.expect_error(422, "validation");
        srv.post(&qoe).auth(&user.token).json(&json!({"rebuffers": "many"})).send().await.expect_client_error();
        srv.post(&qoe).auth(&user.token).json(&json!({"surprise": 1})).send().await.expect_client_error();
        // Another account cannot report on this stream.
        let other = srv.sign_up("basic").await;
        srv.post(&qoe).auth(&other.token).json(&json!({"errors": 1})).send().await.expect_error(404, "not_found");
        srv.post(&qoe).json(&json!({"errors": 1})).send().await.expect_client_error();

        let res = srv.get("/metrics").send().await;
        assert_eq!(res.status, 200);
        assert!(res.header("content-type").unwrap_or_default().starts_with("text/plain"));
        let text = res.text();
        let tags = "{appliance=\"unknown\",region=\"none\"}";
        assert_eq!(value_of(&text, &format!("playback_rebuffers_total{tags}")), Some(2.0), "{text}");
        assert_eq!(value_of(&text, &format!("playback_errors_total{tags}")), Some(1.0));
        assert_eq!(value_of(&text, &format!("playback_startup_seconds_count{tags}")), Some(1.0));
        assert_eq!(value_of(&text, "playback_starts_total{plan=\"premium\",region=\"none\"}"), Some(1.0));
        assert_eq!(value_of(&text, "http_server_requests_total{method=\"POST\",route=\"/api/v1/playback\",status=\"201\"}"), Some(1.0));
        // Routes are templates, never raw ids.
        assert!(value_of(&text, "http_server_requests_total{method=\"POST\",route=\"/api/v1/playback/{id}/qoe\",status=\"204\"}").is_some(), "{text}");
        assert!(!text.contains(&stream), "no stream id in a series name");
        assert!(text.contains("# TYPE http_server_request_duration_seconds histogram"));
        assert!(text.contains("http_server_request_duration_seconds_bucket{route=\"/api/v1/playback\",le=\"+Inf\"} 1"), "{text}");
    });
}
