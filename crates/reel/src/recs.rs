//! `reel recs ...`: evaluate the recommendation models on MovieLens, train
//! on the store's viewing history, list, activate and roll back model
//! versions, and import MovieLens as viewing history.

use crate::cli::StoreArgs;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use reel_control::recs::train::{train, TrainOptions};
use reel_domain::{Maturity, TitleKind};
use reel_store::{NewTitle, NewViewingEvent};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum RecsCommand {
    /// Train and score ALS, BPR, item-item and popularity on MovieLens 100K
    /// (random 80/20 split, seed 42): precision@10, recall@20, NDCG@10, coverage.
    Eval {
        /// The ml-100k directory (with u.data and u.item).
        #[arg(long)]
        movielens: PathBuf,
        /// Print one JSON object: model name -> metric name -> value.
        #[arg(long)]
        json: bool,
        /// The split's and the models' seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Train on the viewing history in the store, evaluate on each profile's
    /// latest title, store the model as the next version and activate it.
    Train {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 32)]
        factors: usize,
        #[arg(long, default_value_t = 15)]
        iterations: usize,
        #[arg(long, default_value_t = 0.1)]
        regularization: f32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of artwork impressions that explore a random variant.
        #[arg(long, default_value_t = 0.1)]
        exploration: f64,
        /// Store the new version without serving it.
        #[arg(long)]
        no_activate: bool,
        #[arg(long)]
        json: bool,
    },
    /// List stored model versions.
    Models {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Serve a stored version (every node switches within seconds).
    Activate {
        #[command(flatten)]
        store: StoreArgs,
        version: i64,
    },
    /// Serve the version before the active one.
    Rollback {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Load MovieLens 100K as catalog titles and viewing history (a rating of
    /// r out of 5 counts as watching r/5 of the film).
    ImportMovielens {
        #[command(flatten)]
        store: StoreArgs,
        /// The ml-100k directory.
        path: PathBuf,
    },
}

pub async fn run(cmd: RecsCommand) -> Result<()> {
    match cmd {
        RecsCommand::Eval { movielens, json, seed } => eval(movielens, json, seed).await,
        RecsCommand::Train { store, factors, iterations, regularization, seed, exploration, no_activate, json } => {
            if !(1..=1024).contains(&factors) {
                bail!("--factors must be from 1 to 1024");
            }
            if !(1..=1000).contains(&iterations) {
                bail!("--iterations must be from 1 to 1000");
            }
            if !(regularization.is_finite() && regularization >= 0.0) {
                bail!("--regularization must be a number >= 0");
            }
            if !(0.0..=1.0).contains(&exploration) {
                bail!("--exploration must be between 0 and 1");
            }
            let store = store.open().await?;
            let spinner = spinner("training on the viewing history");
            let opts = TrainOptions { factors, iterations, regularization, seed, activate: !no_activate, exploration };
            let report = train(&store, &opts).await;
            spinner.finish_and_clear();
            let report = report?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            println!(
                "model v{} {}: {} profiles x {} titles, {} interactions, {:.2} s",
                report.version,
                if report.activated { "stored and active" } else { "stored (not active)" },
                report.profiles,
                report.titles,
                report.interactions,
                report.train_seconds
            );
            println!("held out (each profile's latest title):");
            print_table(&report.metrics, &["precision@10", "recall@20", "ndcg@10", "coverage@10"], &["als", "popularity"]);
            if let Some(a) = report.metrics.get("artwork") {
                println!("artwork policy, offline on {} logged impressions:", a.get("impressions").copied().unwrap_or(0.0));
                for (k, v) in a {
                    if k != "impressions" {
                        println!("  {k:<24} {v:.4}");
                    }
                }
            }
            Ok(())
        }
        RecsCommand::Models { store, json } => {
            let store = store.open().await?;
            let models = store.recs_models().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&models)?);
                return Ok(());
            }
            if models.is_empty() {
                println!("no models yet: run `reel recs train`");
            }
            println!("{:<8} {:<7} {:<6} {:<22} {:>10} {:>10}", "version", "active", "kind", "created (UTC)", "ndcg@10", "vs pop");
            for m in models {
                let ndcg = m.metrics.pointer("/als/ndcg@10").and_then(|v| v.as_f64());
                let pop = m.metrics.pointer("/popularity/ndcg@10").and_then(|v| v.as_f64());
                println!(
                    "{:<8} {:<7} {:<6} {:<22} {:>10} {:>10}",
                    format!("v{}", m.version),
                    if m.active { "*" } else { "" },
                    m.kind,
                    crate::cli::utc(m.created_ms),
                    ndcg.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
                    pop.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
                );
            }
            Ok(())
        }
        RecsCommand::Activate { store, version } => {
            let store = store.open().await?;
            match store.activate_model(version).await {
                Ok(()) => {
                    println!("serving model v{version}");
                    Ok(())
                }
                Err(reel_store::StoreError::NotFound) => bail!("no model v{version}; see `reel recs models`"),
                Err(e) => Err(e.into()),
            }
        }
        RecsCommand::Rollback { store } => {
            let store = store.open().await?;
            let models = store.recs_models().await?;
            let Some(active) = models.iter().position(|m| m.active) else {
                bail!("no model is active; activate one with `reel recs activate VERSION`")
            };
            let Some(previous) = models.get(active + 1) else {
                bail!("v{} is the oldest model; there is nothing to roll back to", models[active].version)
            };
            store.activate_model(previous.version).await?;
            println!("rolled back from v{} to v{}", models[active].version, previous.version);
            Ok(())
        }
        RecsCommand::ImportMovielens { store, path } => import_movielens(store, path).await,
    }
}

fn spinner(message: &str) -> ProgressBar {
    let s = ProgressBar::new_spinner();
    s.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    s.set_message(message.to_string());
    s.enable_steady_tick(std::time::Duration::from_millis(100));
    s
}

fn print_table(metrics: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>, columns: &[&str], order: &[&str]) {
    print!("  {:<14}", "model");
    for c in columns {
        print!(" {c:>13}");
    }
    println!();
    let mut names: Vec<&String> = metrics.keys().filter(|k| k.as_str() != "artwork").collect();
    names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
    for name in names {
        print!("  {name:<14}");
        for c in columns {
            match metrics[name].get(*c) {
                Some(v) => print!(" {v:>13.4}"),
                None => print!(" {:>13}", "-"),
            }
        }
        println!();
    }
}

async fn eval(dir: PathBuf, json: bool, seed: u64) -> Result<()> {
    if !dir.join("u.data").is_file() {
        bail!("{} has no u.data: pass the ml-100k directory (MovieLens 100K)", dir.display());
    }
    let mut opts = reel_recs::eval::EvalOptions::default();
    opts.split = reel_recs::split::SplitKind::Random { train_fraction: 0.8, seed };
    opts.als.seed = seed;
    opts.bpr.seed = seed;
    let spinner = (!json).then(|| spinner("training ALS, ALS (Cholesky), BPR, item-item and popularity on ml-100k"));
    let report = tokio::task::spawn_blocking(move || reel_recs::eval::evaluate_movielens(&dir, &opts)).await?;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let report = report.context("evaluation failed")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("MovieLens 100K, random 80/20 split (seed {seed}), already-seen titles filtered:");
    print_table(
        &report.models,
        &["precision@10", "recall@20", "ndcg@10", "map@10", "coverage@10", "train_seconds"],
        &["als", "als-cholesky", "bpr", "item-item", "popularity"],
    );
    Ok(())
}

/// MovieLens genres (u.genre order) as Reel genre slugs and names.
const ML_GENRES: [(&str, &str); 19] = [
    ("unknown", "Unknown"),
    ("action", "Action"),
    ("adventure", "Adventure"),
    ("animation", "Animation"),
    ("kids-family", "Kids & Family"),
    ("comedy", "Comedy"),
    ("crime", "Crime"),
    ("documentary", "Documentary"),
    ("drama", "Drama"),
    ("fantasy", "Fantasy"),
    ("film-noir", "Film-Noir"),
    ("horror", "Horror"),
    ("musical", "Musical"),
    ("mystery", "Mystery"),
    ("romance", "Romance"),
    ("sci-fi", "Sci-Fi"),
    ("thriller", "Thriller"),
    ("war", "War"),
    ("western", "Western"),
];

/// "Toy Story (1995)" -> 1995.
fn year_of(title: &str) -> Option<i64> {
    let open = title.rfind('(')?;
    title[open + 1..].strip_suffix(')')?.trim().parse().ok()
}

/// A MovieLens film's length, seconds (the data set has none).
const ML_DURATION_S: f64 = 6000.0;

async fn import_movielens(store: StoreArgs, path: PathBuf) -> Result<()> {
    if !path.join("u.data").is_file() || !path.join("u.item").is_file() {
        bail!("{} lacks u.data or u.item: pass the ml-100k directory", path.display());
    }
    let ml = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || reel_recs::movielens::load_movielens_100k(&p)).await?.context("cannot read MovieLens")?
    };
    let store = store.open().await?;
    let existing = store.viewing_events(0, 1).await?;
    if store.title("ml-1").await?.is_some() && !existing.is_empty() {
        println!("MovieLens is already imported; nothing to do");
        return Ok(());
    }
    for (slug, name) in ML_GENRES {
        store.upsert_genre(slug, name).await?;
    }
    let bar = ProgressBar::new(ml.movies.len() as u64);
    bar.set_style(ProgressStyle::with_template("titles  {bar:40} {pos}/{len}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    for (i, item) in ml.movies.iter().enumerate() {
        let id = format!("ml-{}", i + 1);
        if store.title(&id).await?.is_none() {
            let genres: Vec<String> = item.genres.iter().filter_map(|g| ML_GENRES.get(*g)).map(|g| g.0.to_string()).filter(|g| g != "unknown").collect();
            store
                .create_title(NewTitle {
                    id: Some(id),
                    kind: TitleKind::Movie,
                    parent_id: None,
                    season_number: None,
                    episode_number: None,
                    name: item.title.clone(),
                    synopsis: String::from("From the MovieLens 100K data set (no video)."),
                    year: year_of(&item.title).unwrap_or(1995),
                    // The data set has no ratings board; keep it off kids profiles.
                    maturity: Maturity::R,
                    duration_s: ML_DURATION_S,
                    genres,
                    artwork: reel_control::demo::artwork_styles(&item.title),
                    created_ms: None,
                })
                .await?;
        }
        bar.inc(1);
    }
    bar.finish();
    let events: Vec<NewViewingEvent> = ml
        .ratings
        .iter()
        .map(|r| NewViewingEvent {
            account_id: "movielens".into(),
            profile_id: format!("ml-user-{}", r.user + 1),
            title_id: format!("ml-{}", r.item + 1),
            kind: "play",
            position_s: ML_DURATION_S * (r.weight as f64 / 5.0).clamp(0.0, 1.0),
            at_ms: r.timestamp * 1000,
            region: None,
        })
        .collect();
    let bar = ProgressBar::new(events.len() as u64);
    bar.set_style(ProgressStyle::with_template("history {bar:40} {pos}/{len}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    for chunk in events.chunks(5000) {
        store.insert_viewing_events(chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    println!("imported {} titles and {} viewings by {} viewers; now run `reel recs train`", ml.movies.len(), events.len(), ml.n_users());
    Ok(())
}
