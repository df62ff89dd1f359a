//! Two `reel` control-plane processes on one PostgreSQL database serve the
//! same viewers: a session, a stream slot and a playback token made on one
//! node hold on the other. Needs `REEL_TEST_POSTGRES_URL` (CI sets it).

mod common;

use common::{demo_cache, post, post_status, start, PASSWORD};
use serde_json::{json, Value};

async fn fresh_database() -> Option<String> {
    let admin = match std::env::var("REEL_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must test PostgreSQL: set REEL_TEST_POSTGRES_URL");
            eprintln!("skipped: REEL_TEST_POSTGRES_URL is not set");
            return None;
        }
    };
    let db = format!("reel_n_{}", std::process::id());
    let (base, _) = admin.rsplit_once('/').expect("URL has a database part");
    let status = std::process::Command::new("psql")
        .arg(&admin)
        .args(["-qc", &format!("DROP DATABASE IF EXISTS {db}"), "-c", &format!("CREATE DATABASE {db}")])
        .status()
        .expect("run psql");
    assert!(status.success(), "psql could not create {db}");
    Some(format!("{base}/{db}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_serve_the_same_viewers() {
    let Some(url) = fresh_database().await else { return };
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("utf-8 path").to_string();
    let origin = format!("{dir}/origin");
    let cache = demo_cache();
    // Node A creates the demo catalog; node B is a plain control-plane node.
    let a = start(&["up", "--database-url", &url, "--data-dir", &dir, "--demo-cache", cache.to_str().expect("utf-8")]).await;
    // Its own data directory: each node keeps its own metrics store.
    let b_dir = format!("{dir}/node-b");
    let b = start(&["serve", "--database-url", &url, "--origin-dir", &origin, "--data-dir", &b_dir]).await;
    let http = reqwest::Client::new();

    let email = "two-nodes@example.com";
    post(&http, format!("{}/api/v1/accounts", a.base), None, json!({"email": email, "password": PASSWORD, "plan": "basic"}))
        .await
        .expect("sign up on A");
    let signed_in = post(&http, format!("{}/api/v1/sessions", b.base), None, json!({"email": email, "password": PASSWORD}))
        .await
        .expect("sign in on B");
    let token = signed_in["token"].as_str().expect("token").to_string();
    let profiles: Value = http
        .get(format!("{}/api/v1/profiles", a.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("profiles on A")
        .json()
        .await
        .expect("json");
    let profile = profiles["profiles"][0]["id"].as_str().expect("a profile").to_string();
    let play = json!({"profile_id": profile, "title_id": "demo-signal-fire"});

    let stream = post(&http, format!("{}/api/v1/playback", a.base), Some(&token), play.clone()).await.expect("play on A");
    let second = post_status(&http, format!("{}/api/v1/playback", b.base), Some(&token), play.clone()).await;
    assert_eq!(second.err(), Some(409), "Basic allows one stream across all nodes");

    let id = stream["id"].as_str().expect("stream id");
    post(&http, format!("{}/api/v1/playback/{id}/heartbeat", b.base), Some(&token), json!({"position_s": 7.0}))
        .await
        .expect("heartbeat on B for a stream started on A");
    // The manifest may point at an appliance; ask node B's origin for the same path.
    let manifest = stream["manifests"]["hls"].as_str().expect("manifest");
    let path = &manifest[manifest.find("/media/").expect("a media path")..];
    let m = http.get(format!("{}{path}", b.base)).send().await.expect("manifest on B");
    assert_eq!(m.status(), 200, "a token signed by A opens media on B");
    let text = m.text().await.expect("text");
    assert!(text.contains("720p") && !text.contains("1080p"), "Basic sees up to 720p on every node:\n{text}");

    post(&http, format!("{}/api/v1/playback/{id}/stop", b.base), Some(&token), json!({"position_s": 8.0}))
        .await
        .expect("stop on B");
    let again = post(&http, format!("{}/api/v1/playback", a.base), Some(&token), play).await.expect("play again on A");
    assert_eq!(again["start_position_s"].as_f64(), Some(8.0), "resume position written on B is read on A");
}
