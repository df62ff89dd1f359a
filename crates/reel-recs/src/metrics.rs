//! Offline ranking quality: recommend for every user with held-out items,
//! training items filtered out, and compare with what they went on to
//! watch.
//!
//! Two families, kept apart because they disagree on purpose:
//!
//! * [`ranking_metrics`] — the usual per-user averages: precision@k =
//!   hits / k; recall@k = hits / |test items|; NDCG@k with binary gains and
//!   the ideal DCG of `min(k, |test|)` hits; MAP@k = Σ over hits of the
//!   precision at that rank, divided by `min(k, |test|)`; hit rate = share
//!   of users with at least one hit; AUC over every item not in the user's
//!   training row (ties count half); catalogue coverage = distinct items
//!   recommended to anyone / all items.
//! * [`implicit_ranking_metrics`] — exactly what
//!   `implicit.evaluation.ranking_metrics_at_k` computes, to compare with
//!   published numbers: its "precision" is Σ hits / Σ min(k, |test|) over
//!   all users (a recall capped at k, pooled), its NDCG and MAP are the
//!   ones above, and its "AUC" is its own approximation from the top k
//!   only (every unranked positive counts as beating half the unranked
//!   negatives).
//!
//! Only users with at least one test item count in either.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::interactions::{Interactions, SparseRow};
use crate::recommender::Recommender;
use crate::topk::top_k;

/// The usual metrics at one cutoff `k`, see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RankingMetrics {
    pub k: usize,
    /// Users evaluated (those with at least one test item).
    pub users: usize,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub map: f64,
    pub hit_rate: f64,
    /// Full AUC, averaged over users with both positives and negatives.
    pub auc: f64,
    pub coverage: f64,
}

/// The four numbers of `implicit.evaluation.ranking_metrics_at_k`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ImplicitMetrics {
    pub precision: f64,
    pub map: f64,
    pub ndcg: f64,
    pub auc: f64,
}

/// What one user's evaluation needs: their top items and full AUC.
struct UserOutcome {
    user: u32,
    recs: Vec<u32>,
    auc: Option<f64>,
}

/// Users with at least one test item, ascending.
fn eval_users(test: &Interactions) -> Vec<u32> {
    (0..test.n_users() as u32)
        .filter(|&u| !test.user_row(u).is_empty())
        .collect()
}

fn outcomes(
    model: &dyn Recommender,
    train: &Interactions,
    test: &Interactions,
    k: usize,
    with_auc: bool,
) -> Vec<UserOutcome> {
    let n_items = model.n_items();
    eval_users(test)
        .par_chunks(32)
        .flat_map_iter(|users| {
            let mut scores = vec![0f32; n_items];
            users
                .iter()
                .map(|&u| {
                    let seen = train.user_row(u);
                    model.score_into(u, seen, &mut scores);
                    let recs = top_k(&scores, k, seen.indices, None)
                        .into_iter()
                        .map(|r| r.0)
                        .collect();
                    let auc = if with_auc {
                        full_auc(&scores, seen, test.user_row(u))
                    } else {
                        None
                    };
                    UserOutcome { user: u, recs, auc }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The probability that a random held-out item outranks a random item the
/// user never interacted with; training items are not candidates.
fn full_auc(scores: &[f32], seen: SparseRow<'_>, test: SparseRow<'_>) -> Option<f64> {
    let mut cands: Vec<(f32, bool)> = Vec::with_capacity(scores.len());
    for (i, &s) in scores.iter().enumerate() {
        let i = i as u32;
        if !seen.contains(i) {
            let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
            cands.push((s, test.contains(i)));
        }
    }
    let npos = cands.iter().filter(|c| c.1).count() as f64;
    let nneg = cands.len() as f64 - npos;
    if npos == 0.0 || nneg == 0.0 {
        return None;
    }
    cands.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut neg_below, mut num) = (0f64, 0f64);
    let mut g = 0;
    while g < cands.len() {
        let mut h = g;
        while h < cands.len() && cands[h].0 == cands[g].0 {
            h += 1;
        }
        let pos = cands[g..h].iter().filter(|c| c.1).count() as f64;
        let neg = (h - g) as f64 - pos;
        num += pos * (neg_below + 0.5 * neg);
        neg_below += neg;
        g = h;
    }
    Some(num / (npos * nneg))
}

/// Σ 1/log2(rank + 1) for ranks 1..=n: the DCG of n hits at the top.
fn ideal_dcg(n: usize) -> f64 {
    (0..n).map(|i| 1.0 / ((i + 2) as f64).log2()).sum()
}

/// Our metrics at each cutoff in `ks`, from one pass of recommendations.
pub fn ranking_metrics(
    model: &dyn Recommender,
    train: &Interactions,
    test: &Interactions,
    ks: &[usize],
) -> Vec<RankingMetrics> {
    let kmax = ks.iter().copied().max().unwrap_or(0);
    let outs = outcomes(model, train, test, kmax, true);
    let aucs: Vec<f64> = outs.iter().filter_map(|o| o.auc).collect();
    let auc = if aucs.is_empty() {
        0.0
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    };
    let lists: Vec<(u32, &[u32])> = outs.iter().map(|o| (o.user, o.recs.as_slice())).collect();
    ks.iter()
        .map(|&k| RankingMetrics {
            auc,
            ..metrics_from_lists(&lists, test, k, model.n_items())
        })
        .collect()
}

/// Our metrics (all but AUC) from given recommendation lists, one per user
/// with test items; lists longer than `k` are cut.
pub fn metrics_from_lists(
    lists: &[(u32, &[u32])],
    test: &Interactions,
    k: usize,
    n_items: usize,
) -> RankingMetrics {
    let mut m = RankingMetrics {
        k,
        ..RankingMetrics::default()
    };
    let mut recommended = vec![false; n_items];
    for &(u, recs) in lists {
        let likes = test.user_row(u);
        if likes.is_empty() {
            continue;
        }
        let recs = &recs[..recs.len().min(k)];
        let (mut hits, mut dcg, mut ap) = (0usize, 0f64, 0f64);
        for (i, &item) in recs.iter().enumerate() {
            if let Some(r) = recommended.get_mut(item as usize) {
                *r = true;
            }
            if likes.contains(item) {
                hits += 1;
                dcg += 1.0 / ((i + 2) as f64).log2();
                ap += hits as f64 / (i + 1) as f64;
            }
        }
        let cap = k.min(likes.len());
        m.users += 1;
        m.precision += hits as f64 / k as f64;
        m.recall += hits as f64 / likes.len() as f64;
        m.ndcg += dcg / ideal_dcg(cap);
        m.map += ap / cap as f64;
        m.hit_rate += (hits > 0) as u8 as f64;
    }
    if m.users > 0 {
        let n = m.users as f64;
        m.precision /= n;
        m.recall /= n;
        m.ndcg /= n;
        m.map /= n;
        m.hit_rate /= n;
    }
    m.coverage = if n_items == 0 {
        0.0
    } else {
        recommended.iter().filter(|&&r| r).count() as f64 / n_items as f64
    };
    m
}

/// `implicit.evaluation.ranking_metrics_at_k(model, train, test, K)`,
/// reproduced: recommendations filter training items, users run in
/// ascending order, sums are in f64 in implicit's order.
pub fn implicit_ranking_metrics(
    model: &dyn Recommender,
    train: &Interactions,
    test: &Interactions,
    k: usize,
) -> ImplicitMetrics {
    let outs = outcomes(model, train, test, k, false);
    let lists: Vec<(u32, &[u32])> = outs.iter().map(|o| (o.user, o.recs.as_slice())).collect();
    implicit_metrics_from_lists(&lists, test, k, model.n_items())
}

/// The arithmetic of `ranking_metrics_at_k` on given top-`k` lists (one per
/// user with test items; a short list is padded with "no item" as
/// implicit's `-1` ids are).
pub fn implicit_metrics_from_lists(
    lists: &[(u32, &[u32])],
    test: &Interactions,
    k: usize,
    n_items: usize,
) -> ImplicitMetrics {
    let cg: Vec<f64> = (0..k).map(|i| 1.0 / ((i + 2) as f64).log2()).collect();
    let cg_sum: Vec<f64> = cg
        .iter()
        .scan(0.0, |acc, &c| {
            *acc += c;
            Some(*acc)
        })
        .collect();
    let (mut relevant, mut pr_div, mut total) = (0f64, 0f64, 0f64);
    let (mut mean_ap, mut ndcg, mut mean_auc) = (0f64, 0f64, 0f64);
    for &(u, recs) in lists {
        let likes = test.user_row(u);
        if likes.is_empty() || k == 0 {
            continue;
        }
        let size = likes.len();
        pr_div += k.min(size) as f64;
        let (mut ap, mut hit, mut miss, mut auc) = (0f64, 0f64, 0f64, 0f64);
        let idcg = cg_sum[k.min(size) - 1];
        let num_pos = size as f64;
        let num_neg = n_items as f64 - num_pos;
        for (i, gain) in cg.iter().enumerate() {
            match recs.get(i) {
                Some(&item) if likes.contains(item) => {
                    relevant += 1.0;
                    hit += 1.0;
                    ap += hit / (i + 1) as f64;
                    ndcg += gain / idcg;
                }
                _ => {
                    miss += 1.0;
                    auc += hit;
                }
            }
        }
        auc += ((hit + num_pos) / 2.0) * (num_neg - miss);
        mean_ap += ap / k.min(size) as f64;
        mean_auc += auc / (num_pos * num_neg);
        total += 1.0;
    }
    if total == 0.0 {
        return ImplicitMetrics::default();
    }
    ImplicitMetrics {
        precision: relevant / pr_div,
        map: mean_ap / total,
        ndcg: ndcg / total,
        auc: mean_auc / total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::Event;

    fn test_matrix(pairs: &[(u32, u32)], n_users: usize, n_items: usize) -> Interactions {
        let events: Vec<Event> = pairs
            .iter()
            .map(|&(user, item)| Event {
                user,
                item,
                weight: 1.0,
                timestamp: 0,
            })
            .collect();
        Interactions::with_shape(n_users, n_items, &events).expect("valid")
    }

    #[test]
    fn hand_worked_metrics() {
        // User 0 likes {1, 4, 7}; recommended [1, 2, 4] at k = 3: hits at
        // ranks 1 and 3. User 1 likes {5}; recommended [0, 3, 6]: no hit.
        // User 2 has no test items and does not count.
        let test = test_matrix(&[(0, 1), (0, 4), (0, 7), (1, 5)], 3, 10);
        let lists: Vec<(u32, &[u32])> = vec![(0, &[1, 2, 4]), (1, &[0, 3, 6]), (2, &[9])];
        let m = metrics_from_lists(&lists, &test, 3, 10);
        assert_eq!(m.users, 2);
        assert!((m.precision - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((m.recall - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((m.ndcg - dcg / idcg / 2.0).abs() < 1e-12);
        let ap = (1.0 + 2.0 / 3.0) / 3.0;
        assert!((m.map - ap / 2.0).abs() < 1e-12);
        assert!((m.hit_rate - 0.5).abs() < 1e-12);
        assert!((m.coverage - 6.0 / 10.0).abs() < 1e-12, "items 0,1,2,3,4,6");

        // implicit: precision pools hits over Σ min(k, |likes|) = 3 + 1.
        let im = implicit_metrics_from_lists(&lists, &test, 3, 10);
        assert!((im.precision - 2.0 / 4.0).abs() < 1e-12);
        assert!((im.ndcg - m.ndcg).abs() < 1e-12);
        assert!((im.map - m.map).abs() < 1e-12);
        // User 0: misses at rank 2 → auc = 1 (hits before it); then
        // + ((2 + 3) / 2) · (7 − 1) = 15 → 16 / 21. User 1: 0 hits, 3
        // misses → ((0 + 1) / 2) · (9 − 3) = 3 → 3 / 9.
        assert!((im.auc - (16.0 / 21.0 + 3.0 / 9.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn full_auc_counts_ties_half() {
        let scores = [0.9, 0.5, 0.5, 0.1, 0.7];
        // Item 4 is in training and not a candidate; positives {1}.
        let seen = SparseRow {
            indices: &[4],
            values: &[1.0],
        };
        let test = SparseRow {
            indices: &[1],
            values: &[1.0],
        };
        // Negatives 0 (0.9, above), 2 (tie), 3 (below): (1 + 0.5) / 3.
        let auc = full_auc(&scores, seen, test).expect("has both");
        assert!((auc - 0.5).abs() < 1e-12);
    }
}
