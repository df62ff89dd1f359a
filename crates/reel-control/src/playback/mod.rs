//! The playback decision and the origin.
//!
//! `POST /playback` checks profile, maturity, the plan's stream count and
//! quality cap, opens a stream and returns a signed, expiring token with the
//! manifest URL. The token rides in the media path (`/media/<token>/...`), so
//! the player's relative segment URLs carry it, and any server holding the
//! signing key can check it without asking anyone.

mod media;

pub use media::media_routes;

use crate::auth::Caller;
use crate::catalog::{max_level, profile_of, rating_level};
use crate::error::{check_id, ApiError, ApiResult, Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use reel_domain::{PlaybackClaims, TitleKind};
use reel_store::{StoreError, StreamStart, Title};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/playback", post(start))
        .route("/playback/{id}/heartbeat", post(heartbeat))
        .route("/playback/{id}/stop", post(stop))
        .route("/playback/{id}/qoe", post(crate::telemetry::beacon))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybackRequest {
    profile_id: String,
    title_id: String,
}

/// Extra validity beyond the title's length, so pauses don't strand a viewer.
const TOKEN_SLACK_S: i64 = 4 * 3600;

/// For a series, the episode to play: the one in progress, else the one after
/// the last finished, else the first.
async fn next_episode(state: &AppState, profile_id: &str, series: &Title) -> ApiResult<Title> {
    let episodes = state.store.episodes(&series.id).await?;
    let ids: Vec<String> = episodes.iter().map(|e| e.id.clone()).collect();
    let progress = state.store.progress_for(profile_id, &ids).await?;
    let latest = progress.iter().max_by_key(|p| p.updated_ms);
    let pick = match latest {
        Some(p) if !p.completed => episodes.iter().position(|e| e.id == p.title_id),
        Some(p) => episodes.iter().position(|e| e.id == p.title_id).map(|i| (i + 1) % episodes.len().max(1)),
        None => Some(0),
    };
    pick.and_then(|i| episodes.get(i).cloned())
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "not_playable", "this series has no episodes yet"))
}

fn stale_before(state: &AppState, now_ms: i64) -> i64 {
    now_ms - state.config.stream_stale_after.as_millis() as i64
}

async fn start(
    State(state): State<AppState>,
    caller: Caller,
    crate::auth::ClientAddr(client): crate::auth::ClientAddr,
    Json(req): Json<PlaybackRequest>,
) -> ApiResult<Response> {
    let profile = profile_of(&state, &caller, &req.profile_id).await?;
    check_id(&req.title_id, "title")?;
    let requested = state.store.title(&req.title_id).await?.ok_or_else(|| ApiError::not_found("title"))?;
    let title = match requested.kind {
        TitleKind::Series => next_episode(&state, &profile.id, &requested).await?,
        _ => requested.clone(),
    };
    // The series' rating governs its episodes too, also when an episode is requested directly.
    if let Some(level) = max_level(Some(&profile)) {
        if requested.maturity.level().max(rating_level(&state, &title).await?) > level {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "maturity", "this title is not available on a kids profile"));
        }
    }
    let plan = caller.account.plan;
    let renditions: Vec<_> = state
        .store
        .renditions(&title.id)
        .await?
        .into_iter()
        .filter(|r| r.height as u32 <= plan.max_height())
        .collect();
    if renditions.is_empty() {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_playable", "this title has no video yet"));
    }
    let now = reel_domain::now_ms();
    let resume = state
        .store
        .progress_for(&profile.id, std::slice::from_ref(&title.id))
        .await?
        .into_iter()
        .find(|p| !p.completed)
        .map(|p| p.position_s)
        .unwrap_or(0.0);
    let origin = &state.config.public_url;
    let client = client.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let decision = crate::fleet::decide(&state.store, client, &title.id, origin).await?;
    let stream = match state
        .store
        .start_stream(StreamStart {
            account_id: &caller.account.id,
            profile_id: &profile.id,
            title_id: &title.id,
            max_height: plan.max_height(),
            max_streams: plan.max_streams(),
            stale_before_ms: stale_before(&state, now),
            position_s: resume,
            now_ms: now,
            region: decision.client_region.as_deref(),
        })
        .await
    {
        Ok(s) => s,
        Err(StoreError::Limit(_)) => {
            let n = plan.max_streams();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "stream_limit",
                format!(
                    "your {} plan allows {n} stream{} at once; stop another one or upgrade",
                    plan.display_name(),
                    if n == 1 { "" } else { "s" }
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    state.metrics.counter("playback_starts", &[("plan", plan.as_str()), ("region", decision.client_region.as_deref().unwrap_or("none"))]).increment();
    // A play rewards the artwork shown for this title in the last half hour.
    if let Err(e) = state.store.credit_play(&profile.id, &requested.id, now, 30 * 60 * 1000).await {
        tracing::warn!(message = "cannot credit the artwork impression", error = %e);
    }
    let exp_s = now / 1000 + title.duration_s.ceil() as i64 + TOKEN_SLACK_S;
    let token = state.token_key.sign(&PlaybackClaims {
        sid: stream.id.clone(),
        tid: title.id.clone(),
        mh: plan.max_height(),
        exp: exp_s,
    });
    let hls = format!("/media/{token}/{}/master.m3u8", title.id);
    let mpd = format!("/media/{token}/{}/manifest.mpd", title.id);
    let urls: Vec<serde_json::Value> = decision
        .places
        .iter()
        .map(|p| {
            json!({"url": p.url, "rank": p.rank, "kind": if p.appliance_id.is_some() { "appliance" } else { "origin" },
                   "appliance_id": p.appliance_id, "site_id": p.site_id, "hls": format!("{}{hls}", p.url),
                   "mpd": format!("{}{mpd}", p.url)})
        })
        .collect();
    // The best place's manifests; relative paths when that is this node.
    let (primary, primary_mpd) = match decision.places.first() {
        Some(p) if p.appliance_id.is_some() => (format!("{}{hls}", p.url), format!("{}{mpd}", p.url)),
        _ => (hls.clone(), mpd.clone()),
    };
    let body = json!({
        "id": stream.id,
        "token": token,
        "expires_at": exp_s,
        "start_position_s": resume,
        "title": {"id": title.id, "name": title.name, "duration_s": title.duration_s,
                  "series_id": title.parent_id, "season_number": title.season_number,
                  "episode_number": title.episode_number},
        // `mpd`: the DASH manifest over the same segments. (Keys print
        // sorted: HLS stays the first manifest.)
        "manifests": {"hls": primary, "mpd": primary_mpd},
        "urls": urls,
        "renditions": renditions.iter().map(|r| json!({"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth})).collect::<Vec<_>>(),
        "max_height": plan.max_height(),
        "heartbeat_interval_s": 5,
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Position {
    position_s: Option<f64>,
}

fn check_position(p: Option<f64>) -> ApiResult<Option<f64>> {
    match p {
        Some(v) if !v.is_finite() || !(0.0..=86_400.0).contains(&v) => {
            Err(ApiError::validation("position_s must be a number of seconds between 0 and 86400"))
        }
        other => Ok(other),
    }
}

async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Position>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id(&id, "stream")?;
    let position = check_position(req.position_s)?.ok_or_else(|| ApiError::validation("position_s is required"))?;
    let now = reel_domain::now_ms();
    let plan = caller.account.plan;
    match state
        .store
        .heartbeat(&caller.account.id, &id, position, plan.max_streams(), stale_before(&state, now), now)
        .await
    {
        Ok(s) => Ok(Json(json!({"id": s.id, "position_s": s.position_s, "ok": true}))),
        Err(StoreError::NotFound) => Err(ApiError::not_found("stream")),
        Err(StoreError::Conflict(_)) => Err(ApiError::new(StatusCode::GONE, "stream_ended", "this stream has ended; start playback again")),
        Err(StoreError::Limit(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "stream_limit",
            "this stream timed out and your plan's streams are in use elsewhere",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Position>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id(&id, "stream")?;
    let position = check_position(req.position_s)?;
    match state.store.stop_stream(&caller.account.id, &id, position, reel_domain::now_ms()).await {
        Ok(s) => Ok(Json(json!({"id": s.id, "position_s": s.position_s, "stopped": true}))),
        Err(StoreError::NotFound) => Err(ApiError::not_found("stream")),
        Err(e) => Err(e.into()),
    }
}
