//! The standard comparison on MovieLens 100K, when the data set is there
//! (it lives outside the repository, in `shared/data`).

use std::path::Path;

use reel_recs::eval::{evaluate_movielens, EvalOptions};

const ML_100K: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/movielens/ml-100k"
);

#[test]
fn als_beats_popularity_on_movielens_100k() {
    let dir = Path::new(ML_100K);
    if !dir.join("u.data").exists() {
        println!("skipped: MovieLens 100K not found at {ML_100K}");
        return;
    }
    let report = evaluate_movielens(dir, &EvalOptions::default()).expect("evaluates");
    let get = |model: &str, metric: &str| report.models[model][metric];
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("serializes")
    );
    for model in ["als", "als-cholesky", "bpr", "item-item", "popularity"] {
        for key in [
            "precision@10",
            "recall@20",
            "ndcg@10",
            "map@10",
            "coverage@10",
            "train_seconds",
        ] {
            assert!(
                report.models[model].contains_key(key),
                "{model} lacks {key}"
            );
        }
    }
    let (als, pop) = (get("als", "ndcg@10"), get("popularity", "ndcg@10"));
    assert!(
        als >= 1.2 * pop,
        "ALS NDCG@10 {als:.4} vs popularity {pop:.4}"
    );
    assert!(get("als-cholesky", "ndcg@10") >= 1.2 * pop);
    assert!(get("bpr", "ndcg@10") > pop);
    assert!(get("item-item", "ndcg@10") > pop);
    assert!(get("als", "coverage@10") > get("popularity", "coverage@10"));
    // The JSON shape the CLI prints: model name → metric name → number.
    let json: serde_json::Value = serde_json::to_value(&report).expect("serializes");
    assert!(json["als"]["ndcg@10"].is_number());
}
