//! The control plane's promises, checked over real HTTP against a real
//! server, on SQLite and (when `REEL_TEST_POSTGRES_URL` is set) PostgreSQL.
//!
//! Each test is named after the promise it checks. Its body is an
//! `async fn scenario(srv: &TestServer)` that [`on_each_backend!`] runs once
//! per backend, each time on a fresh database with the fixture catalog
//! (see `common/mod.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use reel_domain::{Maturity, PlaybackClaims, TitleKind, TokenKey};
use serde_json::{json, Value};
use std::time::Duration;

/// Runs the block as `async fn scenario(srv: &TestServer)` on every backend.
macro_rules! on_each_backend {
    (|$srv:ident| $body:block) => {
        on_each_backend!(Options::default(), |$srv| $body)
    };
    ($opts:expr, |$srv:ident| $body:block) => {{
        async fn scenario($srv: &TestServer) $body
        common::run($opts, |srv| async move { scenario(&srv).await }).await
    }};
}

// ---------------------------------------------------------------- helpers

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The ids of a JSON array of cards.
fn ids(items: &Value) -> Vec<String> {
    items.as_array().expect("an array").iter().map(|c| str_at(c, "/id")).collect()
}

async fn search(srv: &TestServer, token: &str, query: &str) -> Vec<String> {
    let body = srv.get(&format!("/api/v1/search?{query}")).auth(token).send().await.expect_status(200);
    ids(&body["results"])
}

async fn home(node: &Node, token: &str, profile: &str) -> Value {
    node.get(&format!("/api/v1/home?profile={profile}")).auth(token).send().await.expect_status(200)
}

fn row<'a>(home: &'a Value, id: &str) -> Option<&'a Value> {
    home["rows"].as_array().expect("rows").iter().find(|r| r["id"] == id)
}

async fn heartbeat(node: &Node, token: &str, stream: &str, position: Value) -> Resp {
    node.post(&format!("/api/v1/playback/{stream}/heartbeat"))
        .auth(token)
        .json(&json!({"position_s": position}))
        .send()
        .await
}

async fn stop(node: &Node, token: &str, stream: &str) -> Resp {
    node.post(&format!("/api/v1/playback/{stream}/stop")).auth(token).json(&json!({})).send().await
}

async fn add_profile(srv: &TestServer, user: &User, name: &str, kids: bool) -> String {
    let body = srv
        .post("/api/v1/profiles")
        .auth(&user.token)
        .json(&json!({"name": name, "kids": kids}))
        .send()
        .await
        .expect_status(201);
    str_at(&body, "/id")
}

async fn profiles(srv: &TestServer, user: &User) -> Vec<Value> {
    let body = srv.get("/api/v1/profiles").auth(&user.token).send().await.expect_status(200);
    body["profiles"].as_array().expect("profiles").clone()
}

/// Everything a viewer can see of their account and the catalog.
async fn snapshot(srv: &TestServer, user: &User) -> Value {
    let me = srv.get("/api/v1/me").auth(&user.token).send().await.expect_status(200);
    let profiles = profiles(srv, user).await;
    let catalog = srv.get("/api/v1/search").auth(&user.token).send().await.expect_status(200);
    let mut pages = Vec::new();
    for id in &srv.fx.all {
        pages.push(srv.get(&format!("/api/v1/titles/{id}")).auth(&user.token).send().await.expect_status(200));
    }
    let genres = srv.get("/api/v1/genres").auth(&user.token).send().await.expect_status(200);
    let count = srv.store.title_count().await.expect("title count");
    json!({"me": me, "profiles": profiles, "catalog": catalog, "pages": pages, "genres": genres, "count": count})
}

/// The media path prefix for a token and title.
fn media(token: &str, title: &str) -> String {
    format!("/media/{token}/{title}")
}

fn split_token(token: &str) -> (String, String) {
    let (body, sig) = token.split_once('.').expect("token has a dot");
    (body.to_string(), sig.to_string())
}

fn now_s() -> i64 {
    reel_domain::now_ms() / 1000
}

// ---------------------------------------------------------------- accounts and sessions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_returns_a_token_and_an_http_only_cookie_that_both_authenticate() {
    on_each_backend!(|srv| {
        let res = srv
            .post("/api/v1/accounts")
            .json(&json!({"email": " Ana@Example.COM ", "password": PASSWORD, "plan": "standard"}))
            .send()
            .await;
        let body = res.expect_status(201);
        let token = str_at(&body, "/token");
        assert!(token.len() >= 32, "token looks random: {token}");
        assert_eq!(body["account"]["email"], "ana@example.com");
        assert_eq!(body["account"]["role"], "viewer");
        assert!(body["account"].get("password_hash").is_none(), "hash never leaves the server");
        assert_eq!(body["plan"]["name"], "standard");
        assert_eq!(body["profiles"].as_array().map(Vec::len), Some(1));
        let cookie = res.header("set-cookie").expect("Set-Cookie on sign-up");
        assert!(cookie.starts_with(&format!("reel_session={token};")), "{cookie}");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite="), "{cookie}");

        // The token works as a bearer token, and the cookie works by itself.
        let me = srv.get("/api/v1/me").auth(&token).send().await.expect_status(200);
        assert_eq!(me["account"]["email"], "ana@example.com");
        assert_eq!(me["active_streams"], 0);
        let me = srv
            .get("/api/v1/me")
            .header("cookie", &format!("theme=dark; reel_session={token}"))
            .send()
            .await
            .expect_status(200);
        assert_eq!(me["account"]["email"], "ana@example.com");

        // Signing in (email case and spaces don't matter) gives a new session.
        let res = srv
            .post("/api/v1/sessions")
            .json(&json!({"email": "ANA@example.com ", "password": PASSWORD}))
            .send()
            .await;
        let body = res.expect_status(200);
        let token2 = str_at(&body, "/token");
        assert_ne!(token2, token);
        let cookie = res.header("set-cookie").expect("Set-Cookie on sign-in");
        assert!(cookie.starts_with(&format!("reel_session={token2};")) && cookie.contains("HttpOnly"), "{cookie}");
        srv.get("/api/v1/me").auth(&token2).send().await.expect_status(200);
        srv.get("/api/v1/me").header("cookie", &format!("reel_session={token2}")).send().await.expect_status(200);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_email_cannot_sign_up_again() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        srv.post("/api/v1/accounts")
            .json(&json!({"email": user.email.to_uppercase(), "password": "another password 1", "plan": "premium"}))
            .send()
            .await
            .expect_error(409, "email_taken");
        // The original account is untouched: same plan, its password still works.
        let me = srv.get("/api/v1/me").auth(&user.token).send().await.expect_status(200);
        assert_eq!(me["plan"]["name"], "basic");
        srv.post("/api/v1/sessions")
            .json(&json!({"email": user.email, "password": PASSWORD}))
            .send()
            .await
            .expect_status(200);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_that_session_only() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let other = srv
            .post("/api/v1/sessions")
            .json(&json!({"email": user.email, "password": PASSWORD}))
            .send()
            .await
            .expect_status(200);
        let other = str_at(&other, "/token");
        let res = srv.delete("/api/v1/sessions/current").auth(&user.token).send().await;
        res.expect_status(204);
        let cookie = res.header("set-cookie").expect("sign-out clears the cookie");
        assert!(cookie.starts_with("reel_session=;") && cookie.contains("Max-Age=0"), "{cookie}");
        srv.get("/api/v1/me").auth(&user.token).send().await.expect_error(401, "unauthenticated");
        srv.get("/api/v1/me")
            .header("cookie", &format!("reel_session={}", user.token))
            .send()
            .await
            .expect_error(401, "unauthenticated");
        srv.delete("/api/v1/sessions/current").auth(&user.token).send().await.expect_error(401, "unauthenticated");
        srv.get("/api/v1/me").auth(&other).send().await.expect_status(200);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_refused_and_rate_limited_per_email() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let mut message = String::new();
        for _ in 0..5 {
            let err = srv
                .post("/api/v1/sessions")
                .json(&json!({"email": user.email, "password": "not the password"}))
                .send()
                .await
                .expect_error(401, "invalid_credentials");
            message = str_at(&err, "/error/message");
        }
        // Sixth try: refused even with the right password.
        srv.post("/api/v1/sessions")
            .json(&json!({"email": user.email, "password": PASSWORD}))
            .send()
            .await
            .expect_error(429, "rate_limited");
        // An unknown email gets exactly the wrong-password answer.
        let err = srv
            .post("/api/v1/sessions")
            .json(&json!({"email": "nobody-here@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect_error(401, "invalid_credentials");
        assert_eq!(str_at(&err, "/error/message"), message);
        // Sessions made before still work, and other emails can still sign in.
        srv.get("/api/v1/me").auth(&user.token).send().await.expect_status(200);
        let other = srv.sign_up("basic").await;
        srv.post("/api/v1/sessions")
            .json(&json!({"email": other.email, "password": PASSWORD}))
            .send()
            .await
            .expect_status(200);
    });
}

// ---------------------------------------------------------------- bad input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_never_5xx_and_change_nothing() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        add_profile(srv, &user, "Second", false).await;
        let before = snapshot(srv, &user).await;
        let t = user.token.as_str();
        let json_ct = ("content-type", "application/json");

        // Malformed JSON.
        for (path, auth) in [("/api/v1/accounts", false), ("/api/v1/sessions", false), ("/api/v1/profiles", true)] {
            let mut call = srv.post(path).header(json_ct.0, json_ct.1).body("{not json");
            if auth {
                call = call.auth(t);
            }
            call.send().await.expect_error(400, "malformed_json");
        }
        srv.post("/api/v1/playback").auth(t).header(json_ct.0, json_ct.1).body("not json").send().await.expect_error(400, "malformed_json");

        // Wrong types.
        srv.post("/api/v1/accounts")
            .json(&json!({"email": 42, "password": PASSWORD, "plan": "basic"}))
            .send()
            .await
            .expect_error(422, "validation");
        srv.post("/api/v1/profiles").auth(t).json(&json!({"name": 7})).send().await.expect_error(422, "validation");
        srv.post("/api/v1/profiles").auth(t).json(&json!("Second")).send().await.expect_error(422, "validation");
        // An array must not be read as a struct's fields in order.
        srv.post("/api/v1/profiles").auth(t).json(&json!(["Kid"])).send().await.expect_error(422, "validation");
        srv.post("/api/v1/playback")
            .auth(t)
            .json(&json!({"profile_id": true, "title_id": null}))
            .send()
            .await
            .expect_error(422, "validation");
        srv.patch(&format!("/api/v1/profiles/{}", user.profile_id))
            .auth(t)
            .json(&json!({"kids": "yes"}))
            .send()
            .await
            .expect_error(422, "validation");
        // Missing fields.
        srv.post("/api/v1/accounts").json(&json!({"email": "x@example.com"})).send().await.expect_error(422, "validation");

        // Unknown fields.
        srv.post("/api/v1/accounts")
            .json(&json!({"email": "new@example.com", "password": PASSWORD, "plan": "basic", "role": "admin"}))
            .send()
            .await
            .expect_error(422, "validation");
        srv.post("/api/v1/sessions")
            .json(&json!({"email": user.email, "password": PASSWORD, "remember": true}))
            .send()
            .await
            .expect_error(422, "validation");
        srv.post("/api/v1/profiles")
            .auth(t)
            .json(&json!({"name": "Third", "admin": true}))
            .send()
            .await
            .expect_error(422, "validation");

        // Missing or wrong Content-Type.
        let good = json!({"email": "ct@example.com", "password": PASSWORD, "plan": "basic"}).to_string();
        srv.post("/api/v1/accounts").body(good.clone()).send().await.expect_error(415, "unsupported_media_type");
        srv.post("/api/v1/accounts")
            .header("content-type", "text/plain")
            .body(good.clone())
            .send()
            .await
            .expect_error(415, "unsupported_media_type");
        srv.post("/api/v1/accounts")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=a%40b.co&password=x&plan=basic")
            .send()
            .await
            .expect_error(415, "unsupported_media_type");
        srv.post("/api/v1/profiles").auth(t).body(r#"{"name":"Third"}"#).send().await.expect_error(415, "unsupported_media_type");

        // Bodies over 64 KiB.
        let huge = "x".repeat(70 * 1024);
        srv.post("/api/v1/accounts")
            .json(&json!({"email": "big@example.com", "password": huge, "plan": "basic"}))
            .send()
            .await
            .expect_error(413, "too_large");
        srv.post("/api/v1/profiles").auth(t).json(&json!({"name": huge})).send().await.expect_error(413, "too_large");

        // Invalid values.
        for body in [
            json!({"email": "not-an-email", "password": PASSWORD, "plan": "basic"}),
            json!({"email": "short@example.com", "password": "short", "plan": "basic"}),
            json!({"email": "gold@example.com", "password": PASSWORD, "plan": "gold"}),
            json!({"email": "long@example.com", "password": "p".repeat(300), "plan": "basic"}),
        ] {
            srv.post("/api/v1/accounts").json(&body).send().await.expect_error(422, "validation");
        }
        srv.get("/api/v1/home").auth(t).send().await.expect_error(422, "validation");
        srv.get(&format!("/api/v1/search?q={}", "a".repeat(101))).auth(t).send().await.expect_error(422, "validation");
        srv.get("/api/v1/search?q=x&q=y").auth(t).send().await.expect_client_error();

        // Missing, garbage or wrong-scheme credentials.
        let protected = [
            ("GET", "/api/v1/me".to_string()),
            ("GET", "/api/v1/profiles".to_string()),
            ("GET", format!("/api/v1/home?profile={}", user.profile_id)),
            ("GET", format!("/api/v1/titles/{}", srv.fx.kids_movie)),
            ("GET", "/api/v1/search?q=paper".to_string()),
            ("GET", "/api/v1/genres".to_string()),
            ("POST", "/api/v1/playback".to_string()),
            ("DELETE", "/api/v1/sessions/current".to_string()),
        ];
        let long = format!("rs_{}", "A".repeat(300));
        let bad_auth: [Option<(&str, String)>; 6] = [
            None,
            Some(("authorization", "Bearer garbage".to_string())),
            Some(("authorization", format!("Bearer {long}"))),
            Some(("authorization", format!("Basic {t}"))),
            Some(("authorization", "Bearer".to_string())),
            Some(("cookie", "reel_session=rs_forged".to_string())),
        ];
        for (method, path) in &protected {
            for auth in &bad_auth {
                let mut call = srv.call(method.parse().expect("method"), path);
                if let Some((name, value)) = auth {
                    call = call.header(name, value);
                }
                if *method == "POST" {
                    call = call.json(&json!({"profile_id": user.profile_id, "title_id": srv.fx.kids_movie}));
                }
                call.send().await.expect_error(401, "unauthenticated");
            }
        }

        // Unknown routes and wrong methods answer in JSON too.
        for path in ["/api/v1/nope", "/api/v1/titles", "/api/v2/me", "/api/nope", "/api/v1/accounts/x/y", "/media/x"] {
            srv.get(path).auth(t).send().await.expect_error(404, "not_found");
        }
        srv.post("/api/v1/nope").json(&json!({})).send().await.expect_error(404, "not_found");
        for (method, path) in [
            ("DELETE", "/api/v1/home"),
            ("GET", "/api/v1/accounts"),
            ("PUT", "/api/v1/profiles"),
            ("GET", "/api/v1/playback"),
            ("GET", "/api/v1/sessions/current"),
            ("POST", "/api/v1/search"),
            ("POST", "/healthz"),
            ("DELETE", "/api/openapi.json"),
        ] {
            srv.call(method.parse().expect("method"), path)
                .auth(t)
                .send()
                .await
                .expect_error(405, "method_not_allowed");
        }

        // Still signed in, and nothing changed.
        let after = snapshot(srv, &user).await;
        assert_eq!(before, after, "bad requests changed stored data");
        srv.post("/api/v1/sessions")
            .json(&json!({"email": user.email, "password": PASSWORD}))
            .send()
            .await
            .expect_status(200);
        for email in ["ct@example.com", "big@example.com", "new@example.com", "short@example.com"] {
            assert!(srv.store.account_by_email(email).await.expect("lookup").is_none(), "{email} was created");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_metacharacters_are_plain_text_and_like_wildcards_match_literally() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let t = user.token.as_str();
        let before = snapshot(srv, &user).await;
        let evil = [
            "' OR 1=1 --",
            "%",
            "_",
            "\"; DROP TABLE titles; --",
            "'; DELETE FROM accounts; --",
            "1' UNION SELECT id, email FROM accounts --",
            "%%",
            "\\",
            "\\%",
            "*",
        ];
        for e in evil {
            let q = enc(e);
            // Search text: a literal substring, never a pattern or SQL.
            let found = search(srv, t, &format!("q={q}")).await;
            let expected: Vec<String> = if e == "%" { vec![srv.fx.teen_movie.clone()] } else { Vec::new() };
            assert_eq!(found, expected, "search for {e:?}");
            // Genre: an unknown genre matches nothing.
            assert!(search(srv, t, &format!("genre={q}")).await.is_empty(), "genre {e:?}");
            assert!(search(srv, t, &format!("q=a&genre={q}")).await.is_empty(), "genre {e:?}");
            // Profile ids.
            srv.get(&format!("/api/v1/search?profile={q}")).auth(t).send().await.expect_error(404, "not_found");
            srv.get(&format!("/api/v1/home?profile={q}")).auth(t).send().await.expect_error(404, "not_found");
            srv.get(&format!("/api/v1/titles/{}?profile={q}", srv.fx.kids_movie))
                .auth(t)
                .send()
                .await
                .expect_error(404, "not_found");
            srv.patch(&format!("/api/v1/profiles/{q}"))
                .auth(t)
                .json(&json!({"name": "Renamed"}))
                .send()
                .await
                .expect_error(404, "not_found");
            srv.delete(&format!("/api/v1/profiles/{q}")).auth(t).send().await.expect_error(404, "not_found");
            srv.post("/api/v1/playback")
                .auth(t)
                .json(&json!({"profile_id": e, "title_id": srv.fx.kids_movie}))
                .send()
                .await
                .expect_error(404, "not_found");
            // Title ids.
            srv.get(&format!("/api/v1/titles/{q}")).auth(t).send().await.expect_client_error();
            srv.get(&format!("/api/v1/titles/{q}/artwork/a.svg")).send().await.expect_client_error();
            srv.post("/api/v1/playback")
                .auth(t)
                .json(&json!({"profile_id": user.profile_id, "title_id": e}))
                .send()
                .await
                .expect_error(404, "not_found");
            // Stream ids.
            heartbeat(srv, t, &q, json!(1.0)).await.expect_client_error();
            stop(srv, t, &q).await.expect_client_error();
            // Email.
            srv.post("/api/v1/sessions")
                .json(&json!({"email": e, "password": PASSWORD}))
                .send()
                .await
                .expect_error(401, "invalid_credentials");
        }
        // Ordinary searches still work: case-insensitive substrings.
        assert_eq!(search(srv, t, "q=PAPER").await, vec![srv.fx.kids_movie.clone()]);
        assert_eq!(search(srv, t, "q=100%25").await, vec![srv.fx.teen_movie.clone()]);
        assert_eq!(search(srv, t, "q=T&genre=drama").await, vec![srv.fx.mature_movie.clone(), srv.fx.series.clone()]);

        let after = snapshot(srv, &user).await;
        assert_eq!(before, after, "metacharacters changed stored data");
        assert_eq!(after["catalog"]["results"].as_array().map(Vec::len), Some(4));

        // Stored as typed, too.
        let weird = "' OR 1=1 --";
        let id = add_profile(srv, &user, weird, false).await;
        let all = profiles(srv, &user).await;
        assert!(all.iter().any(|p| p["id"] == id.as_str() && p["name"] == weird), "{all:?}");
        assert_eq!(all.len(), 2);
    });
}

// ---------------------------------------------------------------- paths

/// Responses to path tricks: a 4xx, and nothing from outside the origin.
#[track_caller]
fn assert_refused(target: &str, res: &RawResp) {
    assert!((400..500).contains(&res.status), "{target} -> {}\n{}", res.status, res.text);
    assert!(!res.text.contains(SECRET_MARKER), "{target} leaked a file: {}", res.text);
    assert!(!res.text.contains("root:"), "{target} leaked /etc/passwd: {}", res.text);
    assert!(!res.text.contains("SQLite format"), "{target} leaked the database: {}", res.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_path_tricks_never_reach_outside_the_origin() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let title = srv.fx.kids_movie.clone();
        // Files inside the title's folder that are not media to serve.
        let folder = srv.origin().join(&title);
        std::fs::write(folder.join("720p").join(".hidden.m4s"), SECRET_MARKER).expect("hidden file");
        std::fs::create_dir_all(folder.join("720p-old")).expect("dir");
        std::fs::write(folder.join("720p-old").join("seg_000.m4s"), SECRET_MARKER).expect("stray file");
        std::fs::create_dir_all(folder.join("secrets")).expect("dir");
        std::fs::write(folder.join("secrets").join("seg_000.m4s"), SECRET_MARKER).expect("stray file");
        std::fs::write(srv.origin().join("secret.m4s"), SECRET_MARKER).expect("stray file");

        let play = srv.play(&user, &user.profile_id, &title).await;
        let token = str_at(&play, "/token");
        let p = media(&token, &title);
        // Sanity: the raw client reaches real media.
        let ok = srv.raw("GET", &format!("{p}/720p/seg_000.m4s"), &[]).await;
        assert_eq!(ok.status, 200, "{}", ok.text);

        let targets = [
            format!("{p}/../../etc/passwd"),
            format!("{p}/../../../secret.txt"),
            format!("{p}/720p/../../../secret.txt"),
            format!("{p}/720p/../../../../../../../../etc/passwd"),
            format!("{p}/720p/..%2f..%2f..%2fsecret.txt"),
            format!("{p}/720p/..%2F..%2F..%2Fsecret.txt"),
            format!("{p}/720p/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt"),
            format!("{p}/720p/%2e%2e%2f%2e%2e%2fsecret.m4s"),
            format!("{p}/%2e%2e/%2e%2e%2f%2e%2e%2fsecret.txt"),
            format!("{p}/%2e%2e%2f%2e%2e/secret.m4s"),
            format!("{p}/..%2f720p/seg_000.m4s"),
            format!("/media/{token}/%2e%2e/%2e%2e/secret.txt"),
            format!("/media/{token}/..%2f..%2fsecret.txt/720p/seg_000.m4s"),
            format!("/media/{token}/..%2f..%2f/master.m3u8"),
            format!("{p}/720p/%2fetc%2fpasswd"),
            format!("{p}/720p/%2e%2e%2f%2e%2e%2f%2e%2e%2fdata%2freel.db"),
            format!("{p}/720p/seg_000.m4s%00"),
            format!("{p}/720p/seg_000.m4s%00.m4s"),
            format!("{p}/720p%00/seg_000.m4s"),
            format!("{p}/720p/..%5c..%5c..%5csecret.txt"),
            format!("{p}/720p/..\\..\\..\\secret.txt"),
            format!("{p}/720p\\..\\..\\secrets/seg_000.m4s"),
            format!("{p}/720p/.hidden.m4s"),
            format!("{p}/720p/%2ehidden.m4s"),
            format!("{p}/720p-old/seg_000.m4s"),
            format!("{p}/secrets/seg_000.m4s"),
            format!("{p}/720/seg_000.m4s"),
            format!("{p}/p720/seg_000.m4s"),
            format!("{p}/.720p/seg_000.m4s"),
            format!("{p}/720p/secret.txt"),
            format!("{p}/720p/index.m3u8/../../../../secret.txt"),
            format!("{p}/720p/seg_000.m4s/..%2f..%2f..%2f..%2fsecret.txt"),
        ];
        for target in &targets {
            let res = srv.raw("GET", target, &[]).await;
            assert_refused(target, &res);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_path_tricks_are_refused() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let auth = format!("Bearer {}", user.token);
        let auth = [("authorization", auth.as_str())];
        let kids = &srv.fx.kids_movie;
        let targets = [
            "/api/v1/titles/..%2f..".to_string(),
            "/api/v1/titles/..%2F..%2Fetc%2Fpasswd".to_string(),
            "/api/v1/titles/%2e%2e".to_string(),
            "/api/v1/titles/%2e%2e%2f%2e%2e%2fsecret.txt".to_string(),
            "/api/v1/titles/../../../secret.txt".to_string(),
            "/api/v1/titles/..\\..\\secret.txt".to_string(),
            "/api/v1/titles/x%00y".to_string(),
            "/api/v1/titles/.hidden".to_string(),
            format!("/api/v1/titles/{kids}%2f..%2f.."),
            format!("/api/v1/titles/{kids}/artwork/..%2f..%2f..%2fsecret.txt"),
            format!("/api/v1/titles/{kids}/artwork/%2e%2e.svg"),
            format!("/api/v1/titles/{kids}/artwork/..%2fa.svg"),
            "/api/v1/titles/..%2f/artwork/a.svg".to_string(),
            format!("/api/v1/home?profile=..%2f{}", user.profile_id),
            "/api/v1/../../secret.txt".to_string(),
            "/api/v1/%2e%2e/%2e%2e/secret.txt".to_string(),
            "/../../secret.txt".to_string(),
        ];
        for target in &targets {
            let res = srv.raw("GET", target, &auth).await;
            assert_refused(target, &res);
        }
        // The same, for a method that writes.
        for target in ["/api/v1/profiles/..%2f..", "/api/v1/profiles/%2e%2e", "/api/v1/profiles/..\\x"] {
            let res = srv.raw("DELETE", target, &auth).await;
            assert_refused(target, &res);
        }
        // And through the ordinary client, with the error shape.
        for path in ["/api/v1/titles/..%2f..", "/api/v1/titles/%252e%252e", "/api/v1/titles/a%20b", "/api/v1/titles/%C3%A9"] {
            srv.get(path).auth(&user.token).send().await.expect_error(404, "not_found");
        }
        assert_eq!(profiles(srv, &user).await.len(), 1);
        assert_eq!(srv.store.title_count().await.expect("count"), srv.fx.all.len() as i64);
    });
}

// ---------------------------------------------------------------- profiles

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_holds_one_to_five_profiles() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let first = profiles(srv, &user).await;
        assert_eq!(first.len(), 1, "a new account has one profile");
        assert_eq!(first[0]["id"], user.profile_id.as_str());
        assert_eq!(first[0]["kids"], false);
        let mut added = Vec::new();
        for i in 2..=5 {
            added.push(add_profile(srv, &user, &format!("Profile {i}"), i == 5).await);
        }
        srv.post("/api/v1/profiles")
            .auth(&user.token)
            .json(&json!({"name": "Sixth"}))
            .send()
            .await
            .expect_error(409, "profile_limit");
        let all = profiles(srv, &user).await;
        assert_eq!(all.len(), 5);
        let kids: Vec<&Value> = all.iter().filter(|p| p["kids"] == true).collect();
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0]["name"], "Profile 5");

        // Rename and flip the kids flag.
        let renamed = srv
            .patch(&format!("/api/v1/profiles/{}", added[0]))
            .auth(&user.token)
            .json(&json!({"name": "  Grandma  ", "kids": true}))
            .send()
            .await
            .expect_status(200);
        assert_eq!((renamed["name"].as_str(), renamed["kids"].as_bool()), (Some("Grandma"), Some(true)));
        let renamed = srv
            .patch(&format!("/api/v1/profiles/{}", added[0]))
            .auth(&user.token)
            .json(&json!({"kids": false}))
            .send()
            .await
            .expect_status(200);
        assert_eq!((renamed["name"].as_str(), renamed["kids"].as_bool()), (Some("Grandma"), Some(false)));

        // Delete down to one; the last one stays.
        for id in &added {
            srv.delete(&format!("/api/v1/profiles/{id}")).auth(&user.token).send().await.expect_status(204);
        }
        srv.delete(&format!("/api/v1/profiles/{}", added[0])).auth(&user.token).send().await.expect_error(404, "not_found");
        srv.delete(&format!("/api/v1/profiles/{}", user.profile_id))
            .auth(&user.token)
            .send()
            .await
            .expect_error(409, "profile_limit");
        let left = profiles(srv, &user).await;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["id"], user.profile_id.as_str());
        // Room again.
        add_profile(srv, &user, "Back again", false).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_names_are_one_to_32_printable_characters() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let bad = [
            String::new(),
            "   ".to_string(),
            "x".repeat(33),
            "é".repeat(33),
            "bell\u{7}".to_string(),
            "tab\there".to_string(),
            "new\nline".to_string(),
            "nul\u{0}byte".to_string(),
            "del\u{7f}".to_string(),
        ];
        for name in &bad {
            srv.post("/api/v1/profiles")
                .auth(&user.token)
                .json(&json!({"name": name}))
                .send()
                .await
                .expect_error(422, "validation");
            srv.patch(&format!("/api/v1/profiles/{}", user.profile_id))
                .auth(&user.token)
                .json(&json!({"name": name}))
                .send()
                .await
                .expect_error(422, "validation");
        }
        assert_eq!(profiles(srv, &user).await.len(), 1);
        // The limits themselves are fine; names are trimmed.
        let long = "x".repeat(32);
        let wide = "é".repeat(32);
        add_profile(srv, &user, &long, false).await;
        add_profile(srv, &user, &wide, false).await;
        add_profile(srv, &user, " Zoë 🎬 ", false).await;
        let mut names: Vec<String> = profiles(srv, &user).await.iter().map(|p| str_at(p, "/name")).collect();
        names.sort();
        let first = str_at(&profiles(srv, &user).await[0], "/name");
        let mut expected = vec![first, long, wide, "Zoë 🎬".to_string()];
        expected.sort();
        assert_eq!(names, expected);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_cannot_see_or_touch_another_accounts_profiles_and_streams() {
    on_each_backend!(|srv| {
        let a = srv.sign_up("premium").await;
        let b = srv.sign_up("premium").await;
        let a2 = add_profile(srv, &a, "A two", false).await;
        let play = srv.play(&a, &a.profile_id, &srv.fx.kids_movie).await;
        let stream = str_at(&play, "/id");
        heartbeat(srv, &a.token, &stream, json!(30.0)).await.expect_status(200);
        let a_before = (profiles(srv, &a).await, home(srv, &a.token, &a.profile_id).await);

        // B can't browse as A's profiles.
        for pid in [&a.profile_id, &a2] {
            let res = srv.get(&format!("/api/v1/home?profile={pid}")).auth(&b.token).send().await;
            assert!(matches!(res.status, 403 | 404), "home as another account's profile: {}", res.status);
            res.expect_client_error();
            srv.get(&format!("/api/v1/search?profile={pid}")).auth(&b.token).send().await.expect_error(404, "not_found");
            srv.get(&format!("/api/v1/titles/{}?profile={pid}", srv.fx.kids_movie))
                .auth(&b.token)
                .send()
                .await
                .expect_error(404, "not_found");
            // ...or play on them.
            srv.post("/api/v1/playback")
                .auth(&b.token)
                .json(&json!({"profile_id": pid, "title_id": srv.fx.kids_movie}))
                .send()
                .await
                .expect_error(404, "not_found");
            // ...or rename or delete them.
            srv.patch(&format!("/api/v1/profiles/{pid}"))
                .auth(&b.token)
                .json(&json!({"name": "Mine now", "kids": true}))
                .send()
                .await
                .expect_error(404, "not_found");
            srv.delete(&format!("/api/v1/profiles/{pid}")).auth(&b.token).send().await.expect_error(404, "not_found");
        }
        // B can't heartbeat or stop A's stream.
        heartbeat(srv, &b.token, &stream, json!(999.0)).await.expect_error(404, "not_found");
        stop(srv, &b.token, &stream).await.expect_error(404, "not_found");

        // A's data is as it was, and A's stream is still live.
        let a_after = (profiles(srv, &a).await, home(srv, &a.token, &a.profile_id).await);
        assert_eq!(a_before, a_after);
        let cw = row(&a_after.1, "continue-watching").expect("A's continue watching");
        assert_eq!(cw["items"][0]["progress"]["position_s"], 30.0);
        let me = srv.get("/api/v1/me").auth(&a.token).send().await.expect_status(200);
        assert_eq!(me["active_streams"], 1);
        heartbeat(srv, &a.token, &stream, json!(31.0)).await.expect_status(200);
        // B sees only its own profile and nothing of A's history.
        let b_profiles = profiles(srv, &b).await;
        assert_eq!(b_profiles.len(), 1);
        assert_eq!(b_profiles[0]["id"], b.profile_id.as_str());
        assert!(row(&home(srv, &b.token, &b.profile_id).await, "continue-watching").is_none());
        let me = srv.get("/api/v1/me").auth(&b.token).send().await.expect_status(200);
        assert_eq!(me["active_streams"], 0);
    });
}

// ---------------------------------------------------------------- plans

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_plan_allows_one_stream_at_a_time_across_profiles() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let second = add_profile(srv, &user, "Second", false).await;
        let first = srv.play(&user, &user.profile_id, &srv.fx.kids_movie).await;
        for (profile, title) in [(&second, &srv.fx.teen_movie), (&user.profile_id, &srv.fx.kids_movie)] {
            let err = srv
                .post("/api/v1/playback")
                .auth(&user.token)
                .json(&json!({"profile_id": profile, "title_id": title}))
                .send()
                .await
                .expect_error(409, "stream_limit");
            assert!(str_at(&err, "/error/message").contains("Basic"), "{err}");
        }
        let me = srv.get("/api/v1/me").auth(&user.token).send().await.expect_status(200);
        assert_eq!(me["active_streams"], 1);
        let stopped = stop(srv, &user.token, &str_at(&first, "/id")).await.expect_status(200);
        assert_eq!(stopped["stopped"], true);
        srv.play(&user, &second, &srv.fx.teen_movie).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_plan_gets_720p_at_most_in_playlists_and_segments() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let play = srv.play(&user, &user.profile_id, &srv.fx.kids_movie).await;
        assert_eq!(play["max_height"], 720);
        let names: Vec<String> = play["renditions"].as_array().expect("renditions").iter().map(|r| str_at(r, "/name")).collect();
        assert_eq!(names, ["720p", "360p"]);
        let hls = str_at(&play, "/manifests/hls");
        assert_eq!(play["urls"][0]["hls"], srv.url(&hls).as_str());
        let res = srv.get(&hls).send().await;
        res.expect_status(200);
        assert_eq!(res.header("content-type").as_deref(), Some("application/vnd.apple.mpegurl"));
        let master = res.text();
        assert!(master.starts_with("#EXTM3U"), "{master}");
        assert!(master.contains("720p/index.m3u8") && master.contains("RESOLUTION=1280x720"), "{master}");
        assert!(master.contains("360p/index.m3u8"), "{master}");
        assert!(!master.contains("1080"), "{master}");

        let base = hls.trim_end_matches("master.m3u8");
        for ok in ["720p/index.m3u8", "720p/init.mp4", "720p/seg_000.m4s", "360p/seg_000.m4s"] {
            let res = srv.get(&format!("{base}{ok}")).send().await;
            assert_eq!(res.status, 200, "{ok}: {}", res.text());
        }
        for capped in ["1080p/seg_000.m4s", "1080p/index.m3u8", "1080p/init.mp4", "2160p/seg_000.m4s"] {
            srv.get(&format!("{base}{capped}")).send().await.expect_error(403, "quality_cap");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_gets_1080p_and_two_streams_premium_gets_four() {
    on_each_backend!(|srv| {
        for (plan, streams) in [("standard", 2), ("premium", 4)] {
            let user = srv.sign_up(plan).await;
            let mut plays = Vec::new();
            for _ in 0..streams {
                plays.push(srv.play(&user, &user.profile_id, &srv.fx.kids_movie).await);
            }
            srv.post("/api/v1/playback")
                .auth(&user.token)
                .json(&json!({"profile_id": user.profile_id, "title_id": srv.fx.teen_movie}))
                .send()
                .await
                .expect_error(409, "stream_limit");
            let me = srv.get("/api/v1/me").auth(&user.token).send().await.expect_status(200);
            assert_eq!(me["active_streams"], streams);
            assert_eq!(me["plan"]["max_streams"], streams);

            let hls = str_at(&plays[0], "/manifests/hls");
            let master = srv.get(&hls).send().await;
            master.expect_status(200);
            let master = master.text();
            for r in ["1080p/index.m3u8", "720p/index.m3u8", "360p/index.m3u8"] {
                assert!(master.contains(r), "{plan} master lacks {r}: {master}");
            }
            let seg = srv.get(&format!("{}1080p/seg_000.m4s", hls.trim_end_matches("master.m3u8"))).send().await;
            assert_eq!(seg.status, 200, "{plan} 1080p segment: {}", seg.text());
            assert_eq!(seg.body.len(), SEGMENT_BYTES);
            // Stopping one frees a slot.
            stop(srv, &user.token, &str_at(&plays[0], "/id")).await.expect_status(200);
            srv.play(&user, &user.profile_id, &srv.fx.teen_movie).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_heartbeats_stops_counting_once_stale() {
    let opts = Options { stream_stale_after: Some(Duration::from_millis(1200)) };
    on_each_backend!(opts, |srv| {
        let user = srv.sign_up("basic").await;
        let first = srv.play(&user, &user.profile_id, &srv.fx.kids_movie).await;
        let first = str_at(&first, "/id");
        let second = json!({"profile_id": user.profile_id, "title_id": srv.fx.teen_movie});
        srv.post("/api/v1/playback").auth(&user.token).json(&second).send().await.expect_error(409, "stream_limit");
        // A heartbeat keeps it counting past the staleness window since it started.
        tokio::time::sleep(Duration::from_millis(500)).await;
        heartbeat(srv, &user.token, &first, json!(5.0)).await.expect_status(200);
        tokio::time::sleep(Duration::from_millis(800)).await;
        srv.post("/api/v1/playback").auth(&user.token).json(&second).send().await.expect_error(409, "stream_limit");
        // Without heartbeats it goes stale and frees the slot.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let me = srv.get("/api/v1/me").auth(&user.token).send().await.expect_status(200);
        assert_eq!(me["active_streams"], 0);
        srv.post("/api/v1/playback").auth(&user.token).json(&second).send().await.expect_status(201);
        // The stale stream can't come back while its slot is taken.
        heartbeat(srv, &user.token, &first, json!(6.0)).await.expect_error(409, "stream_limit");
    });
}

// ---------------------------------------------------------------- playback tokens

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_needs_a_valid_unexpired_token_for_that_title() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("premium").await;
        let kids = srv.fx.kids_movie.clone();
        let teen = srv.fx.teen_movie.clone();
        let kid_play = srv.play(&user, &user.profile_id, &kids).await;
        let teen_play = srv.play(&user, &user.profile_id, &teen).await;
        let kid_tok = str_at(&kid_play, "/token");
        let teen_tok = str_at(&teen_play, "/token");
        let files = ["master.m3u8", "720p/index.m3u8", "720p/seg_000.m4s"];
        for f in files {
            srv.get(&format!("{}/{f}", media(&kid_tok, &kids))).send().await.expect_status_ok();
        }

        // No token at all.
        for path in [format!("/media/{kids}/master.m3u8"), format!("/media//{kids}/master.m3u8"), format!("/media/{kids}/720p/seg_000.m4s")] {
            let res = srv.raw("GET", &path, &[]).await;
            assert!(matches!(res.status, 403 | 404), "{path} -> {}", res.status);
            assert!(!res.text.contains("#EXTM3U"));
        }
        let (kid_body, kid_sig) = split_token(&kid_tok);
        let (teen_body, teen_sig) = split_token(&teen_tok);
        // One character of the signature changed.
        let mut chars: Vec<char> = kid_sig.chars().collect();
        chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        // A payload raising the quality cap, with the old signature.
        let claims: PlaybackClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&kid_body).expect("b64")).expect("claims");
        assert_eq!(claims.tid, kids);
        let raised = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&PlaybackClaims { mh: 4320, ..claims.clone() }).expect("json"));
        let forged = [
            ("garbage", "not-a-token".to_string()),
            ("flipped signature", format!("{kid_body}.{flipped}")),
            ("raised cap", format!("{raised}.{kid_sig}")),
            ("no signature", format!("{kid_body}.")),
            ("payload only", kid_body.clone()),
            ("other key", TokenKey::generate().sign(&claims)),
        ];
        for (what, tok) in &forged {
            for f in files {
                let res = srv.get(&format!("{}/{f}", media(tok, &kids))).send().await;
                assert_eq!(res.status, 403, "{what} on {f}: {}", res.text());
                res.expect_error(403, "bad_token");
            }
        }
        // Payloads swapped between two real tokens.
        for (tok, title) in [(format!("{teen_body}.{kid_sig}"), &teen), (format!("{kid_body}.{teen_sig}"), &kids)] {
            for f in files {
                srv.get(&format!("{}/{f}", media(&tok, title))).send().await.expect_error(403, "bad_token");
            }
        }
        // A real token, for another title.
        for f in files {
            srv.get(&format!("{}/{f}", media(&kid_tok, &teen))).send().await.expect_error(403, "bad_token");
        }

        // Expired: signed with the real key, `exp` in the past.
        let key = reel_control::token_key(&srv.store).await.expect("token key");
        let expired = key.sign(&PlaybackClaims { exp: now_s() - 60, ..claims.clone() });
        for f in files {
            srv.get(&format!("{}/{f}", media(&expired, &kids))).send().await.expect_error(403, "token_expired");
        }
        // The same key with a future expiry works, so the key was right.
        let fresh = key.sign(&PlaybackClaims { exp: now_s() + 600, ..claims });
        srv.get(&format!("{}/master.m3u8", media(&fresh, &kids))).send().await.expect_status_ok();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_answer_range_requests_with_206() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let play = srv.play(&user, &user.profile_id, &srv.fx.kids_movie).await;
        let seg = format!("{}/720p/seg_000.m4s", media(&str_at(&play, "/token"), &srv.fx.kids_movie));
        let data = filler(SEGMENT_BYTES);

        let full = srv.get(&seg).send().await;
        assert_eq!(full.status, 200);
        assert_eq!(full.body, data);
        assert_eq!(full.header("content-type").as_deref(), Some("video/iso.segment"));
        assert!(full.header("cache-control").unwrap_or_default().contains("immutable"));

        let part = srv.get(&seg).header("range", "bytes=0-99").send().await;
        assert_eq!(part.status, 206, "{}", part.text());
        assert_eq!(part.header("content-range").as_deref(), Some(format!("bytes 0-99/{SEGMENT_BYTES}").as_str()));
        assert_eq!(part.body, data[..100]);

        let tail = srv.get(&seg).header("range", "bytes=4000-").send().await;
        assert_eq!(tail.status, 206);
        assert_eq!(tail.header("content-range").as_deref(), Some(format!("bytes 4000-4095/{SEGMENT_BYTES}").as_str()));
        assert_eq!(tail.body, data[4000..]);

        let past = srv.get(&seg).header("range", "bytes=99999-").send().await;
        assert_eq!(past.status, 416);
    });
}

// ---------------------------------------------------------------- kids

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kids_profiles_neither_see_nor_play_mature_titles() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("premium").await;
        let kid = add_profile(srv, &user, "Kiddo", true).await;
        let fx = srv.fx.clone();
        let t = user.token.as_str();
        let hidden = [&fx.mature_movie, &fx.series, &fx.teen_movie];

        // Home rows and search.
        let page = home(srv, t, &kid).await;
        assert_eq!(page["profile"]["kids"], true);
        let mut shown = Vec::new();
        for r in page["rows"].as_array().expect("rows") {
            for item in r["items"].as_array().expect("items") {
                let level = Maturity::parse(item["maturity"].as_str().expect("maturity")).expect("known rating").level();
                assert!(level <= reel_domain::KIDS_MAX_LEVEL, "kids row {} shows {item}", r["id"]);
                shown.push(str_at(item, "/id"));
            }
        }
        assert!(shown.contains(&fx.kids_movie), "{shown:?}");
        for h in hidden {
            assert!(!shown.contains(h), "kids home shows {h}");
        }
        assert_eq!(search(srv, t, &format!("profile={kid}")).await, vec![fx.kids_movie.clone()]);
        for q in ["night", "deep", "proof", "pilot"] {
            assert!(search(srv, t, &format!("profile={kid}&q={q}")).await.is_empty(), "kids search {q}");
        }
        assert!(search(srv, t, &format!("profile={kid}&genre=thriller")).await.is_empty());
        // The adult profile on the same account does see them.
        assert_eq!(search(srv, t, &format!("profile={}&q=night", user.profile_id)).await, vec![fx.mature_movie.clone()]);
        let adult_home = home(srv, t, &user.profile_id).await;
        assert!(ids(&row(&adult_home, "new").expect("new row")["items"]).contains(&fx.mature_movie));

        // Title pages and playback.
        let mut refused: Vec<&String> = hidden.to_vec();
        refused.extend(fx.episodes.iter());
        for id in &refused {
            srv.get(&format!("/api/v1/titles/{id}?profile={kid}")).auth(t).send().await.expect_error(403, "maturity");
            srv.post("/api/v1/playback")
                .auth(t)
                .json(&json!({"profile_id": kid, "title_id": id}))
                .send()
                .await
                .expect_error(403, "maturity");
        }
        let me = srv.get("/api/v1/me").auth(t).send().await.expect_status(200);
        assert_eq!(me["active_streams"], 0, "refused playback opened no stream");
        let page = srv.get(&format!("/api/v1/titles/{}?profile={kid}", fx.kids_movie)).auth(t).send().await.expect_status(200);
        assert_eq!(page["id"], fx.kids_movie.as_str());
        let play = srv.play(&user, &kid, &fx.kids_movie).await;
        assert_eq!(play["title"]["id"], fx.kids_movie.as_str());

        // The series' rating governs its episodes, even one rated lower.
        let gentle = add_title(
            &srv.store,
            &srv.origin(),
            "fx-deep-water-s1e3",
            TitleKind::Episode,
            Some((&fx.series, 3)),
            "Calm Seas",
            Maturity::TvY7,
            &[],
            reel_domain::now_ms(),
        )
        .await;
        srv.get(&format!("/api/v1/titles/{gentle}?profile={kid}")).auth(t).send().await.expect_error(403, "maturity");
        srv.post("/api/v1/playback")
            .auth(t)
            .json(&json!({"profile_id": kid, "title_id": gentle}))
            .send()
            .await
            .expect_error(403, "maturity");
    });
}

// ---------------------------------------------------------------- heartbeats and history

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_feed_continue_watching_and_resume() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("premium").await;
        let (t, p) = (user.token.as_str(), user.profile_id.as_str());
        let fx = srv.fx.clone();

        let movie = srv.play(&user, p, &fx.teen_movie).await;
        assert_eq!(movie["start_position_s"], 0.0);
        let movie_stream = str_at(&movie, "/id");
        let hb = heartbeat(srv, t, &movie_stream, json!(12.5)).await.expect_status(200);
        assert_eq!(hb["position_s"], 12.5);
        let page = home(srv, t, p).await;
        assert_eq!(page["rows"][0]["id"], "continue-watching", "continue watching comes first");
        let first = &page["rows"][0]["items"][0];
        assert_eq!(first["id"], fx.teen_movie.as_str());
        assert_eq!(first["progress"]["position_s"], 12.5);
        assert_eq!(first["progress"]["episode_id"], Value::Null);
        let title = srv.get(&format!("/api/v1/titles/{}?profile={p}", fx.teen_movie)).auth(t).send().await.expect_status(200);
        assert_eq!(title["progress"]["position_s"], 12.5);

        // A series plays its first episode; episodes show as the series, once.
        let ep1 = srv.play(&user, p, &fx.series).await;
        assert_eq!(ep1["title"]["id"], fx.episodes[0].as_str());
        assert_eq!(ep1["title"]["series_id"], fx.series.as_str());
        heartbeat(srv, t, &str_at(&ep1, "/id"), json!(30.0)).await.expect_status(200);
        stop(srv, t, &str_at(&ep1, "/id")).await.expect_status(200);
        let ep2 = srv.play(&user, p, &fx.episodes[1]).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        heartbeat(srv, t, &str_at(&ep2, "/id"), json!(40.0)).await.expect_status(200);
        let page = home(srv, t, p).await;
        let cw = row(&page, "continue-watching").expect("continue watching row");
        assert_eq!(ids(&cw["items"]), vec![fx.series.clone(), fx.teen_movie.clone()]);
        assert_eq!(cw["items"][0]["progress"]["episode_id"], fx.episodes[1].as_str());
        assert_eq!(cw["items"][0]["progress"]["position_s"], 40.0);
        let series = srv.get(&format!("/api/v1/titles/{}?profile={p}", fx.series)).auth(t).send().await.expect_status(200);
        assert_eq!(series["progress"]["episode_id"], fx.episodes[1].as_str());

        // Playing again resumes where each left off.
        stop(srv, t, &movie_stream).await.expect_status(200);
        stop(srv, t, &str_at(&ep2, "/id")).await.expect_status(200);
        let again = srv.play(&user, p, &fx.teen_movie).await;
        assert_eq!(again["start_position_s"], 12.5);
        let again = srv.play(&user, p, &fx.series).await;
        assert_eq!(again["title"]["id"], fx.episodes[1].as_str());
        assert_eq!(again["start_position_s"], 40.0);

        // History is per profile.
        let other = add_profile(srv, &user, "Other", false).await;
        let page = home(srv, t, &other).await;
        assert!(row(&page, "continue-watching").is_none());
        assert_eq!(srv.play(&user, &other, &fx.teen_movie).await["start_position_s"], 0.0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_positions_are_validated_and_stopped_streams_are_gone() {
    on_each_backend!(|srv| {
        let user = srv.sign_up("basic").await;
        let t = user.token.as_str();
        let play = srv.play(&user, &user.profile_id, &srv.fx.kids_movie).await;
        let id = str_at(&play, "/id");
        let beat = format!("/api/v1/playback/{id}/heartbeat");
        heartbeat(srv, t, &id, json!(5)).await.expect_status(200);

        for bad in [json!(-1.0), json!(-0.001), json!(1e12), json!(86_400.5), json!("NaN"), json!("12"), json!(null), json!([1])] {
            heartbeat(srv, t, &id, bad).await.expect_error(422, "validation");
        }
        srv.post(&beat).auth(t).json(&json!({})).send().await.expect_error(422, "validation");
        srv.post(&beat).auth(t).json(&json!({"position_s": 6, "paused": true})).send().await.expect_error(422, "validation");
        for raw in [r#"{"position_s": NaN}"#, r#"{"position_s": Infinity}"#, r#"{"position_s": -Infinity}"#] {
            srv.post(&beat).auth(t).header("content-type", "application/json").body(raw).send().await.expect_error(400, "malformed_json");
        }
        let res = srv.post(&beat).auth(t).header("content-type", "application/json").body(r#"{"position_s": 1e400}"#).send().await;
        res.expect_client_error();
        heartbeat(srv, t, "str_doesnotexist00000000", json!(1.0)).await.expect_error(404, "not_found");
        srv.post(&format!("/api/v1/playback/{id}/stop"))
            .auth(t)
            .json(&json!({"position_s": -5}))
            .send()
            .await
            .expect_error(422, "validation");

        // None of that moved the saved position.
        let page = srv
            .get(&format!("/api/v1/titles/{}?profile={}", srv.fx.kids_movie, user.profile_id))
            .auth(t)
            .send()
            .await
            .expect_status(200);
        assert_eq!(page["progress"]["position_s"], 5.0);

        let stopped = srv
            .post(&format!("/api/v1/playback/{id}/stop"))
            .auth(t)
            .json(&json!({"position_s": 20}))
            .send()
            .await
            .expect_status(200);
        assert_eq!(stopped["position_s"], 20.0);
        heartbeat(srv, t, &id, json!(21.0)).await.expect_error(410, "stream_ended");
        // Stopping twice is harmless.
        stop(srv, t, &id).await.expect_status(200);
        let page = srv
            .get(&format!("/api/v1/titles/{}?profile={}", srv.fx.kids_movie, user.profile_id))
            .auth(t)
            .send()
            .await
            .expect_status(200);
        assert_eq!(page["progress"]["position_s"], 20.0);
    });
}

// ---------------------------------------------------------------- admin

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_edit_the_catalog_and_edits_show_up_in_search() {
    on_each_backend!(|srv| {
        let viewer = srv.sign_up("basic").await;
        let new_title = json!({"kind": "movie", "name": "Brand New Film", "year": 2025, "maturity": "PG",
                               "genres": ["Drama"], "duration_s": 95.5, "synopsis": "Fresh."});
        srv.post("/api/v1/admin/titles").auth(&viewer.token).json(&new_title).send().await.expect_error(403, "forbidden");
        srv.post("/api/v1/admin/titles").json(&new_title).send().await.expect_error(401, "unauthenticated");
        srv.patch(&format!("/api/v1/admin/titles/{}", srv.fx.kids_movie))
            .auth(&viewer.token)
            .json(&json!({"name": "Hacked"}))
            .send()
            .await
            .expect_error(403, "forbidden");
        srv.delete(&format!("/api/v1/admin/titles/{}", srv.fx.kids_movie)).auth(&viewer.token).send().await.expect_error(403, "forbidden");
        srv.post("/api/v1/admin/genres").auth(&viewer.token).json(&json!({"name": "Horror"})).send().await.expect_error(403, "forbidden");
        assert_eq!(srv.store.title_count().await.expect("count"), srv.fx.all.len() as i64);

        let admin = srv.admin().await;
        let a = admin.token.as_str();
        let card = srv.post("/api/v1/admin/titles").auth(a).json(&new_title).send().await.expect_status(201);
        let id = str_at(&card, "/id");
        assert_eq!(card["name"], "Brand New Film");
        assert_eq!(card["genres"], json!(["drama"]));
        assert_eq!(card["maturity"], "PG");

        let edited = srv
            .patch(&format!("/api/v1/admin/titles/{id}"))
            .auth(a)
            .json(&json!({"name": "Renamed Film", "genres": ["thriller", "Comedy"]}))
            .send()
            .await
            .expect_status(200);
        assert_eq!(edited["name"], "Renamed Film");
        assert_eq!(edited["genres"], json!(["comedy", "thriller"]));

        // Bad input is refused and changes nothing.
        for bad in [
            json!({"kind": "movie", "name": "X", "year": 2025, "maturity": "PG", "genres": ["no-such-genre"]}),
            json!({"kind": "movie", "name": "X", "year": 2025, "maturity": "XXX"}),
            json!({"kind": "movie", "name": "X", "year": 1500, "maturity": "PG"}),
            json!({"kind": "podcast", "name": "X", "year": 2025, "maturity": "PG"}),
            json!({"kind": "movie", "name": "", "year": 2025, "maturity": "PG"}),
            json!({"kind": "movie", "name": "X", "year": 2025, "maturity": "PG", "duration_s": -1}),
        ] {
            srv.post("/api/v1/admin/titles").auth(a).json(&bad).send().await.expect_error(422, "validation");
        }
        for bad in [json!({"genres": ["no-such-genre"]}), json!({"maturity": "R18"}), json!({"name": "  "}), json!({"year": 3000})] {
            srv.patch(&format!("/api/v1/admin/titles/{id}")).auth(a).json(&bad).send().await.expect_error(422, "validation");
        }
        srv.patch("/api/v1/admin/titles/ttl_nosuchtitle").auth(a).json(&json!({"name": "Y"})).send().await.expect_error(404, "not_found");
        let page = srv.get(&format!("/api/v1/titles/{id}")).auth(a).send().await.expect_status(200);
        assert_eq!((page["name"].as_str(), page["maturity"].as_str(), page["year"].as_i64()), (Some("Renamed Film"), Some("PG"), Some(2025)));
        assert_eq!(page["genres"], json!(["comedy", "thriller"]));
        assert_eq!(srv.store.title_count().await.expect("count"), srv.fx.all.len() as i64 + 1);

        // Everyone finds it under its new name and genres, not the old ones.
        for token in [a, viewer.token.as_str()] {
            assert_eq!(search(srv, token, "q=renamed").await, vec![id.clone()]);
            assert!(search(srv, token, "q=brand").await.is_empty());
            assert!(search(srv, token, "genre=thriller").await.contains(&id));
            assert!(!search(srv, token, "genre=drama").await.contains(&id));
        }

        // A new genre can be added, then used.
        let genre = srv.post("/api/v1/admin/genres").auth(a).json(&json!({"name": "Sci-Fi & Fantasy"})).send().await.expect_status(201);
        assert_eq!(genre["slug"], "sci-fi-fantasy");
        srv.patch(&format!("/api/v1/admin/titles/{id}"))
            .auth(a)
            .json(&json!({"genres": ["sci-fi-fantasy"]}))
            .send()
            .await
            .expect_status(200);
        assert_eq!(search(srv, &viewer.token, "genre=sci-fi-fantasy").await, vec![id.clone()]);
    });
}

// ---------------------------------------------------------------- several nodes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_store_act_as_one_service() {
    on_each_backend!(|srv| {
        let b = srv.second_node().await;
        let a: &Node = srv;
        let user = a.sign_up("basic").await;
        // Sessions made on one node work on the other, both ways.
        let me = b.get("/api/v1/me").auth(&user.token).send().await.expect_status(200);
        assert_eq!(me["account"]["id"], user.account_id.as_str());
        let on_b = b
            .post("/api/v1/sessions")
            .json(&json!({"email": user.email, "password": PASSWORD}))
            .send()
            .await
            .expect_status(200);
        a.get("/api/v1/me").auth(&str_at(&on_b, "/token")).send().await.expect_status(200);

        // The plan's stream count is shared.
        let play = a.play(&user, &user.profile_id, &srv.fx.kids_movie).await;
        let stream = str_at(&play, "/id");
        b.post("/api/v1/playback")
            .auth(&user.token)
            .json(&json!({"profile_id": user.profile_id, "title_id": srv.fx.teen_movie}))
            .send()
            .await
            .expect_error(409, "stream_limit");
        // Heartbeats go to whichever node.
        heartbeat(&b, &user.token, &stream, json!(7.0)).await.expect_status(200);
        // A's playback token opens media on B.
        let hls = str_at(&play, "/manifests/hls");
        let master = b.get(&hls).send().await;
        master.expect_status(200);
        assert!(master.text().contains("720p/index.m3u8"));
        let seg = b.get(&format!("{}720p/seg_000.m4s", hls.trim_end_matches("master.m3u8"))).send().await;
        assert_eq!(seg.status, 200);
        assert_eq!(seg.body.len(), SEGMENT_BYTES);
        b.get(&format!("{}1080p/seg_000.m4s", hls.trim_end_matches("master.m3u8"))).send().await.expect_error(403, "quality_cap");

        // Stop on B frees the slot for a stream started on B, beating on A.
        stop(&b, &user.token, &stream).await.expect_status(200);
        let play2 = b.play(&user, &user.profile_id, &srv.fx.teen_movie).await;
        heartbeat(a, &user.token, &str_at(&play2, "/id"), json!(3.0)).await.expect_status(200);
        a.get(&str_at(&play2, "/manifests/hls")).send().await.expect_status_ok();
        let page = home(a, &user.token, &user.profile_id).await;
        let cw = row(&page, "continue-watching").expect("continue watching");
        assert_eq!(ids(&cw["items"]), vec![srv.fx.teen_movie.clone(), srv.fx.kids_movie.clone()]);
        b.stop().await;
    });
}

// ---------------------------------------------------------------- contract

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_contract_route_and_healthz_answers() {
    on_each_backend!(|srv| {
        let res = srv.get("/api/openapi.json").send().await;
        let doc = res.expect_status(200);
        assert!(res.header("content-type").unwrap_or_default().starts_with("application/json"));
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        let paths = doc["paths"].as_object().expect("paths");
        for (path, method) in [
            ("/api/v1/accounts", "post"),
            ("/api/v1/sessions", "post"),
            ("/api/v1/profiles", "get"),
            ("/api/v1/profiles", "post"),
            ("/api/v1/home", "get"),
            ("/api/v1/titles/{id}", "get"),
            ("/api/v1/search", "get"),
            ("/api/v1/playback", "post"),
            ("/api/v1/playback/{id}/heartbeat", "post"),
        ] {
            assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "openapi lacks {method} {path}");
        }
        let health = srv.get("/healthz").send().await.expect_status(200);
        assert_eq!(health["status"], "ok");
    });
}
