//! DASH from the delivery plane: on `reel up` (demo catalog, four
//! appliances), a viewer's playback answer names a DASH manifest at the
//! best appliance; it lists only the renditions the plan allows, and its
//! segments (the same CMAF files HLS uses) come from that appliance.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appliances_serve_dash_cut_to_the_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = up_demo(dir.path()).await;
    let base = server.base.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let (token, profile) = sign_up(&http, &base, "dash@example.com", "basic").await;
    let play = post(&http, format!("{base}/api/v1/playback"), Some(&token), json!({"profile_id": profile, "title_id": "demo-colony"}))
        .await
        .expect("playback");
    let mpd_url = play["manifests"]["mpd"].as_str().expect("mpd").to_string();
    let appliance = play["urls"][0]["url"].as_str().expect("first place");
    assert!(mpd_url.starts_with(appliance), "the DASH manifest is at the best place: {mpd_url} vs {appliance}");
    assert_eq!(play["urls"][0]["kind"], "appliance");

    let res = http.get(&mpd_url).send().await.expect("mpd");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/dash+xml");
    let text = res.text().await.expect("text");
    let xml = roxmltree::Document::parse(&text).expect("well-formed MPD");
    let heights: Vec<u32> = xml
        .descendants()
        .filter(|n| n.has_tag_name("Representation"))
        .map(|n| n.attribute("height").and_then(|h| h.parse().ok()).expect("height"))
        .collect();
    assert!(!heights.is_empty(), "{text}");
    assert!(heights.iter().all(|&h| h <= 720), "Basic is capped at 720p: {heights:?}");
    assert!(heights.contains(&720), "{heights:?}");

    // One segment through the manifest's own template, from the appliance.
    let rep = xml.descendants().find(|n| n.has_tag_name("Representation")).expect("a representation");
    let id = rep.attribute("id").expect("id");
    let tmpl = rep.descendants().find(|n| n.has_tag_name("SegmentTemplate")).expect("template");
    let start: u64 = tmpl.attribute("startNumber").unwrap_or("1").parse().expect("number");
    let media = tmpl.attribute("media").expect("media").replace("$RepresentationID$", id).replace("$Number%03d$", &format!("{start:03}"));
    let folder = mpd_url.rsplit_once('/').expect("slash").0;
    let seg = http.get(format!("{folder}/{media}")).send().await.expect("segment");
    assert_eq!(seg.status(), 200, "{media}");
    assert!(seg.bytes().await.expect("bytes").windows(4).any(|w| w == b"moof"));

    // A 1080p representation is refused to this plan even if asked for.
    let forged = format!("{folder}/1080p/init.mp4");
    assert_eq!(http.get(&forged).send().await.expect("forged").status(), 403);
}
