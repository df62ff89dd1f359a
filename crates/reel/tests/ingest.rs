//! The ingest pipeline end to end on a real mezzanine (Seeking, 720x480,
//! 6 s): bad input is refused and changes nothing; a job killed mid-way
//! resumes without redoing finished chunks; the packaged title's DASH
//! manifest parses and every segment it names is served; the fixed-ladder
//! comparison is printed.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/video/Seeking_30_480_1050.mp4")
}

fn reel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reel")).args(args).output().expect("run reel")
}

/// Small candidate grid: two heights, three qualities, 2-second chunks.
const GRID: [&str; 6] = ["--heights", "240,480", "--crfs", "24,32,40", "--jobs", "1"];

fn titles(data: &str) -> String {
    let out = reel(&["catalog", "list", "--data-dir", data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn results(work: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut out = Vec::new();
    for cand in std::fs::read_dir(work.join("encodes")).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(cand.path()).into_iter().flatten().flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "json" || e == "mp4") {
                if let Ok(m) = f.metadata().and_then(|m| m.modified()) {
                    out.push((p, m));
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_refuses_bad_input_resumes_after_a_kill_and_serves_dash() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let data_s = data.to_str().expect("utf-8");
    // A store with the schema, so "unchanged" has something to compare.
    assert!(reel(&["catalog", "list", "--data-dir", data_s]).status.success());
    let before = titles(data_s);

    // ---- bad input: a clear one-line error, nothing registered -------------
    let truncated = dir.path().join("truncated.mp4");
    let bytes = std::fs::read(source()).expect("source");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    let garbage = dir.path().join("garbage.mp4");
    std::fs::write(&garbage, b"this is not a video at all").expect("write");
    let missing = dir.path().join("missing.mp4");
    for bad in [&truncated, &garbage, &missing] {
        let out = reel(&["media", "ingest", bad.to_str().expect("utf-8"), "--title", "broken", "--data-dir", data_s]);
        assert!(!out.status.success(), "{} was accepted", bad.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(bad.file_name().and_then(|n| n.to_str()).expect("name")), "names the file: {err}");
    }
    assert_eq!(titles(data_s), before, "the catalog is unchanged");
    assert!(!data.join("origin/broken").exists(), "nothing was packaged");

    // ---- kill -9 mid-way, then run again -----------------------------------
    let src = source();
    let mut args = vec!["media", "ingest", src.to_str().expect("utf-8"), "--title", "seeking", "--data-dir", data_s, "--json"];
    args.extend(GRID);
    let mut child = Command::new(env!("CARGO_BIN_EXE_reel")).args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let work = data.join("ingest/seeking");
    let deadline = Instant::now() + Duration::from_secs(180);
    // Wait until the first chunk's six candidates are encoded and scored.
    loop {
        let done = results(&work).iter().filter(|(p, _)| p.file_name().is_some_and(|n| n == "00000.json")).count();
        if done >= 6 {
            break;
        }
        assert!(child.try_wait().expect("wait").is_none(), "ingest finished before it could be killed");
        assert!(Instant::now() < deadline, "the first chunk did not finish within 180 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second ingest of the same title meanwhile is refused, not interleaved.
    let second = reel(&args);
    assert!(!second.status.success(), "a concurrent ingest of one title was accepted");
    assert!(String::from_utf8_lossy(&second.stderr).contains("another ingest of this title is running"));
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let finished_before = results(&work);
    let total = 3 * 6 * 2; // chunks x candidates x (encode + score)
    assert!(finished_before.len() < total, "killed before the end ({} of {total} files)", finished_before.len());
    assert_eq!(titles(data_s), before, "a killed ingest registers nothing");

    let out = reel(&args);
    assert!(out.status.success(), "resumed ingest: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report json");
    let reused = report["encodes_reused"].as_u64().expect("encodes_reused");
    assert!(reused >= 6, "at least the first chunk was reused: {report}");
    assert_eq!(report["encodes"].as_u64(), Some(18));
    for (path, mtime) in &finished_before {
        if path.extension().is_some_and(|e| e == "json") {
            let now = std::fs::metadata(path).and_then(|m| m.modified()).expect("still there");
            assert_eq!(&now, mtime, "{} was redone", path.display());
        }
    }
    let ladder = report["ladder"].as_array().expect("ladder");
    assert!(ladder.len() >= 2, "{report}");
    assert!(titles(data_s).contains("seeking"), "registered in the catalog");

    // ---- the fixed-ladder comparison is printed ----------------------------
    let out = reel(&["media", "ladder", "--title", "seeking", "--data-dir", data_s, "--compare-fixed"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bits than the fixed ladder at equal VMAF"), "{text}");
    let out = reel(&["media", "ladder", "--title", "seeking", "--data-dir", data_s, "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("ladder json");
    let fixed = doc["fixed"]["rungs"].as_array().expect("fixed rungs");
    assert_eq!(fixed.len(), 6, "the classic ladder's rungs up to 480p: {doc}");
    assert!(doc["fixed"]["savings"].as_f64().expect("savings").is_finite());

    // ---- serve it: HLS master and DASH manifest, every segment fetched -----
    let server = start(&["serve", "--data-dir", data_s]).await;
    let base = server.base.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let (token, profile) = sign_up(&http, &base, "ingest@example.com", "premium").await;
    let play = post(&http, format!("{base}/api/v1/playback"), Some(&token), json!({"profile_id": profile, "title_id": "seeking"}))
        .await
        .expect("playback");
    let master = http.get(format!("{base}{}", play["manifests"]["hls"].as_str().expect("hls"))).send().await.expect("master");
    assert_eq!(master.status(), 200);
    let master = master.text().await.expect("text");
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), ladder.len(), "{master}");

    let mpd_url = format!("{base}{}", play["manifests"]["mpd"].as_str().expect("DASH manifest"));
    let res = http.get(&mpd_url).send().await.expect("mpd");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/dash+xml");
    let text = res.text().await.expect("mpd text");
    let xml = roxmltree::Document::parse(&text).expect("the MPD is well-formed XML");
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "MPD");
    assert_eq!(root.tag_name().namespace(), Some("urn:mpeg:dash:schema:mpd:2011"));
    assert_eq!(root.attribute("type"), Some("static"));
    assert!(root.attribute("profiles").is_some_and(|p| p.contains("urn:mpeg:dash:profile:isoff-live:2011")));
    let duration = parse_duration(root.attribute("mediaPresentationDuration").expect("duration"));
    assert!((duration - 6.0).abs() < 0.1, "6 s title: {duration}");
    let base_url = mpd_url.rsplit_once('/').expect("slash").0.to_string();
    let reps: Vec<_> = root.descendants().filter(|n| n.has_tag_name("Representation")).collect();
    assert_eq!(reps.len(), ladder.len());
    let mut timelines = Vec::new();
    for rep in reps {
        let id = rep.attribute("id").expect("id");
        for attr in ["bandwidth", "width", "height", "codecs"] {
            assert!(rep.attribute(attr).is_some(), "{id} has {attr}");
        }
        assert!(rep.attribute("codecs").is_some_and(|c| c.starts_with("avc1.")));
        let tmpl = rep.children().find(|n| n.has_tag_name("SegmentTemplate")).expect("SegmentTemplate");
        let timescale: f64 = tmpl.attribute("timescale").expect("timescale").parse().expect("number");
        let mut number: u64 = tmpl.attribute("startNumber").unwrap_or("1").parse().expect("number");
        let init = tmpl.attribute("initialization").expect("initialization").replace("$RepresentationID$", id);
        let body = http.get(format!("{base_url}/{init}")).send().await.expect("init");
        assert_eq!(body.status(), 200, "{init}");
        let body = body.bytes().await.expect("bytes");
        assert_eq!(&body[4..8], b"ftyp", "{init} is an fMP4 init segment");
        let media = tmpl.attribute("media").expect("media").to_string();
        let mut t_end = 0u64;
        let mut spans = Vec::new();
        for s in tmpl.descendants().filter(|n| n.has_tag_name("S")) {
            let t: u64 = s.attribute("t").map_or(t_end, |v| v.parse().expect("t"));
            let d: u64 = s.attribute("d").expect("d").parse().expect("d");
            let r: u64 = s.attribute("r").map_or(0, |v| v.parse().expect("r"));
            assert_eq!(t, t_end, "{id}: the timeline has no gaps");
            for k in 0..=r {
                let url = media.replace("$RepresentationID$", id).replace("$Number%03d$", &format!("{number:03}"));
                let seg = http.get(format!("{base_url}/{url}")).send().await.expect("segment");
                assert_eq!(seg.status(), 200, "{url}");
                let seg = seg.bytes().await.expect("bytes");
                assert!(seg.windows(4).any(|w| w == b"moof") && seg.windows(4).any(|w| w == b"mdat"), "{url} is a CMAF fragment");
                spans.push((t + k * d, d));
                number += 1;
            }
            t_end = t + (r + 1) * d;
        }
        assert!((t_end as f64 / timescale - duration).abs() < 0.1, "{id}: segments cover the title");
        timelines.push(spans);
    }
    assert!(timelines.windows(2).all(|w| w[0] == w[1]), "segments are aligned across representations");

    // A forged token gets nothing.
    let forged = mpd_url.replace("/media/", "/media/x");
    assert_eq!(http.get(&forged).send().await.expect("forged").status(), 403);
}

/// `PT6.000S`, `PT1M2.5S` -> seconds.
fn parse_duration(s: &str) -> f64 {
    let body = s.strip_prefix("PT").expect("PT duration");
    let (mut total, mut num) = (0.0, String::new());
    for c in body.chars() {
        match c {
            'H' => total += num.parse::<f64>().expect("h") * 3600.0,
            'M' => total += num.parse::<f64>().expect("m") * 60.0,
            'S' => total += num.parse::<f64>().expect("s"),
            _ => {
                num.push(c);
                continue;
            }
        }
        num.clear();
    }
    total
}

/// A title of three unlike shots (a test card, a fractal zoom, cellular
/// life), 1.5 s each at 720x480, made with Debian's ffmpeg.
fn varied_shots(dir: &Path) -> PathBuf {
    let out = dir.join("shots.mp4");
    let shot = |src: &str, opts: &str| format!("{src}=s=720x480:r=25{opts},trim=duration=1.5,setpts=PTS-STARTPTS,format=yuv420p");
    let graph = format!(
        "{};{};{};[a][b][c]concat=n=3:v=1[v]",
        shot("testsrc2", "") + "[a]",
        shot("mandelbrot", "") + "[b]",
        shot("life", ":mold=10:ratio=0.5:seed=7:death_color=#C83232:life_color=#00ff00") + "[c]"
    );
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-filter_complex", &graph, "-map", "[v]"])
        .args(["-c:v", "libx264", "-crf", "8", "-preset", "veryfast"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made the test title");
    out
}

#[test]
fn per_shot_ladder_spends_bits_where_the_shots_need_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let data_s = data.to_str().expect("utf-8");
    let src = varied_shots(dir.path());
    let src_s = src.to_str().expect("utf-8");
    let out = reel(&["media", "ingest", src_s, "--title", "shots", "--data-dir", data_s, "--heights", "240,480", "--crfs", "24,30,36,42", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report json");
    assert!(report["chunks"].as_u64().is_some_and(|n| n >= 3), "a chunk per shot at least: {report}");
    let ladder = report["ladder"].as_array().expect("ladder");
    // Some rung gives its shots different CRFs.
    let mixed: Vec<&Value> = ladder
        .iter()
        .filter(|r| r["shot_crfs"].as_array().is_some_and(|c| c.iter().any(|x| x != &c[0])))
        .collect();
    assert!(!mixed.is_empty(), "no rung mixes CRFs across shots: {report}");

    // What the ladder claims is what a viewer gets: the packaged rung
    // (chunks at different CRFs, joined) decodes cleanly and scores the
    // VMAF the ladder says. (Scoring chunk by chunk differs only at chunk
    // starts, where motion restarts.)
    for rung in &mixed {
        let name = rung["name"].as_str().expect("name");
        let playlist = data.join("origin/shots").join(name).join("index.m3u8");
        let decode = Command::new("ffmpeg").args(["-nostdin", "-v", "error", "-i"]).arg(&playlist).args(["-f", "null", "-"]).output().expect("ffmpeg");
        assert!(decode.status.success() && decode.stderr.is_empty(), "{name} decodes: {}", String::from_utf8_lossy(&decode.stderr));
        let out = reel(&["media", "vmaf", "--ref", src_s, "--dist", playlist.to_str().expect("utf-8"), "--no-ssim", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let scored: Value = serde_json::from_slice(&out.stdout).expect("vmaf json");
        let got = scored["pooled"]["mean"].as_f64().expect("mean");
        let claimed = rung["vmaf"].as_f64().expect("vmaf");
        eprintln!("{name}: packaged VMAF {got:.3}, ladder {claimed:.3}");
        assert!((got - claimed).abs() < 0.5, "{name}: packaged VMAF {got} vs ladder {claimed}");
        let frames = report["probe"]["frames"].as_u64().expect("frames") as usize;
        assert_eq!(scored["frames"].as_array().map(Vec::len), Some(frames), "{name} has every frame");
    }

    // Against the fixed ladder, per-shot CRFs save bits that one CRF per
    // rung does not.
    let out = reel(&["media", "ladder", "--title", "shots", "--data-dir", data_s, "--compare-fixed", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("ladder json");
    let per_shot = doc["fixed"]["savings"].as_f64().expect("savings");
    let constant = doc["constant_crf"]["savings"].as_f64().expect("constant-CRF savings");
    eprintln!("per-shot ladder saves {:.1}%, constant-CRF ladder {:.1}%", per_shot * 100.0, constant * 100.0);
    // Measured on this grid (2 heights x 4 CRFs): 9.1% fewer bits with
    // per-shot CRFs, 7.7% more with one CRF per rung.
    assert!(per_shot >= 0.05, "per-shot saves {per_shot:.3} against the fixed ladder: {doc}");
    assert!(per_shot >= constant + 0.10, "per-shot {per_shot:.3} vs constant CRF {constant:.3}");
}
