//! The home page: rows of titles for one profile.
//!
//! Today: Continue Watching (from stored progress), New, and one row per
//! genre. Personalised rows (Top Picks, Because You Watched, Trending) arrive
//! with the recommendation engine and slot in here.

use crate::auth::Caller;
use crate::catalog::{card, max_level, profile_of};
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use reel_store::{Title, TitleFilter};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

pub fn routes() -> Router<AppState> {
    Router::new().route("/home", get(home))
}

#[derive(Deserialize)]
struct HomeQuery {
    profile: Option<String>,
}

const ROW_LENGTH: usize = 20;

async fn home(State(state): State<AppState>, caller: Caller, Query(q): Query<HomeQuery>) -> ApiResult<Json<Value>> {
    let profile_id = q.profile.ok_or_else(|| ApiError::validation("pass ?profile=ID (see GET /api/v1/profiles)"))?;
    let profile = profile_of(&state, &caller, &profile_id).await?;
    let level = max_level(Some(&profile));
    let all = state.store.titles(&TitleFilter { max_level: level, ..TitleFilter::default() }).await?;
    let by_id: HashMap<&str, &Title> = all.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut rows = Vec::new();

    // Continue Watching: an episode shows as its series, once, at its latest episode.
    let mut seen = HashSet::new();
    let mut continuing = Vec::new();
    for p in state.store.continue_watching(&profile.id, 50).await? {
        let shown_id = p.series_id.clone().unwrap_or_else(|| p.title_id.clone());
        let Some(title) = by_id.get(shown_id.as_str()) else { continue };
        if !seen.insert(shown_id) {
            continue;
        }
        let mut item = card(title);
        item["progress"] = json!({
            "position_s": p.position_s, "duration_s": p.duration_s,
            "episode_id": p.series_id.as_ref().map(|_| p.title_id.clone()),
        });
        continuing.push(item);
        if continuing.len() == ROW_LENGTH {
            break;
        }
    }
    if !continuing.is_empty() {
        rows.push(json!({"id": "continue-watching", "title": "Continue Watching", "items": continuing}));
    }

    rows.push(json!({"id": "new", "title": "New on Reel",
                     "items": all.iter().take(ROW_LENGTH).map(card).collect::<Vec<_>>()}));

    // Genre rows, largest first, each newest first.
    let genres = state.store.genres().await?;
    let mut genre_rows: Vec<(usize, Value)> = genres
        .iter()
        .filter_map(|g| {
            let items: Vec<Value> =
                all.iter().filter(|t| t.genres.contains(&g.slug)).take(ROW_LENGTH).map(card).collect();
            (!items.is_empty()).then(|| {
                (items.len(), json!({"id": format!("genre-{}", g.slug), "title": g.name, "items": items}))
            })
        })
        .collect();
    genre_rows.sort_by(|a, b| b.0.cmp(&a.0));
    rows.extend(genre_rows.into_iter().map(|(_, r)| r));
    Ok(Json(json!({ "profile": profile, "rows": rows })))
}
