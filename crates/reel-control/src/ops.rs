//! Operations: this node's time-series store (reel-tsdb), fed every few
//! seconds with the node's own metrics and each active appliance's
//! `/metrics`, and the query API over it (PromQL subset, Prometheus' JSON
//! shapes) that the Ops page, `reel metrics query` and alert rules read.

use crate::auth::ClientAddr;
use crate::error::{ApiError, ApiResult, Query};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use reel_tsdb::{Labels, Tsdb};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics/query", get(query)).route("/metrics/query_range", get(query_range))
}


fn store(state: &AppState) -> ApiResult<Arc<Tsdb>> {
    state.tsdb.clone().ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "metrics_store_off", "this node runs without a metrics store"))
}

fn bad_query(e: reel_tsdb::Error) -> ApiError {
    match e {
        reel_tsdb::Error::Parse(p) => ApiError::new(StatusCode::BAD_REQUEST, "bad_query", p.to_string()),
        reel_tsdb::Error::Query(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_query", m),
        other => {
            tracing::warn!(message = "metrics query failed", error = %other);
            ApiError::internal()
        }
    }
}

/// Seconds (float, as Prometheus takes them) to milliseconds.
fn ms(s: f64, what: &str) -> ApiResult<i64> {
    if !s.is_finite() || !(0.0..=1e11).contains(&s) {
        return Err(ApiError::validation(format!("{what} must be Unix seconds")));
    }
    Ok((s * 1000.0) as i64)
}

#[derive(Deserialize)]
struct InstantParams {
    query: String,
    time: Option<f64>,
}

async fn query(State(state): State<AppState>, ClientAddr(addr): ClientAddr, Query(p): Query<InstantParams>, req: Request) -> ApiResult<axum::Json<Value>> {
    crate::auth::loopback_or_admin(&state, addr, req).await?;
    let tsdb = store(&state)?;
    let t = match p.time {
        Some(s) => ms(s, "time")?,
        None => reel_domain::now_ms(),
    };
    let result = tokio::task::spawn_blocking(move || tsdb.query_instant(&p.query, t)).await.map_err(|_| ApiError::internal())?.map_err(bad_query)?;
    Ok(axum::Json(json!({"status": "success", "data": result})))
}

#[derive(Deserialize)]
struct RangeParams {
    query: String,
    start: f64,
    end: f64,
    step: f64,
}

async fn query_range(State(state): State<AppState>, ClientAddr(addr): ClientAddr, Query(p): Query<RangeParams>, req: Request) -> ApiResult<axum::Json<Value>> {
    crate::auth::loopback_or_admin(&state, addr, req).await?;
    let tsdb = store(&state)?;
    let (start, end) = (ms(p.start, "start")?, ms(p.end, "end")?);
    if end < start {
        return Err(ApiError::validation("end must not be before start"));
    }
    if !(p.step.is_finite() && p.step > 0.0) {
        return Err(ApiError::validation("step must be a positive number of seconds"));
    }
    let step = ((p.step * 1000.0) as i64).max(1);
    if (end - start) / step > 11_000 {
        return Err(ApiError::validation("at most 11000 points per series: use a larger step"));
    }
    let result = tokio::task::spawn_blocking(move || tsdb.query_range(&p.query, start, end, step)).await.map_err(|_| ApiError::internal())?.map_err(bad_query)?;
    Ok(axum::Json(json!({"status": "success", "data": result})))
}

/// Every `every`: append this node's metrics and every active appliance's
/// `/metrics` to the store (and, with `remote_write`, send them to a
/// Prometheus-compatible receiver: the scale-out path); compact the store
/// every 10 minutes. Runs until the process ends.
pub async fn collect_loop(state: AppState, node: String, every: Duration, remote_write: Option<String>) {
    let Some(tsdb) = state.tsdb.clone() else { return };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default();
    let mut rounds = 0u64;
    loop {
        tokio::time::sleep(every).await;
        let now = reel_domain::now_ms();
        let mut batch: Vec<(Labels, i64, f64)> = Vec::new();
        for s in state.metrics.snapshot() {
            let mut tags: Vec<(&str, &str)> = s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            tags.push(("instance", node.as_str()));
            batch.push((Labels::metric(&s.name, &tags), now, s.value));
        }
        if let Ok(appliances) = state.store.appliances().await {
            for a in appliances.iter().filter(|a| a.state == "active" && !a.base_url.is_empty()) {
                let url = format!("{}/metrics", a.base_url.trim_end_matches('/'));
                // Signed with the fleet key, so appliances on other hosts answer too.
                let t = reel_domain::now_ms() / 1000;
                let sig = state.token_key.sign_bytes(format!("metrics:{}:{t}", a.id).as_bytes());
                let text = match http.get(&url).header("x-reel-time", t.to_string()).header("x-reel-signature", sig).send().await {
                    Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                    _ => {
                        state.metrics.counter("ops_scrape_failures", &[("appliance", &a.id)]).increment();
                        continue;
                    }
                };
                match reel_tsdb::exposition::parse_exposition(&text) {
                    Ok(samples) => batch.extend(samples.into_iter().map(|(l, v, t)| (l, t.unwrap_or(now), v))),
                    Err(e) => tracing::warn!(message = "cannot parse appliance metrics", appliance = %a.id, error = %e),
                }
            }
        }
        if let Some(url) = remote_write.clone() {
            let copy: Vec<(Labels, Vec<(i64, f64)>)> = batch.iter().map(|(l, t, v)| (l.clone(), vec![(*t, *v)])).collect();
            let metrics = state.metrics.clone();
            // Off the collection path: a slow receiver delays only itself.
            tokio::task::spawn_blocking(move || {
                let sent = reel_tsdb::remote_write::RemoteWriter::new(&url).and_then(|mut w| {
                    for (l, s) in copy {
                        w.push(l, s)?;
                    }
                    w.flush()
                });
                if let Err(e) = sent {
                    metrics.counter("ops_remote_write_failures", &[]).increment();
                    tracing::warn!(message = "remote write failed", error = %e);
                }
            });
        }
        let db = tsdb.clone();
        let n = batch.len();
        match tokio::task::spawn_blocking(move || db.append(&batch)).await {
            Ok(Ok(())) => state.metrics.counter("ops_samples_ingested", &[]).add(n as u64),
            Ok(Err(e)) => tracing::warn!(message = "cannot store metrics", error = %e),
            Err(_) => {}
        }
        rounds += 1;
        if rounds % ((600_000 / every.as_millis().max(1) as u64).max(1)) == 0 {
            let db = tsdb.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || db.compact()).await {
                tracing::warn!(message = "metrics compaction failed", error = %e);
            }
        }
    }
}
