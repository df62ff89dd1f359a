//! PELT as ruptures' `Pelt._seg` runs it, loop for loop, so the breakpoints
//! are the same ones: candidate ends are the multiples of `jump` that are at
//! least `min_size` (then `n`); each end admits the start
//! `floor((end − min_size) / jump) · jump`; a start is kept while its total is
//! at most the best total plus `pen`. Two quirks are kept on purpose:
//!
//! * a start with no partition of its own (a multiple of `jump` below
//!   `min_size`) is skipped, but the pruning still pairs starts with
//!   subproblems by position (Python's `zip`), so the pairing shifts;
//! * ties go to the first start in admission order (Python's `min`).
//!
//! Totals are accumulated in the same order as `sum(partition.values())`.

use crate::cost::SegmentCost;
use crate::error::{Error, Result};

pub(crate) fn pelt<C: SegmentCost>(
    cost: &mut C,
    n: usize,
    pen: f64,
    min_size: usize,
    jump: usize,
) -> Result<Vec<usize>> {
    if min_size > n {
        return Err(Error::SegmentationImpossible { n, min_size, jump });
    }
    // total[t] / prev[t]: best total and last start of the partition of 0..t.
    let mut total = vec![f64::NAN; n + 1];
    let mut prev = vec![usize::MAX; n + 1];
    let mut has = vec![false; n + 1];
    total[0] = 0.0;
    has[0] = true;

    let mut ends: Vec<usize> = (0..n).step_by(jump).filter(|&k| k >= min_size).collect();
    ends.push(n);

    let mut admissible: Vec<usize> = Vec::with_capacity(64);
    let mut sub_t: Vec<usize> = Vec::with_capacity(64);
    let mut sub_v: Vec<f64> = Vec::with_capacity(64);
    let mut errs: Vec<f64> = Vec::with_capacity(64);
    let mut kept: Vec<usize> = Vec::with_capacity(64);
    for &end in &ends {
        admissible.push((end - min_size) / jump * jump);
        // Admission order is ascending (ends ascend, pruning keeps order).
        let lo = admissible.first().copied().unwrap_or(0);
        cost.advance_to(end, lo);
        sub_v.clear();
        // Python's min: a later subproblem wins only if strictly smaller.
        let mut best_t = usize::MAX;
        let mut best = f64::NAN;
        let mut consider = |t: usize, e: f64| {
            let v = total[t] + (e + pen);
            if best_t == usize::MAX || v < best {
                best_t = t;
                best = v;
            }
            sub_v.push(v);
        };
        if C::BATCH_ERRORS {
            sub_t.clear();
            sub_t.extend(admissible.iter().copied().filter(|&t| has[t]));
            cost.errors(&sub_t, end, &mut errs);
            for (&t, &e) in sub_t.iter().zip(&errs) {
                consider(t, e);
            }
        } else {
            for &t in &admissible {
                if has[t] {
                    consider(t, cost.error(t, end));
                }
            }
        }
        if best_t == usize::MAX {
            return Err(Error::SegmentationImpossible { n, min_size, jump });
        }
        total[end] = best;
        prev[end] = best_t;
        has[end] = true;
        let limit = best + pen;
        // zip(admissible, subproblems): pairs by position, stops at the shorter.
        kept.clear();
        kept.extend(
            admissible
                .iter()
                .zip(sub_v.iter())
                .filter(|(_, &v)| v <= limit)
                .map(|(&t, _)| t),
        );
        std::mem::swap(&mut admissible, &mut kept);
    }

    let mut bkps = Vec::new();
    let mut end = n;
    while end > 0 {
        bkps.push(end);
        end = prev[end];
        if end == usize::MAX {
            return Err(Error::SegmentationImpossible { n, min_size, jump });
        }
    }
    bkps.reverse();
    Ok(bkps)
}
