//! Item-item nearest neighbours on cosine similarity, as the Python
//! library `implicit`'s `CosineRecommender` computes them.
//!
//! Each item is the vector of its column (one value per user, the stored
//! confidence), normalised to unit length; the similarity of two items is
//! the dot product of their vectors. Each item keeps its `k` most similar
//! items (itself included, as in implicit). A user's score for item `j` is
//! `Σ_i c_ui · sim(i, j)` over the items `i` in their history; items no
//! history item points at are not candidates.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::interactions::{Csr, Interactions, SparseRow};
use crate::recommender::Recommender;

/// Items per rayon task when computing neighbours.
const ITEMS_PER_TASK: usize = 64;

/// Each item's `k` nearest neighbours by cosine similarity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ItemKnnParts")]
pub struct ItemKnn {
    k: usize,
    /// Row `i`: the neighbours of item `i` (ascending ids) and similarities.
    neighbours: Csr,
}

#[derive(Deserialize)]
struct ItemKnnParts {
    k: usize,
    neighbours: Csr,
}

impl TryFrom<ItemKnnParts> for ItemKnn {
    type Error = Error;
    fn try_from(p: ItemKnnParts) -> Result<ItemKnn> {
        ItemKnn::from_neighbours(p.k, p.neighbours)
    }
}

impl ItemKnn {
    /// Computes cosine neighbours from the user × item matrix.
    pub fn cosine(m: &Interactions, k: usize) -> Result<ItemKnn> {
        if k == 0 {
            return Err(Error::InvalidParameter("item-item needs k >= 1".into()));
        }
        let n_items = m.n_items();
        let by_item = m.by_item();
        let by_user = m.by_user();
        let norms: Vec<f64> = (0..n_items)
            .map(|i| {
                let col = by_item.row(i);
                col.values
                    .iter()
                    .map(|&v| (v as f64) * (v as f64))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let per_item: Vec<Vec<(u32, f32)>> = (0..n_items)
            .collect::<Vec<_>>()
            .par_chunks(ITEMS_PER_TASK)
            .flat_map_iter(|chunk| {
                let mut acc = vec![0f64; n_items];
                let mut marked = vec![false; n_items];
                let mut touched: Vec<u32> = Vec::new();
                let mut out = Vec::with_capacity(chunk.len());
                for &i in chunk {
                    let col = by_item.row(i);
                    if norms[i] > 0.0 {
                        for (&u, &a) in col.indices.iter().zip(col.values) {
                            let a = a as f64 / norms[i];
                            let row = by_user.row(u as usize);
                            for (&j, &b) in row.indices.iter().zip(row.values) {
                                if norms[j as usize] == 0.0 {
                                    continue;
                                }
                                if !marked[j as usize] {
                                    marked[j as usize] = true;
                                    touched.push(j);
                                }
                                acc[j as usize] += a * (b as f64 / norms[j as usize]);
                            }
                        }
                    }
                    let mut best: Vec<(u32, f32)> = touched
                        .iter()
                        .map(|&j| (j, acc[j as usize] as f32))
                        .filter(|&(_, s)| s != 0.0)
                        .collect();
                    for &j in &touched {
                        acc[j as usize] = 0.0;
                        marked[j as usize] = false;
                    }
                    touched.clear();
                    if best.len() > k {
                        best.select_nth_unstable_by(k - 1, |a, b| {
                            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                        });
                        best.truncate(k);
                    }
                    best.sort_by_key(|p| p.0);
                    out.push(best);
                }
                out
            })
            .collect();
        let mut indptr = Vec::with_capacity(n_items + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for list in per_item {
            for (j, s) in list {
                indices.push(j);
                values.push(s);
            }
            indptr.push(indices.len());
        }
        ItemKnn::from_neighbours(
            k,
            Csr {
                indptr,
                indices,
                values,
            },
        )
    }

    /// From a neighbour matrix (row = item), checked for consistency.
    pub fn from_neighbours(k: usize, neighbours: Csr) -> Result<ItemKnn> {
        let n = neighbours.rows();
        let ok = !neighbours.indptr.is_empty()
            && neighbours.indptr[0] == 0
            && neighbours.indptr.windows(2).all(|w| w[0] <= w[1])
            && neighbours.indptr.last() == Some(&neighbours.indices.len())
            && neighbours.indices.len() == neighbours.values.len()
            && neighbours.indices.iter().all(|&j| (j as usize) < n);
        if !ok {
            return Err(Error::InvalidInput(
                "inconsistent item-item neighbour matrix".into(),
            ));
        }
        Ok(ItemKnn { k, neighbours })
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn neighbours(&self) -> &Csr {
        &self.neighbours
    }

    /// The `n` most similar items to `item`, best first, itself left out.
    pub fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        if item as usize >= self.neighbours.rows() {
            return Vec::new();
        }
        let row = self.neighbours.row(item as usize);
        let mut out: Vec<(u32, f32)> = row
            .indices
            .iter()
            .copied()
            .zip(row.values.iter().copied())
            .filter(|&(j, _)| j != item)
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(n);
        out
    }
}

impl Recommender for ItemKnn {
    fn n_items(&self) -> usize {
        self.neighbours.rows()
    }

    fn score_into(&self, _user: u32, history: SparseRow<'_>, out: &mut [f32]) {
        out.fill(f32::NEG_INFINITY);
        for (&i, &w) in history.indices.iter().zip(history.values) {
            if i as usize >= self.neighbours.rows() {
                continue;
            }
            let row = self.neighbours.row(i as usize);
            for (&j, &s) in row.indices.iter().zip(row.values) {
                if let Some(o) = out.get_mut(j as usize) {
                    *o = if *o == f32::NEG_INFINITY {
                        w * s
                    } else {
                        *o + w * s
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::Event;

    #[test]
    fn cosine_neighbours_and_scores_by_hand() {
        // Items 0 and 1 are watched by the same two users, item 2 by one of
        // them: cos(0,1) = 1, cos(0,2) = 1/sqrt(2).
        let ev = |user, item| Event {
            user,
            item,
            weight: 1.0,
            timestamp: 0,
        };
        let m = Interactions::from_events(&[
            ev(0, 0),
            ev(0, 1),
            ev(1, 0),
            ev(1, 1),
            ev(1, 2),
            ev(2, 3),
        ])
        .expect("valid");
        let knn = ItemKnn::cosine(&m, 20).expect("k > 0");
        let sim = knn.similar_items(0, 5);
        assert_eq!(sim[0].0, 1);
        assert!((sim[0].1 - 1.0).abs() < 1e-6);
        assert_eq!(sim[1].0, 2);
        assert!((sim[1].1 - 0.5f32.sqrt()).abs() < 1e-6);
        assert_eq!(sim.len(), 2, "item 3 shares no user with item 0");
        // A user who watched item 0 with weight 2: score(2) = 2 / sqrt(2).
        let history = SparseRow {
            indices: &[0],
            values: &[2.0],
        };
        let recs = knn.recommend(9, history, 10, None);
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!((recs[1].1 - 2.0 * 0.5f32.sqrt()).abs() < 1e-6);
        // k = 1 keeps only the item itself (its own best match).
        let knn1 = ItemKnn::cosine(&m, 1).expect("k > 0");
        assert!(knn1.similar_items(0, 5).is_empty());
    }
}
