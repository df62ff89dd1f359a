//! The web UI: three embedded files and the player library, served with the
//! SPA rule that any non-API path answers with `index.html`.

use crate::error::ApiError;
use crate::AppState;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));
const APP_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/app.js"));
const STYLE: &str = include_str!(concat!(env!("OUT_DIR"), "/style.css"));
const HLS_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/hls.min.js"));

/// Security headers for pages: no framing, no sniffing, scripts only from us.
const CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob: http: https:; \
                   connect-src 'self' http: https:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; \
                   frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/assets/hls.min.js", get(hls))
        .fallback(spa)
}

fn asset(mime: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn hls() -> Response {
    if HLS_JS.is_empty() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "hls.js was not installed when this binary was built: run `npm ci` in web/ and rebuild",
        )
        .into_response();
    }
    asset("text/javascript; charset=utf-8", HLS_JS)
}

async fn spa(uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/media/") || path.contains("..") {
        return ApiError::not_found("route").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        INDEX,
    )
        .into_response()
}
