//! Browsing the catalog (title pages, search, genres) and editing it (admin).

use crate::auth::{Admin, Caller};
use crate::error::{check_id, ApiError, ApiResult, Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use reel_domain::{slugify, Maturity, TitleKind, KIDS_MAX_LEVEL};
use reel_store::{NewTitle, Profile, StoreError, Title, TitleFilter, TitlePatch};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/titles/{id}", get(title_page))
        .route("/titles/{id}/artwork/{file}", get(crate::artwork::artwork))
        .route("/search", get(search))
        .route("/genres", get(genres))
        .route("/admin/titles", post(admin_create))
        .route("/admin/titles/{id}", patch(admin_update).delete(admin_delete))
        .route("/admin/titles/{id}/ladder", get(admin_ladder))
        .route("/admin/genres", post(admin_genre))
}

/// The profile a request browses as, checked to belong to the caller.
/// Another account's profile is "not found", not "forbidden": ids don't leak.
pub(crate) async fn profile_of(state: &AppState, caller: &Caller, profile_id: &str) -> ApiResult<Profile> {
    check_id(profile_id, "profile")?;
    state
        .store
        .profile(&caller.account.id, profile_id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))
}

/// A title's effective maturity level: an episode is also held to its
/// series' rating.
pub(crate) async fn rating_level(state: &AppState, title: &Title) -> ApiResult<u8> {
    let mut level = title.maturity.level();
    if let Some(parent) = &title.parent_id {
        if let Some(series) = state.store.title(parent).await? {
            level = level.max(series.maturity.level());
        }
    }
    Ok(level)
}

/// Highest maturity level a profile may see.
pub(crate) fn max_level(profile: Option<&Profile>) -> Option<u8> {
    profile.filter(|p| p.kids).map(|_| KIDS_MAX_LEVEL)
}

pub(crate) fn artwork_url(title_id: &str, variant: &str) -> String {
    format!("/api/v1/titles/{title_id}/artwork/{variant}.svg")
}

/// A title as a card on a row or in search results.
pub(crate) fn card(t: &Title) -> Value {
    json!({
        "id": t.id, "name": t.name, "kind": t.kind, "year": t.year,
        "maturity": t.maturity, "genres": t.genres, "duration_s": t.duration_s,
        "synopsis": t.synopsis, "artwork": artwork_url(&t.id, "a"),
        "backdrop": format!("{}?backdrop=true", artwork_url(&t.id, "a")),
    })
}

#[derive(Deserialize)]
struct ProfileQuery {
    profile: Option<String>,
}

async fn title_page(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ProfileQuery>,
) -> ApiResult<Json<Value>> {
    check_id(&id, "title")?;
    let profile = match &q.profile {
        Some(p) => Some(profile_of(&state, &caller, p).await?),
        None => None,
    };
    let title = state.store.title(&id).await?.ok_or_else(|| ApiError::not_found("title"))?;
    if let Some(level) = max_level(profile.as_ref()) {
        if rating_level(&state, &title).await? > level {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "maturity", "this title is not available on a kids profile"));
        }
    }
    let mut artwork = vec![json!({"variant": "backdrop", "url": format!("{}?backdrop=true", artwork_url(&id, "a"))})];
    artwork.extend(
        state
            .store
            .artwork(&id)
            .await?
            .into_iter()
            .map(|a| json!({"variant": a.variant, "url": artwork_url(&id, &a.variant)})),
    );
    let mut seasons: Vec<Value> = Vec::new();
    let mut episode_ids = Vec::new();
    if title.kind == TitleKind::Series {
        let mut current: Option<(i64, Vec<Value>)> = None;
        for e in state.store.episodes(&id).await? {
            episode_ids.push(e.id.clone());
            let season = e.season_number.unwrap_or(1);
            let ep = json!({"id": e.id, "name": e.name, "number": e.episode_number,
                            "synopsis": e.synopsis, "duration_s": e.duration_s});
            match &mut current {
                Some((n, eps)) if *n == season => eps.push(ep),
                _ => {
                    if let Some((n, eps)) = current.take() {
                        seasons.push(json!({"number": n, "episodes": eps}));
                    }
                    current = Some((season, vec![ep]));
                }
            }
        }
        if let Some((n, eps)) = current {
            seasons.push(json!({"number": n, "episodes": eps}));
        }
    }
    let renditions: Vec<Value> = state
        .store
        .renditions(&id)
        .await?
        .into_iter()
        .map(|r| json!({"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth}))
        .collect();
    let mut body = card(&title);
    body["artwork"] = json!(artwork);
    body["seasons"] = json!(seasons);
    body["renditions"] = json!(renditions);
    body["parent_id"] = json!(title.parent_id);
    if let Some(p) = &profile {
        let mut ids = episode_ids;
        ids.push(id.clone());
        let progress = state.store.progress_for(&p.id, &ids).await?;
        // For a series, the most recent episode's progress is the series'.
        if let Some(pr) = progress.iter().max_by_key(|p| p.updated_ms) {
            body["progress"] = json!({"position_s": pr.position_s, "duration_s": pr.duration_s,
                                      "completed": pr.completed, "episode_id": pr.series_id.as_ref().map(|_| &pr.title_id)});
        }
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    genre: Option<String>,
    profile: Option<String>,
}

async fn search(State(state): State<AppState>, caller: Caller, Query(q): Query<SearchQuery>) -> ApiResult<Json<Value>> {
    let profile = match &q.profile {
        Some(p) => Some(profile_of(&state, &caller, p).await?),
        None => None,
    };
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 100) {
        return Err(ApiError::validation("search text is at most 100 characters"));
    }
    let filter = TitleFilter {
        max_level: max_level(profile.as_ref()),
        genre: q.genre.clone().filter(|g| !g.is_empty()),
        query: text.map(str::to_string),
        limit: Some(60),
        ..TitleFilter::default()
    };
    let results: Vec<Value> = state.store.titles(&filter).await?.iter().map(card).collect();
    Ok(Json(json!({ "results": results })))
}

async fn genres(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "genres": state.store.genres().await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TitleInput {
    kind: String,
    name: String,
    #[serde(default)]
    synopsis: String,
    year: i64,
    maturity: String,
    #[serde(default)]
    genres: Vec<String>,
    #[serde(default)]
    duration_s: f64,
    parent_id: Option<String>,
    season_number: Option<i64>,
    episode_number: Option<i64>,
}

fn check_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::validation(format!("{field} must be 1 to {max} printable characters")));
    }
    Ok(v.to_string())
}

/// A name is one line.
fn check_name(name: &str) -> ApiResult<String> {
    let name = check_text("name", name, 200)?;
    if name.contains('\n') {
        return Err(ApiError::validation("name must be one line"));
    }
    Ok(name)
}

fn check_maturity(m: &str) -> ApiResult<Maturity> {
    Maturity::parse(m).ok_or_else(|| {
        let all: Vec<&str> = Maturity::ALL.iter().map(|m| m.as_str()).collect();
        ApiError::validation(format!("maturity must be one of {}", all.join(", ")))
    })
}

fn check_year(y: i64) -> ApiResult<i64> {
    if (1870..=2100).contains(&y) {
        Ok(y)
    } else {
        Err(ApiError::validation("year must be between 1870 and 2100"))
    }
}

fn genre_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::validation("unknown genre: add it first (POST /api/v1/admin/genres)"),
        StoreError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", "a title with this id already exists"),
        e => e.into(),
    }
}

/// The checks every way of adding a title makes (the API and the CLI):
/// kind and parent, duration, name and synopsis, year. Returns the title
/// with its text trimmed.
pub async fn check_new_title(store: &reel_store::Store, mut new: NewTitle) -> ApiResult<NewTitle> {
    if new.kind == TitleKind::Episode {
        let parent = new.parent_id.as_deref().ok_or_else(|| ApiError::validation("an episode needs parent_id"))?;
        check_id(parent, "series")?;
        let series = store.title(parent).await?.ok_or_else(|| ApiError::not_found("series"))?;
        if series.kind != TitleKind::Series {
            return Err(ApiError::validation("parent_id must be a series"));
        }
    } else if new.parent_id.is_some() {
        return Err(ApiError::validation("only episodes have a parent_id"));
    }
    check_duration(new.duration_s)?;
    new.name = check_name(&new.name)?;
    new.synopsis = if new.synopsis.trim().is_empty() { String::new() } else { check_text("synopsis", &new.synopsis, 2000)? };
    new.year = check_year(new.year)?;
    Ok(new)
}

/// The checks every way of editing a title makes: only what is given.
pub fn check_title_patch(mut patch: TitlePatch) -> ApiResult<TitlePatch> {
    patch.name = patch.name.as_deref().map(check_name).transpose()?;
    patch.synopsis = patch.synopsis.as_deref().map(|s| check_text("synopsis", s, 2000)).transpose()?;
    patch.year = patch.year.map(check_year).transpose()?;
    patch.duration_s = patch.duration_s.map(check_duration).transpose()?;
    Ok(patch)
}

fn check_duration(d: f64) -> ApiResult<f64> {
    if (0.0..=86_400.0).contains(&d) {
        Ok(d)
    } else {
        Err(ApiError::validation("duration_s must be between 0 and 86400"))
    }
}

async fn admin_create(State(state): State<AppState>, admin: Admin, Json(req): Json<TitleInput>) -> ApiResult<Response> {
    let kind = TitleKind::parse(&req.kind).ok_or_else(|| ApiError::validation("kind must be movie, series or episode"))?;
    let new = NewTitle {
        id: None,
        kind,
        parent_id: req.parent_id,
        season_number: req.season_number,
        episode_number: req.episode_number,
        artwork: crate::artwork::default_styles(req.name.trim()),
        name: req.name,
        synopsis: req.synopsis,
        year: req.year,
        maturity: check_maturity(&req.maturity)?,
        duration_s: req.duration_s,
        genres: req.genres.iter().map(|g| slugify(g)).collect(),
        created_ms: None,
    };
    let new = check_new_title(&state.store, new).await?;
    let title = state.store.create_title(new).await.map_err(genre_error)?;
    tracing::info!(message = "title added", title = %title.id, by = %admin.0.account.id);
    Ok((StatusCode::CREATED, axum::Json(card(&title))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TitleEdit {
    name: Option<String>,
    synopsis: Option<String>,
    year: Option<i64>,
    maturity: Option<String>,
    genres: Option<Vec<String>>,
    duration_s: Option<f64>,
}

async fn admin_update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    Json(req): Json<TitleEdit>,
) -> ApiResult<Json<Value>> {
    check_id(&id, "title")?;
    let patch = check_title_patch(TitlePatch {
        name: req.name,
        synopsis: req.synopsis,
        year: req.year,
        maturity: req.maturity.as_deref().map(check_maturity).transpose()?,
        genres: req.genres.map(|gs| gs.iter().map(|g| slugify(g)).collect()),
        duration_s: req.duration_s,
    })?;
    match state.store.update_title(&id, patch).await {
        Ok(t) => Ok(Json(card(&t))),
        Err(StoreError::NotFound) if state.store.title(&id).await?.is_none() => Err(ApiError::not_found("title")),
        Err(e) => Err(genre_error(e)),
    }
}

async fn admin_delete(State(state): State<AppState>, _admin: Admin, Path(id): Path<String>) -> ApiResult<StatusCode> {
    check_id(&id, "title")?;
    match state.store.delete_title(&id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(ApiError::not_found("title")),
        Err(e) => Err(e.into()),
    }
}

/// The per-title ladder the ingest pipeline chose: candidates (bitrate,
/// VMAF), the convex hull, the rungs, and the fixed-ladder comparison.
async fn admin_ladder(State(state): State<AppState>, _admin: Admin, Path(id): Path<String>) -> ApiResult<Response> {
    check_id(&id, "title")?;
    let text = state.store.ladder(&id).await?.ok_or_else(|| ApiError::not_found("ladder"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        tracing::warn!(message = "stored ladder is unreadable", title = %id, error = %e);
        ApiError::internal()
    })?;
    Ok(axum::Json(doc).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenreInput {
    name: String,
}

async fn admin_genre(State(state): State<AppState>, _admin: Admin, Json(req): Json<GenreInput>) -> ApiResult<Response> {
    let name = check_text("name", &req.name, 60)?;
    let slug = slugify(&name);
    if slug.is_empty() {
        return Err(ApiError::validation("a genre name needs letters or digits"));
    }
    state.store.upsert_genre(&slug, &name).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"slug": slug, "name": name}))).into_response())
}
