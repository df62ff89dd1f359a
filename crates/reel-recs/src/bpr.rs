//! Bayesian personalized ranking (Rendle et al. 2009) by stochastic
//! gradient descent, as the Python library `implicit`'s
//! `BayesianPersonalizedRanking` does it, made deterministic and parallel.
//!
//! What matches implicit: factors have one extra column, the item bias,
//! which users hold fixed at 1.0; factors start uniform in
//! `[-0.5, 0.5) / factors` (zero for rows without entries); an epoch draws
//! as many samples as there are stored entries; a sample is a stored
//! (user, liked item) pair chosen uniformly and a disliked item taken from
//! another uniformly chosen entry (so negatives are drawn in proportion to
//! popularity); with `verify_negative_samples` a "disliked" item the user
//! actually has is skipped; the update is implicit's, bias included.
//!
//! What differs: implicit runs its threads "hogwild", racing on shared
//! rows, so its result changes from run to run. Here users are shuffled
//! (by the seed) into `blocks` groups once, items again every epoch, and an
//! epoch is `blocks` sub-epochs; in sub-epoch `s`, the task for user block
//! `t` draws its liked *and* disliked items from item block
//! `(t + s) % blocks` (as many samples as that cell has entries). No two
//! tasks of a sub-epoch touch the same row, so they run in parallel without
//! locks, and each draws from its own random stream numbered by (epoch,
//! sub-epoch, block): the same seed gives the same factors on any number of
//! threads (this is the stratified SGD of Gemulla et al. 2011, "DSGD").
//! Reshuffling items each epoch matters: with fixed blocks, items of
//! different blocks would never be ranked against each other.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::factors::{FactorAlgorithm, FactorModel};
use crate::interactions::Interactions;
use crate::linalg::dot;
use crate::rng::Rng;

/// Training parameters; the defaults are implicit's (except `factors`,
/// 64 here against implicit's 100).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BprParams {
    pub factors: usize,
    pub learning_rate: f32,
    pub regularization: f32,
    pub iterations: usize,
    pub verify_negative_samples: bool,
    pub seed: u64,
    /// Blocks per side for the parallel schedule. Fixed by the caller, not
    /// by the thread count, so results do not depend on the machine; use at
    /// least as many blocks as threads (more balances better).
    pub blocks: usize,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            factors: 64,
            learning_rate: 0.01,
            regularization: 0.01,
            iterations: 100,
            verify_negative_samples: true,
            seed: 0,
            blocks: 8,
        }
    }
}

/// Rows regrouped so that each block's rows are contiguous.
struct Blocking {
    /// `local[i]` = position of original row `i` in the regrouped order.
    local: Vec<u32>,
    /// Original row of each regrouped position.
    original: Vec<u32>,
    /// Block `b` holds regrouped positions `offsets[b]..offsets[b+1]`.
    offsets: Vec<usize>,
}

impl Blocking {
    /// A seeded shuffle of `n` rows cut into `blocks` nearly equal blocks.
    fn shuffled(n: usize, blocks: usize, rng: &mut Rng) -> Blocking {
        let mut original: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            original.swap(i, rng.below(i + 1));
        }
        let mut local = vec![0u32; n];
        for (pos, &row) in original.iter().enumerate() {
            local[row as usize] = pos as u32;
        }
        let offsets = (0..=blocks).map(|b| b * n / blocks).collect();
        Blocking {
            local,
            original,
            offsets,
        }
    }

    fn block_of(&self, pos: u32) -> usize {
        // Blocks are contiguous and nearly equal: a binary search is plenty.
        self.offsets.partition_point(|&o| o <= pos as usize) - 1
    }
}

/// Trains BPR on the pattern of the matrix (values are ignored, as in
/// implicit: every stored pair is a "liked" pair), in the current rayon pool.
pub fn train_bpr(m: &Interactions, params: &BprParams) -> Result<FactorModel> {
    let f = params.factors;
    if f == 0 {
        return Err(Error::InvalidParameter(
            "BPR needs at least one factor".into(),
        ));
    }
    if params.blocks == 0 {
        return Err(Error::InvalidParameter(
            "BPR needs at least one block".into(),
        ));
    }
    for (name, v) in [
        ("learning rate", params.learning_rate),
        ("regularization", params.regularization),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::InvalidParameter(format!(
                "BPR {name} must be finite and >= 0, not {v}"
            )));
        }
    }
    let dim = f + 1;
    let nb = params.blocks;
    let (n_users, n_items) = (m.n_users(), m.n_items());
    let mut rng = Rng::derive(params.seed, &[0xB9B]);
    let ub = Blocking::shuffled(n_users, nb, &mut rng);

    // User factors live in regrouped order for the whole run; item factors
    // in original order, regrouped at the start of each epoch by that
    // epoch's shuffle (so every pair of items meets in some epoch).
    let mut users = vec![0f32; n_users * dim];
    for (pos, &u) in ub.original.iter().enumerate() {
        let row = &mut users[pos * dim..(pos + 1) * dim];
        if !m.user_row(u).is_empty() {
            for x in row.iter_mut() {
                *x = (rng.next_f32() - 0.5) / f as f32;
            }
        }
        row[f] = 1.0;
    }
    let mut item_factors = vec![0f32; n_items * dim];
    for i in 0..n_items {
        if !m.item_col(i as u32).is_empty() {
            for x in &mut item_factors[i * dim..(i + 1) * dim] {
                *x = (rng.next_f32() - 0.5) / f as f32;
            }
        }
    }
    // Each stored pair as (user block, user local index, item).
    let pairs: Vec<(u32, u32, u32)> = m
        .entries()
        .map(|(u, i, _, _)| {
            let up = ub.local[u as usize];
            let bu = ub.block_of(up);
            (bu as u32, up - ub.offsets[bu] as u32, i)
        })
        .collect();

    let liked = params.verify_negative_samples.then(|| LikedSet::new(m));
    let lr = params.learning_rate;
    let reg = params.regularization;
    let mut items = vec![0f32; n_items * dim];
    let mut cells: Vec<Vec<(u32, u32)>> = vec![Vec::new(); nb * nb];
    let mut pools: Vec<Vec<u32>> = vec![Vec::new(); nb];
    for epoch in 0..params.iterations {
        let mut epoch_rng = Rng::derive(params.seed, &[0xE0C, epoch as u64]);
        let ib = Blocking::shuffled(n_items, nb, &mut epoch_rng);
        for (pos, &i) in ib.original.iter().enumerate() {
            let i = i as usize;
            items[pos * dim..(pos + 1) * dim]
                .copy_from_slice(&item_factors[i * dim..(i + 1) * dim]);
        }
        // Stored pairs by cell (user block, item block) in block-local
        // coordinates; per item block, one slot per stored pair of its
        // items, for popularity-proportional negatives.
        cells.iter_mut().for_each(Vec::clear);
        pools.iter_mut().for_each(Vec::clear);
        for &(bu, lu, i) in &pairs {
            let ip = ib.local[i as usize];
            let bi = ib.block_of(ip);
            let li = ip - ib.offsets[bi] as u32;
            cells[bu as usize * nb + bi].push((lu, li));
            pools[bi].push(li);
        }
        for sub in 0..nb {
            let user_blocks = split_blocks(&mut users, &ub.offsets, dim);
            let mut item_blocks = split_blocks(&mut items, &ib.offsets, dim);
            item_blocks.rotate_left(sub);
            let (cells, pools, ub, ib, liked) = (&cells, &pools, &ub, &ib, &liked);
            user_blocks
                .into_par_iter()
                .zip(item_blocks.into_par_iter())
                .enumerate()
                .for_each(|(t, (ublock, iblock))| {
                    let bi = (t + sub) % nb;
                    let cell = &cells[t * nb + bi];
                    let pool = &pools[bi];
                    if cell.is_empty() || pool.is_empty() {
                        return;
                    }
                    let mut rng = Rng::derive(params.seed, &[epoch as u64, sub as u64, t as u64]);
                    let task = CellTask { dim, lr, reg };
                    for _ in 0..cell.len() {
                        let (lu, li) = cell[rng.below(cell.len())];
                        let lj = pool[rng.below(pool.len())];
                        if li == lj {
                            continue;
                        }
                        if let Some(liked) = &liked {
                            let user = ub.original[ub.offsets[t] + lu as usize];
                            let neg = ib.original[ib.offsets[bi] + lj as usize];
                            if liked.contains(user, neg) {
                                continue;
                            }
                        }
                        task.update(ublock, iblock, lu as usize, li as usize, lj as usize);
                    }
                });
        }
        for (pos, &i) in ib.original.iter().enumerate() {
            let i = i as usize;
            item_factors[i * dim..(i + 1) * dim]
                .copy_from_slice(&items[pos * dim..(pos + 1) * dim]);
        }
    }

    let mut user_factors = vec![0f32; n_users * dim];
    for (u, &pos) in ub.local.iter().enumerate() {
        let p = pos as usize;
        user_factors[u * dim..(u + 1) * dim].copy_from_slice(&users[p * dim..(p + 1) * dim]);
    }
    FactorModel::new(FactorAlgorithm::Bpr, dim, user_factors, item_factors)
}

/// "Has this user this item?" for checking negative samples: one bit per
/// (user, item) when that fits in 64 MiB (one memory access instead of a
/// binary search's chain of dependent ones), else the sorted rows.
enum LikedSet<'a> {
    Bits { words: Vec<u64>, n_items: usize },
    Rows(&'a Interactions),
}

impl<'a> LikedSet<'a> {
    const MAX_BITS: usize = 64 << 23;

    fn new(m: &'a Interactions) -> LikedSet<'a> {
        let n_items = m.n_items();
        match m.n_users().checked_mul(n_items) {
            Some(bits) if bits <= Self::MAX_BITS => {
                let mut words = vec![0u64; bits.div_ceil(64)];
                for (u, i, _, _) in m.entries() {
                    let b = u as usize * n_items + i as usize;
                    words[b / 64] |= 1 << (b % 64);
                }
                LikedSet::Bits { words, n_items }
            }
            _ => LikedSet::Rows(m),
        }
    }

    #[inline]
    fn contains(&self, user: u32, item: u32) -> bool {
        match self {
            LikedSet::Bits { words, n_items } => {
                let b = user as usize * n_items + item as usize;
                words[b / 64] & (1 << (b % 64)) != 0
            }
            LikedSet::Rows(m) => m.user_row(user).contains(item),
        }
    }
}

/// Cuts a regrouped factor array into its blocks' row ranges.
fn split_blocks<'a>(mut rest: &'a mut [f32], offsets: &[usize], dim: usize) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(offsets.len());
    for w in offsets.windows(2) {
        let (head, tail) = rest.split_at_mut((w[1] - w[0]) * dim);
        out.push(head);
        rest = tail;
    }
    out
}

struct CellTask {
    dim: usize,
    lr: f32,
    reg: f32,
}

impl CellTask {
    /// implicit's update for one (user, liked, disliked) triple; `li != lj`.
    #[inline]
    fn update(&self, users: &mut [f32], items: &mut [f32], lu: usize, li: usize, lj: usize) {
        let d = self.dim;
        let f = d - 1;
        let user = &mut users[lu * d..(lu + 1) * d];
        let (liked, disliked) = two_rows(items, li, lj, d);
        let score = dot(user, liked) - dot(user, disliked);
        let z = 1.0 / (1.0 + score.exp());
        let (lr, reg) = (self.lr, self.reg);
        for j in 0..f {
            let u = user[j];
            let (l, n) = (liked[j], disliked[j]);
            user[j] = u + lr * (z * (l - n) - reg * u);
            liked[j] = l + lr * (z * u - reg * l);
            disliked[j] = n + lr * (-z * u - reg * n);
        }
        liked[f] += lr * (z - reg * liked[f]);
        disliked[f] += lr * (-z - reg * disliked[f]);
    }
}

/// Two distinct rows of a row-major array, both mutable.
fn two_rows(m: &mut [f32], a: usize, b: usize, d: usize) -> (&mut [f32], &mut [f32]) {
    if a < b {
        let (lo, hi) = m.split_at_mut(b * d);
        (&mut lo[a * d..(a + 1) * d], &mut hi[..d])
    } else {
        let (lo, hi) = m.split_at_mut(a * d);
        (&mut hi[..d], &mut lo[b * d..(b + 1) * d])
    }
}
