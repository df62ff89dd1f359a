//! A trained model as one value the control plane can store, version and
//! swap in while serving: [`Model`], with a compact binary encoding.
//!
//! Encoding (all integers and floats little-endian):
//!
//! ```text
//! magic   8 bytes  "REELRECS"
//! version u32      1
//! kind    u8       1 = factors, 2 = item-item, 3 = popularity
//! body    (by kind)
//!   factors:    algorithm u8 (1 ALS, 2 BPR), dim u32, users u64, items u64,
//!               user factors f32 × users·dim, item factors f32 × items·dim
//!   item-item:  k u32, items u64, nnz u64, indptr u64 × (items + 1),
//!               neighbour ids u32 × nnz, similarities f32 × nnz
//!   popularity: half-life f64 (seconds), now i64, items u64, scores f32 × items
//! check   u64      FNV-1a of every byte before it
//! ```
//!
//! Decoding checks every length and the checksum, so a truncated or
//! corrupted file is an error, never a panic or a half-loaded model.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::factors::{FactorAlgorithm, FactorModel};
use crate::interactions::{Csr, SparseRow};
use crate::item_knn::ItemKnn;
use crate::popularity::Popularity;
use crate::recommender::Recommender;

const MAGIC: &[u8; 8] = b"REELRECS";
const VERSION: u32 = 1;

/// Any trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Model {
    Factors(FactorModel),
    ItemItem(ItemKnn),
    Popularity(Popularity),
}

impl Model {
    /// A short name for logs and reports: `als`, `bpr`, `item-item`,
    /// `popularity`.
    pub fn name(&self) -> &'static str {
        match self {
            Model::Factors(f) => match f.algorithm {
                FactorAlgorithm::Als => "als",
                FactorAlgorithm::Bpr => "bpr",
            },
            Model::ItemItem(_) => "item-item",
            Model::Popularity(_) => "popularity",
        }
    }

    fn inner(&self) -> &dyn Recommender {
        match self {
            Model::Factors(m) => m,
            Model::ItemItem(m) => m,
            Model::Popularity(m) => m,
        }
    }

    /// Items like `item` (for a "more like this" row): cosine of factors or
    /// the stored neighbours; popularity has no notion of similarity.
    pub fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        match self {
            Model::Factors(m) => m.similar_items(item, n),
            Model::ItemItem(m) => m.similar_items(item, n),
            Model::Popularity(_) => Vec::new(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(MAGIC);
        w.extend_from_slice(&VERSION.to_le_bytes());
        match self {
            Model::Factors(m) => {
                w.push(1);
                w.push(match m.algorithm {
                    FactorAlgorithm::Als => 1,
                    FactorAlgorithm::Bpr => 2,
                });
                w.extend_from_slice(&(m.dim() as u32).to_le_bytes());
                w.extend_from_slice(&(m.n_users() as u64).to_le_bytes());
                w.extend_from_slice(&(m.n_items() as u64).to_le_bytes());
                put_f32s(&mut w, m.user_factors());
                put_f32s(&mut w, m.item_factors());
            }
            Model::ItemItem(m) => {
                w.push(2);
                let nb = m.neighbours();
                w.extend_from_slice(&(m.k() as u32).to_le_bytes());
                w.extend_from_slice(&(nb.rows() as u64).to_le_bytes());
                w.extend_from_slice(&(nb.indices.len() as u64).to_le_bytes());
                for &p in &nb.indptr {
                    w.extend_from_slice(&(p as u64).to_le_bytes());
                }
                for &j in &nb.indices {
                    w.extend_from_slice(&j.to_le_bytes());
                }
                put_f32s(&mut w, &nb.values);
            }
            Model::Popularity(m) => {
                w.push(3);
                w.extend_from_slice(&m.half_life_secs.to_le_bytes());
                w.extend_from_slice(&m.now.to_le_bytes());
                w.extend_from_slice(&(m.scores().len() as u64).to_le_bytes());
                put_f32s(&mut w, m.scores());
            }
        }
        let check = fnv1a(&w);
        w.extend_from_slice(&check.to_le_bytes());
        w
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        if bytes.len() < MAGIC.len() + 4 + 1 + 8 {
            return Err(Error::CorruptModel("too short to be a model".into()));
        }
        let (body, check) = bytes.split_at(bytes.len() - 8);
        let mut expect = [0u8; 8];
        expect.copy_from_slice(check);
        if fnv1a(body) != u64::from_le_bytes(expect) {
            return Err(Error::CorruptModel(
                "checksum mismatch (truncated or altered)".into(),
            ));
        }
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(8)? != MAGIC {
            return Err(Error::CorruptModel(
                "not a Reel recommendation model".into(),
            ));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(Error::CorruptModel(format!(
                "unsupported model version {version}"
            )));
        }
        let model = match r.u8()? {
            1 => {
                let algorithm = match r.u8()? {
                    1 => FactorAlgorithm::Als,
                    2 => FactorAlgorithm::Bpr,
                    other => {
                        return Err(Error::CorruptModel(format!(
                            "unknown factor algorithm {other}"
                        )))
                    }
                };
                let dim = r.u32()? as usize;
                let users = r.len()?;
                let items = r.len()?;
                let uf = r.f32s(users.checked_mul(dim).ok_or_else(overflow)?)?;
                let itf = r.f32s(items.checked_mul(dim).ok_or_else(overflow)?)?;
                let m = FactorModel::new(algorithm, dim, uf, itf)
                    .map_err(|e| Error::CorruptModel(e.to_string()))?;
                if m.n_users() != users || m.n_items() != items {
                    return Err(Error::CorruptModel("factor shapes disagree".into()));
                }
                Model::Factors(m)
            }
            2 => {
                let k = r.u32()? as usize;
                let items = r.len()?;
                let nnz = r.len()?;
                let mut indptr = Vec::with_capacity(items.saturating_add(1).min(r.remaining() / 8));
                for _ in 0..=items {
                    indptr.push(r.len()?);
                }
                let mut indices = Vec::with_capacity(nnz.min(r.remaining() / 4));
                for _ in 0..nnz {
                    indices.push(r.u32()?);
                }
                let values = r.f32s(nnz)?;
                let knn = ItemKnn::from_neighbours(
                    k,
                    Csr {
                        indptr,
                        indices,
                        values,
                    },
                )
                .map_err(|e| Error::CorruptModel(e.to_string()))?;
                Model::ItemItem(knn)
            }
            3 => {
                let half_life = f64::from_le_bytes(r.array()?);
                let now = i64::from_le_bytes(r.array()?);
                let items = r.len()?;
                let scores = r.f32s(items)?;
                Model::Popularity(
                    Popularity::from_scores(scores, now, half_life)
                        .map_err(|e| Error::CorruptModel(e.to_string()))?,
                )
            }
            other => return Err(Error::CorruptModel(format!("unknown model kind {other}"))),
        };
        if r.remaining() != 0 {
            return Err(Error::CorruptModel(format!(
                "{} stray bytes after the model",
                r.remaining()
            )));
        }
        Ok(model)
    }
}

impl Recommender for Model {
    fn n_items(&self) -> usize {
        self.inner().n_items()
    }

    fn score_into(&self, user: u32, history: SparseRow<'_>, out: &mut [f32]) {
        self.inner().score_into(user, history, out)
    }
}

fn overflow() -> Error {
    Error::CorruptModel("sizes overflow".into())
}

fn put_f32s(w: &mut Vec<u8>, values: &[f32]) {
    w.reserve(values.len() * 4);
    for v in values {
        w.extend_from_slice(&v.to_le_bytes());
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::CorruptModel("ends early".into()));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize> {
        usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|_| overflow())
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let raw = self.take(n.checked_mul(4).ok_or_else(overflow)?)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{Event, Interactions};

    #[test]
    fn every_kind_round_trips_and_corruption_is_an_error() {
        let ev = |user, item| Event {
            user,
            item,
            weight: 1.0,
            timestamp: 0,
        };
        let m =
            Interactions::from_events(&[ev(0, 0), ev(0, 1), ev(1, 1), ev(1, 2)]).expect("valid");
        let models = [
            Model::Factors(
                FactorModel::new(
                    FactorAlgorithm::Bpr,
                    2,
                    vec![1.0, 2.0, 3.0, 4.0],
                    vec![0.5, -1.0],
                )
                .expect("valid"),
            ),
            Model::ItemItem(ItemKnn::cosine(&m, 2).expect("k > 0")),
            Model::Popularity(Popularity::from_interactions(&m, 10, 3600.0).expect("valid")),
        ];
        for model in models {
            let bytes = model.to_bytes();
            assert_eq!(Model::from_bytes(&bytes).expect("round trip"), model);
            assert!(
                Model::from_bytes(&bytes[..bytes.len() - 1]).is_err(),
                "truncated"
            );
            let mut flipped = bytes.clone();
            flipped[20] ^= 1;
            assert!(Model::from_bytes(&flipped).is_err(), "altered");
        }
        assert!(Model::from_bytes(b"nonsense").is_err());
    }
}
