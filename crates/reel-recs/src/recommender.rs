//! The one shape every model answers to.

use crate::interactions::SparseRow;
use crate::topk::top_k;

/// A trained model that ranks the catalogue for a user.
///
/// `history` is what the user has watched (their row of the training
/// matrix, or their current history): item-item models score from it, and
/// every model leaves those items out of its recommendations.
pub trait Recommender: Send + Sync {
    /// Items the model knows; item ids run `0..n_items()`.
    fn n_items(&self) -> usize;

    /// Writes a score for every item into `out` (`out.len() == n_items()`);
    /// higher is better. Items the model cannot score get −∞.
    fn score_into(&self, user: u32, history: SparseRow<'_>, out: &mut [f32]);

    /// The `k` best items for `user`, best first, with their scores; never an
    /// item of `history`, nor one for which `allow` returns false (for
    /// example, titles the profile's maturity rating forbids).
    fn recommend(
        &self,
        user: u32,
        history: SparseRow<'_>,
        k: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        let mut scores = vec![0f32; self.n_items()];
        self.score_into(user, history, &mut scores);
        top_k(&scores, k, history.indices, allow)
    }
}
