//! Alerts: rules over the node's metrics store (a threshold held for a
//! while, or a change point in a signal), evaluated every few seconds. A
//! firing alert is stored with its top suspects — the other series (all of
//! them, thousands) ranked by `reel-insight` on change points near the
//! alert's, lagged correlation and shared tags — and published as an
//! `alert.fired` event for remediation. Also the push ingest endpoint
//! (`POST /api/v1/metrics/write`, Prometheus text).

use crate::auth::ClientAddr;
use crate::error::{check_id, ApiError, ApiResult, Json};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use reel_store::{Alert, AlertRule};
use reel_tsdb::{Labels, MatchOp, Matcher, QueryResult, Tsdb};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list_alerts))
        .route("/alert-rules", get(list_rules).post(create_rule))
        .route("/alert-rules/{id}", delete(delete_rule))
        .route("/metrics/write", post(write))
        .route("/events", get(list_events))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    since_ms: i64,
}

/// `GET /api/v1/events?since_ms=`: the outbox remediation reads.
async fn list_events(State(state): State<AppState>, ClientAddr(addr): ClientAddr, crate::error::Query(q): crate::error::Query<EventsQuery>, req: Request) -> ApiResult<axum::Json<Value>> {
    crate::auth::loopback_or_admin(&state, addr, req).await?;
    let events: Vec<Value> = state
        .store
        .events_since(q.since_ms, 500)
        .await?
        .into_iter()
        .map(|(kind, subject, body, at_ms)| json!({"kind": kind, "subject": subject, "body": body, "at_ms": at_ms}))
        .collect();
    Ok(axum::Json(json!({"events": events})))
}


fn tsdb(state: &AppState) -> ApiResult<Arc<Tsdb>> {
    state.tsdb.clone().ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "metrics_store_off", "this node runs without a metrics store"))
}

async fn list_alerts(State(state): State<AppState>, ClientAddr(addr): ClientAddr, req: Request) -> ApiResult<axum::Json<Value>> {
    crate::auth::loopback_or_admin(&state, addr, req).await?;
    Ok(axum::Json(json!({"alerts": state.store.alerts(200).await?})))
}

async fn list_rules(State(state): State<AppState>, ClientAddr(addr): ClientAddr, req: Request) -> ApiResult<axum::Json<Value>> {
    crate::auth::loopback_or_admin(&state, addr, req).await?;
    Ok(axum::Json(json!({"rules": state.store.alert_rules().await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    name: String,
    /// `threshold` (default: the last value against `op`/`threshold`),
    /// `changepoint` (a change in the last minute in `op`'s direction) or
    /// `promql` (Prometheus style: `expr` is a filtering expression such as
    /// `rate(x[1m]) > 5`; every series it returns at the latest step holds).
    #[serde(default = "threshold_kind")]
    kind: String,
    expr: String,
    #[serde(default = "gt")]
    op: String,
    #[serde(default)]
    threshold: f64,
    #[serde(default)]
    for_s: i64,
    #[serde(default = "ten_minutes")]
    window_s: i64,
}

fn threshold_kind() -> String {
    "threshold".into()
}
fn gt() -> String {
    ">".into()
}
fn ten_minutes() -> i64 {
    600
}

async fn create_rule(State(state): State<AppState>, ClientAddr(addr): ClientAddr, req: Request) -> ApiResult<(StatusCode, axum::Json<AlertRule>)> {
    let (parts, body) = req.into_parts();
    crate::auth::loopback_or_admin(&state, addr, Request::from_parts(parts.clone(), axum::body::Body::empty())).await?;
    let Json(r) = <Json<NewRule> as FromRequest<AppState>>::from_request(Request::from_parts(parts, body), &state).await?;
    let name = r.name.trim();
    if name.is_empty() || name.len() > 120 {
        return Err(ApiError::validation("name: 1 to 120 characters"));
    }
    if !["threshold", "changepoint", "promql"].contains(&r.kind.as_str()) {
        return Err(ApiError::validation("kind must be threshold, changepoint or promql"));
    }
    if ![">", "<"].contains(&r.op.as_str()) {
        return Err(ApiError::validation("op must be > or <"));
    }
    if !r.threshold.is_finite() || !(0..=86_400).contains(&r.for_s) || !(60..=86_400).contains(&r.window_s) {
        return Err(ApiError::validation("threshold must be a number, for_s 0..86400, window_s 60..86400"));
    }
    // The expression must parse and run.
    let db = tsdb(&state)?;
    let expr = r.expr.clone();
    tokio::task::spawn_blocking(move || db.query_instant(&expr, reel_domain::now_ms()))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.to_string()))?;
    let rule = AlertRule {
        id: reel_domain::new_id("rule"),
        name: name.to_string(),
        kind: r.kind,
        expr: r.expr,
        op: r.op,
        threshold: r.threshold,
        for_s: r.for_s,
        window_s: r.window_s,
        created_ms: reel_domain::now_ms(),
    };
    state.store.create_alert_rule(&rule).await?;
    Ok((StatusCode::CREATED, axum::Json(rule)))
}

async fn delete_rule(State(state): State<AppState>, ClientAddr(addr): ClientAddr, Path(id): Path<String>, req: Request) -> ApiResult<StatusCode> {
    crate::auth::loopback_or_admin(&state, addr, req).await?;
    check_id(&id, "alert rule")?;
    match state.store.delete_alert_rule(&id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(reel_store::StoreError::NotFound) => Err(ApiError::not_found("alert rule")),
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/v1/metrics/write`: Prometheus text pushed by a client; stored
/// (acknowledged once durable in the store's log) with the time of receipt
/// unless a sample carries its own.
async fn write(State(state): State<AppState>, ClientAddr(addr): ClientAddr, req: Request) -> ApiResult<StatusCode> {
    let (parts, body) = req.into_parts();
    crate::auth::loopback_or_admin(&state, addr, Request::from_parts(parts, axum::body::Body::empty())).await?;
    let bytes: Bytes = axum::body::to_bytes(body, 8 << 20).await.map_err(|_| ApiError::validation("the body must be Prometheus text of at most 8 MiB"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::validation("the body must be UTF-8 Prometheus text"))?;
    let samples = reel_tsdb::exposition::parse_exposition(text).map_err(|e| ApiError::validation(format!("not Prometheus text: {e}")))?;
    let now = reel_domain::now_ms();
    let batch: Vec<(Labels, i64, f64)> = samples.into_iter().map(|(l, v, t)| (l, t.unwrap_or(now), v)).collect();
    let db = tsdb(&state)?;
    match tokio::task::spawn_blocking(move || db.append(&batch)).await.map_err(|_| ApiError::internal())? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e @ reel_tsdb::Error::TooManySeries { .. }) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_series", e.to_string())),
        Err(e @ reel_tsdb::Error::MissingMetricName(_)) => Err(ApiError::validation(e.to_string())),
        Err(e) => {
            tracing::warn!(message = "metrics push failed", error = %e);
            Err(ApiError::internal())
        }
    }
}

/// The grid the analysis samples every series on.
const GRID_STEP_MS: i64 = 5_000;
const ANALYSIS_WINDOW_MS: i64 = 10 * 60_000;

fn key_of(labels: &Labels) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The same key as [`key_of`], from an alert's stored labels (both are
/// sorted by label name).
fn key_of_json(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn labels_json(labels: &Labels) -> Value {
    Value::Object(labels.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
}

/// Per-step values of raw samples on the grid: the last sample at or
/// before each point; counters as increases between points.
fn on_grid(labels: &Labels, samples: &[(i64, f64)], start: i64, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    let mut last = f64::NAN;
    for k in 0..n {
        let t = start + k as i64 * GRID_STEP_MS;
        while i < samples.len() && samples[i].0 <= t {
            last = samples[i].1;
            i += 1;
        }
        out.push(last);
    }
    let first = out.iter().copied().find(|v| v.is_finite()).unwrap_or(0.0);
    for v in out.iter_mut() {
        if !v.is_finite() {
            *v = first;
        }
    }
    let name = labels.name();
    if ["_total", "_count", "_sum", "_bucket"].iter().any(|s| name.ends_with(s)) {
        let mut prev = out.first().copied().unwrap_or(0.0);
        for v in out.iter_mut() {
            let cur = *v;
            *v = if cur >= prev { cur - prev } else { cur };
            prev = cur;
        }
    }
    out
}

/// Ranks every stored series against the alerting one (its points from the
/// rule's query); the top `k` as JSON.
fn suspects(db: &Tsdb, alert_labels: &Labels, alert_points: &[(i64, f64)], now: i64, k: usize) -> Value {
    let start = now - ANALYSIS_WINDOW_MS;
    let n = (ANALYSIS_WINDOW_MS / GRID_STEP_MS) as usize + 1;
    let Ok(all) = Matcher::new("__name__", MatchOp::Regex, ".+") else { return json!([]) };
    let Ok(series) = db.select(&[all], start - 60_000, now) else { return json!([]) };
    let grids: Vec<(Vec<(String, String)>, Vec<f64>, &Labels)> = series
        .iter()
        .filter(|(l, _)| l.name() != FOR_STATE && key_of(l) != key_of(alert_labels))
        .map(|(l, s)| (l.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), on_grid(l, s, start, n), l))
        .collect();
    let candidates: Vec<reel_insight::suspects::Candidate<'_>> = grids.iter().map(|(t, v, _)| reel_insight::suspects::Candidate { tags: t, values: v }).collect();
    // The alerting series on the same grid; anchored on its own latest
    // change point.
    let alert_grid = on_grid(alert_labels, alert_points, start, n);
    let mut cps = reel_insight::detect(&alert_grid, reel_insight::Method::Pelt, reel_insight::CostKind::L2, reel_insight::Penalty::Mbic, 2, 1).unwrap_or_default();
    cps.pop();
    let alert_at = cps.last().copied().unwrap_or(n - 1);
    let tags: Vec<(String, String)> = alert_labels.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let ranked = reel_insight::suspects::rank(&alert_grid, &tags, alert_at, &candidates, &reel_insight::suspects::Options::default());
    let top: Vec<Value> = ranked
        .into_iter()
        .take(k)
        .map(|s| {
            let labels = grids[s.index].2;
            json!({
                "series": labels_json(labels),
                "score": s.score,
                "evidence": {
                    "change_seconds_from_alert": s.change_distance.map(|d| d as i64 * GRID_STEP_MS / 1000),
                    "correlation": s.correlation,
                    "lag_seconds": s.lag * GRID_STEP_MS / 1000,
                    "shared_tags": s.shared_tags.iter().map(|(a, b)| format!("{a}={b}")).collect::<Vec<_>>(),
                },
            })
        })
        .collect();
    json!({"ranked_of": candidates.len(), "top": top})
}

/// The series that keeps each pending or firing alert's start (value: ms
/// since the epoch), written every evaluation, so a restart resumes a
/// rule's `for` timer instead of starting it over (Prometheus' own name and
/// scheme).
const FOR_STATE: &str = "ALERTS_FOR_STATE";
/// The label of [`FOR_STATE`] that names the rule.
const FOR_STATE_RULE: &str = "alert_rule_id";
/// A timer is resumed only if the node was down for less than this
/// (Prometheus' `--rules.alert.for-outage-tolerance` default).
const OUTAGE_TOLERANCE_MS: i64 = 3_600_000;
/// A resumed timer fires no sooner than this after the restart when the
/// rule's `for` is longer (Prometheus' `--rules.alert.for-grace-period`).
const FOR_GRACE_MS: i64 = 600_000;

/// Where a `for` timer that started at `since` resumes after a restart at
/// `now`, its last record written at `down_at` (Prometheus' rule): the time
/// the node was down does not count as pending; a timer already run out is
/// left as it was (the evaluation fires at once if the condition holds); a
/// long `for` with less than the grace period left gets the grace period.
fn resumed_since(since: i64, down_at: i64, now: i64, for_ms: i64) -> i64 {
    let remaining = for_ms - (down_at - since);
    if remaining <= 0 {
        since
    } else if for_ms > FOR_GRACE_MS && remaining < FOR_GRACE_MS {
        now + FOR_GRACE_MS - for_ms
    } else {
        since + (now - down_at)
    }
}

/// The label of [`FOR_STATE`] that keeps the alerting series' own metric
/// name (a plain selector's series has one).
const FOR_STATE_NAME: &str = "alert_series_name";

/// The [`FOR_STATE`] series of a rule's alerting series.
fn for_state_labels(rule_id: &str, labels: &Labels) -> Labels {
    let named = match labels.get("__name__") {
        Some(name) => labels.with(FOR_STATE_NAME, name),
        None => labels.clone(),
    };
    named.with("__name__", FOR_STATE).with(FOR_STATE_RULE, rule_id)
}

/// The alerting series' labels back from its [`FOR_STATE`] series.
fn alert_labels_of(for_state: &Labels) -> Labels {
    let base = for_state.filtered(|k| k != "__name__" && k != FOR_STATE_RULE && k != FOR_STATE_NAME);
    match for_state.get(FOR_STATE_NAME) {
        Some(name) => base.with("__name__", name),
        None => base,
    }
}

/// The `for` timers recorded before a restart, resumed: key → (start, its [`FOR_STATE`]
/// series).
fn resume_for_state(db: &Tsdb, rules: &[AlertRule], now: i64) -> HashMap<String, (i64, Labels)> {
    let mut out = HashMap::new();
    let Ok(series) = db.select(&[Matcher::eq("__name__", FOR_STATE)], now - OUTAGE_TOLERANCE_MS, now) else { return out };
    for (labels, samples) in series {
        // A NaN last sample is a staleness marker: that timer had ended.
        let Some(&(down_at, since)) = samples.last().filter(|p| !p.1.is_nan()) else { continue };
        let Some(rule) = labels.get(FOR_STATE_RULE).and_then(|id| rules.iter().find(|r| r.id == id)) else { continue };
        let alert_labels = alert_labels_of(&labels);
        let key = format!("{}|{}", rule.id, key_of(&alert_labels));
        out.insert(key, (resumed_since(since as i64, down_at, now, rule.for_s * 1000), labels));
    }
    out
}

/// One evaluation of every rule: fire what holds, resolve what stopped.
/// The alert loop's memory between evaluations.
#[derive(Default)]
struct Timers {
    /// When each pending or firing key's condition started holding.
    since: HashMap<String, i64>,
    /// Each recorded key's [`FOR_STATE`] series, to end it with a staleness marker.
    recorded: HashMap<String, Labels>,
    /// Firing keys → alert id.
    firing: HashMap<String, String>,
}

async fn evaluate(state: &AppState, db: &Arc<Tsdb>, timers: &mut Timers) -> Result<(), String> {
    let Timers { since: pending, recorded, firing } = timers;
    let now = reel_domain::now_ms();
    let rules = state.store.alert_rules().await.map_err(|e| e.to_string())?;
    let mut live = std::collections::HashSet::new();
    let mut for_state: Vec<(Labels, i64, f64)> = Vec::new();
    let mut unknown = std::collections::HashSet::new();
    for rule in rules {
        let (d, expr, window) = (db.clone(), rule.expr.clone(), rule.window_s * 1000);
        let series: Vec<(Labels, Vec<(i64, f64)>)> = match tokio::task::spawn_blocking(move || d.query_range(&expr, now - window.max(ANALYSIS_WINDOW_MS), now, GRID_STEP_MS))
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(QueryResult::Matrix(m)) => m,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(message = "alert rule query failed", rule = %rule.id, error = %e);
                // Its timers are left as they are: a failed query is not a stopped condition.
                unknown.insert(rule.id.clone());
                continue;
            }
        };
        for (labels, points) in series {
            // The timers' own series are not alerting signals (a name-less selector matches them).
            if labels.name() == FOR_STATE {
                continue;
            }
            let key = format!("{}|{}", rule.id, key_of(&labels));
            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
            let Some(&(last_t, last)) = points.last() else { continue };
            // A promql rule's series holds only if its filter kept it at the
            // latest step; the others go stale after three missed steps.
            let stale_after = if rule.kind == "promql" { GRID_STEP_MS } else { 3 * GRID_STEP_MS };
            if now - last_t > stale_after {
                pending.remove(&key);
                continue;
            }
            let holds = match rule.kind.as_str() {
                "changepoint" => {
                    let mut cps = reel_insight::detect(&values, reel_insight::Method::Pelt, reel_insight::CostKind::Normal, reel_insight::Penalty::Mbic, 3, 1).unwrap_or_default();
                    cps.pop();
                    // A change in the last minute, in the rule's direction.
                    cps.last().is_some_and(|&cp| {
                        let before = values[..cp].iter().sum::<f64>() / cp.max(1) as f64;
                        let after = values[cp..].iter().sum::<f64>() / (values.len() - cp).max(1) as f64;
                        values.len() - cp <= 12 && if rule.op == "<" { after < before } else { after > before }
                    })
                }
                "promql" => true,
                _ => if rule.op == "<" { last < rule.threshold } else { last > rule.threshold },
            };
            if !holds {
                pending.remove(&key);
                continue;
            }
            live.insert(key.clone());
            let since = *pending.entry(key.clone()).or_insert(now);
            let series = recorded.entry(key.clone()).or_insert_with(|| for_state_labels(&rule.id, &labels));
            for_state.push((series.clone(), now, since as f64));
            if now - since < rule.for_s * 1000 || firing.contains_key(&key) {
                continue;
            }
            let d = db.clone();
            let l = labels.clone();
            let p = points.clone();
            let suspects = tokio::task::spawn_blocking(move || suspects(&d, &l, &p, now, 10)).await.map_err(|e| e.to_string())?;
            let alert = Alert {
                id: reel_domain::new_id("alert"),
                rule_id: rule.id.clone(),
                name: rule.name.clone(),
                labels: labels_json(&labels),
                state: "firing".into(),
                value: last,
                fired_ms: now,
                resolved_ms: None,
                suspects,
            };
            state.store.fire_alert(&alert).await.map_err(|e| e.to_string())?;
            state.metrics.counter("alerts_fired", &[("rule", &rule.name)]).increment();
            tracing::warn!(message = "alert firing", rule = %rule.name, value = last, alert = %alert.id);
            firing.insert(key, alert.id);
        }
    }
    // A timer that ended (its condition stopped, its series or rule went away) gets a
    // staleness marker (NaN, as Prometheus writes), so a restart does not resume it.
    // Keys whose condition is known to have stopped (their rule's query answered).
    let stopped = |k: &&String| !live.contains(*k) && !k.split_once('|').is_some_and(|(rule, _)| unknown.contains(rule));
    let ended: Vec<String> = recorded.keys().filter(stopped).cloned().collect();
    for key in ended {
        pending.remove(&key);
        if let Some(series) = recorded.remove(&key) {
            for_state.push((series, now, f64::NAN));
        }
    }
    if !for_state.is_empty() {
        let d = db.clone();
        match tokio::task::spawn_blocking(move || d.append(&for_state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(message = "cannot record alert timers", error = %e),
            Err(e) => tracing::warn!(message = "cannot record alert timers", error = %e),
        }
    }
    // Resolve what no longer holds.
    let gone: Vec<String> = firing.keys().filter(stopped).cloned().collect();
    for k in gone {
        if let Some(id) = firing.remove(&k) {
            state.store.resolve_alert(&id, now).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Evaluates the rules every `every` until the process ends.
pub async fn alert_loop(state: AppState, every: Duration) {
    let Some(db) = state.tsdb.clone() else { return };
    let mut timers = Timers::default();
    // `for` timers running before a restart resume where they were.
    match state.store.alert_rules().await {
        Ok(rules) => {
            let (d, now) = (db.clone(), reel_domain::now_ms());
            let resumed = tokio::task::spawn_blocking(move || resume_for_state(&d, &rules, now)).await.unwrap_or_default();
            for (key, (since, series)) in resumed {
                timers.since.insert(key.clone(), since);
                timers.recorded.insert(key, series);
            }
        }
        Err(e) => tracing::warn!(message = "cannot load alert rules", error = %e),
    }
    // Alerts already firing (before a restart, or fired by another node on
    // the same database) are picked up, not fired a second time; they
    // resolve here when their condition stops holding.
    match state.store.alerts(1000).await {
        Ok(alerts) => {
            for a in alerts.into_iter().filter(|a| a.state == "firing") {
                let key = format!("{}|{}", a.rule_id, key_of_json(&a.labels));
                let labels = Labels::new(a.labels.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())));
                timers.since.insert(key.clone(), a.fired_ms);
                timers.recorded.insert(key.clone(), for_state_labels(&a.rule_id, &labels));
                timers.firing.insert(key, a.id);
            }
        }
        Err(e) => tracing::warn!(message = "cannot load firing alerts", error = %e),
    }
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = evaluate(&state, &db, &mut timers).await {
            tracing::warn!(message = "alert evaluation failed", error = %e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn a_resumed_timer_does_not_count_the_downtime() {
        // Pending for 2 of 5 minutes, down 3 minutes: 3 minutes still to go.
        let since = resumed_since(0, 2 * MIN, 5 * MIN, 5 * MIN);
        assert_eq!(since, 3 * MIN);
        assert_eq!(5 * MIN - (5 * MIN - since), 3 * MIN);
    }

    #[test]
    fn a_run_out_timer_is_left_alone() {
        assert_eq!(resumed_since(0, 6 * MIN, 7 * MIN, 5 * MIN), 0);
    }

    #[test]
    fn a_long_for_gets_the_grace_period() {
        // for 30 min, 1 min left when the node went down: it fires 10 min
        // after the restart at the earliest.
        let now = 40 * MIN;
        let since = resumed_since(0, 29 * MIN, now, 30 * MIN);
        assert_eq!(since + 30 * MIN, now + FOR_GRACE_MS);
    }

    #[test]
    fn for_state_round_trips_through_the_store() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Tsdb::open(dir.path(), Default::default()).expect("open");
        let labels = Labels::metric("edge_errors", &[("appliance", "a1")]).without_name();
        let named = Labels::metric("edge_errors", &[("appliance", "a2")]);
        assert_eq!(alert_labels_of(&for_state_labels("r", &named)), named);
        assert_eq!(alert_labels_of(&for_state_labels("r", &labels)), labels);
        let rule = AlertRule {
            id: "rule_1".into(),
            name: "errors".into(),
            kind: "threshold".into(),
            expr: "edge_errors".into(),
            op: ">".into(),
            threshold: 1.0,
            for_s: 300,
            window_s: 600,
            created_ms: 0,
        };
        let now = 1_800_000_000_000;
        let since = now - 2 * MIN;
        db.append(&[(for_state_labels(&rule.id, &labels), now, since as f64)]).expect("append");
        let resumed = resume_for_state(&db, std::slice::from_ref(&rule), now + 30_000);
        let key = format!("{}|{}", rule.id, key_of(&labels));
        assert_eq!(resumed.get(&key).map(|r| r.0), Some(since + 30_000), "{resumed:?}");
        // A timer ended by a staleness marker is not resumed.
        db.append(&[(for_state_labels(&rule.id, &labels), now + 5_000, f64::NAN)]).expect("append");
        assert!(resume_for_state(&db, std::slice::from_ref(&rule), now + 30_000).is_empty());
        db.append(&[(for_state_labels(&rule.id, &labels), now + 10_000, since as f64)]).expect("append");
        // A rule deleted meanwhile, or an outage past the tolerance: nothing.
        assert!(resume_for_state(&db, &[], now + 30_000).is_empty());
        assert!(resume_for_state(&db, std::slice::from_ref(&rule), now + 10_000 + OUTAGE_TOLERANCE_MS + 1).is_empty());
    }
}
