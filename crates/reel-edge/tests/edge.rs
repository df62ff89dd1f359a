//! The appliance against a real origin (the control plane on SQLite, with a
//! packaged title on disk), over real HTTP on loopback.

use reel_domain::{Maturity, PlaybackClaims, TitleKind, TokenKey};
use reel_edge::{Edge, EdgeConfig};
use reel_store::{NewTitle, Rendition, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SEGMENT: usize = 300_000;

struct Rig {
    origin: String,
    /// Set once the origin has sent the last part of `drip_000.m4s`.
    drip_done: Arc<std::sync::atomic::AtomicBool>,
    edge: String,
    edge_state: Arc<Edge>,
    key: TokenKey,
    origin_media_requests: Arc<AtomicUsize>,
    origin_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

fn segment_bytes(n: u8) -> Vec<u8> {
    (0..SEGMENT).map(|i| (i as u8).wrapping_mul(31).wrapping_add(n)).collect()
}

async fn rig(cache_bytes: u64) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in_dir(&dir.path().join("data")).await.expect("store");
    store
        .create_title(NewTitle {
            id: Some("film".into()),
            kind: TitleKind::Movie,
            parent_id: None,
            season_number: None,
            episode_number: None,
            name: "Film".into(),
            synopsis: String::new(),
            year: 2024,
            maturity: Maturity::Pg,
            duration_s: 8.0,
            genres: vec![],
            artwork: vec![],
            created_ms: None,
        })
        .await
        .expect("title");
    let mut renditions = Vec::new();
    for (name, h) in [("1080p", 1080), ("720p", 720)] {
        let rdir = dir.path().join("origin/film").join(name);
        std::fs::create_dir_all(&rdir).expect("dirs");
        std::fs::write(rdir.join("index.m3u8"), "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\nseg_000.m4s\n#EXT-X-ENDLIST\n").expect("playlist");
        std::fs::write(rdir.join("init.mp4"), vec![7u8; 2000]).expect("init");
        for n in 0..4u8 {
            std::fs::write(rdir.join(format!("seg_00{n}.m4s")), segment_bytes(n)).expect("segment");
        }
        // Objects the origin sends slowly, and breaks off the first time.
        std::fs::write(rdir.join("drip_000.m4s"), segment_bytes(7)).expect("drip");
        std::fs::write(rdir.join("break_000.m4s"), segment_bytes(8)).expect("break");
        renditions.push(Rendition {
            name: name.into(),
            width: h * 16 / 9,
            height: h,
            bandwidth: 1_000_000,
            average_bandwidth: 900_000,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            playlist: format!("{name}/index.m3u8"),
        });
    }
    store.set_renditions("film", &renditions).await.expect("renditions");

    // The origin: the real control plane, with a layer counting media fetches.
    let state = reel_control::AppState::new(store, reel_control::Config::new(dir.path().join("origin"))).await.expect("state");
    let key = state.token_key.clone();
    let counter = Arc::new(AtomicUsize::new(0));
    let seen = counter.clone();
    let drip_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dripped = drip_done.clone();
    let broke = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = reel_control::app(state).layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
        let seen = seen.clone();
        let dripped = dripped.clone();
        let broke = broke.clone();
        async move {
            let path = req.uri().path().to_string();
            let drip = path.ends_with("/drip_000.m4s");
            let brk = path.ends_with("/break_000.m4s") && !broke.swap(true, Ordering::SeqCst);
            if drip || brk {
                seen.fetch_add(1, Ordering::SeqCst);
                // Send the first 100 kB at once, then stall 0.9 s before the
                // rest, or (the first time for break_000) break off instead.
                let res = next.run(req).await;
                let (parts, body) = res.into_parts();
                let all = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
                let stream = futures_util::stream::unfold(0u8, move |step| {
                    let (all, dripped) = (all.clone(), dripped.clone());
                    async move {
                        match step {
                            0 => Some((Ok::<_, std::io::Error>(all.slice(..100_000)), 1)),
                            1 if brk => {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                Some((Err(std::io::Error::other("origin broke off")), 2))
                            }
                            1 => {
                                // Under the rig's 1.5 s fill timeout.
                                tokio::time::sleep(Duration::from_millis(900)).await;
                                dripped.store(true, Ordering::SeqCst);
                                Some((Ok(all.slice(100_000..)), 2))
                            }
                            _ => None,
                        }
                    }
                });
                return axum::response::Response::from_parts(parts, axum::body::Body::from_stream(stream));
            }
            if req.uri().path().starts_with("/media/") {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                // Slow enough that concurrent misses overlap.
                tokio::time::sleep(Duration::from_millis(200)).await;
                // seg_003 of 1080p hangs the first time it is asked for.
                if n == 0 && req.uri().path().ends_with("/1080p/seg_003.m4s") {
                    tokio::time::sleep(Duration::from_secs(20)).await;
                }
            }
            next.run(req).await
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async { let _ = rx.await; }).await;
    });

    let edge_state = Edge::open(EdgeConfig {
        appliance_id: "oca-test-01".into(),
        cache_dir: dir.path().join("cache"),
        cache_bytes,
        memory_bytes: 16 << 20,
        upstream: origin.clone(),
        key: key.clone(),
        control_url: None,
        report_interval: Duration::from_secs(2),
        header_read_timeout: Duration::from_millis(800),
        fill_timeout: Duration::from_millis(1500),
        sendfile: true,
    })
    .expect("edge");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind edge");
    let edge = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = edge_state.clone();
    tokio::spawn(async move {
        let _ = reel_edge::serve(listener, serving, std::future::pending()).await;
    });
    Rig { origin, drip_done, edge, edge_state, key, origin_media_requests: counter, origin_shutdown: Some(tx), _dir: dir }
}

fn token(key: &TokenKey, title: &str, mh: u32, exp_in: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    key.sign(&PlaybackClaims { sid: "str_test".into(), tid: title.into(), mh, exp: now + exp_in })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_misses_make_one_origin_fetch() {
    let rig = rig(64 << 20).await;
    let url = format!("{}/media/{}/film/720p/seg_001.m4s", rig.edge, token(&rig.key, "film", 1080, 600));
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let r = http.get(&url).send().await.expect("request");
                (r.status().as_u16(), r.bytes().await.expect("body"))
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200);
        assert_eq!(body.as_ref(), segment_bytes(1).as_slice(), "every client gets the whole segment");
    }
    assert_eq!(rig.origin_media_requests.load(Ordering::SeqCst), 1, "exactly one origin fetch");
    assert_eq!(rig.edge_state.counters.upstream_fetches.load(Ordering::SeqCst), 1);
    // A later request is a plain hit.
    assert_eq!(http.get(&url).send().await.expect("again").status(), 200);
    assert_eq!(rig.origin_media_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tokens_are_checked_by_signature_expiry_title_and_quality() {
    let rig = rig(64 << 20).await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let base = rig.edge.clone();
        async move { http.get(format!("{base}{path}")).send().await.expect("request").status().as_u16() }
    };
    let good = token(&rig.key, "film", 720, 600);
    assert_eq!(get(format!("/media/{good}/film/720p/seg_000.m4s")).await, 200);
    assert_eq!(get(format!("/media/{}/film/720p/seg_000.m4s", token(&rig.key, "film", 720, -5))).await, 403, "expired");
    assert_eq!(get(format!("/media/{}/film/720p/seg_000.m4s", token(&TokenKey::generate(), "film", 720, 600))).await, 403, "forged");
    assert_eq!(get(format!("/media/{}/film/720p/seg_000.m4s", token(&rig.key, "other", 720, 600))).await, 403, "other title");
    assert_eq!(get(format!("/media/{good}/film/1080p/seg_000.m4s")).await, 403, "above the plan's quality");
    assert_eq!(get("/media/film/720p/seg_000.m4s".into()).await, 404, "no token");
    // The master lists only what the token allows.
    let master = http.get(format!("{}/media/{good}/film/master.m3u8", rig.edge)).send().await.expect("master").text().await.expect("text");
    assert!(master.contains("720p/index.m3u8") && !master.contains("1080p"), "{master}");
}

#[tokio::test]
async fn path_tricks_never_leave_the_cache() {
    let rig = rig(64 << 20).await;
    let good = token(&rig.key, "film", 1080, 600);
    for trick in [
        "720p/..%2f..%2f..%2fetc%2fpasswd",
        "..%2F..%2Fetc/passwd",
        "720p/%2e%2e",
        "720p/seg%00.m4s",
        "720p/.hidden.m4s",
        "720p/seg_000.m4s%2f..",
        "abc/seg_000.m4s",
        "720p/seg_000.exe",
    ] {
        let status = reqwest::get(format!("{}/media/{good}/film/{trick}", rig.edge)).await.expect("request").status().as_u16();
        assert!((400..500).contains(&status), "{trick}: {status}");
    }
    // Raw `..` segments, which HTTP clients would normalise away.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = rig.edge.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    s.write_all(format!("GET /media/{good}/film/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert!(!out.contains("root:"), "{out}");
    assert!(out.starts_with("HTTP/1.1 4"), "{out}");
}

/// Sends raw bytes on one connection and reads until the server closes it.
async fn raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await.expect("the server closes").expect("read");
    out
}

#[tokio::test]
async fn http11_keep_alive_pipelining_and_malformed_requests() {
    let rig = rig(64 << 20).await;
    let t = token(&rig.key, "film", 1080, 600);
    let addr = rig.edge.trim_start_matches("http://").to_string();
    let seg = format!("/media/{t}/film/720p/seg_001.m4s");
    assert_eq!(reqwest::get(format!("{}{seg}", rig.edge)).await.expect("fill").status(), 200);
    assert!(cached(&rig.edge_state, "film/720p/seg_001.m4s").await);
    // Three pipelined requests on one connection: a hit (sent by sendfile),
    // a HEAD, a range; the last asks to close.
    let req = format!(
        "GET {seg} HTTP/1.1\r\nHost: x\r\n\r\nHEAD {seg} HTTP/1.1\r\nHost: x\r\n\r\nGET {seg} HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\nConnection: close\r\n\r\n"
    );
    let out = raw(&addr, req.as_bytes()).await;
    let whole = segment_bytes(1);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let first = String::from_utf8_lossy(&out[..head_end]).to_string();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains(&format!("content-length: {SEGMENT}")), "{first}");
    assert_eq!(&out[head_end..head_end + SEGMENT], whole.as_slice(), "the body, byte for byte");
    let rest = &out[head_end + SEGMENT..];
    let split = |b: &[u8]| -> (String, Vec<u8>) {
        let at = b.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
        (String::from_utf8_lossy(&b[..at]).to_string(), b[at + 4..].to_vec())
    };
    let (head2, range) = split(rest);
    assert!(head2.starts_with("HTTP/1.1 200") && head2.contains(&format!("content-length: {SEGMENT}")), "HEAD: {head2}");
    let (head3, body3) = split(&range);
    assert!(head3.starts_with("HTTP/1.1 206") && head3.contains("content-range: bytes 10-19/"), "{head3}");
    assert!(head3.contains("connection: close"), "{head3}");
    assert_eq!(body3.as_slice(), &whole[10..20], "right after a bodiless HEAD");

    // HTTP/1.0 without keep-alive: answered, then closed.
    let out = String::from_utf8_lossy(&raw(&addr, format!("GET /healthz HTTP/1.0\r\n\r\n").as_bytes()).await).to_string();
    assert!(out.starts_with("HTTP/1.1 200") && out.contains("\"ok\""), "{out}");
    // Garbage, a head too large, and a body nobody asked for: one JSON error each, then close.
    for (bytes, status, code) in [
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), "400", "bad_request"),
        (format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(), "431", "head_too_large"),
        (format!("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{}", "a".repeat(100)).into_bytes(), "413", "body_not_accepted"),
        (b"POST /chaos HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(), "413", "body_not_accepted"),
    ] {
        let out = String::from_utf8_lossy(&raw(&addr, &bytes).await).to_string();
        assert!(out.starts_with(&format!("HTTP/1.1 {status}")), "{out}");
        assert!(out.contains(&format!("\"code\":\"{code}\"")), "{out}");
    }
    // Metrics, for a loopback scraper: the counters and per-route latency.
    let text = reqwest::get(format!("{}/metrics", rig.edge)).await.expect("metrics").text().await.expect("text");
    assert!(text.contains("# TYPE edge_requests_total counter"), "{text}");
    assert!(text.contains("edge_cache_hits_total{appliance=\"oca-test-01\"}"), "{text}");
    assert!(text.contains("edge_http_requests_total{appliance=\"oca-test-01\",route=\"segment\",status=\"2xx\"}"), "{text}");
    assert!(text.contains("edge_http_request_duration_seconds_bucket{appliance=\"oca-test-01\",route=\"segment\",le=\"+Inf\"}"), "{text}");

    // HTTP/2 by prior knowledge on the same port.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().expect("h2");
    let r = h2.get(format!("{}{seg}", rig.edge)).send().await.expect("h2 get");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.bytes().await.expect("body").as_ref(), whole.as_slice());
}

#[tokio::test]
async fn ranges_head_and_bad_ranges() {
    let rig = rig(64 << 20).await;
    let url = format!("{}/media/{}/film/720p/seg_002.m4s", rig.edge, token(&rig.key, "film", 1080, 600));
    let http = reqwest::Client::new();
    let r = http.get(&url).header("range", "bytes=100-199").send().await.expect("range");
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers().get("content-range").and_then(|v| v.to_str().ok()), Some(format!("bytes 100-199/{SEGMENT}").as_str()));
    assert_eq!(r.bytes().await.expect("body").as_ref(), &segment_bytes(2)[100..200]);
    let huge = http.get(&url).header("range", format!("bytes={}-{}", SEGMENT * 10, SEGMENT * 20)).send().await.expect("huge");
    assert_eq!(huge.status(), 416);
    let full = http.get(&url).send().await.expect("full");
    let etag = full.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
    let again = http.get(&url).header("if-none-match", &etag).send().await.expect("conditional");
    assert_eq!(again.status(), 304, "unchanged objects are not sent again");
    let stale = http.get(&url).header("range", "bytes=0-9").header("if-range", "\"other\"").send().await.expect("if-range");
    assert_eq!(stale.status(), 200, "a range against another version gets the whole object");
    let head = http.head(&url).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("video/iso.segment"));
}

#[tokio::test]
async fn serves_what_it_holds_when_the_origin_is_gone() {
    let mut rig = rig(64 << 20).await;
    let t = token(&rig.key, "film", 1080, 600);
    let cached = format!("{}/media/{t}/film/720p/seg_000.m4s", rig.edge);
    assert_eq!(reqwest::get(&cached).await.expect("fill").status(), 200);
    if let Some(stop) = rig.origin_shutdown.take() {
        let _ = stop.send(());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(reqwest::get(format!("{}/healthz", rig.origin)).await.is_err(), "origin is down");
    assert_eq!(reqwest::get(&cached).await.expect("hit").status(), 200, "cached objects still play");
    let miss = reqwest::get(format!("{}/media/{t}/film/720p/seg_003.m4s", rig.edge)).await.expect("miss");
    assert_eq!(miss.status(), 502, "an uncached object reports the upstream failure");
    let body: serde_json::Value = miss.json().await.expect("error shape");
    assert_eq!(body["error"]["code"], "upstream_failed");
}

#[tokio::test]
async fn the_cache_stays_within_its_bytes() {
    let rig = rig(SEGMENT as u64 * 2 + 10_000).await;
    let t = token(&rig.key, "film", 1080, 600);
    for n in 0..4 {
        let r = reqwest::get(format!("{}/media/{t}/film/720p/seg_00{n}.m4s", rig.edge)).await.expect("get");
        assert_eq!(r.status(), 200);
        let (used, cap) = rig.edge_state.cache.usage();
        assert!(used <= cap, "{used} > {cap}");
    }
}

/// Waits for a fill to reach the disk (it is stored just after the last
/// byte went to the viewers).
async fn cached(edge: &Edge, key: &str) -> bool {
    for _ in 0..100 {
        if edge.cache.path_of(key).is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Another appliance on `cache_dir` filling from `upstream`, serving on a
/// loopback port: its URL and state.
async fn another_edge(id: &str, cache_dir: std::path::PathBuf, upstream: &str, key: &TokenKey) -> (String, Arc<Edge>) {
    let edge = Edge::open(EdgeConfig {
        appliance_id: id.into(),
        cache_dir,
        cache_bytes: 64 << 20,
        memory_bytes: 16 << 20,
        upstream: upstream.to_string(),
        key: key.clone(),
        control_url: None,
        report_interval: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(5),
        fill_timeout: Duration::from_secs(5),
        sendfile: true,
    })
    .expect("edge");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = edge.clone();
    tokio::spawn(async move {
        let _ = reel_edge::serve(listener, serving, std::future::pending()).await;
    });
    (url, edge)
}

/// Another appliance process on the rig's cache directory, as after a restart.
async fn restarted(rig: &Rig) -> (String, Arc<Edge>) {
    another_edge("oca-test-01", rig._dir.path().join("cache"), &rig.origin, &rig.key).await
}

#[tokio::test]
async fn a_corrupted_cache_file_is_detected_and_refetched() {
    let rig = rig(64 << 20).await;
    let t = token(&rig.key, "film", 1080, 600);
    let url = format!("{}/media/{t}/film/720p/seg_002.m4s", rig.edge);
    assert_eq!(reqwest::get(&url).await.expect("fill").bytes().await.expect("body").as_ref(), segment_bytes(2).as_slice());
    assert!(cached(&rig.edge_state, "film/720p/seg_002.m4s").await);
    // The disk copy rots while the appliance is down; it comes back up on
    // the same cache.
    let path = rig._dir.path().join("cache/objects/film/720p/seg_002.m4s");
    let mut bytes = std::fs::read(&path).expect("cached file");
    bytes[1000] ^= 0xff;
    std::fs::write(&path, bytes).expect("corrupt it");
    let (again_url, again_edge) = restarted(&rig).await;
    for via_sendfile in [true, false] {
        // Plain HTTP/1.1 (sendfile) and HTTP/2 (memory) both check first.
        let http = if via_sendfile { reqwest::Client::new() } else { reqwest::Client::builder().http2_prior_knowledge().build().expect("h2") };
        let again = http.get(format!("{again_url}/media/{t}/film/720p/seg_002.m4s")).send().await.expect("again");
        assert_eq!(again.status(), 200);
        assert_eq!(again.bytes().await.expect("body").as_ref(), segment_bytes(2).as_slice(), "the viewer gets the right bytes");
    }
    assert_eq!(rig.origin_media_requests.load(Ordering::SeqCst), 2, "the damaged copy was fetched again, once");
    assert!(cached(&again_edge, "film/720p/seg_002.m4s").await);
    assert_eq!(std::fs::read(&path).expect("refilled"), segment_bytes(2), "and the disk copy is whole again");
    assert!(again_edge.counters.errors.load(Ordering::SeqCst) >= 1, "the damage is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_served_while_the_fill_streams() {
    let rig = rig(64 << 20).await;
    let url = format!("{}/media/{}/film/1080p/drip_000.m4s", rig.edge, token(&rig.key, "film", 1080, 600));
    let mut clients = Vec::new();
    for delay_ms in [0u64, 300] {
        let url = url.clone();
        let done = rig.drip_done.clone();
        clients.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let mut res = reqwest::get(&url).await.expect("get");
            assert_eq!(res.status(), 200);
            assert_eq!(res.content_length(), Some(SEGMENT as u64), "the length is known from upstream");
            let mut body = res.chunk().await.expect("first bytes").expect("some").to_vec();
            let early = !done.load(Ordering::SeqCst);
            while let Some(c) = res.chunk().await.expect("rest") {
                body.extend_from_slice(&c);
            }
            (early, body)
        }));
    }
    for c in clients {
        let (early, body) = c.await.expect("client");
        assert!(early, "the first bytes arrived while the origin was still sending");
        assert_eq!(body, segment_bytes(7), "and the whole object after");
    }
    assert_eq!(rig.origin_media_requests.load(Ordering::SeqCst), 1, "both viewers shared one fill");
    assert!(cached(&rig.edge_state, "film/1080p/drip_000.m4s").await, "kept once complete");
}

#[tokio::test]
async fn an_origin_that_breaks_off_mid_fill_cuts_the_viewer_short_and_keeps_nothing() {
    let rig = rig(64 << 20).await;
    let url = format!("{}/media/{}/film/1080p/break_000.m4s", rig.edge, token(&rig.key, "film", 1080, 600));
    let first = reqwest::get(&url).await.expect("get");
    assert_eq!(first.status(), 200, "streaming had begun");
    assert!(first.bytes().await.is_err(), "the viewer sees the response end early, so the player moves on");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rig.edge_state.cache.path_of("film/1080p/break_000.m4s").is_none(), "no partial object kept");
    let second = reqwest::get(&url).await.expect("again");
    assert_eq!(second.status(), 200);
    assert_eq!(second.bytes().await.expect("body").as_ref(), segment_bytes(8).as_slice(), "the next request fills it whole");
    assert!(cached(&rig.edge_state, "film/1080p/break_000.m4s").await);
}

#[tokio::test]
async fn prefill_pulls_whole_titles_at_the_set_rate() {
    let rig = rig(64 << 20).await;
    let started = std::time::Instant::now();
    let rate = 2_000_000; // bytes per second
    let bytes = reel_edge::prefill(&rig.edge_state, &["film".to_string()], rate).await;
    // Two renditions, each an init segment and one media segment (the fixture playlists).
    assert_eq!(bytes, 2 * (2000 + SEGMENT as u64), "every object of the title, once");
    assert!(started.elapsed().as_secs_f64() >= 0.9 * bytes as f64 / rate as f64, "paced to the byte rate");
    let fetched = rig.origin_media_requests.load(Ordering::SeqCst);
    let url = format!("{}/media/{}/film/1080p/seg_000.m4s", rig.edge, token(&rig.key, "film", 1080, 600));
    assert_eq!(reqwest::get(&url).await.expect("get").status(), 200);
    assert_eq!(rig.origin_media_requests.load(Ordering::SeqCst), fetched, "a viewer's first request is already a hit");
    assert_eq!(reel_edge::prefill(&rig.edge_state, &["film".to_string()], rate).await, 0, "nothing twice");
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_others_still_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rig = rig(64 << 20).await;
    let addr = rig.edge.trim_start_matches("http://").to_string();
    // Fifty clients that start a request and never finish its headers.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.expect("write");
        slow.push(s);
    }
    let url = format!("{}/media/{}/film/720p/seg_000.m4s", rig.edge, token(&rig.key, "film", 1080, 600));
    assert_eq!(reqwest::get(&url).await.expect("normal client").status(), 200, "others are served meanwhile");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for mut s in slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the server closed a connection whose headers never came");
    }
}

#[tokio::test]
async fn a_hanging_origin_fails_the_fill_in_time_and_the_next_request_recovers() {
    let rig = rig(64 << 20).await;
    let url = format!("{}/media/{}/film/1080p/seg_003.m4s", rig.edge, token(&rig.key, "film", 1080, 600));
    let started = std::time::Instant::now();
    let first = reqwest::get(&url).await.expect("first");
    assert_eq!(first.status(), 502, "the player is told to move on");
    assert!(started.elapsed() < Duration::from_secs(5), "within the fill timeout, not the origin's 20 s");
    let second = reqwest::get(&url).await.expect("second");
    assert_eq!(second.status(), 200);
    assert_eq!(second.bytes().await.expect("body").as_ref(), segment_bytes(3).as_slice());
    assert!(cached(&rig.edge_state, "film/1080p/seg_003.m4s").await, "the second fill was kept");
}

#[tokio::test]
async fn a_child_appliance_fills_from_its_parent_not_the_origin() {
    let rig = rig(64 << 20).await;
    // A second appliance whose upstream is the first.
    let dir = tempfile::tempdir().expect("temp dir");
    let (child_url, child) = another_edge("oca-child-01", dir.path().join("cache"), &rig.edge, &rig.key).await;
    let t = token(&rig.key, "film", 720, 600);
    for _ in 0..3 {
        let r = reqwest::get(format!("{child_url}/media/{t}/film/720p/seg_001.m4s")).await.expect("child");
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.expect("body").as_ref(), segment_bytes(1).as_slice());
    }
    let master = reqwest::get(format!("{child_url}/media/{t}/film/master.m3u8")).await.expect("master").text().await.expect("text");
    assert!(master.contains("720p/index.m3u8") && !master.contains("1080p"), "the child filters by the viewer's token: {master}");
    assert_eq!(child.counters.upstream_fetches.load(Ordering::SeqCst), 2, "child: the segment and the master, once each");
    assert_eq!(rig.edge_state.counters.upstream_fetches.load(Ordering::SeqCst), 2, "parent: the same two, once each");
    assert_eq!(rig.origin_media_requests.load(Ordering::SeqCst), 2, "the origin saw only the parent");
}
