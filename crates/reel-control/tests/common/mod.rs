//! Harness for the control plane's HTTP tests: a real server on a real port,
//! over a fresh database, with a small fixture catalog.
//!
//! Every scenario runs once per available backend: SQLite always, and
//! PostgreSQL when `REEL_TEST_POSTGRES_URL` names a server whose user may
//! create databases (each test gets its own `reel_t_<random>` database,
//! dropped afterwards). With `CI=true` the PostgreSQL URL is required.

#![allow(dead_code, clippy::unwrap_used)]

use reel_control::{AppState, Config};
use reel_domain::{Maturity, Role, TitleKind};
use reel_store::{NewTitle, Rendition, Store};
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Written outside the origin directory; no response may ever contain it.
pub const SECRET_MARKER: &str = "REEL-SECRET-OUTSIDE-ORIGIN-7f3a9c";
pub const PASSWORD: &str = "correct horse battery staple";
/// Size of every fixture segment, in bytes.
pub const SEGMENT_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run covers.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    match postgres_admin_url() {
        Some(_) => out.push(Backend::Postgres),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but REEL_TEST_POSTGRES_URL is not set: CI must run these tests on PostgreSQL too")
        }
        None => {}
    }
    out
}

fn postgres_admin_url() -> Option<String> {
    std::env::var("REEL_TEST_POSTGRES_URL").ok().filter(|s| !s.trim().is_empty())
}

/// `url` with its database name replaced by `db` (query string kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).expect("database URL has a scheme");
    let path_start = base[authority_start..].find('/').map(|i| i + authority_start).unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin_exec(admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::{ConnectOptions, Connection, Executor};
    let opts: sqlx::postgres::PgConnectOptions = admin_url.parse()?;
    let mut conn = opts.connect().await?;
    conn.execute(sql).await?;
    conn.close().await?;
    Ok(())
}

/// A fresh database (plus a data directory holding the origin) for one test.
pub struct TestDb {
    pub backend: Backend,
    /// `<dir>/data` (SQLite), `<dir>/origin`, `<dir>/secret.txt`.
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>, // (admin URL, database name)
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("origin")).expect("origin dir");
        std::fs::write(dir.path().join("secret.txt"), SECRET_MARKER).expect("secret file");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let admin = postgres_admin_url().expect("REEL_TEST_POSTGRES_URL");
                let name = format!("reel_t_{}", reel_domain::new_id("db").trim_start_matches("db_"));
                let mut tries = 0;
                loop {
                    match admin_exec(&admin, &format!("CREATE DATABASE {name}")).await {
                        Ok(()) => break,
                        Err(e) if tries < 5 => {
                            tries += 1;
                            eprintln!("CREATE DATABASE {name} failed ({e}); retrying");
                            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                        }
                        Err(e) => panic!("cannot create test database {name} via REEL_TEST_POSTGRES_URL: {e}"),
                    }
                }
                Some((admin, name))
            }
        };
        TestDb { backend, dir, pg }
    }

    /// A new store handle (its own connection pool) on this database.
    pub async fn open_store(&self) -> Store {
        match &self.pg {
            Some((admin, name)) => Store::open(&with_database(admin, name)).await.expect("open PostgreSQL store"),
            None => Store::open_in_dir(&self.dir.path().join("data")).await.expect("open SQLite store"),
        }
    }

    pub fn origin(&self) -> PathBuf {
        self.dir.path().join("origin")
    }

    /// Drops the PostgreSQL database, best effort.
    pub async fn destroy(self) {
        if let Some((admin, name)) = &self.pg {
            if let Err(e) = admin_exec(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        }
    }
}

/// Per-test tweaks to the node's [`Config`].
#[derive(Clone, Default)]
pub struct Options {
    pub stream_stale_after: Option<Duration>,
}

/// One control-plane node serving on 127.0.0.1:<random port>.
pub struct Node {
    pub base: String,
    pub store: Store,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Node {
    pub async fn start(db: &TestDb, opts: &Options) -> Node {
        let store = db.open_store().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let mut config = Config::new(db.origin());
        config.public_url = base.clone();
        if let Some(stale) = opts.stream_stale_after {
            config.stream_stale_after = stale;
        }
        let state = AppState::new(store.clone(), config).await.expect("app state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(reel_control::serve(listener, state, async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Node { base, store, client, shutdown: Some(tx), task: Some(task) }
    }

    /// Stops serving (finishing in-flight requests) and closes the store.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        drop(std::mem::replace(&mut self.client, reqwest::Client::new()));
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("server failed: {e}"),
                Ok(Err(e)) => panic!("server task failed: {e}"),
                Err(_) => eprintln!("warning: server did not shut down within 5 s"),
            }
        }
        self.store.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn call(&self, method: reqwest::Method, path: &str) -> Call {
        Call { rb: self.client.request(method, self.url(path)) }
    }
    pub fn get(&self, path: &str) -> Call {
        self.call(reqwest::Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Call {
        self.call(reqwest::Method::POST, path)
    }
    pub fn patch(&self, path: &str) -> Call {
        self.call(reqwest::Method::PATCH, path)
    }
    pub fn delete(&self, path: &str) -> Call {
        self.call(reqwest::Method::DELETE, path)
    }

    /// Signs up a fresh account on `plan`; its first profile is `profile_id`.
    pub async fn sign_up(&self, plan: &str) -> User {
        static N: AtomicUsize = AtomicUsize::new(0);
        let email = format!("viewer{}-{plan}@example.com", N.fetch_add(1, Ordering::Relaxed));
        let body = self
            .post("/api/v1/accounts")
            .json(&json!({"email": email, "password": PASSWORD, "plan": plan}))
            .send()
            .await
            .expect_status(201);
        User {
            email,
            token: str_at(&body, "/token"),
            account_id: str_at(&body, "/account/id"),
            profile_id: str_at(&body, "/profiles/0/id"),
        }
    }

    /// Starts playback; returns the response body (asserting 201).
    pub async fn play(&self, user: &User, profile_id: &str, title_id: &str) -> Value {
        self.post("/api/v1/playback")
            .auth(&user.token)
            .json(&json!({"profile_id": profile_id, "title_id": title_id}))
            .send()
            .await
            .expect_status(201)
    }

    /// Sends a request with `target` written byte for byte into the request
    /// line, so paths reach the server without client-side normalisation
    /// (reqwest would resolve `..` and `%2e%2e` segments itself).
    pub async fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> RawResp {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.expect("write request");
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
            .await
            .expect("raw response within 10 s")
            .expect("read response");
        let text = String::from_utf8_lossy(&buf).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in raw response to {target}: {text:?}"));
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        RawResp { status, text, body }
    }
}

/// A whole raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    /// Status line, headers and body.
    pub text: String,
    pub body: String,
}

/// A request being built (thin wrapper over reqwest).
pub struct Call {
    rb: reqwest::RequestBuilder,
}

impl Call {
    pub fn auth(self, token: &str) -> Call {
        Call { rb: self.rb.bearer_auth(token) }
    }
    pub fn json(self, body: &Value) -> Call {
        Call { rb: self.rb.json(body) }
    }
    pub fn header(self, name: &str, value: &str) -> Call {
        Call { rb: self.rb.header(name, value) }
    }
    /// A body sent as-is (no Content-Type unless set with [`Call::header`]).
    pub fn body(self, body: impl Into<reqwest::Body>) -> Call {
        Call { rb: self.rb.body(body) }
    }
    pub async fn send(self) -> Resp {
        let res = self.rb.send().await.expect("HTTP request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("response body").to_vec();
        Resp { status, headers, body }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response ({}) is not JSON ({e}): {}", self.status, self.text()))
    }

    /// Asserts the status and returns the JSON body (`null` when empty or
    /// not JSON).
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        let is_json = self.header("content-type").is_some_and(|ct| ct.starts_with("application/json"));
        if self.body.is_empty() || !is_json {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts a 200.
    #[track_caller]
    pub fn expect_status_ok(&self) {
        assert_eq!(self.status, 200, "unexpected status; body: {}", self.text());
    }

    /// Asserts the status and the error shape `{"error": {"code", "message"}}`
    /// with this code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        let body = self.error_body();
        assert_eq!(body["error"]["code"], code, "unexpected error code in {body}");
        body
    }

    /// Asserts a 4xx answer in the error shape (any code) and returns it.
    #[track_caller]
    pub fn expect_client_error(&self) -> Value {
        assert!((400..500).contains(&self.status), "expected a 4xx, got {}: {}", self.status, self.text());
        self.error_body()
    }

    #[track_caller]
    fn error_body(&self) -> Value {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "error content type is {ct:?}: {}", self.text());
        let body = self.json();
        let obj = body.as_object().expect("error body is an object");
        assert_eq!(obj.len(), 1, "error body has only `error`: {body}");
        let err = body["error"].as_object().expect("`error` is an object");
        assert!(err["code"].as_str().is_some_and(|c| !c.is_empty()), "error.code is a string: {body}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message is a string: {body}");
        body
    }
}

/// A string at a JSON pointer, or a panic naming it.
#[track_caller]
pub fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
        .to_string()
}

/// A signed-up account and its session.
#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub token: String,
    pub account_id: String,
    pub profile_id: String,
}

/// Ids of the fixture catalog.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// "Paper Boats", TV-Y, animation + comedy.
    pub kids_movie: String,
    /// "Night Shift", R, thriller + drama.
    pub mature_movie: String,
    /// "100% Proof", PG-13, comedy (its name has a literal `%`).
    pub teen_movie: String,
    /// "Deep Water", TV-MA series, drama + thriller.
    pub series: String,
    /// The series' two episodes (TV-MA), S1E1 and S1E2.
    pub episodes: Vec<String>,
    /// Every title (movies, the series and its episodes).
    pub all: Vec<String>,
}

pub const GENRES: [(&str, &str); 4] =
    [("animation", "Animation"), ("comedy", "Comedy"), ("drama", "Drama"), ("thriller", "Thriller")];

pub fn renditions() -> Vec<Rendition> {
    [("1080p", 1920, 1080, 5_000_000), ("720p", 1280, 720, 2_500_000), ("360p", 640, 360, 700_000)]
        .into_iter()
        .map(|(name, width, height, bandwidth)| Rendition {
            name: name.to_string(),
            width,
            height,
            bandwidth,
            average_bandwidth: bandwidth * 4 / 5,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            playlist: format!("{name}/index.m3u8"),
        })
        .collect()
}

/// Placeholder media for a playable title: a tiny playlist, an init segment
/// and one media segment per rendition.
pub fn write_media(origin: &std::path::Path, title_id: &str) {
    for r in renditions() {
        let dir = origin.join(title_id).join(&r.name);
        std::fs::create_dir_all(&dir).expect("rendition dir");
        std::fs::write(
            dir.join("index.m3u8"),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000,\nseg_000.m4s\n#EXT-X-ENDLIST\n",
        )
        .expect("playlist");
        std::fs::write(dir.join("init.mp4"), filler(1500)).expect("init segment");
        std::fs::write(dir.join("seg_000.m4s"), filler(SEGMENT_BYTES)).expect("segment");
    }
}

/// Deterministic bytes, so ranges can be checked.
pub fn filler(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Adds a title through the store; a playable one also gets renditions and media files.
#[allow(clippy::too_many_arguments)]
pub async fn add_title(
    store: &Store,
    origin: &std::path::Path,
    id: &str,
    kind: TitleKind,
    parent: Option<(&str, i64)>,
    name: &str,
    maturity: Maturity,
    genres: &[&str],
    created_ms: i64,
) -> String {
    store
        .create_title(NewTitle {
            id: Some(id.to_string()),
            kind,
            parent_id: parent.map(|p| p.0.to_string()),
            season_number: parent.map(|_| 1),
            episode_number: parent.map(|p| p.1),
            name: name.to_string(),
            synopsis: format!("{name}: a fixture title."),
            year: 2024,
            maturity,
            duration_s: if kind == TitleKind::Series { 0.0 } else { 600.0 },
            genres: genres.iter().map(|g| g.to_string()).collect(),
            artwork: reel_control::demo::artwork_styles(name),
            created_ms: Some(created_ms),
        })
        .await
        .expect("create fixture title");
    if kind != TitleKind::Series {
        store.set_renditions(id, &renditions()).await.expect("set renditions");
        write_media(origin, id);
    }
    id.to_string()
}

async fn load_fixture(store: &Store, origin: &std::path::Path) -> Fixture {
    for (slug, name) in GENRES {
        store.upsert_genre(slug, name).await.expect("genre");
    }
    let t0 = reel_domain::now_ms() - 3_600_000;
    let kids_movie = add_title(
        store, origin, "fx-paper-boats", TitleKind::Movie, None, "Paper Boats", Maturity::TvY,
        &["animation", "comedy"], t0 + 5_000,
    )
    .await;
    let mature_movie = add_title(
        store, origin, "fx-night-shift", TitleKind::Movie, None, "Night Shift", Maturity::R,
        &["thriller", "drama"], t0 + 4_000,
    )
    .await;
    let teen_movie = add_title(
        store, origin, "fx-hundred-proof", TitleKind::Movie, None, "100% Proof", Maturity::Pg13,
        &["comedy"], t0 + 3_000,
    )
    .await;
    let series = add_title(
        store, origin, "fx-deep-water", TitleKind::Series, None, "Deep Water", Maturity::TvMa,
        &["drama", "thriller"], t0 + 2_000,
    )
    .await;
    let mut episodes = Vec::new();
    for (n, name) in [(1, "Pilot"), (2, "Undertow")] {
        let id = format!("fx-deep-water-s1e{n}");
        episodes.push(
            add_title(store, origin, &id, TitleKind::Episode, Some((&series, n)), name, Maturity::TvMa, &[], t0 + 2_000)
                .await,
        );
    }
    let mut all = vec![kids_movie.clone(), mature_movie.clone(), teen_movie.clone(), series.clone()];
    all.extend(episodes.iter().cloned());
    Fixture { kids_movie, mature_movie, teen_movie, series, episodes, all }
}

/// A node over a fresh database with the fixture catalog; derefs to [`Node`].
pub struct TestServer {
    pub backend: Backend,
    pub db: TestDb,
    pub node: Node,
    pub fx: Fixture,
    opts: Options,
}

impl std::ops::Deref for TestServer {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

impl TestServer {
    pub async fn start(backend: Backend, opts: &Options) -> TestServer {
        let db = TestDb::create(backend).await;
        let node = Node::start(&db, opts).await;
        let fx = load_fixture(&node.store, &db.origin()).await;
        TestServer { backend, db, node, fx, opts: opts.clone() }
    }

    /// Another node: its own store handle on the same database, its own port.
    pub async fn second_node(&self) -> Node {
        Node::start(&self.db, &self.opts).await
    }

    pub fn origin(&self) -> PathBuf {
        self.db.origin()
    }

    /// Signs up an account and makes it an admin.
    pub async fn admin(&self) -> User {
        let user = self.sign_up("premium").await;
        self.store.set_role(&user.email, Role::Admin).await.expect("set admin role");
        user
    }

    pub async fn finish(self) {
        self.node.stop().await;
        self.db.destroy().await;
    }
}

/// Runs `scenario` on a fresh [`TestServer`] for each backend, cleaning up
/// even when it panics (the panic is then re-raised, naming the backend).
pub async fn run<F, Fut>(opts: Options, scenario: F)
where
    F: Fn(Arc<TestServer>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let test = std::thread::current().name().unwrap_or("test").to_string();
    for backend in backends() {
        let srv = Arc::new(TestServer::start(backend, &opts).await);
        let outcome = tokio::spawn(scenario(srv.clone())).await;
        match Arc::try_unwrap(srv) {
            Ok(srv) => srv.finish().await,
            Err(_) => eprintln!("warning: {test}: server still shared after the scenario; not cleaned up"),
        }
        if let Err(e) = outcome {
            eprintln!("{test} FAILED on {backend:?}");
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("{test} on {backend:?}: {e}");
        }
    }
}
