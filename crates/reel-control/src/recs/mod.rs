//! Personalization as a service: the active recommendation model, loaded
//! from the store and swapped in without a restart when another version is
//! activated (by `reel recs train` or a rollback, on any node), plus the
//! pieces the home page asks of it: a profile's taste vector folded in from
//! its current history, titles like a title, trending per region, and the
//! artwork variant to show.
//!
//! The engine (`reel-recs`) knows dense indices; this module maps them to
//! profile and title ids. Episodes count toward their series.

pub mod train;

use reel_recs::bandit::ArtworkBandit;
use reel_recs::als::FoldIn;
use reel_recs::{FactorModel, Model, SparseRow};
use reel_store::{Store, Title, WatchSummary};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often a node checks which model version is active.
const MODEL_CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long a trending computation is reused.
const TRENDING_TTL: Duration = Duration::from_secs(30);
/// Trending looks at this much history, decayed with this half-life.
pub const TRENDING_WINDOW_MS: i64 = 14 * 24 * 3600 * 1000;
pub const TRENDING_HALF_LIFE_S: f64 = 2.0 * 24.0 * 3600.0;
/// How much watching weighs in a confidence (`1 + alpha * ...`).
pub const CONFIDENCE_ALPHA: f32 = 10.0;

/// What `reel recs train` stores as one model version.
#[derive(Serialize, Deserialize)]
pub struct StoredModel {
    pub format: u32,
    /// Title (or series) id of each item index.
    pub item_ids: Vec<String>,
    /// Profile id of each user index.
    pub user_ids: Vec<String>,
    pub regularization: f32,
    /// The factor model, `reel_recs::Model::to_bytes`, base64.
    pub factors: String,
    /// The artwork policy, fitted on the impression logs so far.
    pub artwork: Option<ArtworkBandit>,
    /// The genre order of the artwork context's features.
    pub artwork_genres: Vec<String>,
}

/// The model a node is serving.
pub struct Served {
    pub version: i64,
    pub factors: Arc<FactorModel>,
    fold: FoldIn,
    pub item_ids: Vec<String>,
    item_index: HashMap<String, u32>,
    pub artwork: Option<ArtworkBandit>,
    pub artwork_genres: Vec<String>,
}

impl Served {
    pub fn decode(version: i64, body: &str) -> Result<Served, String> {
        use base64::Engine;
        let stored: StoredModel = serde_json::from_str(body).map_err(|e| format!("model {version}: {e}"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&stored.factors).map_err(|e| format!("model {version}: {e}"))?;
        let factors = match Model::from_bytes(&bytes).map_err(|e| format!("model {version}: {e}"))? {
            Model::Factors(f) => f,
            other => return Err(format!("model {version} is {}, not a factor model", other.name())),
        };
        if factors.n_items() != stored.item_ids.len() {
            return Err(format!("model {version}: {} item factors for {} ids", factors.n_items(), stored.item_ids.len()));
        }
        let item_index = stored.item_ids.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        let factors = Arc::new(factors);
        let fold = FoldIn::new(factors.clone(), stored.regularization).map_err(|e| format!("model {version}: {e}"))?;
        Ok(Served {
            version,
            factors,
            fold,
            item_ids: stored.item_ids,
            item_index,
            artwork: stored.artwork,
            artwork_genres: stored.artwork_genres,
        })
    }

    pub fn item(&self, id: &str) -> Option<u32> {
        self.item_index.get(id).copied()
    }

    /// Scores by title id for a profile with `history` (title id, confidence).
    pub fn scores_for(&self, history: &[(String, f32)]) -> HashMap<String, f32> {
        let mut h: Vec<(u32, f32)> = history.iter().filter_map(|(id, c)| self.item(id).map(|i| (i, *c))).collect();
        if h.is_empty() {
            return HashMap::new();
        }
        h.sort_by_key(|p| p.0);
        h.dedup_by_key(|p| p.0);
        let (indices, values): (Vec<u32>, Vec<f32>) = h.into_iter().unzip();
        let Ok(x) = self.fold.user_vector(SparseRow { indices: &indices, values: &values }) else { return HashMap::new() };
        let mut out = vec![0f32; self.factors.n_items()];
        self.factors.score_vector(&x, &mut out);
        self.item_ids.iter().cloned().zip(out).collect()
    }

    /// Titles most like `id`, by the cosine of their factors.
    pub fn similar(&self, id: &str, n: usize) -> Vec<(String, f32)> {
        let Some(i) = self.item(id) else { return Vec::new() };
        self.factors.similar_items(i, n).into_iter().map(|(j, s)| (self.item_ids[j as usize].clone(), s)).collect()
    }
}

/// Trending titles of one region (or everywhere), decayed scores.
pub type Trending = HashMap<Option<String>, HashMap<String, f64>>;

/// Per node: the model being served and short-lived caches.
#[derive(Default)]
pub struct Recs {
    current: RwLock<Option<Arc<Served>>>,
    checked: Mutex<Option<Instant>>,
    trending: Mutex<Option<(Instant, Arc<Trending>)>>,
}

impl Recs {
    /// The active model, reloading it if another version became active.
    pub async fn served(&self, store: &Store) -> Option<Arc<Served>> {
        let due = {
            let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            let due = checked.is_none_or(|t| t.elapsed() >= MODEL_CHECK_EVERY);
            if due {
                *checked = Some(Instant::now());
            }
            due
        };
        let current = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        if !due {
            return current;
        }
        let active = match store.active_model_version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(message = "cannot check the active model", error = %e);
                return current;
            }
        };
        if active == current.as_ref().map(|s| s.version) {
            return current;
        }
        let Some(version) = active else {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
            return None;
        };
        let loaded = match store.model_body(version).await {
            Ok(body) => tokio::task::spawn_blocking(move || Served::decode(version, &body)).await.map_err(|e| e.to_string()).and_then(|r| r),
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(s) => {
                tracing::info!(message = "serving recommendation model", version);
                let s = Arc::new(s);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
                Some(s)
            }
            Err(e) => {
                // Keep serving the previous model rather than none.
                tracing::warn!(message = "cannot load the active model", version, error = %e);
                current
            }
        }
    }

    /// Trending per region (key `None`: everywhere), cached briefly.
    pub async fn trending(&self, store: &Store) -> Result<Arc<Trending>, reel_store::StoreError> {
        if let Some((at, t)) = self.trending.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < TRENDING_TTL {
                return Ok(t.clone());
            }
        }
        let now = reel_domain::now_ms();
        let summaries = store.watch_summaries(now - TRENDING_WINDOW_MS).await?;
        let mut t: Trending = HashMap::new();
        for s in &summaries {
            let item = s.series_id.clone().unwrap_or_else(|| s.title_id.clone());
            let age_s = ((now - s.last_ms).max(0) as f64) / 1000.0;
            let w = confidence(s) as f64 * 0.5f64.powf(age_s / TRENDING_HALF_LIFE_S);
            *t.entry(None).or_default().entry(item.clone()).or_default() += w;
            if let Some(r) = &s.region {
                *t.entry(Some(r.clone())).or_default().entry(item).or_default() += w;
            }
        }
        let t = Arc::new(t);
        *self.trending.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), t.clone()));
        Ok(t)
    }

    /// Forgets cached trending (after bulk imports).
    pub fn invalidate(&self) {
        *self.trending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// How much a profile's history with a title says it likes it.
pub fn confidence(s: &WatchSummary) -> f32 {
    let share = if s.duration_s > 0.0 { (s.max_position_s / s.duration_s).clamp(0.0, 1.0) } else { 0.0 };
    reel_recs::watch_confidence(share as f32, (s.plays - 1).max(0) as u32, CONFIDENCE_ALPHA)
}

/// A profile's history per item (episodes rolled up to their series):
/// (item id, confidence, last watched), most recent first.
pub fn history(summaries: &[WatchSummary]) -> Vec<(String, f32, i64)> {
    let mut by_item: HashMap<String, (f32, i64)> = HashMap::new();
    for s in summaries {
        let item = s.series_id.clone().unwrap_or_else(|| s.title_id.clone());
        let e = by_item.entry(item).or_insert((0.0, 0));
        e.0 = e.0.max(confidence(s));
        e.1 = e.1.max(s.last_ms);
    }
    let mut h: Vec<(String, f32, i64)> = by_item.into_iter().map(|(k, (c, t))| (k, c, t)).collect();
    h.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    h
}

/// The artwork context: a bias, the profile's affinity for each genre (in
/// `genres` order), and the part of the day (4 one-hot buckets, UTC).
pub fn artwork_context(genres: &[String], affinity: &HashMap<String, f64>, hour: u32) -> Vec<f64> {
    let mut x = Vec::with_capacity(1 + genres.len() + 4);
    x.push(1.0);
    x.extend(genres.iter().map(|g| affinity.get(g).copied().unwrap_or(0.0)));
    let bucket = (hour % 24 / 6) as usize;
    x.extend((0..4).map(|b| if b == bucket { 1.0 } else { 0.0 }));
    x
}

/// A profile's affinity per genre in [0, 1]: its share of watching, with
/// the genres it picked at sign-up counted as one strong watch each.
pub fn genre_affinity(history: &[(String, f32, i64)], titles: &HashMap<&str, &Title>, picked: &[String]) -> HashMap<String, f64> {
    let mut a: HashMap<String, f64> = HashMap::new();
    let mut total = 0.0;
    for (id, c, _) in history {
        if let Some(t) = titles.get(id.as_str()) {
            for g in &t.genres {
                *a.entry(g.clone()).or_default() += *c as f64;
            }
            total += *c as f64;
        }
    }
    let pick_weight = (total / 4.0).max(CONFIDENCE_ALPHA as f64);
    for g in picked {
        *a.entry(g.clone()).or_default() += pick_weight;
        total += pick_weight;
    }
    if total > 0.0 {
        for v in a.values_mut() {
            *v = (*v / total).min(1.0);
        }
    }
    a
}
