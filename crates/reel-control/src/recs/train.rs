//! Training in production: the viewing history from the store becomes a
//! confidence matrix; ALS is evaluated on a held-out slice (each profile's
//! latest title) against popularity, then trained on everything; the
//! artwork policy is fitted on the impression logs and judged offline; the
//! result is stored as the next model version and, unless told otherwise,
//! activated. Every node picks the new version up within seconds.

use super::{history, StoredModel, CONFIDENCE_ALPHA};
use reel_recs::bandit::{self, ArtworkBandit, BanditParams, Logged};
use reel_recs::{als, Event, Interactions, Model};
use reel_store::Store;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub factors: usize,
    pub iterations: usize,
    pub regularization: f32,
    pub seed: u64,
    /// Make the new version the served one.
    pub activate: bool,
    /// The artwork policy's exploration share.
    pub exploration: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { factors: 32, iterations: 15, regularization: 0.1, seed: 42, activate: true, exploration: 0.1 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub version: i64,
    pub activated: bool,
    pub profiles: usize,
    pub titles: usize,
    pub interactions: usize,
    /// Held-out metrics per model (`als`, `popularity`), and the artwork
    /// policy's offline estimates (`artwork`).
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
    pub train_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("no viewing history to train on yet: play something, or load some with `reel recs import-movielens DIR`")]
    NoHistory,
    #[error(transparent)]
    Store(#[from] reel_store::StoreError),
    #[error("training failed: {0}")]
    Engine(String),
}

fn engine(e: impl std::fmt::Display) -> TrainError {
    TrainError::Engine(e.to_string())
}

/// Trains on the store's whole viewing history and stores the model.
pub async fn train(store: &Store, opts: &TrainOptions) -> Result<TrainReport, TrainError> {
    let started = std::time::Instant::now();
    let summaries = store.watch_summaries(0).await?;
    // Per profile, per item (series rolled up).
    let mut by_profile: BTreeMap<String, Vec<reel_store::WatchSummary>> = BTreeMap::new();
    for s in summaries {
        by_profile.entry(s.profile_id.clone()).or_default().push(s);
    }
    let mut user_ids = Vec::new();
    let mut item_ids: Vec<String> = Vec::new();
    let mut item_index: HashMap<String, u32> = HashMap::new();
    let mut events = Vec::new();
    for (profile, sums) in &by_profile {
        let user = user_ids.len() as u32;
        user_ids.push(profile.clone());
        for (item, c, last_ms) in history(sums) {
            let next = item_ids.len() as u32;
            let i = *item_index.entry(item.clone()).or_insert_with(|| {
                item_ids.push(item);
                next
            });
            events.push(Event { user, item: i, weight: c, timestamp: last_ms / 1000 });
        }
    }
    if events.is_empty() {
        return Err(TrainError::NoHistory);
    }
    let (n_users, n_items) = (user_ids.len(), item_ids.len());
    let params = als::AlsParams {
        factors: opts.factors,
        iterations: opts.iterations,
        regularization: opts.regularization,
        solver: als::AlsSolver::ConjugateGradient { steps: 3 },
        seed: opts.seed,
    };
    let fit = {
        let params = params.clone();
        tokio::task::spawn_blocking(move || -> Result<_, TrainError> {
            let m = Interactions::with_shape(n_users, n_items, &events).map_err(engine)?;
            let mut metrics = BTreeMap::new();
            // Held out: each profile's latest title.
            let split = reel_recs::split::leave_last_out(&m);
            let held = als::train_als(&split.train, &params).map_err(engine)?;
            metrics.insert("als".to_string(), reel_recs::eval::score_model(&held, &split, 10));
            let now_s = reel_domain::now_ms() / 1000;
            let pop = reel_recs::popularity::Popularity::from_interactions(&split.train, now_s, super::TRENDING_HALF_LIFE_S).map_err(engine)?;
            metrics.insert("popularity".to_string(), reel_recs::eval::score_model(&pop, &split, 10));
            let full = als::train_als(&m, &params).map_err(engine)?;
            Ok((full, metrics, m.nnz()))
        })
        .await
        .map_err(engine)??
    };
    let (full, mut metrics, nnz) = fit;

    // The artwork policy, from the impressions logged so far.
    let genres: Vec<String> = store.genres().await?.into_iter().map(|g| g.slug).collect();
    let dim = 1 + genres.len() + 4;
    let mut variants: HashMap<String, Vec<String>> = HashMap::new();
    let mut logs = Vec::new();
    for imp in store.impressions(0, 2_000_000).await? {
        let Some(x) = imp.context.as_array().map(|a| a.iter().filter_map(|v| v.as_f64()).collect::<Vec<f64>>()) else { continue };
        if x.len() != dim || !(imp.propensity > 0.0 && imp.propensity <= 1.0) {
            continue; // logged under another genre list
        }
        if !variants.contains_key(&imp.title_id) {
            let vs = store.artwork(&imp.title_id).await?.into_iter().map(|a| a.variant).collect();
            variants.insert(imp.title_id.clone(), vs);
        }
        let choices = variants.get(&imp.title_id).cloned().unwrap_or_default();
        if !choices.contains(&imp.variant) {
            continue;
        }
        logs.push(Logged { group: imp.title_id, choices, context: x, shown: imp.variant, propensity: imp.propensity, reward: if imp.played_ms.is_some() { 1.0 } else { 0.0 } });
    }
    let artwork = ArtworkBandit::fit(dim, BanditParams { alpha: 0.3, exploration: opts.exploration, ridge: 1.0 }, &logs).map_err(engine)?;
    if !logs.is_empty() {
        let new = bandit::evaluate(&artwork, &logs, dim).map_err(engine)?;
        let fixed = bandit::evaluate(&bandit::Fixed, &logs, dim).map_err(engine)?;
        let logged = logs.iter().map(|l| l.reward).sum::<f64>() / logs.len() as f64;
        let mut a = BTreeMap::new();
        a.insert("impressions".into(), logs.len() as f64);
        a.insert("logged_play_rate".into(), logged);
        a.insert("new_policy_ips".into(), new.ips);
        a.insert("new_policy_snips".into(), new.snips);
        a.insert("new_policy_dr".into(), new.doubly_robust);
        if let Some(r) = new.replay {
            a.insert("new_policy_replay".into(), r);
        }
        a.insert("first_variant_snips".into(), fixed.snips);
        metrics.insert("artwork".into(), a);
    }

    use base64::Engine;
    let stored = StoredModel {
        format: 1,
        item_ids,
        user_ids,
        regularization: opts.regularization,
        factors: base64::engine::general_purpose::STANDARD.encode(Model::Factors(full).to_bytes()),
        artwork: Some(artwork),
        artwork_genres: genres,
    };
    let body = serde_json::to_string(&stored).map_err(engine)?;
    let params_json = json!({
        "factors": opts.factors, "iterations": opts.iterations, "regularization": opts.regularization,
        "seed": opts.seed, "confidence_alpha": CONFIDENCE_ALPHA, "exploration": opts.exploration,
        "profiles": n_users, "titles": n_items, "interactions": nnz,
    });
    let version = store.save_model("als", &params_json, &serde_json::to_value(&metrics).map_err(engine)?, &body, reel_domain::now_ms()).await?;
    if opts.activate {
        store.activate_model(version).await?;
    }
    Ok(TrainReport {
        version,
        activated: opts.activate,
        profiles: n_users,
        titles: n_items,
        interactions: nnz,
        metrics,
        train_seconds: started.elapsed().as_secs_f64(),
    })
}
