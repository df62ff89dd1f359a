//! Label sets (series identity) and label matchers.

use regex_automata::meta::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The metric name is stored as the label `__name__`, as in Prometheus.
pub const METRIC_NAME: &str = "__name__";

/// A sorted, de-duplicated set of `name=value` pairs identifying one series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set; sorts by name, the last duplicate wins, empty values are dropped
    /// (an empty value means "label absent" in Prometheus).
    pub fn new<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Labels {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            if let Some(last) = out.last_mut() {
                if last.0 == k {
                    last.1 = val;
                    continue;
                }
            }
            out.push((k, val));
        }
        out.retain(|(_, v)| !v.is_empty());
        Labels(out)
    }

    /// `metric{k="v", ...}` shorthand.
    pub fn metric(name: &str, tags: &[(&str, &str)]) -> Labels {
        Labels::new(std::iter::once((METRIC_NAME, name)).chain(tags.iter().copied()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This set with `name` set to `value` (an empty value removes it).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        Labels::new(self.iter().chain([(name, value)]))
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn filtered(&self, mut keep: impl FnMut(&str) -> bool) -> Labels {
        Labels(self.0.iter().filter(|(k, _)| keep(k)).cloned().collect())
    }

    pub fn without_name(&self) -> Labels {
        self.filtered(|k| k != METRIC_NAME)
    }

    /// Stable 64-bit FNV-1a hash of the label set; used as series identity in maps.
    pub fn hash64(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, v) in &self.0 {
            for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.name())?;
        let mut first = true;
        for (k, v) in self.iter().filter(|(k, _)| *k != METRIC_NAME) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{k}={v:?}")?;
        }
        write!(f, "}}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher: `name op "value"`. Regexes are fully anchored, as in Prometheus.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    let detail = e
                        .syntax_error()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| e.to_string());
                    format!(
                        "invalid regex {value:?}: {}",
                        detail.lines().last().unwrap_or("")
                    )
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn eq(name: &str, value: &str) -> Matcher {
        Matcher {
            name: name.to_string(),
            op: MatchOp::Equal,
            value: value.to_string(),
            regex: None,
        }
    }

    /// Whether `value` (empty when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_and_dedupe() {
        let l = Labels::new([("b", "1"), ("a", "2"), ("b", "3"), ("c", "")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "2"), ("b", "3")]);
        assert_eq!(l.hash64(), Labels::new([("a", "2"), ("b", "3")]).hash64());
    }

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::new("a", MatchOp::Regex, "x.*").expect("regex");
        assert!(m.matches("xyz"));
        assert!(!m.matches("axyz"));
        let n = Matcher::new("a", MatchOp::NotRegex, "x|y").expect("regex");
        assert!(n.matches("z") && !n.matches("x"));
    }
}
