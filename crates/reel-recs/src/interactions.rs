//! The user × item matrix every model trains on, in both orientations.
//!
//! Rows are users, columns are items; a stored value is the *confidence*
//! that the user likes the item (implicit's convention: the raw value is the
//! confidence, a nonzero means "liked", a negative value means "disliked with
//! that confidence"). Each stored entry also keeps the time of its latest
//! event, for time-based splits and decayed popularity.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One observation: `user` interacted with `item` with this `weight`
/// (a confidence, see [`watch_confidence`]) at `timestamp` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub user: u32,
    pub item: u32,
    pub weight: f32,
    pub timestamp: i64,
}

/// The confidence that a viewer likes a title, from how they watched it:
/// `1 + alpha * (share + ln(1 + repeats))`.
///
/// `share` is the part of the title watched (clamped to 0..=1), `repeats`
/// how many times it was watched again after the first. A viewer who opened
/// a title and left at once gets a confidence near 1 (the floor every
/// unobserved pair also has in ALS, so nearly no signal); one who finished it
/// gets `1 + alpha`; rewatching adds a slowly growing bonus, so a favourite
/// watched ten times counts more than a title finished once but not ten
/// times more. `alpha` plays the role of Hu, Koren and Volinsky's α
/// (they found 10–40 good for TV viewing).
pub fn watch_confidence(share: f32, repeats: u32, alpha: f32) -> f32 {
    let share = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    1.0 + alpha * (share + (repeats as f32).ln_1p())
}

/// A borrowed sparse row: sorted column ids and their values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseRow<'a> {
    pub indices: &'a [u32],
    pub values: &'a [f32],
}

impl<'a> SparseRow<'a> {
    pub const EMPTY: SparseRow<'static> = SparseRow {
        indices: &[],
        values: &[],
    };

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Whether column `c` is stored (binary search: indices are sorted).
    pub fn contains(&self, c: u32) -> bool {
        self.indices.binary_search(&c).is_ok()
    }
}

/// Compressed sparse rows: row `r` is `indices[indptr[r]..indptr[r+1]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Csr {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    #[inline]
    pub fn row(&self, r: usize) -> SparseRow<'_> {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        SparseRow {
            indices: &self.indices[a..b],
            values: &self.values[a..b],
        }
    }

    /// The transpose with `cols` rows, each row's indices sorted.
    fn transpose(&self, cols: usize) -> Csr {
        let mut counts = vec![0usize; cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for c in 0..cols {
            counts[c + 1] += counts[c];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.indices.len()];
        let mut values = vec![0f32; self.values.len()];
        for r in 0..self.rows() {
            let row = self.row(r);
            for (&c, &v) in row.indices.iter().zip(row.values) {
                let slot = next[c as usize];
                indices[slot] = r as u32;
                values[slot] = v;
                next[c as usize] += 1;
            }
        }
        Csr {
            indptr,
            indices,
            values,
        }
    }
}

/// The user × item confidence matrix (CSR) with its transpose (CSC) and the
/// latest event time of every stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Interactions {
    n_users: usize,
    n_items: usize,
    by_user: Csr,
    times: Vec<i64>,
    by_item: Csr,
}

impl Interactions {
    /// Builds the matrix from events, its shape the largest ids plus one.
    /// See [`Interactions::with_shape`] for how events combine.
    pub fn from_events(events: &[Event]) -> Result<Interactions> {
        let n_users = events
            .iter()
            .map(|e| e.user as usize + 1)
            .max()
            .unwrap_or(0);
        let n_items = events
            .iter()
            .map(|e| e.item as usize + 1)
            .max()
            .unwrap_or(0);
        Interactions::with_shape(n_users, n_items, events)
    }

    /// Builds an `n_users × n_items` matrix. Several events for one pair add
    /// their weights and keep the latest time; pairs whose weights add to 0
    /// are not stored (a zero confidence would mean "disliked" to ALS).
    pub fn with_shape(n_users: usize, n_items: usize, events: &[Event]) -> Result<Interactions> {
        if n_users > u32::MAX as usize || n_items > u32::MAX as usize {
            return Err(Error::InvalidInput("more than 2^32 users or items".into()));
        }
        for e in events {
            if e.user as usize >= n_users || e.item as usize >= n_items {
                return Err(Error::InvalidInput(format!(
                    "event for user {} item {} outside a {n_users} x {n_items} matrix",
                    e.user, e.item
                )));
            }
            if !e.weight.is_finite() {
                return Err(Error::InvalidInput(format!(
                    "event for user {} item {} has weight {}",
                    e.user, e.item, e.weight
                )));
            }
        }
        let mut sorted: Vec<Event> = events.to_vec();
        sorted.sort_by_key(|e| (e.user, e.item));
        let mut triplets: Vec<(u32, u32, f32, i64)> = Vec::with_capacity(sorted.len());
        for e in sorted {
            match triplets.last_mut() {
                Some(last) if last.0 == e.user && last.1 == e.item => {
                    last.2 += e.weight;
                    last.3 = last.3.max(e.timestamp);
                }
                _ => triplets.push((e.user, e.item, e.weight, e.timestamp)),
            }
        }
        triplets.retain(|t| t.2 != 0.0);
        Ok(Interactions::from_sorted(n_users, n_items, &triplets))
    }

    /// From (user, item, value, time) sorted by (user, item), no duplicates.
    pub(crate) fn from_sorted(
        n_users: usize,
        n_items: usize,
        triplets: &[(u32, u32, f32, i64)],
    ) -> Interactions {
        let mut indptr = vec![0usize; n_users + 1];
        for t in triplets {
            indptr[t.0 as usize + 1] += 1;
        }
        for u in 0..n_users {
            indptr[u + 1] += indptr[u];
        }
        let by_user = Csr {
            indptr,
            indices: triplets.iter().map(|t| t.1).collect(),
            values: triplets.iter().map(|t| t.2).collect(),
        };
        let times = triplets.iter().map(|t| t.3).collect();
        let by_item = by_user.transpose(n_items);
        Interactions {
            n_users,
            n_items,
            by_user,
            times,
            by_item,
        }
    }

    pub fn n_users(&self) -> usize {
        self.n_users
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of stored (user, item) pairs.
    pub fn nnz(&self) -> usize {
        self.by_user.indices.len()
    }

    /// The items a user interacted with, sorted, with confidences.
    pub fn user_row(&self, user: u32) -> SparseRow<'_> {
        if (user as usize) < self.n_users {
            self.by_user.row(user as usize)
        } else {
            SparseRow::EMPTY
        }
    }

    /// The latest event time of each entry of [`Interactions::user_row`].
    pub fn user_times(&self, user: u32) -> &[i64] {
        if (user as usize) < self.n_users {
            let (a, b) = (
                self.by_user.indptr[user as usize],
                self.by_user.indptr[user as usize + 1],
            );
            &self.times[a..b]
        } else {
            &[]
        }
    }

    /// The users who interacted with an item, sorted, with confidences.
    pub fn item_col(&self, item: u32) -> SparseRow<'_> {
        if (item as usize) < self.n_items {
            self.by_item.row(item as usize)
        } else {
            SparseRow::EMPTY
        }
    }

    /// The CSR (user-major) matrix.
    pub fn by_user(&self) -> &Csr {
        &self.by_user
    }

    /// The CSC (item-major) matrix, i.e. the CSR of the transpose.
    pub fn by_item(&self) -> &Csr {
        &self.by_item
    }

    /// Entry times in CSR order.
    pub fn times(&self) -> &[i64] {
        &self.times
    }

    /// All stored entries as (user, item, value, time), in CSR order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u32, f32, i64)> + '_ {
        (0..self.n_users).flat_map(move |u| {
            let (a, b) = (self.by_user.indptr[u], self.by_user.indptr[u + 1]);
            (a..b).map(move |k| {
                (
                    u as u32,
                    self.by_user.indices[k],
                    self.by_user.values[k],
                    self.times[k],
                )
            })
        })
    }

    /// The same pattern with every value replaced by `f(value)`; entries
    /// mapped to 0 are dropped.
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> Interactions {
        let triplets: Vec<_> = self
            .entries()
            .map(|(u, i, v, t)| (u, i, f(v), t))
            .filter(|t| t.2 != 0.0)
            .collect();
        Interactions::from_sorted(self.n_users, self.n_items, &triplets)
    }

    /// Keeps the entries for which `keep(user, item, value, time)` holds.
    pub fn filter(&self, keep: impl Fn(u32, u32, f32, i64) -> bool) -> Interactions {
        let triplets: Vec<_> = self
            .entries()
            .filter(|&(u, i, v, t)| keep(u, i, v, t))
            .collect();
        Interactions::from_sorted(self.n_users, self.n_items, &triplets)
    }

    /// Repeats the users `copies` times (user `u` of copy `c` becomes
    /// `u + c * n_users`): a bigger matrix with the same statistics, for
    /// timing training at sizes where noise does not dominate.
    pub fn replicate_users(&self, copies: usize) -> Interactions {
        let copies = copies.max(1);
        let n = self.n_users;
        let mut triplets = Vec::with_capacity(self.nnz() * copies);
        for c in 0..copies {
            triplets.extend(
                self.entries()
                    .map(|(u, i, v, t)| ((u as usize + c * n) as u32, i, v, t)),
            );
        }
        Interactions::from_sorted(n * copies, self.n_items, &triplets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: u32, item: u32, weight: f32, timestamp: i64) -> Event {
        Event {
            user,
            item,
            weight,
            timestamp,
        }
    }

    #[test]
    fn builds_both_orientations_and_merges_repeats() {
        let m = Interactions::from_events(&[
            ev(1, 2, 1.0, 10),
            ev(0, 1, 2.0, 5),
            ev(1, 0, 3.0, 7),
            ev(1, 2, 0.5, 20),
            ev(0, 0, 1.0, 1),
            ev(0, 0, -1.0, 2),
        ])
        .expect("valid events");
        assert_eq!((m.n_users(), m.n_items(), m.nnz()), (2, 3, 3));
        assert_eq!(m.user_row(1).indices, &[0, 2]);
        assert_eq!(m.user_row(1).values, &[3.0, 1.5]);
        assert_eq!(m.user_times(1), &[7, 20]);
        assert_eq!(
            m.user_row(0).indices,
            &[1],
            "weights that cancel are not stored"
        );
        assert_eq!(m.item_col(0).indices, &[1]);
        assert_eq!(m.item_col(2).values, &[1.5]);
        assert!(m.item_col(9).is_empty());
    }

    #[test]
    fn rejects_bad_events() {
        assert!(Interactions::with_shape(1, 1, &[ev(1, 0, 1.0, 0)]).is_err());
        assert!(Interactions::with_shape(1, 1, &[ev(0, 0, f32::NAN, 0)]).is_err());
    }

    #[test]
    fn watch_confidence_grows_with_share_and_repeats() {
        assert_eq!(watch_confidence(0.0, 0, 10.0), 1.0);
        assert_eq!(watch_confidence(1.0, 0, 10.0), 11.0);
        assert_eq!(watch_confidence(7.0, 0, 10.0), 11.0, "share is clamped");
        let once = watch_confidence(1.0, 1, 10.0);
        let ten = watch_confidence(1.0, 10, 10.0);
        assert!(once > 11.0 && ten > once && ten < 40.0);
    }

    #[test]
    fn replicated_users_copy_rows() {
        let m = Interactions::from_events(&[ev(0, 1, 1.0, 0), ev(1, 0, 2.0, 0)]).expect("valid");
        let r = m.replicate_users(3);
        assert_eq!((r.n_users(), r.nnz()), (6, 6));
        assert_eq!(r.user_row(4).indices, &[1]);
        assert_eq!(r.user_row(5).values, &[2.0]);
    }
}
