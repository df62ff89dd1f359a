//! The personalized home page, over real HTTP, on SQLite and PostgreSQL:
//! it changes when a profile watches a few titles of one genre, "Because
//! You Watched" names one of them, a new profile gets the genres it picked,
//! kids see only kids' titles, no title repeats in the first screen, every
//! card says why it is there, and a newly trained model (or a rollback) is
//! served without a restart.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reel_control::recs::train::{train, TrainOptions};
use reel_domain::{Maturity, TitleKind};
use reel_store::{NewTitle, NewViewingEvent, Store};
use serde_json::{json, Value};
use std::collections::HashSet;

macro_rules! on_each_backend {
    (|$srv:ident| $body:block) => {{
        async fn scenario($srv: &TestServer) $body
        common::run(Options::default(), |srv| async move { scenario(&srv).await }).await
    }};
}

/// (genre, titles): four genres of five films each, added to the fixture.
const SHELVES: [(&str, &str); 4] = [("sci-fi", "Sci-Fi"), ("documentary", "Documentary"), ("comedy", "Comedy"), ("thriller", "Thriller")];

fn film(genre: &str, n: usize) -> String {
    format!("hm-{genre}-{n}")
}

async fn add_shelves(store: &Store) {
    for (slug, name) in SHELVES {
        store.upsert_genre(slug, name).await.unwrap();
        for n in 0..5 {
            let id = film(slug, n);
            store
                .create_title(NewTitle {
                    id: Some(id.clone()),
                    kind: TitleKind::Movie,
                    parent_id: None,
                    season_number: None,
                    episode_number: None,
                    name: format!("{name} Film {n}"),
                    synopsis: String::from("A test film."),
                    year: 2020 + n as i64,
                    maturity: Maturity::Pg13,
                    duration_s: 600.0,
                    genres: vec![slug.to_string()],
                    artwork: reel_control::demo::artwork_styles(&id),
                    created_ms: None,
                })
                .await
                .unwrap();
            store.set_renditions(&id, &renditions()).await.unwrap();
        }
    }
}

/// Other viewers: each loves one shelf and watches most of it.
async fn add_history(store: &Store) {
    let now = reel_domain::now_ms();
    let mut events = Vec::new();
    for v in 0..40 {
        let (genre, _) = SHELVES[v % SHELVES.len()];
        for n in 0..5 {
            if (v + n) % 5 == 0 {
                continue;
            }
            let at = now - (v as i64 * 3_600_000) - n as i64 * 60_000;
            for (kind, pos) in [("play", 0.0), ("stop", 540.0)] {
                events.push(NewViewingEvent {
                    account_id: "others".into(),
                    profile_id: format!("other-{v}"),
                    title_id: film(genre, n),
                    kind,
                    position_s: pos,
                    at_ms: at,
                    region: None,
                });
            }
        }
    }
    store.insert_viewing_events(&events).await.unwrap();
}

async fn home(srv: &TestServer, user: &User, profile: &str) -> Value {
    srv.get(&format!("/api/v1/home?profile={profile}")).auth(&user.token).send().await.expect_status(200)
}

fn rows(home: &Value) -> &Vec<Value> {
    home["rows"].as_array().expect("rows")
}

fn ids(row: &Value) -> Vec<String> {
    row["items"].as_array().expect("items").iter().map(|c| str_at(c, "/id")).collect()
}

fn row<'a>(home: &'a Value, id: &str) -> Option<&'a Value> {
    rows(home).iter().find(|r| r["id"] == id)
}

/// Every card has evidence; no title twice in the first screen.
fn check_page(home: &Value) {
    let mut seen = HashSet::new();
    for r in rows(home).iter().take(4) {
        for id in ids(r).into_iter().take(6) {
            assert!(seen.insert(id.clone()), "{id} repeats in the first screen: {home}");
        }
    }
    for r in rows(home) {
        for c in r["items"].as_array().unwrap() {
            assert!(c["evidence"]["text"].as_str().is_some_and(|t| !t.is_empty()), "card without evidence: {c}");
            assert!(c["evidence"]["reason"].is_string(), "{c}");
        }
    }
}

/// Watches `title` to 90% (play, heartbeat, stop).
async fn watch(srv: &TestServer, user: &User, profile: &str, title: &str) {
    let started = srv.play(user, profile, title).await;
    let stream = str_at(&started, "/id");
    srv.post(&format!("/api/v1/playback/{stream}/heartbeat")).auth(&user.token).json(&json!({"position_s": 540.0})).send().await.expect_status_ok();
    srv.post(&format!("/api/v1/playback/{stream}/stop")).auth(&user.token).json(&json!({"position_s": 540.0})).send().await.expect_status_ok();
}

async fn model_version(srv: &TestServer, user: &User, want: i64) -> bool {
    for _ in 0..40 {
        if home(srv, user, &user.profile_id).await["model"]["version"] == json!(want) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    false
}

#[tokio::test]
async fn the_home_page_follows_what_a_profile_watches() {
    on_each_backend!(|srv| {
        add_shelves(&srv.store).await;
        add_history(&srv.store).await;
        let report = train(&srv.store, &TrainOptions::default()).await.expect("train");
        assert!(report.activated);
        let als = report.metrics["als"]["ndcg@10"];
        let pop = report.metrics["popularity"]["ndcg@10"];
        assert!(als > pop, "held out: ALS {als} vs popularity {pop}");

        let user = srv.sign_up("premium").await;
        assert!(model_version(srv, &user, report.version).await, "the trained model is served");
        let before = home(srv, &user, &user.profile_id).await;
        check_page(&before);
        assert!(row(&before, "trending").is_some(), "a new profile sees what is trending");
        assert!(rows(&before).iter().all(|r| !str_at(r, "/id").starts_with("because-")));

        // Three sci-fi films, watched nearly to the end.
        let watched: Vec<String> = (0..3).map(|n| film("sci-fi", n)).collect();
        for t in &watched {
            watch(srv, &user, &user.profile_id, t).await;
        }
        let after = home(srv, &user, &user.profile_id).await;
        check_page(&after);
        assert_ne!(
            rows(&before).iter().map(|r| (str_at(r, "/id"), ids(r))).collect::<Vec<_>>(),
            rows(&after).iter().map(|r| (str_at(r, "/id"), ids(r))).collect::<Vec<_>>(),
            "the page changed"
        );
        // Top Picks now leads (after Continue Watching, if any) with the unwatched sci-fi films.
        let picks = row(&after, "top-picks").expect("top picks");
        let top: Vec<String> = ids(picks).into_iter().take(2).collect();
        let unwatched: Vec<String> = (3..5).map(|n| film("sci-fi", n)).collect();
        assert!(top.iter().all(|t| unwatched.contains(t)), "top picks {top:?} should be the unwatched sci-fi {unwatched:?}");
        assert!(ids(picks).iter().all(|t| !watched.contains(t)), "nothing already watched in Top Picks");
        // "Because You Watched" names one of them, and recommends more of the genre.
        let because: Vec<&Value> = rows(&after).iter().filter(|r| str_at(r, "/id").starts_with("because-")).collect();
        assert!(!because.is_empty(), "a Because You Watched row: {after}");
        let b = because[0];
        let source = str_at(b, "/id").trim_start_matches("because-").to_string();
        assert!(watched.contains(&source), "{source} is one of the watched titles");
        let name = str_at(&srv.get(&format!("/api/v1/titles/{source}")).auth(&user.token).send().await.expect_status(200), "/name");
        assert_eq!(str_at(b, "/title"), format!("Because You Watched {name}"));
        assert!(ids(b).iter().any(|t| unwatched.contains(t)), "it recommends the rest of the shelf: {b}");
        assert_eq!(str_at(&b["items"][0], "/evidence/reason"), "because_you_watched");
        assert_eq!(str_at(&b["items"][0], "/evidence/source_title"), source);
        // The sci-fi row climbed above the other genre rows.
        let pos = |id: &str| rows(&after).iter().position(|r| r["id"] == id);
        assert!(pos("genre-sci-fi") < pos("genre-documentary") && pos("genre-sci-fi") < pos("genre-comedy"));

        // A new profile that picked documentaries gets them first.
        let created = srv
            .post("/api/v1/profiles")
            .auth(&user.token)
            .json(&json!({"name": "Docs", "genres": ["documentary"]}))
            .send()
            .await
            .expect_status(201);
        assert_eq!(created["genres"], json!(["documentary"]));
        let docs = home(srv, &user, &str_at(&created, "/id")).await;
        check_page(&docs);
        let first = &row(&docs, "top-picks").expect("top picks")["items"][0];
        assert!(str_at(first, "/id").starts_with("hm-documentary-"), "{first}");
        assert_eq!(str_at(first, "/evidence/reason"), "picked_genre");
        // An unknown genre is a clear error.
        srv.post("/api/v1/profiles")
            .auth(&user.token)
            .json(&json!({"name": "Bad", "genres": ["no-such-genre"]}))
            .send()
            .await
            .expect_error(422, "validation");

        // Kids see only kids' titles, whatever the model says.
        let kids = srv.post("/api/v1/profiles").auth(&user.token).json(&json!({"name": "Kid", "kids": true})).send().await.expect_status(201);
        let kid_home = home(srv, &user, &str_at(&kids, "/id")).await;
        for r in rows(&kid_home) {
            for c in r["items"].as_array().unwrap() {
                let m = str_at(c, "/maturity");
                assert!(["TV-Y", "TV-Y7", "G", "TV-G", "PG", "TV-PG"].contains(&m.as_str()), "{m} on a kids profile");
            }
        }

        // Artwork: first-screen impressions are logged with their propensity,
        // and a play credits the one shown.
        let logged = srv.store.impressions(0, 10_000).await.unwrap();
        assert!(!logged.is_empty());
        assert!(logged.iter().all(|i| i.propensity > 0.0 && i.propensity <= 1.0));
        let shown = str_at(&row(&after, "top-picks").unwrap()["items"][0], "/id");
        watch(srv, &user, &user.profile_id, &shown).await;
        let logged = srv.store.impressions(0, 10_000).await.unwrap();
        assert!(logged.iter().any(|i| i.title_id == shown && i.played_ms.is_some()), "the play is credited");

        // A new version is served without a restart; rolling back too.
        let v2 = train(&srv.store, &TrainOptions::default()).await.expect("train again").version;
        assert!(model_version(srv, &user, v2).await, "v{v2} served without a restart");
        assert!(report.metrics.contains_key("als"));
        srv.store.activate_model(report.version).await.unwrap();
        assert!(model_version(srv, &user, report.version).await, "rolled back");
    });
}
