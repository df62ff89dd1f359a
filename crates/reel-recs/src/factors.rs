//! Latent-factor models (ALS and BPR both produce one): a vector per user
//! and per item, and the score of a pair is their dot product.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::interactions::SparseRow;
use crate::linalg::dot;
use crate::npy;
use crate::recommender::Recommender;
use crate::rng::Rng;
use crate::topk::top_k;

/// Which trainer made a [`FactorModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FactorAlgorithm {
    Als,
    Bpr,
}

/// User and item factors, row-major `f32`, `dim` columns each.
///
/// For BPR the last column carries the item bias (users hold 1.0 there),
/// as in `implicit`, so scoring is a plain dot product either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FactorModelParts")]
pub struct FactorModel {
    pub algorithm: FactorAlgorithm,
    n_users: usize,
    n_items: usize,
    dim: usize,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
}

/// What deserialization reads, checked by [`FactorModel::new`] before it
/// becomes a model.
#[derive(Deserialize)]
struct FactorModelParts {
    algorithm: FactorAlgorithm,
    dim: usize,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
}

impl TryFrom<FactorModelParts> for FactorModel {
    type Error = Error;
    fn try_from(p: FactorModelParts) -> Result<FactorModel> {
        FactorModel::new(p.algorithm, p.dim, p.user_factors, p.item_factors)
    }
}

impl FactorModel {
    /// Checks that the factor arrays have `n × dim` values.
    pub fn new(
        algorithm: FactorAlgorithm,
        dim: usize,
        user_factors: Vec<f32>,
        item_factors: Vec<f32>,
    ) -> Result<FactorModel> {
        if dim == 0
            || !user_factors.len().is_multiple_of(dim)
            || !item_factors.len().is_multiple_of(dim)
        {
            return Err(Error::InvalidInput(format!(
                "factor arrays of {} and {} values do not split into rows of {dim}",
                user_factors.len(),
                item_factors.len()
            )));
        }
        if user_factors
            .iter()
            .chain(&item_factors)
            .any(|v| !v.is_finite())
        {
            return Err(Error::InvalidInput(
                "factors contain NaN or infinity".into(),
            ));
        }
        Ok(FactorModel {
            algorithm,
            n_users: user_factors.len() / dim,
            n_items: item_factors.len() / dim,
            dim,
            user_factors,
            item_factors,
        })
    }

    /// Factors drawn uniformly from `[-1, 1)`: a stand-in model of any size,
    /// for timing recommendation and similarity queries.
    pub fn random(n_users: usize, n_items: usize, dim: usize, seed: u64) -> Result<FactorModel> {
        let mut rng = Rng::new(seed);
        let mut draw = |n: usize| (0..n * dim).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        let users = draw(n_users);
        let items = draw(n_items);
        FactorModel::new(FactorAlgorithm::Als, dim, users, items)
    }

    pub fn n_users(&self) -> usize {
        self.n_users
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn user_factors(&self) -> &[f32] {
        &self.user_factors
    }

    pub fn item_factors(&self) -> &[f32] {
        &self.item_factors
    }

    pub fn user_factor(&self, user: u32) -> Option<&[f32]> {
        let u = user as usize;
        (u < self.n_users).then(|| &self.user_factors[u * self.dim..(u + 1) * self.dim])
    }

    pub fn item_factor(&self, item: u32) -> Option<&[f32]> {
        let i = item as usize;
        (i < self.n_items).then(|| &self.item_factors[i * self.dim..(i + 1) * self.dim])
    }

    /// Writes `user_factors.npy` and `item_factors.npy` (2-D `<f4`) into
    /// `dir`, for numpy and `implicit` to load.
    pub fn write_npy(&self, dir: &Path) -> Result<()> {
        npy::write(
            &dir.join("user_factors.npy"),
            &[self.n_users, self.dim],
            &self.user_factors,
        )?;
        npy::write(
            &dir.join("item_factors.npy"),
            &[self.n_items, self.dim],
            &self.item_factors,
        )
    }

    /// Reads the two files [`FactorModel::write_npy`] writes (or numpy's).
    pub fn read_npy(dir: &Path, algorithm: FactorAlgorithm) -> Result<FactorModel> {
        let (us, uf) = npy::read::<f32>(&dir.join("user_factors.npy"))?;
        let (is, itf) = npy::read::<f32>(&dir.join("item_factors.npy"))?;
        match (us.as_slice(), is.as_slice()) {
            ([_, d1], [_, d2]) if d1 == d2 => FactorModel::new(algorithm, *d1, uf, itf),
            _ => Err(Error::InvalidInput(format!(
                "factor files of shapes {us:?} and {is:?} do not pair up"
            ))),
        }
    }

    /// `out[i] = q · item_i` for a query vector of length `dim`.
    pub fn score_vector(&self, q: &[f32], out: &mut [f32]) {
        for (o, y) in out.iter_mut().zip(self.item_factors.chunks_exact(self.dim)) {
            *o = dot(q, y);
        }
    }

    /// The `n` items whose factors point most nearly the same way as
    /// `item`'s (cosine similarity), best first, the item itself left out.
    /// Empty for an unknown item.
    pub fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        let Some(q) = self.item_factor(item) else {
            return Vec::new();
        };
        let qn = dot(q, q).sqrt();
        let mut scores = vec![0f32; self.n_items];
        for (s, y) in scores
            .iter_mut()
            .zip(self.item_factors.chunks_exact(self.dim))
        {
            let yn = dot(y, y).sqrt();
            *s = if qn > 0.0 && yn > 0.0 {
                dot(q, y) / (qn * yn)
            } else {
                f32::NEG_INFINITY
            };
        }
        top_k(&scores, n, &[item], None)
    }
}

impl Recommender for FactorModel {
    fn n_items(&self) -> usize {
        self.n_items
    }

    /// Users the model was not trained on get −∞ everywhere (no
    /// recommendations): callers fall back to popularity for them.
    fn score_into(&self, user: u32, _history: SparseRow<'_>, out: &mut [f32]) {
        match self.user_factor(user) {
            Some(x) => self.score_vector(x, out),
            None => out.fill(f32::NEG_INFINITY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_items_by_cosine_skip_self() {
        let m = FactorModel::new(
            FactorAlgorithm::Als,
            2,
            vec![1.0, 0.0],
            vec![1.0, 0.0, 10.0, 1.0, 0.0, 1.0, -1.0, 0.0],
        )
        .expect("valid");
        let sim = m.similar_items(0, 3);
        assert_eq!(sim.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!((sim[0].1 - 10.0 / 101f32.sqrt()).abs() < 1e-6);
        assert!(m.similar_items(9, 3).is_empty());
    }

    #[test]
    fn recommends_by_dot_product_without_seen_items() {
        let m = FactorModel::new(FactorAlgorithm::Als, 1, vec![1.0], vec![0.5, 3.0, 2.0])
            .expect("valid");
        let seen = SparseRow {
            indices: &[1],
            values: &[1.0],
        };
        assert_eq!(m.recommend(0, seen, 5, None), vec![(2, 2.0), (0, 0.5)]);
        assert!(m.recommend(7, seen, 5, None).is_empty(), "unknown user");
        assert!(FactorModel::new(FactorAlgorithm::Als, 2, vec![1.0], vec![]).is_err());
    }
}
