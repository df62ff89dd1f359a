//! Reel's control plane: everything before Play, over HTTP.
//!
//! Accounts and profiles, the catalog, the home page, the playback decision,
//! the origin that serves packaged media to players holding a signed token,
//! and the web UI. Each area is a module that owns its routes; [`app`]
//! assembles them. State lives in [`reel_store`]; a node keeps nothing in
//! memory that another node would need, so any number of nodes can share one
//! PostgreSQL database behind a load balancer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = reel_store::Store::open_in_dir("/tmp/reel".as_ref()).await?;
//! let state = reel_control::AppState::new(store, reel_control::Config::new("/tmp/reel/origin".into())).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! reel_control::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod accounts;
mod artwork;
mod auth;
mod catalog;
pub mod demo;
mod error;
pub mod fleet;
mod home;
mod openapi;
mod playback;
pub mod recs;
mod telemetry;
pub mod ops;
pub mod alerts;
pub mod events;
mod web;

pub use auth::hash_password;
pub use catalog::{check_new_title, check_title_patch};
pub use error::ApiError;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use reel_domain::TokenKey;
use reel_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How a control-plane node behaves; everything here is per node and safe
/// to differ between nodes except what lives in the store.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where packaged media lives: `<origin_dir>/<title id>/<rendition>/...`.
    pub origin_dir: PathBuf,
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// A stream with no heartbeat for this long stops counting against the plan.
    pub stream_stale_after: Duration,
    /// Mark cookies `Secure` (set when served over TLS).
    pub secure_cookies: bool,
    /// Base URL viewers reach this node at, for the ranked delivery URLs.
    pub public_url: String,
    /// Failed sign-ins per email (and 4x that per client address) in the window.
    pub signin_max_failures: i64,
    pub signin_window: Duration,
}

impl Config {
    pub fn new(origin_dir: PathBuf) -> Self {
        Config {
            origin_dir,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            stream_stale_after: Duration::from_secs(90),
            secure_cookies: false,
            public_url: String::new(),
            signin_max_failures: 5,
            signin_window: Duration::from_secs(15 * 60),
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Signs playback tokens. Kept in the store so every node signs alike.
    pub token_key: TokenKey,
    /// The recommendation model being served, and personalization caches.
    pub recs: Arc<recs::Recs>,
    /// This node's metrics (exposed at `/metrics`).
    pub metrics: reel_metrics::Registry,
    /// This node's time-series store, when it keeps one (`reel serve`/`up` do).
    pub tsdb: Option<Arc<reel_tsdb::Tsdb>>,
}

impl AppState {
    pub async fn new(store: Store, config: Config) -> Result<Self, reel_store::StoreError> {
        let key = token_key(&store).await?;
        Ok(AppState { store, config: Arc::new(config), token_key: key, recs: Arc::new(recs::Recs::default()), metrics: reel_metrics::Registry::new(), tsdb: None })
    }
}

/// The playback-token key from the store, created on first use.
pub async fn token_key(store: &Store) -> Result<TokenKey, reel_store::StoreError> {
    use base64::Engine;
    let fresh = base64::engine::general_purpose::STANDARD.encode(TokenKey::generate().as_bytes());
    let stored = store.setting_or_init("playback_token_key", &fresh).await?;
    base64::engine::general_purpose::STANDARD
        .decode(stored)
        .ok()
        .and_then(TokenKey::new)
        .ok_or_else(|| reel_store::StoreError::Corrupt("playback_token_key".into()))
}

/// The whole control plane as one router (tests drive it without a socket).
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(accounts::routes())
        .merge(catalog::routes())
        .merge(home::routes())
        .merge(playback::routes())
        .merge(fleet::routes())
        .merge(ops::routes())
        .merge(alerts::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route") });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(telemetry::metrics))
        .route("/api/openapi.json", get(openapi::document))
        .nest("/api/v1", api)
        .merge(playback::media_routes())
        .merge(web::routes())
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), telemetry::record))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .with_state(state)
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::warn!(message = "health check failed", error = %e);
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is not reachable").into_response()
        }
    }
}

/// Serves the control plane on `listener` until `shutdown` resolves, then
/// finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
