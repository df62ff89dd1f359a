//! The standard offline comparison: every model trained on one fixed split
//! of MovieLens 100K and scored with the same metrics.
//!
//! Defaults ([`EvalOptions::default`]): ratings (1–5) are the confidence
//! values; a random 80/20 split of the rated pairs with seed 42
//! ([`crate::split::random_split`]); recommendations at k = 10 with each
//! user's training items left out; ALS (conjugate gradient and Cholesky)
//! and BPR with implicit's defaults but 64 factors; item-item cosine with
//! 20 neighbours; popularity with a 30-day half-life as of the last
//! training event.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::als::{train_als, AlsParams, AlsSolver};
use crate::bpr::{train_bpr, BprParams};
use crate::error::Result;
use crate::interactions::Interactions;
use crate::item_knn::ItemKnn;
use crate::metrics::{implicit_ranking_metrics, ranking_metrics};
use crate::model::Model;
use crate::movielens::load_movielens_100k;
use crate::popularity::Popularity;
use crate::recommender::Recommender;
use crate::split::{Split, SplitKind};

/// What to train and how to split; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalOptions {
    pub split: SplitKind,
    /// The cutoff; recall is also reported at `2k`.
    pub k: usize,
    /// Replace every rating by 1 (pure implicit feedback).
    pub binarize: bool,
    pub als: AlsParams,
    pub bpr: BprParams,
    pub item_item_neighbours: usize,
    pub popularity_half_life_days: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            split: SplitKind::Random {
                train_fraction: 0.8,
                seed: 42,
            },
            k: 10,
            binarize: false,
            als: AlsParams {
                seed: 42,
                ..AlsParams::default()
            },
            bpr: BprParams {
                seed: 42,
                ..BprParams::default()
            },
            item_item_neighbours: 20,
            popularity_half_life_days: 30.0,
        }
    }
}

/// Per model (`als`, `als-cholesky`, `bpr`, `item-item`, `popularity`), a
/// map of metric name to value: `precision@10`, `recall@10`, `recall@20`,
/// `ndcg@10`, `map@10`, `hit_rate@10`, `auc`, `coverage@10`, the
/// `implicit_*@10` numbers of [`crate::metrics::implicit_ranking_metrics`],
/// `users` evaluated and `train_seconds`. Serializes as that nested map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Report {
    pub models: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Loads `ml-100k` from `dir`, splits it, trains and scores every model.
pub fn evaluate_movielens(dir: &Path, opts: &EvalOptions) -> Result<Report> {
    let ml = load_movielens_100k(dir)?;
    let m = Interactions::with_shape(ml.n_users(), ml.n_items(), &ml.ratings)?;
    let m = if opts.binarize {
        m.map_values(|_| 1.0)
    } else {
        m
    };
    let split = opts.split.apply(&m)?;
    evaluate_split(&split, opts)
}

/// Trains and scores every model on a given split.
pub fn evaluate_split(split: &Split, opts: &EvalOptions) -> Result<Report> {
    let train = &split.train;
    let mut report = Report::default();
    let mut run = |name: &str, fit: &dyn Fn() -> Result<Model>| -> Result<()> {
        let start = Instant::now();
        let model = fit()?;
        let seconds = start.elapsed().as_secs_f64();
        let mut metrics = score_model(&model, split, opts.k);
        metrics.insert("train_seconds".into(), seconds);
        report.models.insert(name.to_string(), metrics);
        Ok(())
    };
    let cholesky = AlsParams {
        solver: AlsSolver::Cholesky,
        ..opts.als
    };
    let now = train.times().iter().copied().max().unwrap_or(0);
    let half_life = opts.popularity_half_life_days * 86_400.0;
    run("als", &|| Ok(Model::Factors(train_als(train, &opts.als)?)))?;
    run("als-cholesky", &|| {
        Ok(Model::Factors(train_als(train, &cholesky)?))
    })?;
    run("bpr", &|| Ok(Model::Factors(train_bpr(train, &opts.bpr)?)))?;
    run("item-item", &|| {
        Ok(Model::ItemItem(ItemKnn::cosine(
            train,
            opts.item_item_neighbours,
        )?))
    })?;
    run("popularity", &|| {
        Ok(Model::Popularity(Popularity::from_interactions(
            train, now, half_life,
        )?))
    })?;
    Ok(report)
}

/// The metrics of one trained model on a split, by name (see [`Report`]).
pub fn score_model(model: &dyn Recommender, split: &Split, k: usize) -> BTreeMap<String, f64> {
    let ours = ranking_metrics(model, &split.train, &split.test, &[k, 2 * k]);
    let imp = implicit_ranking_metrics(model, &split.train, &split.test, k);
    let mut out = BTreeMap::new();
    if let [at_k, at_2k] = ours.as_slice() {
        out.insert(format!("precision@{k}"), at_k.precision);
        out.insert(format!("recall@{k}"), at_k.recall);
        out.insert(format!("recall@{}", 2 * k), at_2k.recall);
        out.insert(format!("ndcg@{k}"), at_k.ndcg);
        out.insert(format!("map@{k}"), at_k.map);
        out.insert(format!("hit_rate@{k}"), at_k.hit_rate);
        out.insert(format!("coverage@{k}"), at_k.coverage);
        out.insert("auc".into(), at_k.auc);
        out.insert("users".into(), at_k.users as f64);
    }
    out.insert(format!("implicit_precision@{k}"), imp.precision);
    out.insert(format!("implicit_ndcg@{k}"), imp.ndcg);
    out.insert(format!("implicit_map@{k}"), imp.map);
    out.insert(format!("implicit_auc@{k}"), imp.auc);
    out
}
