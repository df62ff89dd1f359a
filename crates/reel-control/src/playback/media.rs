//! The origin: manifests and segments for holders of a valid playback token.
//!
//! Paths are checked piece by piece (ids, rendition names, file names) before
//! any file is opened, so nothing outside the origin directory is reachable.
//! The master playlist is written per token: it lists only the renditions the
//! viewer's plan allows, and segment requests above the cap are refused too.

use crate::error::{check_id, ApiError, ApiResult, Path};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use reel_domain::{is_media_name, media_content_type, rendition_height, PlaybackClaims, TokenError};
use tower::ServiceExt;

pub fn media_routes() -> Router<AppState> {
    Router::new()
        .route("/media/{token}/{title}/master.m3u8", get(master))
        .route("/media/{token}/{title}/manifest.mpd", get(dash_manifest))
        .route("/media/{token}/{title}/{rendition}/{file}", get(file))
}

fn check_token(state: &AppState, token: &str, title: &str) -> ApiResult<PlaybackClaims> {
    state.token_key.verify_for_title(token, title, reel_domain::now_ms() / 1000).map_err(|e| match e {
        TokenError::Expired => ApiError::new(StatusCode::FORBIDDEN, "token_expired", "the playback token has expired; start playback again"),
        e => ApiError::new(StatusCode::FORBIDDEN, "bad_token", format!("{e}")),
    })
}

async fn master(State(state): State<AppState>, Path((token, title)): Path<(String, String)>) -> ApiResult<Response> {
    check_id(&title, "title")?;
    let claims = check_token(&state, &token, &title)?;
    let renditions = state.store.renditions(&title).await?;
    let mut m3u8 = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut any = false;
    for r in renditions.iter().filter(|r| r.height as u32 <= claims.mh) {
        any = true;
        m3u8.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\"\n{}\n",
            r.bandwidth, r.average_bandwidth, r.width, r.height, r.codecs, r.playlist
        ));
    }
    if !any {
        return Err(ApiError::not_found("media"));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl"), (header::CACHE_CONTROL, "private, no-cache")],
        m3u8,
    )
        .into_response())
}

/// The DASH manifest over the same CMAF segments as the HLS playlists,
/// limited (like the master playlist) to what the viewer's plan allows.
async fn dash_manifest(State(state): State<AppState>, Path((token, title)): Path<(String, String)>) -> ApiResult<Response> {
    check_id(&title, "title")?;
    let claims = check_token(&state, &token, &title)?;
    let renditions: Vec<reel_media::dash::DashRendition> = state
        .store
        .renditions(&title)
        .await?
        .into_iter()
        .filter(|r| r.height as u32 <= claims.mh)
        .map(|r| reel_media::dash::DashRendition {
            name: r.name,
            width: r.width as u32,
            height: r.height as u32,
            bandwidth: r.bandwidth as u64,
            codecs: r.codecs,
            playlist: r.playlist,
        })
        .collect();
    if renditions.is_empty() {
        return Err(ApiError::not_found("media"));
    }
    let dir = state.config.origin_dir.join(&title);
    let mpd = tokio::task::spawn_blocking(move || reel_media::dash::mpd(&dir, &renditions))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::warn!(message = "cannot describe the package as DASH", error = %e);
            ApiError::not_found("media")
        })?;
    Ok(([(header::CONTENT_TYPE, "application/dash+xml"), (header::CACHE_CONTROL, "private, no-cache")], mpd).into_response())
}

async fn file(
    State(state): State<AppState>,
    Path((token, title, rendition, file)): Path<(String, String, String, String)>,
    req: Request,
) -> ApiResult<Response> {
    check_id(&title, "title")?;
    let claims = check_token(&state, &token, &title)?;
    let height = rendition_height(&rendition).ok_or_else(|| ApiError::not_found("media"))?;
    if height > claims.mh {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "quality_cap", "your plan does not include this quality"));
    }
    let mime = media_content_type(&file).filter(|_| is_media_name(&file)).ok_or_else(|| ApiError::not_found("media"))?;
    let path = state.config.origin_dir.join(&title).join(&rendition).join(&file);
    let mut res = tower_http::services::ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|_| ApiError::internal())?
        .map(Body::new);
    if res.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::not_found("media"));
    }
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // Segments never change once packaged; playlists may be re-packaged.
    let cache = if file.ends_with(".m3u8") { "private, max-age=10" } else { "private, max-age=86400, immutable" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}
