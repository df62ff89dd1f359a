//! Inverted index: `label name -> label value -> posting list` of series ids (sorted `u32`s).

use crate::labels::{Labels, Matcher};
use std::collections::HashMap;

#[derive(Default, Debug)]
pub struct Postings {
    map: HashMap<String, HashMap<String, Vec<u32>>>,
    all: Vec<u32>,
}

impl Postings {
    /// Ids must be added in increasing order, which keeps every list sorted without sorting.
    pub fn add(&mut self, id: u32, labels: &Labels) {
        for (k, v) in labels.iter() {
            self.map
                .entry(k.to_string())
                .or_default()
                .entry(v.to_string())
                .or_default()
                .push(id);
        }
        self.all.push(id);
    }

    /// Removes series `gone` (ids sorted ascending, each with its label set). Posting lists,
    /// values and names left empty are dropped, and shrunk buffers give their memory back.
    pub fn remove(&mut self, gone: &[(u32, &Labels)]) {
        if gone.is_empty() {
            return;
        }
        debug_assert!(gone.windows(2).all(|w| w[0].0 < w[1].0));
        let is_gone = |id: &u32| gone.binary_search_by_key(id, |g| g.0).is_ok();
        // Each affected list is filtered once, however many removed series it holds.
        let mut touched: HashMap<&str, Vec<&str>> = HashMap::new();
        for (_, labels) in gone {
            for (k, v) in labels.iter() {
                touched.entry(k).or_default().push(v);
            }
        }
        for (name, mut values) in touched {
            values.sort_unstable();
            values.dedup();
            let Some(by_value) = self.map.get_mut(name) else {
                continue;
            };
            for v in values {
                if let Some(list) = by_value.get_mut(v) {
                    list.retain(|id| !is_gone(id));
                    if list.is_empty() {
                        by_value.remove(v);
                    } else {
                        shrink_vec(list);
                    }
                }
            }
            if by_value.is_empty() {
                self.map.remove(name);
            } else {
                shrink_map(by_value);
            }
        }
        shrink_map(&mut self.map);
        self.all.retain(|id| !is_gone(id));
        shrink_vec(&mut self.all);
    }

    /// Number of series ids indexed.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .map
            .get(name)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn label_names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// Series ids that may match all `matchers`; a superset only when a matcher also matches
    /// the empty string (label absent), so callers re-check labels with [`Matcher::matches_labels`].
    pub fn candidates(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut lists: Vec<Vec<u32>> = Vec::new();
        for m in matchers.iter().filter(|m| !m.matches("")) {
            let Some(values) = self.map.get(&m.name) else {
                return Vec::new();
            };
            let matching: Vec<&Vec<u32>> = match m.op {
                crate::labels::MatchOp::Equal => values.get(&m.value).into_iter().collect(),
                _ => values
                    .iter()
                    .filter(|(v, _)| m.matches(v))
                    .map(|(_, ids)| ids)
                    .collect(),
            };
            lists.push(union(&matching));
        }
        if lists.is_empty() {
            return self.all.clone();
        }
        lists.sort_by_key(|l| l.len());
        let mut acc = lists.swap_remove(0);
        for l in &lists {
            acc = intersect(&acc, l);
        }
        acc
    }
}

/// Gives memory back once a vector is mostly empty (amortised: only below a quarter full).
pub(crate) fn shrink_vec<T>(v: &mut Vec<T>) {
    if v.capacity() > 16 && v.len() < v.capacity() / 4 {
        v.shrink_to_fit();
    }
}

/// [`shrink_vec`] for hash maps.
pub(crate) fn shrink_map<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 16 && m.len() < m.capacity() / 4 {
        m.shrink_to_fit();
    }
}

pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub fn union(lists: &[&Vec<u32>]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut out: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::MatchOp;

    #[test]
    fn intersect_and_union() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5, 8]), vec![3, 5]);
        assert_eq!(union(&[&vec![1, 5], &vec![2, 5, 9]]), vec![1, 2, 5, 9]);
    }

    #[test]
    fn candidates_by_matchers() {
        let mut p = Postings::default();
        p.add(0, &Labels::metric("up", &[("job", "api"), ("dc", "eu")]));
        p.add(1, &Labels::metric("up", &[("job", "web"), ("dc", "eu")]));
        p.add(2, &Labels::metric("up", &[("job", "web")]));
        let m = |n: &str, op, v: &str| Matcher::new(n, op, v).expect("matcher");
        assert_eq!(
            p.candidates(&[
                m("dc", MatchOp::Equal, "eu"),
                m("job", MatchOp::Regex, "w.*")
            ]),
            vec![1]
        );
        assert_eq!(
            p.candidates(&[m("job", MatchOp::NotEqual, "api")]),
            vec![0, 1, 2]
        );
        assert!(p.candidates(&[m("nope", MatchOp::Equal, "x")]).is_empty());
    }

    #[test]
    fn remove_drops_ids_values_and_names() {
        let mut p = Postings::default();
        let a = Labels::metric("up", &[("job", "api"), ("pod", "a")]);
        let b = Labels::metric("up", &[("job", "web"), ("pod", "b")]);
        let c = Labels::metric("up", &[("job", "web")]);
        p.add(0, &a);
        p.add(1, &b);
        p.add(2, &c);
        p.remove(&[(0, &a), (1, &b)]);
        let m = |n: &str, op, v: &str| Matcher::new(n, op, v).expect("matcher");
        assert_eq!(p.candidates(&[m("job", MatchOp::Equal, "web")]), vec![2]);
        assert!(p.candidates(&[m("job", MatchOp::Equal, "api")]).is_empty());
        assert_eq!(p.label_values("job"), vec!["web".to_string()]);
        assert!(p.label_values("pod").is_empty());
        assert_eq!(p.len(), 1);
        p.add(3, &a);
        assert_eq!(p.candidates(&[m("__name__", MatchOp::Equal, "up")]), vec![2, 3]);
    }
}
