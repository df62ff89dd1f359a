//! Binary segmentation as ruptures' `Binseg._seg` runs it: each round splits
//! the segment whose best single split gains most (first segment on ties;
//! within a segment the largest `(gain, bkp)` pair, so the later breakpoint on
//! ties); candidates are `start, start + jump, …` with both sides at least
//! `min_size` long. Each segment's best split is computed once (ruptures'
//! `lru_cache`).

use serde::{Deserialize, Serialize};

use crate::cost::SegmentCost;
use crate::error::Result;

/// When binary segmentation stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinSegStop {
    /// Split while the best gain exceeds this penalty.
    Penalty(f64),
    /// Split until there are this many breakpoints (before `n`).
    NBkps(usize),
    /// Split while the total cost exceeds this budget.
    Epsilon(f64),
}

pub(crate) fn binseg<C: SegmentCost>(
    cost: &C,
    n: usize,
    stop: BinSegStop,
    min_size: usize,
    jump: usize,
) -> Result<Vec<usize>> {
    // One entry per current segment, in order, with its best split; a
    // segment's split never changes, so each is computed once (ruptures'
    // lru_cache) and the list is updated in place when a segment splits.
    let mut segs: Vec<(usize, usize, Option<usize>, f64)> = Vec::new();
    let (b0, g0) = single_bkp(cost, 0, n, min_size, jump);
    segs.push((0, n, b0, g0));
    loop {
        // Python's max keeps the first of equal keys.
        let mut best_i = 0;
        for (i, s) in segs.iter().enumerate() {
            if s.3 > segs[best_i].3 {
                best_i = i;
            }
        }
        let (start, end, Some(bkp), gain) = segs[best_i] else {
            break;
        };
        let go_on = match stop {
            BinSegStop::NBkps(k) => segs.len() - 1 < k,
            BinSegStop::Penalty(pen) => gain > pen,
            BinSegStop::Epsilon(eps) => {
                segs.iter().map(|s| cost.error(s.0, s.1)).sum::<f64>() > eps
            }
        };
        if !go_on {
            break;
        }
        let (lb, lg) = single_bkp(cost, start, bkp, min_size, jump);
        let (rb, rg) = single_bkp(cost, bkp, end, min_size, jump);
        segs[best_i] = (start, bkp, lb, lg);
        segs.insert(best_i + 1, (bkp, end, rb, rg));
    }
    Ok(segs.iter().map(|s| s.1).collect())
}

fn single_bkp<C: SegmentCost>(
    cost: &C,
    start: usize,
    end: usize,
    min_size: usize,
    jump: usize,
) -> (Option<usize>, f64) {
    let profile = cost.split_profile(start, end);
    let whole = match &profile {
        Some((w, _, _)) => *w,
        None => cost.error(start, end),
    };
    if whole == f64::NEG_INFINITY {
        return (None, 0.0);
    }
    let mut best: Option<(f64, usize)> = None;
    for bkp in (start..end).step_by(jump) {
        if bkp - start >= min_size && end - bkp >= min_size {
            let (l, r) = match &profile {
                Some((_, left, right)) => (left[bkp - start], right[bkp - start]),
                None => (cost.error(start, bkp), cost.error(bkp, end)),
            };
            let gain = whole - l - r;
            // max over (gain, bkp) tuples: later bkp wins ties.
            if best.is_none_or(|(g, b)| gain > g || (gain == g && bkp > b)) {
                best = Some((gain, bkp));
            }
        }
    }
    match best {
        Some((gain, bkp)) => (Some(bkp), gain),
        None => (None, 0.0),
    }
}
