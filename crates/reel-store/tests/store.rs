//! The store's behaviour, run against every backend available: the embedded
//! SQLite always, and PostgreSQL when `REEL_TEST_POSTGRES_URL` names a server
//! (CI sets it; with `CI=true` and no URL the suite fails rather than skip).

use reel_domain::{Maturity, Plan, Role, TitleKind};
use reel_store::{NewAccount, NewTitle, Rendition, Store, StoreError, StreamStart, TitleFilter, TitlePatch};

/// A store on a fresh database; keeps its temp dir alive.
struct Backend {
    name: &'static str,
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn postgres_store() -> Option<Store> {
    let admin = match std::env::var("REEL_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must test PostgreSQL: set REEL_TEST_POSTGRES_URL"
            );
            return None;
        }
    };
    sqlx::any::install_default_drivers();
    let db = format!("reel_s_{}", reel_domain::new_id("t").to_lowercase().replace('_', ""));
    let pool = sqlx::AnyPool::connect(&admin).await.expect("connect to PostgreSQL admin URL");
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&pool).await.expect("create test database");
    pool.close().await;
    let (base, _) = admin.rsplit_once('/').expect("URL has a database part");
    Some(Store::open(&format!("{base}/{db}")).await.expect("open PostgreSQL store"))
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Store::open_in_dir(dir.path()).await.expect("open SQLite store");
    let mut all = vec![Backend { name: "sqlite", store: sqlite, _dir: Some(dir) }];
    if let Some(pg) = postgres_store().await {
        all.push(Backend { name: "postgres", store: pg, _dir: None });
    }
    all
}

async fn account(store: &Store, email: &str, plan: Plan) -> (reel_store::Account, reel_store::Profile) {
    store
        .create_account(NewAccount { email, password_hash: "$argon2id$x", plan, role: Role::Viewer, first_profile: "Me" })
        .await
        .expect("create account")
}

async fn movie(store: &Store, id: &str, name: &str, maturity: Maturity, genres: &[&str]) {
    for g in genres {
        store.upsert_genre(g, g).await.expect("genre");
    }
    store
        .create_title(NewTitle {
            id: Some(id.into()),
            kind: TitleKind::Movie,
            parent_id: None,
            season_number: None,
            episode_number: None,
            name: name.into(),
            synopsis: "s".into(),
            year: 2024,
            maturity,
            duration_s: 100.0,
            genres: genres.iter().map(|g| g.to_string()).collect(),
            artwork: vec![("a".into(), "{}".into())],
            created_ms: None,
        })
        .await
        .expect("create title");
}

fn start<'a>(acc: &'a str, prof: &'a str, title: &'a str, max_streams: u32, now: i64) -> StreamStart<'a> {
    StreamStart {
        account_id: acc,
        profile_id: prof,
        title_id: title,
        max_height: 720,
        max_streams,
        stale_before_ms: now - 60_000,
        position_s: 0.0,
        now_ms: now,
        region: Some("us-east"),
    }
}

#[tokio::test]
async fn emails_are_unique_and_sessions_expire() {
    for b in backends().await {
        let s = &b.store;
        let (a, p) = account(s, "ana@example.com", Plan::Basic).await;
        assert_eq!(p.account_id, a.id);
        let dup = s
            .create_account(NewAccount { email: "ana@example.com", password_hash: "h", plan: Plan::Premium, role: Role::Viewer, first_profile: "X" })
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{}: {dup:?}", b.name);
        // The failed sign-up left nothing behind: still one profile.
        assert_eq!(s.profiles(&a.id).await.expect("profiles").len(), 1, "{}", b.name);

        s.create_session("h1", &a.id, 2_000).await.expect("session");
        assert!(s.session_account("h1", 1_000).await.expect("lookup").is_some(), "{}", b.name);
        assert!(s.session_account("h1", 2_000).await.expect("lookup").is_none(), "{}: expired", b.name);
        s.delete_session("h1").await.expect("delete");
        assert!(s.session_account("h1", 0).await.expect("lookup").is_none(), "{}", b.name);
    }
}

#[tokio::test]
async fn profiles_are_capped_at_five_and_scoped_to_their_account() {
    for b in backends().await {
        let s = &b.store;
        let (a, first) = account(s, "a@example.com", Plan::Standard).await;
        let (other, _) = account(s, "b@example.com", Plan::Standard).await;
        for i in 0..4 {
            s.create_profile(&a.id, &format!("P{i}"), i == 0).await.expect("profile");
        }
        let sixth = s.create_profile(&a.id, "Six", false).await;
        assert!(matches!(sixth, Err(StoreError::Limit(_))), "{}: {sixth:?}", b.name);
        assert!(s.profile(&other.id, &first.id).await.expect("lookup").is_none(), "{}: another account's profile", b.name);
        assert!(matches!(s.delete_profile(&other.id, &first.id).await, Err(StoreError::NotFound)), "{}", b.name);
        assert_eq!(s.profiles(&a.id).await.expect("profiles").len(), 5, "{}", b.name);
    }
}

#[tokio::test]
async fn search_is_literal_and_respects_maturity() {
    for b in backends().await {
        let s = &b.store;
        movie(s, "m1", "100% Pure", Maturity::Pg, &["drama"]).await;
        movie(s, "m2", "Night_Run", Maturity::R, &["thriller"]).await;
        movie(s, "m3", "Tiny Tales", Maturity::TvY, &["kids"]).await;
        let find = |q: &str, level: Option<u8>| TitleFilter { query: Some(q.into()), max_level: level, ..Default::default() };
        let names = |ts: Vec<reel_store::Title>| ts.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(s.titles(&find("%", None)).await.expect("q")), vec!["100% Pure"], "{}", b.name);
        assert_eq!(names(s.titles(&find("_", None)).await.expect("q")), vec!["Night_Run"], "{}", b.name);
        assert!(s.titles(&find("' OR 1=1 --", None)).await.expect("q").is_empty(), "{}", b.name);
        assert_eq!(names(s.titles(&find("night", None)).await.expect("q")), vec!["Night_Run"], "{}: case-insensitive", b.name);
        let kids = s.titles(&TitleFilter { max_level: Some(1), ..Default::default() }).await.expect("kids");
        assert_eq!(names(kids).len(), 2, "{}", b.name);
        let thr = s.titles(&TitleFilter { genre: Some("thriller".into()), ..Default::default() }).await.expect("genre");
        assert_eq!(names(thr), vec!["Night_Run"], "{}", b.name);
        assert_eq!(s.title_count().await.expect("count"), 3, "{}", b.name);
    }
}

#[tokio::test]
async fn titles_can_be_edited_and_unknown_genres_change_nothing() {
    for b in backends().await {
        let s = &b.store;
        movie(s, "m1", "Old Name", Maturity::Pg, &["drama"]).await;
        let t = s
            .update_title("m1", TitlePatch { name: Some("New Name".into()), genres: Some(vec![]), ..Default::default() })
            .await
            .expect("edit");
        assert_eq!((t.name.as_str(), t.genres.len()), ("New Name", 0), "{}", b.name);
        let bad = s.update_title("m1", TitlePatch { name: Some("X".into()), genres: Some(vec!["nope".into()]), ..Default::default() }).await;
        assert!(bad.is_err(), "{}", b.name);
        assert_eq!(s.title("m1").await.expect("get").map(|t| t.name), Some("New Name".into()), "{}: rolled back", b.name);
        let r = Rendition { name: "720p".into(), width: 1280, height: 720, bandwidth: 1, average_bandwidth: 1, codecs: "avc1".into(), playlist: "720p/index.m3u8".into() };
        s.set_renditions("m1", &[r.clone()]).await.expect("renditions");
        assert_eq!(s.renditions("m1").await.expect("renditions"), vec![r], "{}", b.name);
    }
}

#[tokio::test]
async fn concurrent_starts_never_exceed_the_plan() {
    for b in backends().await {
        let s = &b.store;
        movie(s, "m1", "Film", Maturity::Pg, &[]).await;
        let (a, p) = account(s, "a@example.com", Plan::Standard).await;
        let now = reel_domain::now_ms();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (s, a, p) = (s.clone(), a.id.clone(), p.id.clone());
            tasks.push(tokio::spawn(async move { s.start_stream(start(&a, &p, "m1", 2, now)).await }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => ok += 1,
                Err(StoreError::Limit(_)) => {}
                Err(e) => panic!("{}: unexpected {e}", b.name),
            }
        }
        assert_eq!(ok, 2, "{}: exactly the plan's two streams start", b.name);
    }
}

#[tokio::test]
async fn streams_go_stale_revive_and_stop() {
    for b in backends().await {
        let s = &b.store;
        movie(s, "m1", "Film", Maturity::Pg, &[]).await;
        let (a, p) = account(s, "a@example.com", Plan::Basic).await;
        let t0 = 1_000_000_000;
        let first = s.start_stream(start(&a.id, &p.id, "m1", 1, t0)).await.expect("first");
        assert!(matches!(s.start_stream(start(&a.id, &p.id, "m1", 1, t0 + 1)).await, Err(StoreError::Limit(_))), "{}", b.name);
        // Two minutes without a heartbeat: the first no longer counts.
        let later = t0 + 120_000;
        let second = s.start_stream(start(&a.id, &p.id, "m1", 1, later)).await.expect("after stale");
        // The stale one cannot come back while the slot is taken.
        let revive = s.heartbeat(&a.id, &first.id, 5.0, 1, later - 60_000, later).await;
        assert!(matches!(revive, Err(StoreError::Limit(_))), "{}: {revive:?}", b.name);
        s.stop_stream(&a.id, &second.id, Some(30.0), later + 1).await.expect("stop");
        let hb = s.heartbeat(&a.id, &second.id, 31.0, 1, later - 60_000, later + 2).await;
        assert!(matches!(hb, Err(StoreError::Conflict(_))), "{}: stopped stays stopped", b.name);
        let revived = s.heartbeat(&a.id, &first.id, 6.0, 1, later - 60_000, later + 3).await.expect("revive");
        assert_eq!(revived.position_s, 6.0, "{}", b.name);
    }
}

#[tokio::test]
async fn heartbeats_build_history_and_continue_watching() {
    for b in backends().await {
        let s = &b.store;
        movie(s, "m1", "Film", Maturity::Pg, &[]).await;
        movie(s, "m2", "Other", Maturity::Pg, &[]).await;
        let (a, p) = account(s, "a@example.com", Plan::Premium).await;
        let (_, stranger) = account(s, "b@example.com", Plan::Premium).await;
        let now = reel_domain::now_ms();
        let st = s.start_stream(start(&a.id, &p.id, "m1", 4, now)).await.expect("start");
        s.heartbeat(&a.id, &st.id, 42.0, 4, now - 60_000, now + 10).await.expect("hb");
        assert!(matches!(s.heartbeat(&stranger.account_id, &st.id, 1.0, 4, 0, now).await, Err(StoreError::NotFound)), "{}", b.name);
        let st2 = s.start_stream(start(&a.id, &p.id, "m2", 4, now + 20)).await.expect("start 2");
        s.stop_stream(&a.id, &st2.id, Some(99.0), now + 30).await.expect("finish m2");
        let cw = s.continue_watching(&p.id, 10).await.expect("cw");
        assert_eq!(cw.iter().map(|p| p.title_id.as_str()).collect::<Vec<_>>(), vec!["m1"], "{}: finished titles leave the row", b.name);
        assert_eq!(cw[0].position_s, 42.0, "{}", b.name);
        let mut kinds: Vec<String> = s.viewing_events(0, 100).await.expect("events").into_iter().map(|e| e.kind).collect();
        // "stop" and "complete" share a timestamp, so their order is not fixed.
        kinds[3..].sort();
        assert!(s.viewing_events(0, 100).await.expect("events").iter().all(|e| e.region.as_deref() == Some("us-east")), "{}", b.name);
        assert_eq!(kinds, vec!["play", "heartbeat", "play", "complete", "stop"], "{}", b.name);
    }
}

#[tokio::test]
async fn settings_keep_the_first_value() {
    for b in backends().await {
        assert_eq!(b.store.setting_or_init("k", "one").await.expect("init"), "one");
        assert_eq!(b.store.setting_or_init("k", "two").await.expect("again"), "one", "{}", b.name);
    }
}

#[tokio::test]
async fn bad_database_urls_are_reported() {
    assert!(matches!(Store::open("mysql://x").await, Err(StoreError::BadUrl(_))));
}
