//! The home page: rows of titles chosen for one profile, each title with
//! the evidence for why it is there.
//!
//! Candidates come from the active recommendation model (the profile's
//! current history folded in, so a title watched a minute ago already
//! counts), from titles like the ones it watched last, from what is
//! trending in its region, from what is new, and from its genres. Rows are
//! then ordered for the profile, no title repeats within the first screen,
//! and maturity limits hold everywhere. A profile with no history gets
//! popularity and the genres it picked. Each card's artwork variant is
//! picked by the artwork bandit and the impression logged with its
//! propensity.

use crate::auth::Caller;
use crate::catalog::{artwork_url, card, max_level, profile_of};
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::recs::{artwork_context, genre_affinity, history, Served};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use reel_store::{NewImpression, Title, TitleFilter};
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
/// The first screen: this many rows of this many cards, where no title repeats.
pub const FIRST_SCREEN_ROWS: usize = 4;
pub const FIRST_SCREEN_ITEMS: usize = 6;
/// "Because You Watched" rows, for this many recent titles.
const BECAUSE_ROWS: usize = 3;

/// A candidate row: its place in the ordering, and its titles with evidence.
struct Row {
    id: String,
    title: String,
    score: f64,
    items: Vec<(String, Value)>,
}

async fn home(State(state): State<AppState>, caller: Caller, Query(q): Query<HomeQuery>) -> ApiResult<Json<Value>> {
    let profile_id = q.profile.ok_or_else(|| ApiError::validation("pass ?profile=ID (see GET /api/v1/profiles)"))?;
    let profile = profile_of(&state, &caller, &profile_id).await?;
    let level = max_level(Some(&profile));
    let all = state.store.titles(&TitleFilter { max_level: level, ..TitleFilter::default() }).await?;
    let by_id: HashMap<&str, &Title> = all.iter().map(|t| (t.id.as_str(), t)).collect();
    let genres = state.store.genres().await?;
    let genre_names: HashMap<String, String> = genres.iter().map(|g| (g.slug.clone(), g.name.clone())).collect();

    let summaries = state.store.profile_watch_summaries(&profile.id).await?;
    let hist = history(&summaries);
    let watched: HashSet<&str> = hist.iter().map(|h| h.0.as_str()).collect();
    let picked = state.store.profile_genres(&profile.id).await?;
    let affinity = genre_affinity(&hist, &by_id, &picked);
    let served = state.recs.served(&state.store).await;
    let trending = state.recs.trending(&state.store).await?;
    let region = summaries.iter().max_by_key(|s| s.last_ms).and_then(|s| s.region.clone());

    // Relevance of each title for this profile, in [0, 1]: the model's
    // score (rank-normalized) when it knows the profile's taste; else
    // popularity and the genres it likes.
    let model_scores = served.as_ref().map(|s| s.scores_for(&hist.iter().map(|h| (h.0.clone(), h.1)).collect::<Vec<_>>())).unwrap_or_default();
    let global = trending.get(&None).cloned().unwrap_or_default();
    let popularity = rank_normalize(all.iter().map(|t| (t.id.as_str(), global.get(&t.id).copied().unwrap_or(0.0))));
    let model_rank = rank_normalize(all.iter().filter_map(|t| model_scores.get(&t.id).map(|s| (t.id.as_str(), *s as f64))));
    let taste = |t: &Title| -> f64 { t.genres.iter().map(|g| affinity.get(g).copied().unwrap_or(0.0)).fold(0.0, f64::max) };
    let relevance = |t: &Title| -> f64 {
        match model_rank.get(t.id.as_str()) {
            Some(m) => 0.8 * m + 0.2 * taste(t),
            None => 0.5 * popularity.get(t.id.as_str()).copied().unwrap_or(0.0) + 0.5 * taste(t),
        }
    };
    let top_genre = |t: &Title| -> Option<String> {
        t.genres.iter().max_by(|a, b| affinity.get(*a).unwrap_or(&0.0).total_cmp(affinity.get(*b).unwrap_or(&0.0))).cloned()
    };
    let mut rows: Vec<Row> = Vec::new();

    // Top Picks: unwatched titles by relevance.
    let mut picks: Vec<&Title> = all.iter().filter(|t| !watched.contains(t.id.as_str())).collect();
    picks.sort_by(|a, b| relevance(b).total_cmp(&relevance(a)).then(a.id.cmp(&b.id)));
    let items = picks
        .iter()
        .take(ROW_LENGTH)
        .map(|t| {
            let evidence = if model_rank.contains_key(t.id.as_str()) {
                let g = top_genre(t).and_then(|g| genre_names.get(&g).cloned()).unwrap_or_else(|| "what you watch".into());
                json!({"reason": "top_pick", "text": format!("Matches your taste for {g}"), "score": relevance(t)})
            } else if let Some(g) = t.genres.iter().find(|g| picked.contains(g)) {
                json!({"reason": "picked_genre", "text": format!("You picked {}", genre_names.get(g).cloned().unwrap_or_else(|| g.clone())), "score": relevance(t)})
            } else {
                json!({"reason": "popular", "text": "Popular on Reel", "score": relevance(t)})
            };
            (t.id.clone(), evidence)
        })
        .collect();
    // A profile with no history and no picks would get Trending again.
    let personal = !hist.is_empty() || !picked.is_empty();
    if personal {
        rows.push(Row { id: "top-picks".into(), title: "Top Picks for You".into(), score: 1.0, items });
    }

    // Because You Watched, for the most recent titles still in the catalog.
    for (n, (source, _, _)) in hist.iter().filter(|h| by_id.contains_key(h.0.as_str())).take(BECAUSE_ROWS).enumerate() {
        let Some(src) = by_id.get(source.as_str()) else { continue };
        let mut similar: Vec<(String, f64)> = served
            .as_ref()
            .map(|s: &std::sync::Arc<Served>| s.similar(source, 50))
            .unwrap_or_default()
            .into_iter()
            .filter(|(id, _)| by_id.contains_key(id.as_str()) && !watched.contains(id.as_str()))
            .map(|(id, s)| (id, s as f64))
            .collect();
        if similar.is_empty() {
            // No model or a title it does not know: shared genres.
            similar = all
                .iter()
                .filter(|t| t.id != *source && !watched.contains(t.id.as_str()))
                .filter_map(|t| {
                    let shared = t.genres.iter().filter(|g| src.genres.contains(g)).count();
                    let union = t.genres.len() + src.genres.len() - shared;
                    (shared > 0).then(|| (t.id.clone(), shared as f64 / union.max(1) as f64 + 0.01 * relevance(t)))
                })
                .collect();
            similar.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        let items: Vec<(String, Value)> = similar
            .into_iter()
            .take(ROW_LENGTH)
            .map(|(id, s)| {
                let text = format!("Because you watched {}", src.name);
                (id, json!({"reason": "because_you_watched", "text": text, "source_title": source, "similarity": s}))
            })
            .collect();
        rows.push(Row { id: format!("because-{source}"), title: format!("Because You Watched {}", src.name), score: 0.9 - 0.05 * n as f64, items });
    }

    // Trending Now, in the profile's region when it has one.
    let (trend, where_) = match region.as_ref().and_then(|r| trending.get(&Some(r.clone())).map(|t| (t, r.clone()))) {
        Some((t, r)) => (t.clone(), Some(r)),
        None => (global.clone(), None),
    };
    let mut hot: Vec<(&Title, f64)> = all.iter().filter_map(|t| trend.get(&t.id).map(|s| (t, *s))).filter(|(_, s)| *s > 0.0).collect();
    hot.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    let text = match &where_ {
        Some(r) => format!("Trending in {r}"),
        None => "Trending now".to_string(),
    };
    let items = hot.iter().take(ROW_LENGTH).map(|(t, s)| (t.id.clone(), json!({"reason": "trending", "text": text, "region": where_, "score": s}))).collect();
    rows.push(Row { id: "trending".into(), title: "Trending Now".into(), score: if personal { 0.6 } else { 0.9 }, items });

    // New Releases: newest year first, then newest in the catalog.
    let mut newest: Vec<&Title> = all.iter().collect();
    newest.sort_by(|a, b| b.year.cmp(&a.year).then(b.created_ms.cmp(&a.created_ms)).then(a.id.cmp(&b.id)));
    let items = newest.iter().take(ROW_LENGTH).map(|t| (t.id.clone(), json!({"reason": "new", "text": format!("New from {}", t.year)}))).collect();
    rows.push(Row { id: "new".into(), title: "New Releases".into(), score: 0.5, items });

    // Genre rows, each ranked for the profile, ordered by its affinity.
    for (slug, name) in &genre_names {
        let mut in_genre: Vec<&Title> = all.iter().filter(|t| t.genres.contains(slug)).collect();
        if in_genre.is_empty() {
            continue;
        }
        in_genre.sort_by(|a, b| relevance(b).total_cmp(&relevance(a)).then(a.id.cmp(&b.id)));
        let a = affinity.get(slug).copied().unwrap_or(0.0);
        let text = if a > 0.0 { format!("Because you like {name}") } else { name.clone() };
        let items = in_genre.iter().take(ROW_LENGTH).map(|t| (t.id.clone(), json!({"reason": "genre", "text": text, "genre": slug, "affinity": a}))).collect();
        rows.push(Row { id: format!("genre-{slug}"), title: name.clone(), score: 0.2 + 0.75 * a, items });
    }

    rows.retain(|r| !r.items.is_empty());
    rows.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));

    // Continue Watching leads: an episode shows as its series, once, at its latest episode.
    let mut seen = HashSet::new();
    let mut continuing = Vec::new();
    for p in state.store.continue_watching(&profile.id, 50).await? {
        let shown_id = p.series_id.clone().unwrap_or_else(|| p.title_id.clone());
        if !by_id.contains_key(shown_id.as_str()) || !seen.insert(shown_id.clone()) {
            continue;
        }
        let progress = json!({
            "position_s": p.position_s, "duration_s": p.duration_s,
            "episode_id": p.series_id.as_ref().map(|_| p.title_id.clone()),
        });
        continuing.push((shown_id, json!({"reason": "continue_watching", "text": "Pick up where you left off", "progress": progress})));
        if continuing.len() == ROW_LENGTH {
            break;
        }
    }
    if !continuing.is_empty() {
        rows.insert(0, Row { id: "continue-watching".into(), title: "Continue Watching".into(), score: 2.0, items: continuing });
    }

    // No title twice in the first screen: a first-screen row keeps only
    // titles not shown above it (all of them when it has enough to fill its
    // visible cards); a row with nothing new moves below the first screen.
    let mut shown: HashSet<String> = HashSet::new();
    let mut first_screen = Vec::new();
    let mut later = Vec::new();
    for mut row in rows {
        if first_screen.len() == FIRST_SCREEN_ROWS {
            later.push(row);
            continue;
        }
        let (fresh, repeats): (Vec<_>, Vec<_>) = row.items.drain(..).partition(|(id, _)| !shown.contains(id));
        if fresh.is_empty() {
            row.items = repeats;
            later.push(row);
            continue;
        }
        let full = fresh.len() >= FIRST_SCREEN_ITEMS;
        row.items = fresh;
        if full {
            row.items.extend(repeats);
        }
        for (id, _) in row.items.iter().take(FIRST_SCREEN_ITEMS) {
            shown.insert(id.clone());
        }
        first_screen.push(row);
    }
    let rows: Vec<Row> = first_screen.into_iter().chain(later).collect();

    // Artwork: the bandit picks each first-screen card's variant, logged
    // with its propensity; further cards get the policy's greedy choice.
    let ids: Vec<String> = rows.iter().flat_map(|r| r.items.iter().map(|(id, _)| id.clone())).collect::<HashSet<_>>().into_iter().collect();
    let variants = state.store.artwork_variants(&ids).await?;
    let hour = ((reel_domain::now_ms() / 3_600_000) % 24) as u32;
    let (genre_order, bandit) = match served.as_ref() {
        Some(s) if s.artwork.is_some() => (s.artwork_genres.clone(), s.artwork.clone()),
        _ => (genres.iter().map(|g| g.slug.clone()).collect(), None),
    };
    let x = artwork_context(&genre_order, &affinity, hour);
    // Each profile's draw for a title holds for a day: artwork does not
    // flicker between visits, and differs between profiles and days.
    let day = (reel_domain::now_ms() / 86_400_000) as u64;
    let mut impressions = Vec::new();
    let mut out_rows = Vec::new();
    for (r, row) in rows.into_iter().enumerate() {
        let mut items = Vec::new();
        for (i, (id, evidence)) in row.items.into_iter().enumerate() {
            let Some(t) = by_id.get(id.as_str()) else { continue };
            let mut c = card(t);
            let choices = variants.get(&id).cloned().unwrap_or_default();
            let first_screen = r < FIRST_SCREEN_ROWS && i < FIRST_SCREEN_ITEMS;
            let choice = match (&bandit, first_screen) {
                (_, _) if choices.is_empty() => None,
                (Some(b), true) => b.choose(&id, &choices, &x, &mut reel_recs::Rng::derive(day, &[hash(&profile.id), hash(&id)])).map(|c| (c.variant, c.propensity)),
                (Some(b), false) => b.greedy(&id, &choices, &x).map(|g| (choices[g].clone(), 1.0)),
                (None, true) => {
                    let pick = reel_recs::Rng::derive(day, &[hash(&profile.id), hash(&id)]).below(choices.len());
                    Some((choices[pick].clone(), 1.0 / choices.len() as f64))
                }
                (None, false) => Some((choices[0].clone(), 1.0)),
            };
            if let Some((variant, propensity)) = choice {
                c["artwork"] = json!(artwork_url(&id, &variant));
                c["artwork_variant"] = json!(variant);
                if first_screen {
                    impressions.push(NewImpression { profile_id: profile.id.clone(), title_id: id.clone(), variant, propensity, context: json!(x) });
                }
            }
            if let Some(p) = evidence.get("progress") {
                c["progress"] = p.clone();
            }
            c["evidence"] = evidence;
            items.push(c);
        }
        out_rows.push(json!({"id": row.id, "title": row.title, "items": items}));
    }
    if let Err(e) = state.store.log_impressions(&impressions, reel_domain::now_ms()).await {
        // The page still renders; the policy loses a few logs.
        tracing::warn!(message = "cannot log artwork impressions", error = %e);
    }
    Ok(Json(json!({
        "profile": profile,
        "rows": out_rows,
        "model": served.as_ref().map(|s| json!({"version": s.version})),
    })))
}

/// Scores to ranks in [0, 1] (1 for the best), ties sharing a rank.
fn rank_normalize<'a>(scores: impl Iterator<Item = (&'a str, f64)>) -> HashMap<&'a str, f64> {
    let mut v: Vec<(&str, f64)> = scores.collect();
    if v.is_empty() {
        return HashMap::new();
    }
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = v.len();
    let mut out = HashMap::new();
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && v[j + 1].1 == v[i].1 {
            j += 1;
        }
        let rank = if n == 1 { 1.0 } else { ((i + j) as f64 / 2.0) / (n - 1) as f64 };
        for p in &v[i..=j] {
            out.insert(p.0, rank);
        }
        i = j + 1;
    }
    out
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}
