//! Trains ALS (conjugate gradient) and BPR on MovieLens 100K the way
//! `bench/recs-vs-implicit` trains the `implicit` library, times them, and
//! writes what the Python side needs to score both with implicit's own
//! `ranking_metrics_at_k`: the train/test split as CSR `.npy` arrays and
//! our factors.
//!
//! ```text
//! recs_bench <ml-100k dir> --out <dir> [--seed 42] [--scale 1] [--threads 2] [--repeat 3]
//!            [--models als,als-cholesky,bpr,latency] [--model-seed N]
//!
//! `--seed` picks the split and, unless `--model-seed` is given, the
//! models' initialisation.
//! ```
//!
//! Trains each model `--repeat` times, run `r` with model seed
//! `seed + r`, and prints one JSON object: per model the best training time,
//! all times, the NDCG@10 of every run (implicit's definition, computed
//! here) and their mean, and implicit's four metrics for the last run,
//! whose factors are written to `<out>/<model>/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use reel_recs::als::{train_als, AlsParams, AlsSolver};
use reel_recs::bpr::{train_bpr, BprParams};
use reel_recs::metrics::implicit_ranking_metrics;
use reel_recs::movielens::load_movielens_100k;
use reel_recs::split::{random_split, Split};
use reel_recs::{npy, FactorModel, Interactions};
use serde_json::json;

struct Args {
    data: PathBuf,
    out: PathBuf,
    seed: u64,
    model_seed: Option<u64>,
    scale: usize,
    threads: usize,
    repeat: usize,
    models: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut data = None;
    let mut args = Args {
        data: PathBuf::new(),
        out: PathBuf::new(),
        seed: 42,
        model_seed: None,
        scale: 1,
        threads: 2,
        repeat: 3,
        models: vec!["als".into(), "bpr".into()],
    };
    let mut out = None;
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--model-seed" => {
                args.model_seed = Some(
                    value("--model-seed")?
                        .parse()
                        .map_err(|e| format!("--model-seed: {e}"))?,
                )
            }
            "--scale" => {
                args.scale = value("--scale")?
                    .parse()
                    .map_err(|e| format!("--scale: {e}"))?
            }
            "--threads" => {
                args.threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--models" => args.models = value("--models")?.split(',').map(str::to_string).collect(),
            "--repeat" => {
                args.repeat = value("--repeat")?
                    .parse()
                    .map_err(|e| format!("--repeat: {e}"))?
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            path => data = Some(PathBuf::from(path)),
        }
    }
    args.data = data.ok_or("usage: recs_bench <ml-100k dir> --out <dir> [--seed N] [--scale N] [--threads N] [--repeat N]")?;
    args.out = out.ok_or("--out <dir> is required")?;
    args.repeat = args.repeat.max(1);
    Ok(args)
}

fn write_csr(dir: &Path, name: &str, m: &Interactions) -> Result<(), Box<dyn std::error::Error>> {
    let csr = m.by_user();
    let indptr: Vec<i32> = csr
        .indptr
        .iter()
        .map(|&p| i32::try_from(p))
        .collect::<Result<_, _>>()?;
    let indices: Vec<i32> = csr.indices.iter().map(|&i| i as i32).collect();
    npy::write(
        &dir.join(format!("{name}_indptr.npy")),
        &[indptr.len()],
        &indptr,
    )?;
    npy::write(
        &dir.join(format!("{name}_indices.npy")),
        &[indices.len()],
        &indices,
    )?;
    npy::write(
        &dir.join(format!("{name}_data.npy")),
        &[csr.values.len()],
        &csr.values,
    )?;
    Ok(())
}

/// Trains `repeat` times, run `r` with model seed `seed + r`: the best
/// time, every time, the NDCG@10 of every run, and the last model.
struct Runs {
    model: FactorModel,
    times: Vec<f64>,
    ndcgs: Vec<f64>,
}

fn runs(
    repeat: usize,
    seed: u64,
    split: &Split,
    mut fit: impl FnMut(u64) -> reel_recs::Result<FactorModel>,
) -> reel_recs::Result<Runs> {
    let (mut times, mut ndcgs, mut last) = (Vec::new(), Vec::new(), None);
    for r in 0..repeat.max(1) {
        let start = Instant::now();
        let model = fit(seed + r as u64)?;
        times.push(start.elapsed().as_secs_f64());
        ndcgs.push(implicit_ranking_metrics(&model, &split.train, &split.test, 10).ndcg);
        last = Some(model);
    }
    match last {
        Some(model) => Ok(Runs {
            model,
            times,
            ndcgs,
        }),
        None => Err(reel_recs::Error::InvalidParameter("no run".into())),
    }
}

fn report(
    name: &str,
    runs: &Runs,
    split: &Split,
    out: &Path,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let dir = out.join(name);
    std::fs::create_dir_all(&dir)?;
    runs.model.write_npy(&dir)?;
    let m = implicit_ranking_metrics(&runs.model, &split.train, &split.test, 10);
    Ok(json!({
        "train_seconds": runs.times.iter().copied().fold(f64::INFINITY, f64::min),
        "train_seconds_all": runs.times,
        "ndcg@10_mean": runs.ndcgs.iter().sum::<f64>() / runs.ndcgs.len() as f64,
        "ndcg@10_all": runs.ndcgs,
        "implicit_metrics_last": { "precision": m.precision, "map": m.map, "ndcg": m.ndcg, "auc": m.auc },
        "factors_dir": dir,
    }))
}

/// Top-10 for 2,000 users of a 10,000-title, 64-factor model, each user
/// with 50 watched titles to leave out: one query at a time, one thread.
fn recommend_latency() -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use reel_recs::{Recommender, SparseRow};
    let model = FactorModel::random(2_000, 10_000, 64, 7)?;
    let mut rng = reel_recs::Rng::new(8);
    let mut times = Vec::with_capacity(2_000);
    let mut checksum = 0u64;
    for user in 0..2_000u32 {
        let mut seen: Vec<u32> = (0..50).map(|_| rng.below(10_000) as u32).collect();
        seen.sort_unstable();
        seen.dedup();
        let values = vec![1.0; seen.len()];
        let history = SparseRow {
            indices: &seen,
            values: &values,
        };
        let start = Instant::now();
        let recs = model.recommend(user, history, 10, None);
        times.push(start.elapsed().as_secs_f64() * 1e3);
        checksum += recs.iter().map(|r| r.0 as u64).sum::<u64>();
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    Ok(
        json!({ "items": 10_000, "factors": 64, "k": 10, "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0), "checksum": checksum }),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out)?;
    let ml = load_movielens_100k(&args.data)?;
    let m = Interactions::with_shape(ml.n_users(), ml.n_items(), &ml.ratings)?;
    // Split first, then repeat users on both sides, so a copy's test items
    // are never another copy's training items.
    let base = random_split(&m, 0.8, args.seed)?;
    let split = Split {
        train: base.train.replicate_users(args.scale),
        test: base.test.replicate_users(args.scale),
    };
    let m = &split.train;
    write_csr(&args.out, "train", &split.train)?;
    write_csr(&args.out, "test", &split.test)?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let als_params = AlsParams {
        factors: 64,
        regularization: 0.01,
        iterations: 15,
        solver: AlsSolver::ConjugateGradient { steps: 3 },
        seed: args.model_seed.unwrap_or(args.seed),
    };
    let bpr_params = BprParams {
        factors: 64,
        iterations: 100,
        seed: args.model_seed.unwrap_or(args.seed),
        ..BprParams::default()
    };
    let mut out = json!({
        "threads": args.threads,
        "scale": args.scale,
        "users": m.n_users(),
        "items": m.n_items(),
        "train_nnz": split.train.nnz(),
        "test_nnz": split.test.nnz(),
    });
    let seed = args.model_seed.unwrap_or(args.seed);
    for name in &args.models {
        let runs = match name.as_str() {
            "als" => pool.install(|| {
                runs(args.repeat, seed, &split, |s| {
                    train_als(
                        &split.train,
                        &AlsParams {
                            seed: s,
                            ..als_params
                        },
                    )
                })
            })?,
            "als-cholesky" => pool.install(|| {
                runs(args.repeat, seed, &split, |s| {
                    let p = AlsParams {
                        seed: s,
                        solver: AlsSolver::Cholesky,
                        ..als_params
                    };
                    train_als(&split.train, &p)
                })
            })?,
            "bpr" => pool.install(|| {
                runs(args.repeat, seed, &split, |s| {
                    train_bpr(
                        &split.train,
                        &BprParams {
                            seed: s,
                            ..bpr_params
                        },
                    )
                })
            })?,
            "latency" => {
                out["latency"] = recommend_latency()?;
                continue;
            }
            other => return Err(format!("unknown model {other}").into()),
        };
        out[name.as_str()] = report(name, &runs, &split, &args.out)?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
