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

/// PELT compiled for the widest instruction set this CPU has (the same
/// arithmetic in the same order in every build, so the same breakpoints):
/// the search's own loops — divisions, minimum, pruning, and the cost's
/// inlined bookkeeping — then vectorise too.
pub(crate) fn pelt<C: SegmentCost>(
    cost: &mut C,
    n: usize,
    pen: f64,
    min_size: usize,
    jump: usize,
) -> Result<Vec<usize>> {
    // Only the batched costs (RBF) gain: the others' loops are scalar, and wider builds
    // of them measured slower (L2, jump 1, n = 4,000: 8.2 ms AVX-512 vs 3.9 ms baseline).
    if C::BATCH_ERRORS {
        search_built(cost, n, pen, min_size, jump)
    } else {
        search(cost, n, pen, min_size, jump)
    }
}

reel_cpu::multiversion! {
    isa = crate::simd::isa;
    /// [`search`] compiled for this CPU's widest build.
    fn search_built<C: SegmentCost>(cost: &mut C, n: usize, pen: f64, min_size: usize, jump: usize) -> Result<Vec<usize>> {
        search(cost, n, pen, min_size, jump)
    }
}

#[inline(always)]
fn search<C: SegmentCost>(
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
    // How many admissible starts have no partition of their own (only
    // multiples of `jump` below `min_size`; usually none).
    let mut unpartitioned = 0usize;
    for &end in &ends {
        let t = (end - min_size) / jump * jump;
        admissible.push(t);
        unpartitioned += usize::from(!has[t]);
        // Admission order is ascending (ends ascend, pruning keeps order).
        let lo = admissible.first().copied().unwrap_or(0);
        cost.advance_to(end, lo, jump);
        sub_v.clear();
        // Python's min: a later subproblem wins only if strictly smaller.
        let mut best_t = usize::MAX;
        let mut best = f64::NAN;
        if C::BATCH_ERRORS {
            let starts: &[usize] = if unpartitioned == 0 {
                &admissible
            } else {
                sub_t.clear();
                sub_t.extend(admissible.iter().copied().filter(|&t| has[t]));
                &sub_t
            };
            cost.totals(starts, end, &total, pen, &mut sub_v);
            if let Some(i) = first_min(&sub_v) {
                (best_t, best) = (starts[i], sub_v[i]);
            }
        } else {
            for &t in &admissible {
                if has[t] {
                    let v = total[t] + (cost.error(t, end) + pen);
                    if best_t == usize::MAX || v < best {
                        best_t = t;
                        best = v;
                    }
                    sub_v.push(v);
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
        let mut i = 0;
        admissible.retain(|_| {
            let keep = sub_v.get(i).is_some_and(|&v| v <= limit);
            i += 1;
            keep
        });
        if unpartitioned > 0 {
            unpartitioned = admissible.iter().filter(|&&t| !has[t]).count();
        }
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

/// The index Python's `min` picks: the first element that no later one is
/// strictly smaller than. The minimum is found in four independent lanes
/// (the order does not change a minimum), then its first occurrence.
#[inline(always)]
fn first_min(v: &[f64]) -> Option<usize> {
    let first = *v.first()?;
    if first.is_nan() {
        return Some(0); // nothing compares smaller than NaN
    }
    let mut lanes = [first; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = if x < *m { x } else { *m };
        }
    }
    let mut m = lanes[0];
    for &x in lanes[1..].iter().chain(chunks.remainder()) {
        m = if x < m { x } else { m };
    }
    v.iter().position(|&x| x == m)
}

#[cfg(test)]
mod tests {
    use super::first_min;

    #[test]
    fn first_min_is_pythons_min() {
        assert_eq!(first_min(&[]), None);
        assert_eq!(first_min(&[3.0, 1.0, 2.0, 1.0, 5.0, 1.0, 0.5, 0.5, 7.0]), Some(6));
        assert_eq!(first_min(&[2.0, 2.0]), Some(0));
        assert_eq!(first_min(&[f64::NAN, 1.0]), Some(0));
        assert_eq!(first_min(&[4.0, f64::NAN, 1.0, f64::NAN, 3.0, 9.0]), Some(2));
        assert_eq!(first_min(&[f64::INFINITY; 6]), Some(0));
        let v: Vec<f64> = (0..37).map(|i| ((i * 17) % 11) as f64).collect();
        let want = (0..v.len()).fold(0, |b, i| if v[i] < v[b] { i } else { b });
        assert_eq!(first_min(&v), Some(want));
    }
}
