//! Picking the best `k` of a scored catalogue without sorting it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A candidate ordered so that the heap's top is the *worst* kept one:
/// lower score is "greater", and among equal scores the higher id.
#[derive(Clone, Copy)]
struct Worst {
    score: f32,
    item: u32,
}

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.item.cmp(&other.item))
    }
}

/// The `k` best-scored items, best first (ties: lower id first), leaving
/// out the items in `exclude` (sorted ascending, e.g. a user's history),
/// items whose score is NaN or −∞, and items for which `allow` says false.
pub fn top_k(
    scores: &[f32],
    k: usize,
    exclude: &[u32],
    allow: Option<&dyn Fn(u32) -> bool>,
) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
    let mut threshold = f32::NEG_INFINITY;
    let mut ex = exclude.iter().copied().peekable();
    for (i, &s) in scores.iter().enumerate() {
        // Cheap rejection first: most items lose to the current k-th best.
        if !(s > threshold || (heap.len() < k && s > f32::NEG_INFINITY)) {
            continue;
        }
        let item = i as u32;
        while ex.next_if(|&e| e < item).is_some() {}
        if ex.peek() == Some(&item) {
            continue;
        }
        if let Some(allow) = allow {
            if !allow(item) {
                continue;
            }
        }
        heap.push(Worst { score: s, item });
        if heap.len() > k {
            heap.pop();
        }
        if heap.len() == k {
            threshold = heap.peek().map_or(f32::NEG_INFINITY, |w| w.score);
        }
    }
    let mut out: Vec<(u32, f32)> = heap.into_iter().map(|w| (w.item, w.score)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_best_skips_excluded_and_disallowed() {
        let scores = [0.1, 0.9, 0.5, f32::NAN, 0.7, 0.9, f32::NEG_INFINITY, 0.3];
        assert_eq!(
            top_k(&scores, 3, &[], None),
            vec![(1, 0.9), (5, 0.9), (4, 0.7)]
        );
        assert_eq!(top_k(&scores, 2, &[1, 4], None), vec![(5, 0.9), (2, 0.5)]);
        let even = |i: u32| i.is_multiple_of(2);
        assert_eq!(
            top_k(&scores, 2, &[], Some(&even)),
            vec![(4, 0.7), (2, 0.5)]
        );
        assert_eq!(
            top_k(&scores, 100, &[], None).len(),
            6,
            "NaN and -inf never come back"
        );
        assert!(top_k(&scores, 0, &[], None).is_empty());
    }

    #[test]
    fn ties_at_the_cutoff_keep_lower_ids() {
        let scores = [1.0; 10];
        let ids: Vec<u32> = top_k(&scores, 3, &[0], None).iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
