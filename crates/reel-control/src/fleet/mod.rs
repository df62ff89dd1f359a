//! The delivery fleet as the control plane sees it: appliances' signed health
//! reports come in here, and steering decisions are made from them.

pub mod inventory;

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use reel_steering::{steer, ApplianceInfo, SiteInfo, SteeringDecision};
use reel_store::{Store, StoreError};
use serde_json::{json, Value};
use std::net::IpAddr;

/// How often appliances report; three missed reports make one unhealthy.
pub const REPORT_INTERVAL_MS: i64 = 2_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/fleet/reports", post(report))
        .route("/fleet/appliances", get(list).post(api::add_appliance))
        .route("/fleet/appliances/{id}", axum::routing::patch(api::change_appliance))
        .route("/fleet/appliances/{id}/config", get(api::config))
        .route("/fleet/appliances/{id}/config/versions", get(api::versions))
        .route("/fleet/appliances/{id}/config/diff", get(api::diff))
        .route("/fleet/sites", get(api::sites).post(api::put_site))
        .route("/fleet/models", get(api::models).post(api::put_model))
        .route("/fleet/audit", get(api::audit))
        .route("/fleet/appliances/{id}/fill-plan", get(appliance_fill_plan))
}

/// `GET /api/v1/fleet/appliances/{id}/fill-plan`: the titles this appliance
/// should hold. Asked by the appliance itself, which signs "<id>:<unix time>"
/// with the fleet key; a signature more than 5 minutes old is refused.
async fn appliance_fill_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::error::Path(id): crate::error::Path<String>,
) -> ApiResult<crate::error::Json<Value>> {
    crate::error::check_id(&id, "appliance")?;
    let time: i64 = headers.get("x-reel-time").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let sig = headers.get("x-reel-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let fresh = (reel_domain::now_ms() / 1000 - time).abs() <= 300;
    if !fresh || !state.token_key.verify_bytes(format!("{id}:{time}").as_bytes(), sig) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", "sign \"<id>:<unix time>\" with the fleet key"));
    }
    let fill = fill_plan(&state.store, &state.config.origin_dir, 512 * 1024 * 1024).await?;
    let mine = fill.plan.appliances.iter().find(|a| a.appliance_id == id).ok_or_else(|| ApiError::not_found("appliance"))?;
    Ok(crate::error::Json(json!({
        "appliance_id": id, "titles": mine.titles, "bytes_planned": mine.bytes_planned,
        "predicted_hit_ratio": fill.plan.predicted_hit_ratio,
    })))
}

/// The inventory over HTTP: admin only; the actor in the audit trail is the
/// admin's email.
mod api {
    use super::inventory::{self, AppliancePatch, InventoryError, Part};
    use crate::auth::Admin;
    use crate::error::{check_id, ApiError, ApiResult, Json, Path, Query};
    use crate::AppState;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use serde::Deserialize;
    use serde_json::{json, Value};

    impl From<InventoryError> for ApiError {
        fn from(e: InventoryError) -> Self {
            match e {
                InventoryError::Invalid(m) => ApiError::validation(m),
                InventoryError::NotFound(what) => ApiError::not_found(what),
                InventoryError::Store(e) => e.into(),
            }
        }
    }

    fn actor(admin: &Admin) -> String {
        format!("admin:{}", admin.0.account.email)
    }

    pub async fn sites(State(state): State<AppState>, _a: Admin) -> ApiResult<Json<Value>> {
        Ok(Json(json!({ "sites": state.store.sites().await? })))
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SiteInput {
        id: String,
        name: String,
        region: String,
        #[serde(default)]
        location: String,
        #[serde(default)]
        prefixes: Vec<String>,
    }

    pub async fn put_site(State(state): State<AppState>, admin: Admin, Json(s): Json<SiteInput>) -> ApiResult<Response> {
        let site = reel_store::Site { id: s.id, name: s.name, region: s.region, location: s.location, prefixes: s.prefixes };
        let site = inventory::put_site(&state.store, &actor(&admin), site).await?;
        Ok((StatusCode::CREATED, axum::Json(site)).into_response())
    }

    pub async fn models(State(state): State<AppState>, _a: Admin) -> ApiResult<Json<Value>> {
        let models: Vec<Value> = state
            .store
            .models()
            .await?
            .into_iter()
            .map(|m| json!({"id": m.id, "name": m.name, "vendor": m.vendor,
                            "parts": serde_json::from_str::<Value>(&m.parts).unwrap_or(Value::Null)}))
            .collect();
        Ok(Json(json!({ "models": models })))
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ModelInput {
        id: String,
        name: String,
        vendor: String,
        #[serde(default)]
        parts: Vec<Part>,
    }

    pub async fn put_model(State(state): State<AppState>, admin: Admin, Json(m): Json<ModelInput>) -> ApiResult<Response> {
        let model = inventory::put_model(&state.store, &actor(&admin), &m.id, &m.name, &m.vendor, &m.parts).await?;
        Ok((StatusCode::CREATED, axum::Json(json!({"id": model.id, "name": model.name, "vendor": model.vendor, "parts": m.parts}))).into_response())
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ApplianceInput {
        id: String,
        serial: String,
        site_id: String,
        model: String,
        #[serde(default = "provisioning")]
        state: String,
        #[serde(default)]
        base_url: String,
    }

    fn provisioning() -> String {
        "provisioning".into()
    }

    pub async fn add_appliance(State(state): State<AppState>, admin: Admin, Json(a): Json<ApplianceInput>) -> ApiResult<Response> {
        let a = reel_store::Appliance {
            id: a.id,
            serial: a.serial,
            site_id: a.site_id,
            model: a.model,
            state: a.state,
            base_url: a.base_url,
            last_report_ms: None,
            report: "{}".into(),
        };
        let a = inventory::add_appliance(&state.store, &actor(&admin), a).await?;
        Ok((StatusCode::CREATED, axum::Json(a)).into_response())
    }

    pub async fn change_appliance(
        State(state): State<AppState>,
        admin: Admin,
        Path(id): Path<String>,
        Json(patch): Json<AppliancePatch>,
    ) -> ApiResult<Json<reel_store::Appliance>> {
        check_id(&id, "appliance")?;
        Ok(Json(inventory::change_appliance(&state.store, &actor(&admin), &id, patch).await?))
    }

    pub async fn config(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> ApiResult<Json<Value>> {
        check_id(&id, "appliance")?;
        let (version, text, changed) = inventory::render_config(&state.store, &actor(&admin), &id).await?;
        Ok(Json(json!({"appliance_id": id, "version": version, "new_version": changed, "text": text})))
    }

    pub async fn versions(State(state): State<AppState>, _a: Admin, Path(id): Path<String>) -> ApiResult<Json<Value>> {
        check_id(&id, "appliance")?;
        Ok(Json(json!({ "versions": state.store.config_versions(&id).await? })))
    }

    #[derive(Deserialize)]
    pub struct DiffQuery {
        from: Option<i64>,
        to: Option<i64>,
    }

    pub async fn diff(State(state): State<AppState>, _a: Admin, Path(id): Path<String>, Query(q): Query<DiffQuery>) -> ApiResult<Json<Value>> {
        check_id(&id, "appliance")?;
        let (from, to, diff) = inventory::diff(&state.store, &id, q.from, q.to).await?;
        Ok(Json(json!({"from": from, "to": to, "diff": diff})))
    }

    #[derive(Deserialize)]
    pub struct AuditQuery {
        limit: Option<i64>,
    }

    pub async fn audit(State(state): State<AppState>, _a: Admin, Query(q): Query<AuditQuery>) -> ApiResult<Json<Value>> {
        let entries: Vec<Value> = state
            .store
            .audit(q.limit.unwrap_or(50).clamp(1, 500))
            .await?
            .into_iter()
            .map(|e| {
                let parse = |s: &Option<String>| s.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()).unwrap_or(Value::Null);
                json!({"at_ms": e.at_ms, "actor": e.actor, "action": e.action, "entity": e.entity,
                       "entity_id": e.entity_id, "before": parse(&e.before), "after": parse(&e.after)})
            })
            .collect();
        Ok(Json(json!({ "entries": entries })))
    }
}

/// `POST /api/v1/fleet/reports`: an appliance's report, signed with the fleet key.
async fn report(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<StatusCode> {
    let sig = headers.get("x-reel-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !state.token_key.verify_bytes(&body, sig) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", "the report is not signed with the fleet key"));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|_| ApiError::validation("the report must be JSON"))?;
    let id = v["appliance_id"].as_str().filter(|s| reel_domain::is_valid_id(s)).ok_or_else(|| ApiError::validation("appliance_id is missing"))?;
    match state.store.record_appliance_report(id, &v.to_string(), reel_domain::now_ms()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(ApiError::not_found("appliance")),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/fleet/appliances` (admin): every appliance with its health.
async fn list(State(state): State<AppState>, _admin: crate::auth::Admin) -> ApiResult<crate::error::Json<Value>> {
    let now = reel_domain::now_ms();
    let appliances: Vec<Value> = state
        .store
        .appliances()
        .await?
        .into_iter()
        .map(|a| {
            let report: Value = serde_json::from_str(&a.report).unwrap_or(Value::Null);
            json!({"id": a.id, "serial": a.serial, "site_id": a.site_id, "model": a.model, "state": a.state,
                   "base_url": a.base_url, "healthy": is_healthy(a.last_report_ms, now),
                   "last_report_ms": a.last_report_ms, "report": report})
        })
        .collect();
    Ok(crate::error::Json(json!({ "appliances": appliances })))
}

fn is_healthy(last_report_ms: Option<i64>, now_ms: i64) -> bool {
    last_report_ms.is_some_and(|t| now_ms - t <= 3 * REPORT_INTERVAL_MS)
}

/// The steering decision for `client` and `title_id`, from the fleet's
/// current state in the store. Used by playback and by `reel steer explain`.
pub async fn decide(store: &Store, client: IpAddr, title_id: &str, origin_url: &str) -> Result<SteeringDecision, StoreError> {
    let now = reel_domain::now_ms();
    let sites: Vec<SiteInfo> = store
        .sites()
        .await?
        .into_iter()
        .map(|s| SiteInfo {
            prefixes: s.prefixes.iter().filter_map(|p| p.parse().ok()).collect(),
            id: s.id,
            name: s.name,
            region: s.region,
        })
        .collect();
    let appliances: Vec<ApplianceInfo> = store
        .appliances()
        .await?
        .into_iter()
        .map(|a| {
            let report: Value = serde_json::from_str(&a.report).unwrap_or(Value::Null);
            let holds = report["titles"].as_array().map(|ts| ts.iter().any(|t| t.as_str() == Some(title_id)));
            ApplianceInfo {
                active: a.state == "active",
                healthy: is_healthy(a.last_report_ms, now),
                load: report["load"].as_f64().unwrap_or(0.0),
                holds_title: holds,
                id: a.id,
                site_id: a.site_id,
                base_url: a.base_url,
            }
        })
        .collect();
    Ok(steer(client, &sites, &appliances, origin_url))
}

/// Bytes one heartbeat stands for: five seconds at the title's mean rendition bitrate.
const HEARTBEAT_S: f64 = 5.0;

/// A fill plan for the fleet in the store, from the stored viewing history,
/// and the hit ratio the appliances report having achieved.
#[derive(Debug, serde::Serialize)]
pub struct FleetFill {
    pub plan: reel_steering::fill::FillPlan,
    pub realized_hit_ratio: Option<f64>,
    pub views: usize,
}

pub async fn fill_plan(store: &Store, origin_dir: &std::path::Path, default_capacity: u64) -> Result<FleetFill, StoreError> {
    use reel_steering::fill::{forecast, plan, FillTarget, View};
    let sites = store.sites().await?;
    let appliances = store.appliances().await?;
    let regions: Vec<String> = {
        let mut r: Vec<String> = sites.iter().map(|s| s.region.clone()).collect();
        r.sort();
        r.dedup();
        r
    };
    // Sizes: what the origin holds on disk for each title.
    let mut sizes = std::collections::HashMap::new();
    let mut rates = std::collections::HashMap::new();
    for t in store.titles(&reel_store::TitleFilter { kinds: vec![reel_domain::TitleKind::Movie, reel_domain::TitleKind::Episode], ..Default::default() }).await? {
        let bytes = dir_bytes(&origin_dir.join(&t.id));
        let renditions = store.renditions(&t.id).await?;
        let mean_bps = if renditions.is_empty() { 0.0 } else { renditions.iter().map(|r| r.average_bandwidth as f64).sum::<f64>() / renditions.len() as f64 };
        if bytes > 0 {
            sizes.insert(t.id.clone(), bytes);
        }
        rates.insert(t.id, mean_bps / 8.0);
    }
    // Viewing history: each heartbeat counts in the region steering placed
    // the viewer in; one from outside every site's prefixes counts everywhere.
    let events = store.viewing_events(0, 1_000_000).await?;
    let views: Vec<View> = events
        .iter()
        .filter(|e| e.kind == "heartbeat")
        .flat_map(|e| {
            let bytes = (rates.get(&e.title_id).copied().unwrap_or(0.0) * HEARTBEAT_S) as u64;
            let in_regions: Vec<String> = match &e.region {
                Some(r) if regions.contains(r) => vec![r.clone()],
                _ => regions.clone(),
            };
            in_regions.into_iter().map(move |r| View { at_s: e.at_ms / 1000, region: r, title: e.title_id.clone(), bytes })
        })
        .collect();
    let demand = forecast(&views, reel_domain::now_ms() / 1000, 86_400.0);
    let targets: Vec<FillTarget> = appliances
        .iter()
        .filter(|a| a.state == "active")
        .filter_map(|a| {
            let site = sites.iter().find(|s| s.id == a.site_id)?;
            let report: Value = serde_json::from_str(&a.report).unwrap_or(Value::Null);
            Some(FillTarget {
                appliance_id: a.id.clone(),
                site_id: a.site_id.clone(),
                region: site.region.clone(),
                capacity_bytes: report["disk_capacity"].as_u64().unwrap_or(default_capacity),
            })
        })
        .collect();
    let (mut hits, mut misses) = (0u64, 0u64);
    for a in &appliances {
        let report: Value = serde_json::from_str(&a.report).unwrap_or(Value::Null);
        hits += report["hits"].as_u64().unwrap_or(0);
        misses += report["misses"].as_u64().unwrap_or(0);
    }
    Ok(FleetFill {
        plan: plan(&demand, &sizes, &targets, 0.3),
        realized_hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        views: events.len(),
    })
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
