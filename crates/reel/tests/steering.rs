//! Playback through steering: clients from two prefixes are each served by
//! their own site's appliance, and `reel steer explain` says why.

mod common;

use common::{post, sign_up, up_demo};
use serde_json::{json, Value};

async fn client_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<std::net::IpAddr>().expect("an address"))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_prefix_plays_from_its_own_sites_appliance() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("utf-8").to_string();
    let server = up_demo(data.path()).await;
    let base = &server.base;
    let http = reqwest::Client::new();
    let (token, profile) = sign_up(&http, base, "steer@example.com", "premium").await;

    // Appliances report every 2 s; wait until steering counts them healthy.
    let mut ready = false;
    for _ in 0..50 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["steer", "explain", "--data-dir", &dir, "--client", "127.0.1.5", "--title", "demo-colony", "--json"])
            .output()
            .expect("steer explain");
        let d: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if d["places"].as_array().is_some_and(|p| p.len() == 5) {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ready, "all four appliances became healthy");

    for (client, site, appliance) in [("127.0.1.5", "use1", "oca-use1-01"), ("127.0.2.5", "use2", "oca-use2-01")] {
        let viewer = client_from(client).await;
        let play = post(&viewer, format!("{base}/api/v1/playback"), Some(&token), json!({"profile_id": profile, "title_id": "demo-colony"}))
            .await
            .expect("playback");
        assert_eq!(play["urls"][0]["appliance_id"], appliance, "{client} is steered to its own site first: {play}");
        assert_eq!(play["urls"][0]["site_id"], site);
        assert_eq!(play["urls"].as_array().map(|u| u.len()), Some(5), "four appliances, then the origin");
        assert_eq!(play["urls"][4]["kind"], "origin");

        // Play it: the master and a segment come from that appliance.
        let master_url = play["manifests"]["hls"].as_str().expect("manifest");
        assert!(master_url.starts_with(play["urls"][0]["url"].as_str().expect("url")));
        let master = viewer.get(master_url).send().await.expect("master").text().await.expect("text");
        let variant = master.lines().find(|l| !l.starts_with('#') && !l.is_empty()).expect("a variant");
        let variant_url = format!("{}/{variant}", master_url.rsplit_once('/').expect("dir").0);
        let playlist = viewer.get(&variant_url).send().await.expect("variant").text().await.expect("text");
        let segment = playlist.lines().find(|l| !l.starts_with('#') && !l.is_empty()).expect("a segment");
        let segment_url = format!("{}/{segment}", variant_url.rsplit_once('/').expect("dir").0);
        let res = viewer.get(&segment_url).send().await.expect("segment");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("x-reel-appliance").and_then(|v| v.to_str().ok()), Some(appliance));
        assert!(res.bytes().await.expect("bytes").len() > 1000);
        viewer
            .post(format!("{base}/api/v1/playback/{}/heartbeat", play["id"].as_str().expect("id")))
            .bearer_auth(&token)
            .json(&json!({"position_s": 1.0}))
            .send()
            .await
            .expect("heartbeat");
        viewer
            .post(format!("{base}/api/v1/playback/{}/stop", play["id"].as_str().expect("id")))
            .bearer_auth(&token)
            .json(&json!({"position_s": 1.0}))
            .send()
            .await
            .expect("stop");
    }

    // The next health report (every 2 s) says the appliance now holds the title.
    let mut text = String::new();
    for _ in 0..40 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["steer", "explain", "--data-dir", &dir, "--client", "127.0.2.9", "--title", "demo-colony"])
            .output()
            .expect("steer explain");
        text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.lines().nth(1).is_some_and(|l| l.contains("holds the title")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(first.contains("oca-use2-01") && first.contains("127.0.2.9"), "explain names the site and why:\n{text}");
    assert!(first.contains("holds the title"), "after playing, the appliance reports holding the title:\n{text}");
}

/// The plan an appliance pulls in its fill window: signed with the fleet key,
/// and holding what its region watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appliances_fetch_their_fill_plan_with_a_signed_request() {
    use base64::Engine;
    let data = tempfile::tempdir().expect("temp dir");
    let server = up_demo(data.path()).await;
    let base = &server.base;
    let http = reqwest::Client::new();
    let (token, profile) = sign_up(&http, base, "fill@example.com", "premium").await;
    let viewer = client_from("127.0.1.7").await;
    let play = post(&viewer, format!("{base}/api/v1/playback"), Some(&token), json!({"profile_id": profile, "title_id": "demo-deep-zoom"}))
        .await
        .expect("playback");
    post(&viewer, format!("{base}/api/v1/playback/{}/heartbeat", play["id"].as_str().expect("id")), Some(&token), json!({"position_s": 3.0}))
        .await
        .expect("heartbeat");

    let raw = std::fs::read_to_string(data.path().join("fleet.key")).expect("fleet key");
    let key = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(reel_domain::TokenKey::new)
        .expect("a fleet key");
    let now = reel_domain::now_ms() / 1000;
    let url = format!("{base}/api/v1/fleet/appliances/oca-use1-01/fill-plan");
    let signed = |t: i64| {
        http.get(&url).header("x-reel-time", t.to_string()).header("x-reel-signature", key.sign_bytes(format!("oca-use1-01:{t}").as_bytes()))
    };
    let plan: Value = signed(now).send().await.expect("plan").json().await.expect("json");
    let titles: Vec<&str> = plan["titles"].as_array().expect("titles").iter().filter_map(|t| t.as_str()).collect();
    assert_eq!(titles, vec!["demo-deep-zoom"], "us-east watched one title: {plan}");
    let other: Value = http
        .get(format!("{base}/api/v1/fleet/appliances/oca-euw1-01/fill-plan"))
        .header("x-reel-time", now.to_string())
        .header("x-reel-signature", key.sign_bytes(format!("oca-euw1-01:{now}").as_bytes()))
        .send()
        .await
        .expect("plan")
        .json()
        .await
        .expect("json");
    assert_eq!(other["titles"].as_array().map(|a| a.len()), Some(0), "eu-west watched nothing: {other}");
    assert_eq!(http.get(&url).send().await.expect("unsigned").status(), 401);
    assert_eq!(signed(now - 3600).send().await.expect("stale").status(), 401, "old signatures are refused");
}
