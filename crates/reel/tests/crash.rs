//! `kill -9` during a burst of sign-ups and heartbeats, then restart: every
//! write the server acknowledged is still there.
//!
//! Runs the real binary (`reel up`) on loopback with its embedded database.
//! The demo video is cached under the target directory so only the first run
//! of the test suite spends time generating it.

mod common;

use common::{post, sign_up, up_demo, PASSWORD};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let data = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let mut child = up_demo(data.path()).await;
    let base = child.base.clone();

    // A Premium account watching four titles on four profiles.
    let (token, first_profile) = sign_up(&http, &base, "crash@example.com", "premium").await;
    let mut profiles = vec![first_profile];
    for i in 0..3 {
        let p = post(&http, format!("{base}/api/v1/profiles"), Some(&token), json!({"name": format!("P{i}")})).await.expect("profile");
        profiles.push(p["id"].as_str().expect("id").to_string());
    }
    let titles = ["demo-signal-fire", "demo-colony", "demo-rule-110", "demo-deep-zoom"];
    let mut streams = Vec::new();
    for (p, t) in profiles.iter().zip(titles) {
        let s = post(&http, format!("{base}/api/v1/playback"), Some(&token), json!({"profile_id": p, "title_id": t})).await.expect("playback");
        streams.push((p.clone(), t.to_string(), s["id"].as_str().expect("stream id").to_string()));
    }

    // The burst: sign-ups and heartbeats, recording what was acknowledged.
    let acked_emails = Arc::new(Mutex::new(Vec::<String>::new()));
    let acked_positions = Arc::new(Mutex::new(vec![0.0f64; streams.len()]));
    let mut tasks = Vec::new();
    for w in 0..2 {
        let (http, base, acked) = (http.clone(), base.clone(), acked_emails.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..400 {
                let email = format!("burst{w}-{i}@example.com");
                let body = json!({"email": email, "password": PASSWORD, "plan": "basic"});
                match post(&http, format!("{base}/api/v1/accounts"), None, body).await {
                    Some(_) => acked.lock().expect("lock").push(email),
                    None => return,
                }
            }
        }));
    }
    for (i, (_, _, stream)) in streams.iter().enumerate() {
        let (http, base, token, stream, acked) = (http.clone(), base.clone(), token.clone(), stream.clone(), acked_positions.clone());
        tasks.push(tokio::spawn(async move {
            // Positions rise and stay inside the 30 s demo titles.
            for step in 1..2_900 {
                let pos = step as f64 * 0.01;
                match post(&http, format!("{base}/api/v1/playback/{stream}/heartbeat"), Some(&token), json!({"position_s": pos})).await {
                    Some(_) => acked.lock().expect("lock")[i] = pos,
                    None => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    child.child.kill().expect("kill -9"); // SIGKILL on Unix: no shutdown path runs.
    let _ = child.child.wait();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let emails = acked_emails.lock().expect("lock").clone();
    let positions = acked_positions.lock().expect("lock").clone();
    eprintln!("acknowledged before the kill: {} sign-ups; heartbeat positions {positions:?}", emails.len());
    assert!(!emails.is_empty(), "the burst acknowledged some sign-ups before the kill");
    assert!(positions.iter().all(|p| *p > 0.0), "the burst acknowledged heartbeats before the kill: {positions:?}");

    // Restart on the same data directory.
    let child = up_demo(data.path()).await;
    let base = child.base.clone();
    {
        for email in &emails {
            let r = post(&http, format!("{base}/api/v1/sessions"), None, json!({"email": email, "password": PASSWORD})).await;
            assert!(r.is_some(), "acknowledged sign-up {email} was lost");
        }
        for ((profile, title, _), acked) in streams.iter().zip(&positions) {
            let page: Value = http
                .get(format!("{base}/api/v1/titles/{title}?profile={profile}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("title page")
                .json()
                .await
                .expect("json");
            let stored = page["progress"]["position_s"].as_f64().unwrap_or(-1.0);
            // JSON floats may round-trip one ulp apart.
            assert!(stored + 1e-9 >= *acked, "{title}: acknowledged position {acked} but {stored} stored");
        }
    }
    drop(child);
}
