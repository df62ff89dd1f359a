//! The control plane's own metrics: every request counted by route, method
//! and status and timed by route (a percentile timer), playback starts, and
//! the players' quality-of-experience beacons (startup time, rebuffers,
//! errors). Exposed as Prometheus text at `/metrics`.

use crate::auth::{Caller, ClientAddr};
use crate::error::{check_id, ApiError, ApiResult, Json};
use crate::AppState;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Counts and times every request. The route is the matched template
/// (`/api/v1/titles/{id}`), never the raw path, so ids do not become series.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let m = &state.metrics;
    m.counter("http_server_requests", &[("route", &route), ("method", &method), ("status", &status)]).increment();
    m.percentile_timer("http_server_request_duration", &[("route", &route)]).record(started.elapsed());
    res
}

/// `GET /metrics`: open to loopback (a local Prometheus or agent), else
/// admins only.
pub async fn metrics(State(state): State<AppState>, ClientAddr(addr): ClientAddr, req: Request) -> ApiResult<Response> {
    crate::auth::loopback_or_admin(&state, addr, req).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render_prometheus()).into_response())
}

/// What a player reports about a stream's quality of experience since its
/// last beacon.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Beacon {
    /// Time from Play to the first frame, once per stream.
    startup_ms: Option<f64>,
    #[serde(default)]
    rebuffers: u32,
    #[serde(default)]
    rebuffer_ms: f64,
    #[serde(default)]
    errors: u32,
    /// The bitrate playing now.
    bitrate_kbps: Option<f64>,
    /// The appliance (or origin) serving now.
    appliance: Option<String>,
}

fn duration_ms(v: f64, what: &str) -> ApiResult<Duration> {
    if !(0.0..=3_600_000.0).contains(&v) {
        return Err(ApiError::validation(format!("{what} must be between 0 and 3600000 ms")));
    }
    Ok(Duration::from_secs_f64(v / 1000.0))
}

/// `POST /api/v1/playback/{id}/qoe`.
pub async fn beacon(State(state): State<AppState>, caller: Caller, Path(id): Path<String>, Json(b): Json<Beacon>) -> ApiResult<StatusCode> {
    check_id(&id, "stream")?;
    let stream = state.store.stream(&caller.account.id, &id).await?.ok_or_else(|| ApiError::not_found("stream"))?;
    if b.rebuffers > 10_000 || b.errors > 10_000 {
        return Err(ApiError::validation("rebuffers and errors are counts since the last beacon (at most 10000)"));
    }
    let region = stream.region.clone().unwrap_or_else(|| "none".into());
    let appliance = b.appliance.as_deref().filter(|a| reel_domain::is_valid_id(a)).unwrap_or("unknown").to_string();
    let tags = [("region", region.as_str()), ("appliance", appliance.as_str())];
    let m = &state.metrics;
    if let Some(s) = b.startup_ms {
        m.percentile_timer("playback_startup", &tags).record(duration_ms(s, "startup_ms")?);
    }
    if b.rebuffers > 0 {
        m.counter("playback_rebuffers", &tags).add(b.rebuffers as u64);
        m.timer("playback_rebuffer", &tags).record(duration_ms(b.rebuffer_ms, "rebuffer_ms")?);
    }
    if b.errors > 0 {
        m.counter("playback_errors", &tags).add(b.errors as u64);
    }
    if let Some(kbps) = b.bitrate_kbps {
        if !(0.0..=1_000_000.0).contains(&kbps) {
            return Err(ApiError::validation("bitrate_kbps must be between 0 and 1000000"));
        }
        m.distribution_summary("playback_bitrate_kbps", &[("region", region.as_str())]).record(kbps as u64);
    }
    m.counter("playback_beacons", &[("region", region.as_str())]).increment();
    Ok(StatusCode::NO_CONTENT)
}
