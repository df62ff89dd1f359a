//! The demo catalog: titles, genres and generated video, so that a fresh
//! `reel up` shows a real, playable catalog without any download.
//!
//! Idempotent: every start checks each demo title and packages only what is
//! missing, so an interrupted first start finishes on the next.

use reel_domain::{Maturity, TitleKind};
use reel_media::{package_test_source, Pattern, TestSource, DEMO_LADDER};
use reel_store::{NewTitle, Rendition, Store};
use std::path::Path;

struct DemoTitle {
    id: &'static str,
    name: &'static str,
    synopsis: &'static str,
    year: i64,
    maturity: Maturity,
    genres: &'static [&'static str],
    /// `None` for a series; its episodes carry the video.
    video: Option<(Pattern, i32, u32)>,
    episodes: &'static [(&'static str, &'static str, (Pattern, i32, u32))],
}

const GENRES: [(&str, &str); 8] = [
    ("action", "Action"),
    ("comedy", "Comedy"),
    ("drama", "Drama"),
    ("sci-fi", "Sci-Fi"),
    ("documentary", "Documentary"),
    ("kids-family", "Kids & Family"),
    ("thriller", "Thriller"),
    ("animation", "Animation"),
];

/// Seconds of video for each demo movie and episode.
const MOVIE_SECONDS: u32 = 30;
const EPISODE_SECONDS: u32 = 24;

const DEMO: [DemoTitle; 12] = [
    DemoTitle { id: "demo-signal-fire", name: "Signal Fire", synopsis: "A lighthouse keeper decodes a pattern in the static that should not exist.", year: 2024, maturity: Maturity::Pg13, genres: &["sci-fi", "thriller"], video: Some((Pattern::TestSrc2, 0, 440)), episodes: &[] },
    DemoTitle { id: "demo-glass-garden", name: "The Glass Garden", synopsis: "Three sisters inherit a greenhouse where every plant grows in perfect geometry.", year: 2023, maturity: Maturity::Pg, genres: &["drama", "kids-family"], video: Some((Pattern::Sierpinski, 40, 523)), episodes: &[] },
    DemoTitle { id: "demo-colony", name: "Colony", synopsis: "Cells are born, cells die. A meditative documentary on emergence.", year: 2022, maturity: Maturity::TvG, genres: &["documentary"], video: Some((Pattern::Life, 0, 330)), episodes: &[] },
    DemoTitle { id: "demo-rule-110", name: "Rule 110", synopsis: "A heist planned by one simple rule, executed one line at a time.", year: 2025, maturity: Maturity::R, genres: &["action", "thriller"], video: Some((Pattern::CellAuto, 180, 392)), episodes: &[] },
    DemoTitle { id: "demo-deep-zoom", name: "Deep Zoom", synopsis: "An explorer falls forever into a coastline that never ends.", year: 2021, maturity: Maturity::TvPg, genres: &["sci-fi", "documentary"], video: Some((Pattern::Mandelbrot, 0, 587)), episodes: &[] },
    DemoTitle { id: "demo-sunset-drive", name: "Sunset Drive", synopsis: "Two old friends, one convertible, and a very long gradient of evening.", year: 2024, maturity: Maturity::Pg13, genres: &["comedy", "drama"], video: Some((Pattern::Gradients, 0, 494)), episodes: &[] },
    DemoTitle { id: "demo-test-pattern", name: "Test Pattern", synopsis: "After midnight the TV station goes quiet, and something keeps broadcasting.", year: 2020, maturity: Maturity::TvMa, genres: &["thriller"], video: Some((Pattern::TestSrc, 0, 349)), episodes: &[] },
    DemoTitle { id: "demo-little-bits", name: "Little Bits", synopsis: "Bright shapes go on a bouncy adventure to find their missing colour.", year: 2025, maturity: Maturity::TvY, genres: &["kids-family", "animation"], video: Some((Pattern::TestSrc2, 200, 659)), episodes: &[] },
    DemoTitle { id: "demo-orbitals", name: "Orbitals", synopsis: "A cargo crew drifts between stations while their ship quietly rewrites itself.", year: 2023, maturity: Maturity::Tv14, genres: &["sci-fi", "action"], video: Some((Pattern::Gradients, 140, 370)), episodes: &[] },
    DemoTitle { id: "demo-punchline", name: "Punchline", synopsis: "A stand-up comedian is haunted by a joke that writes itself.", year: 2022, maturity: Maturity::Tv14, genres: &["comedy"], video: Some((Pattern::Sierpinski, 270, 415)), episodes: &[] },
    DemoTitle { id: "demo-pixel-pals", name: "Pixel Pals", synopsis: "Every episode, the Pals build something new out of tiny squares.", year: 2025, maturity: Maturity::TvY7, genres: &["kids-family", "animation", "comedy"], video: None,
        episodes: &[("Building Day", "The Pals need a bridge by sundown.", (Pattern::Life, 120, 784)), ("The Big Glitch", "Something is eating the squares!", (Pattern::CellAuto, 60, 698))] },
    DemoTitle { id: "demo-night-shift", name: "Night Shift", synopsis: "An emergency dispatcher hears the same call every night at 3:07.", year: 2024, maturity: Maturity::TvMa, genres: &["drama", "thriller"], video: None,
        episodes: &[("Dispatch", "The first call.", (Pattern::Mandelbrot, 200, 311)), ("Callback", "She calls back.", (Pattern::TestSrc, 90, 277))] },
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] reel_store::StoreError),
    #[error(transparent)]
    Media(#[from] reel_media::MediaError),
}

/// How many demo titles there are, counting each episode.
pub fn demo_video_count() -> usize {
    DEMO.iter().map(|t| if t.video.is_some() { 1 } else { t.episodes.len() }).sum()
}

/// Creates whatever part of the demo catalog is missing and packages its
/// video into `origin_dir`. `progress(done, total, name)` is called as each
/// video is ready. `cache` keeps packaged video between data directories.
pub async fn ensure_demo_catalog(
    store: &Store,
    origin_dir: &Path,
    cache: Option<&Path>,
    progress: impl Fn(usize, usize, &str),
) -> Result<usize, DemoError> {
    for (slug, name) in GENRES {
        store.upsert_genre(slug, name).await?;
    }
    let day = 86_400_000;
    let now = reel_domain::now_ms();
    // (title id, name, video spec, seconds) for everything that plays.
    let mut videos = Vec::new();
    for (i, t) in DEMO.iter().enumerate() {
        let created = now - (i as i64) * day;
        if store.title(t.id).await?.is_none() {
            let duration = if t.video.is_some() { MOVIE_SECONDS as f64 } else { 0.0 };
            store
                .create_title(NewTitle {
                    id: Some(t.id.to_string()),
                    kind: if t.video.is_some() { TitleKind::Movie } else { TitleKind::Series },
                    parent_id: None,
                    season_number: None,
                    episode_number: None,
                    name: t.name.to_string(),
                    synopsis: t.synopsis.to_string(),
                    year: t.year,
                    maturity: t.maturity,
                    duration_s: duration,
                    genres: t.genres.iter().map(|g| g.to_string()).collect(),
                    artwork: crate::artwork::default_styles(t.name),
                    created_ms: Some(created),
                })
                .await?;
        }
        if let Some(v) = t.video {
            videos.push((t.id.to_string(), t.name.to_string(), v, MOVIE_SECONDS));
        }
        for (n, (name, synopsis, v)) in t.episodes.iter().enumerate() {
            let id = format!("{}-s1e{}", t.id, n + 1);
            if store.title(&id).await?.is_none() {
                store
                    .create_title(NewTitle {
                        id: Some(id.clone()),
                        kind: TitleKind::Episode,
                        parent_id: Some(t.id.to_string()),
                        season_number: Some(1),
                        episode_number: Some(n as i64 + 1),
                        name: name.to_string(),
                        synopsis: synopsis.to_string(),
                        year: t.year,
                        maturity: t.maturity,
                        duration_s: EPISODE_SECONDS as f64,
                        genres: Vec::new(),
                        artwork: crate::artwork::default_styles(name),
                        created_ms: Some(created),
                    })
                    .await?;
            }
            videos.push((id, format!("{}: {name}", t.name), *v, EPISODE_SECONDS));
        }
    }
    let total = videos.len();
    let mut ffmpeg = None;
    for (done, (id, name, (pattern, hue, tone), seconds)) in videos.into_iter().enumerate() {
        if store.renditions(&id).await?.is_empty() {
            let ffmpeg = match &ffmpeg {
                Some(p) => p,
                None => ffmpeg.insert(reel_media::find_ffmpeg()?),
            };
            let src = TestSource { pattern, hue_degrees: hue, tone_hz: tone, duration_s: seconds };
            let packaged = package_test_source(ffmpeg, &src, &DEMO_LADDER, &origin_dir.join(&id), cache).await?;
            let renditions: Vec<Rendition> = packaged.iter().map(rendition_row).collect();
            store.set_renditions(&id, &renditions).await?;
        }
        progress(done + 1, total, &name);
    }
    Ok(total)
}

/// The catalog row for a packaged rendition (demo packaging and ingest).
pub fn rendition_row(p: &reel_media::PackagedRendition) -> Rendition {
    Rendition {
        name: p.name.clone(),
        width: p.width as i64,
        height: p.height as i64,
        bandwidth: p.bandwidth as i64,
        average_bandwidth: p.average_bandwidth as i64,
        codecs: p.codecs.clone(),
        playlist: p.playlist.clone(),
    }
}

/// The artwork variants a new title gets (re-exported for the CLI).
pub fn artwork_styles(name: &str) -> Vec<(String, String)> {
    crate::artwork::default_styles(name)
}

/// The demo fleet: two regions of two sites, one appliance per site. Site
/// prefixes map loopback clients to sites: 127.0.1.0/24 to the first, etc.
pub const DEMO_FLEET: [(&str, &str, &str, &str, &str); 4] = [
    // (site id, site name, region, client prefix, appliance id)
    ("use1", "US East 1", "us-east", "127.0.1.0/24", "oca-use1-01"),
    ("use2", "US East 2", "us-east", "127.0.2.0/24", "oca-use2-01"),
    ("euw1", "EU West 1", "eu-west", "127.0.3.0/24", "oca-euw1-01"),
    ("euw2", "EU West 2", "eu-west", "127.0.4.0/24", "oca-euw2-01"),
];

/// Records the demo fleet's sites and appliances, with the URLs the
/// appliances listen on in this run.
pub async fn ensure_demo_fleet(store: &Store, urls: &[(String, String)]) -> Result<(), DemoError> {
    if !store.models().await?.iter().any(|m| m.id == "demo-loopback") {
        let parts = serde_json::json!([
            {"kind": "disk", "description": "cache directory on the host's disk", "quantity": 1, "capacity": 512u64 * 1024 * 1024},
            {"kind": "nic", "description": "loopback", "quantity": 1, "capacity": 10},
            {"kind": "cpu", "description": "shared host cores", "quantity": 1, "capacity": 2}
        ]);
        store
            .upsert_model(&reel_store::ApplianceModel {
                id: "demo-loopback".into(),
                name: "Demo loopback appliance".into(),
                vendor: "Reel".into(),
                parts: parts.to_string(),
            })
            .await?;
    }
    for (site, name, region, prefix, appliance) in DEMO_FLEET {
        store
            .upsert_site(&reel_store::Site {
                id: site.into(),
                name: name.into(),
                region: region.into(),
                location: format!("loopback {prefix}"),
                prefixes: vec![prefix.into()],
            })
            .await?;
        if let Some((_, url)) = urls.iter().find(|(id, _)| id == appliance) {
            store
                .upsert_appliance(&reel_store::Appliance {
                    id: appliance.into(),
                    serial: format!("DEMO-{}", appliance.to_uppercase()),
                    site_id: site.into(),
                    model: "demo-loopback".into(),
                    state: "active".into(),
                    base_url: url.clone(),
                    last_report_ms: None,
                    report: "{}".into(),
                })
                .await?;
        }
    }
    Ok(())
}

/// Generated viewers of the demo catalog: each has one or two favourite
/// genres, mostly watches titles of them (and watches them further), and
/// sometimes samples something else. Spread over the last two weeks and
/// both demo regions, so a fresh `reel up` has a personalized home page,
/// trending rows and a trained model.
pub const DEMO_VIEWERS: usize = 300;

/// Stores the generated history if the store has no viewing history at
/// all. Returns the events written (0 when history already exists).
pub async fn ensure_demo_history(store: &Store) -> Result<u64, DemoError> {
    if store.viewing_event_count().await? > 0 {
        return Ok(0);
    }
    let events = demo_history(reel_domain::now_ms());
    Ok(store.insert_viewing_events(&events).await?)
}

/// The generated history (deterministic for a given `now_ms`).
pub fn demo_history(now_ms: i64) -> Vec<reel_store::NewViewingEvent> {
    let regions: Vec<&str> = {
        let mut r: Vec<&str> = DEMO_FLEET.iter().map(|f| f.2).collect();
        r.dedup();
        r
    };
    // What plays: movies by their id, series by their first episode.
    let playable: Vec<(String, &DemoTitle, f64)> = DEMO
        .iter()
        .map(|t| match t.video {
            Some(_) => (t.id.to_string(), t, MOVIE_SECONDS as f64),
            None => (format!("{}-s1e1", t.id), t, EPISODE_SECONDS as f64),
        })
        .collect();
    let mut rng = reel_recs::Rng::new(0x5EED_u64);
    let mut out = Vec::new();
    let day = 86_400_000i64;
    for v in 0..DEMO_VIEWERS {
        let favourite = GENRES[rng.below(GENRES.len())].0;
        let second = GENRES[rng.below(GENRES.len())].0;
        let region = regions[v % regions.len().max(1)];
        let profile = format!("demo-viewer-{v:03}");
        let n = 3 + rng.below(4);
        let mut watched = std::collections::HashSet::new();
        for _ in 0..n * 3 {
            if watched.len() == n {
                break;
            }
            let (id, t, seconds) = &playable[rng.below(playable.len())];
            let loves = t.genres.contains(&favourite);
            let likes = t.genres.contains(&second);
            // Mostly their genres; now and then something else.
            let keep = if loves { 0.9 } else if likes { 0.5 } else { 0.12 };
            if rng.next_f64() > keep || !watched.insert(id.clone()) {
                continue;
            }
            let share = if loves { 0.7 + 0.3 * rng.next_f64() } else { 0.1 + 0.5 * rng.next_f64() };
            let at = now_ms - rng.below(14) as i64 * day - rng.below(86_400) as i64 * 1000;
            let plays = if loves && rng.next_f64() < 0.3 { 2 } else { 1 };
            for p in 0..plays {
                let start = at + p * 3_600_000;
                let ev = |kind: &'static str, position_s: f64, at_ms: i64| reel_store::NewViewingEvent {
                    account_id: "demo-viewers".into(),
                    profile_id: profile.clone(),
                    title_id: id.clone(),
                    kind,
                    position_s,
                    at_ms,
                    region: Some(region.to_string()),
                };
                out.push(ev("play", 0.0, start));
                out.push(ev("stop", share * seconds, start + (share * seconds * 1000.0) as i64));
            }
        }
    }
    out
}
