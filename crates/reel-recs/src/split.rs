//! Train/test splits of an interaction matrix. Each split puts every
//! stored pair in exactly one side; both sides keep the full shape, so ids
//! mean the same in each.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::rng::Rng;

/// A train/test pair of the same shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Interactions,
    pub test: Interactions,
}

/// How to split, for callers that choose at run time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SplitKind {
    /// See [`random_split`].
    Random { train_fraction: f64, seed: u64 },
    /// See [`leave_last_out`].
    LeaveLastOut,
    /// See [`time_split`].
    Time { test_fraction: f64 },
}

impl SplitKind {
    pub fn apply(&self, m: &Interactions) -> Result<Split> {
        match *self {
            SplitKind::Random {
                train_fraction,
                seed,
            } => random_split(m, train_fraction, seed),
            SplitKind::LeaveLastOut => Ok(leave_last_out(m)),
            SplitKind::Time { test_fraction } => time_split(m, test_fraction),
        }
    }
}

fn split_by(m: &Interactions, to_test: impl Fn(usize) -> bool) -> Split {
    // `entries()` runs in CSR order, the order `to_test` indexes.
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (k, e) in m.entries().enumerate() {
        if to_test(k) {
            test.push(e);
        } else {
            train.push(e);
        }
    }
    Split {
        train: Interactions::from_sorted(m.n_users(), m.n_items(), &train),
        test: Interactions::from_sorted(m.n_users(), m.n_items(), &test),
    }
}

/// Each stored pair goes to train with probability `train_fraction`, to
/// test otherwise, decided in CSR order by one draw each from the seeded
/// generator: the semantics of `implicit.evaluation.train_test_split`
/// (which draws with numpy's generator, so the pairs chosen differ).
pub fn random_split(m: &Interactions, train_fraction: f64, seed: u64) -> Result<Split> {
    if !(0.0..=1.0).contains(&train_fraction) {
        return Err(Error::InvalidParameter(format!(
            "train fraction must be within 0..=1, not {train_fraction}"
        )));
    }
    let mut rng = Rng::derive(seed, &[0x5D1]);
    let draws: Vec<bool> = (0..m.nnz())
        .map(|_| rng.next_f64() >= train_fraction)
        .collect();
    Ok(split_by(m, |k| draws[k]))
}

/// Each user with at least two pairs has their latest one (by time; among
/// equal times, the highest item id) in test, the rest in train; users with
/// one pair keep it in train.
pub fn leave_last_out(m: &Interactions) -> Split {
    let mut to_test = vec![false; m.nnz()];
    let indptr = &m.by_user().indptr;
    for u in 0..m.n_users() {
        let times = m.user_times(u as u32);
        if times.len() < 2 {
            continue;
        }
        // Items are sorted, so the last maximum is the highest id among ties.
        let mut best = 0;
        for (k, &t) in times.iter().enumerate() {
            if t >= times[best] {
                best = k;
            }
        }
        to_test[indptr[u] + best] = true;
    }
    split_by(m, |k| to_test[k])
}

/// A global cutoff: pairs whose time is at or after the time below which
/// `1 − test_fraction` of all pairs fall go to test (the future), the rest
/// to train (the past).
pub fn time_split(m: &Interactions, test_fraction: f64) -> Result<Split> {
    if !(0.0..=1.0).contains(&test_fraction) {
        return Err(Error::InvalidParameter(format!(
            "test fraction must be within 0..=1, not {test_fraction}"
        )));
    }
    let mut times = m.times().to_vec();
    times.sort_unstable();
    let n = times.len();
    let at = ((n as f64) * (1.0 - test_fraction)).floor() as usize;
    let cutoff = if at >= n { i64::MAX } else { times[at] };
    let all = m.times();
    Ok(split_by(m, |k| all[k] >= cutoff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::Event;

    fn matrix() -> Interactions {
        let mut events = Vec::new();
        for u in 0..20u32 {
            for i in 0..(1 + u % 7) {
                events.push(Event {
                    user: u,
                    item: (i * 3 + u) % 15,
                    weight: 1.0 + i as f32,
                    timestamp: (u as i64 * 7 + i as i64 * 13) % 50,
                });
            }
        }
        Interactions::from_events(&events).expect("valid")
    }

    fn assert_partition(m: &Interactions, s: &Split) {
        let mut both: Vec<_> = s.train.entries().chain(s.test.entries()).collect();
        both.sort_by_key(|e| (e.0, e.1));
        let all: Vec<_> = m.entries().collect();
        assert_eq!(
            both, all,
            "train and test are disjoint and cover the matrix"
        );
        assert_eq!(
            (s.train.n_users(), s.train.n_items()),
            (m.n_users(), m.n_items())
        );
    }

    #[test]
    fn random_split_partitions_with_about_the_asked_share() {
        let m = matrix();
        let s = random_split(&m, 0.8, 42).expect("valid fraction");
        assert_partition(&m, &s);
        let share = s.train.nnz() as f64 / m.nnz() as f64;
        assert!((0.6..0.95).contains(&share), "{share}");
        assert_eq!(
            s,
            random_split(&m, 0.8, 42).expect("valid"),
            "same seed, same split"
        );
        assert_ne!(s, random_split(&m, 0.8, 43).expect("valid"));
        assert!(random_split(&m, 1.5, 1).is_err());
    }

    #[test]
    fn leave_last_out_holds_out_each_users_latest() {
        let m = matrix();
        let s = leave_last_out(&m);
        assert_partition(&m, &s);
        for u in 0..m.n_users() as u32 {
            let (all, test) = (m.user_row(u), s.test.user_row(u));
            if all.len() < 2 {
                assert!(test.is_empty());
                continue;
            }
            assert_eq!(test.len(), 1);
            let latest = *m.user_times(u).iter().max().expect("nonempty");
            assert_eq!(s.test.user_times(u)[0], latest);
        }
    }

    #[test]
    fn time_split_puts_the_future_in_test() {
        let m = matrix();
        let s = time_split(&m, 0.25).expect("valid fraction");
        assert_partition(&m, &s);
        let latest_train = s.train.times().iter().max().expect("nonempty");
        let earliest_test = s.test.times().iter().min().expect("nonempty");
        assert!(latest_train < earliest_test);
        assert!(s.test.nnz() as f64 >= 0.25 * m.nnz() as f64);
    }
}
