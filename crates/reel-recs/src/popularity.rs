//! Popularity with exponential time decay: what is being watched now.
//!
//! An item's score is `Σ weight · 0.5^((now − t) / half_life)` over its
//! events: an event one half-life old counts half as much as one happening
//! now. Events "from the future" (clock skew) count as happening now.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::interactions::{Event, Interactions, SparseRow};
use crate::recommender::Recommender;

/// Decayed popularity of every item; the same for every user (minus what
/// they have already seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Popularity {
    /// Seconds after which an event counts half.
    pub half_life_secs: f64,
    /// The time the scores were computed for.
    pub now: i64,
    scores: Vec<f32>,
}

impl Popularity {
    fn check(half_life_secs: f64) -> Result<()> {
        if half_life_secs.is_finite() && half_life_secs > 0.0 {
            Ok(())
        } else {
            Err(Error::InvalidParameter(format!(
                "popularity half-life must be a positive number of seconds, not {half_life_secs}"
            )))
        }
    }

    fn decay(now: i64, t: i64, half_life_secs: f64) -> f64 {
        let age = (now.saturating_sub(t)).max(0) as f64;
        0.5f64.powf(age / half_life_secs)
    }

    /// From raw events (every event counts, repeats included).
    pub fn from_events(
        events: &[Event],
        n_items: usize,
        now: i64,
        half_life_secs: f64,
    ) -> Result<Popularity> {
        Popularity::check(half_life_secs)?;
        let mut acc = vec![0f64; n_items];
        for e in events {
            if let Some(a) = acc.get_mut(e.item as usize) {
                *a += e.weight as f64 * Popularity::decay(now, e.timestamp, half_life_secs);
            }
        }
        Ok(Popularity {
            half_life_secs,
            now,
            scores: acc.into_iter().map(|s| s as f32).collect(),
        })
    }

    /// From a matrix: each stored pair counts its value at its latest time.
    pub fn from_interactions(
        m: &Interactions,
        now: i64,
        half_life_secs: f64,
    ) -> Result<Popularity> {
        Popularity::check(half_life_secs)?;
        let mut acc = vec![0f64; m.n_items()];
        for (_, i, v, t) in m.entries() {
            acc[i as usize] += v as f64 * Popularity::decay(now, t, half_life_secs);
        }
        Ok(Popularity {
            half_life_secs,
            now,
            scores: acc.into_iter().map(|s| s as f32).collect(),
        })
    }

    /// From stored scores (a decoded model).
    pub fn from_scores(scores: Vec<f32>, now: i64, half_life_secs: f64) -> Result<Popularity> {
        Popularity::check(half_life_secs)?;
        Ok(Popularity {
            half_life_secs,
            now,
            scores,
        })
    }

    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl Recommender for Popularity {
    fn n_items(&self) -> usize {
        self.scores.len()
    }

    fn score_into(&self, _user: u32, _history: SparseRow<'_>, out: &mut [f32]) {
        let n = out.len().min(self.scores.len());
        out[..n].copy_from_slice(&self.scores[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_views_outweigh_old_ones() {
        let day = 86_400;
        let ev = |item, t| Event {
            user: 0,
            item,
            weight: 1.0,
            timestamp: t,
        };
        // Item 0: three views 30 days ago; item 1: two views today; item 2:
        // one view a day "in the future".
        let events = [
            ev(0, -30 * day),
            ev(0, -30 * day),
            ev(0, -30 * day),
            ev(1, 0),
            ev(1, 0),
            ev(2, day),
        ];
        let p = Popularity::from_events(&events, 3, 0, 10.0 * day as f64).expect("valid");
        assert!(
            (p.scores()[0] - 3.0 / 8.0).abs() < 1e-6,
            "three half-lives: 3 × 1/8"
        );
        assert_eq!(p.scores()[1], 2.0);
        assert_eq!(p.scores()[2], 1.0);
        let recs = p.recommend(
            0,
            SparseRow {
                indices: &[1],
                values: &[1.0],
            },
            2,
            None,
        );
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 0]);
        assert!(Popularity::from_events(&events, 3, 0, 0.0).is_err());
    }
}
