//! Alert analysis: when a signal alerts, which of the other signals (often
//! thousands) are most likely related. Each candidate is scored, in
//! parallel, on three kinds of evidence:
//!
//! * a change point near the alert's (PELT, L2 cost, on the standardized
//!   series): the closer in time, the higher;
//! * the strongest correlation with the alerting signal within a few steps
//!   of lag either way (Pearson, on the standardized series);
//! * the tags it shares with the alerting signal (Jaccard similarity).
//!
//! All series are sampled on one time grid; the caller turns counters into
//! per-step increases first.

use rayon::prelude::*;
use serde::Serialize;

use crate::{detect, CostKind, Method, Penalty};

/// One signal that might be related.
pub struct Candidate<'a> {
    pub tags: &'a [(String, String)],
    pub values: &'a [f64],
}

/// The evidence for one candidate, and its score in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suspect {
    /// Index into the candidates.
    pub index: usize,
    pub score: f64,
    /// The candidate's change point nearest the alert's, as a grid index.
    pub change_at: Option<usize>,
    /// Steps between that change point and the alert's.
    pub change_distance: Option<usize>,
    /// The strongest correlation within the lag window, and its lag in
    /// steps (positive: the candidate moved first).
    pub correlation: f64,
    pub lag: i64,
    pub shared_tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Lags tried either way, in steps.
    pub max_lag: usize,
    /// How fast closeness decays, in steps (score e^(−d/scale)).
    pub distance_scale: f64,
    pub weights: (f64, f64, f64),
}

impl Default for Options {
    fn default() -> Self {
        Options { max_lag: 3, distance_scale: 3.0, weights: (0.45, 0.4, 0.15) }
    }
}

fn standardize(v: &[f64]) -> Option<Vec<f64>> {
    let n = v.len() as f64;
    if v.len() < 4 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    if !(var > 1e-12) || !var.is_finite() {
        return None; // flat: nothing changed, nothing to explain
    }
    let sd = var.sqrt();
    Some(v.iter().map(|x| (x - mean) / sd).collect())
}

/// Pearson correlation of `a[i]` with `b[i - lag]` over the overlap.
fn correlation(a: &[f64], b: &[f64], lag: i64) -> f64 {
    let n = a.len().min(b.len()) as i64;
    let (mut sa, mut sb, mut sab, mut saa, mut sbb, mut m) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        let j = i - lag;
        if j < 0 || j >= n {
            continue;
        }
        let (x, y) = (a[i as usize], b[j as usize]);
        sa += x;
        sb += y;
        sab += x * y;
        saa += x * x;
        sbb += y * y;
        m += 1.0;
    }
    if m < 3.0 {
        return 0.0;
    }
    let cov = sab / m - (sa / m) * (sb / m);
    let va = saa / m - (sa / m).powi(2);
    let vb = sbb / m - (sb / m).powi(2);
    if va <= 1e-12 || vb <= 1e-12 {
        return 0.0;
    }
    (cov / (va.sqrt() * vb.sqrt())).clamp(-1.0, 1.0)
}

fn change_points(z: &[f64]) -> Vec<usize> {
    let mut cps = detect(z, Method::Pelt, CostKind::L2, Penalty::Mbic, 2, 1).unwrap_or_default();
    cps.pop(); // the last "breakpoint" is the series' end
    cps
}

/// Ranks `candidates` by how likely they relate to `alert` (which alerted
/// at grid index `alert_at`, carrying `alert_tags`), best first; flat
/// candidates are left out.
pub fn rank(alert: &[f64], alert_tags: &[(String, String)], alert_at: usize, candidates: &[Candidate<'_>], opts: &Options) -> Vec<Suspect> {
    let Some(za) = standardize(alert) else { return Vec::new() };
    let tags_a: Vec<&(String, String)> = alert_tags.iter().filter(|t| t.0 != "__name__").collect();
    let mut out: Vec<Suspect> = candidates
        .par_iter()
        .enumerate()
        .filter_map(|(index, c)| {
            let zc = standardize(c.values)?;
            let cps = change_points(&zc);
            let nearest = cps.iter().copied().min_by_key(|&cp| cp.abs_diff(alert_at));
            let distance = nearest.map(|cp| cp.abs_diff(alert_at));
            let closeness = distance.map_or(0.0, |d| (-(d as f64) / opts.distance_scale).exp());
            let (mut best, mut lag) = (0.0f64, 0i64);
            for l in -(opts.max_lag as i64)..=(opts.max_lag as i64) {
                let r = correlation(&za, &zc, l);
                if r.abs() > best.abs() {
                    best = r;
                    lag = l;
                }
            }
            let tags_c: Vec<&(String, String)> = c.tags.iter().filter(|t| t.0 != "__name__").collect();
            let shared: Vec<(String, String)> = tags_c.iter().filter(|t| tags_a.contains(t)).map(|t| (*t).clone()).collect();
            let union = tags_a.len() + tags_c.len() - shared.len();
            let jaccard = if union == 0 { 0.0 } else { shared.len() as f64 / union as f64 };
            let (w1, w2, w3) = opts.weights;
            let score = (w1 * closeness + w2 * best.abs() + w3 * jaccard) / (w1 + w2 + w3);
            Some(Suspect { index, score, change_at: nearest, change_distance: distance, correlation: best, lag, shared_tags: shared })
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 10_000) as f64 / 10_000.0 - 0.5
            })
            .collect()
    }

    #[test]
    fn the_series_that_stepped_with_the_alert_ranks_first_among_a_thousand() {
        let n = 120;
        let at = 90;
        let step = |seed: u64, at: usize, height: f64| -> Vec<f64> {
            noise(seed, n).into_iter().enumerate().map(|(i, x)| x * 0.3 + if i >= at { height } else { 0.0 }).collect()
        };
        let alert = step(1, at, 5.0);
        let alert_tags = vec![("__name__".to_string(), "errors".to_string()), ("appliance".to_string(), "oca-2".to_string())];
        let mut series: Vec<(Vec<(String, String)>, Vec<f64>)> = Vec::new();
        for i in 0..1000u64 {
            series.push((vec![("appliance".into(), format!("oca-{}", i % 7 + 10)), ("metric".into(), format!("m{i}"))], noise(i + 100, n)));
        }
        // Unrelated steps far from the alert, and the culprit.
        series.push((vec![("appliance".into(), "oca-9".into())], step(7, 20, 4.0)));
        series.push((vec![("appliance".into(), "oca-2".into()), ("metric".into(), "latency".into())], step(8, at - 1, 3.0)));
        let candidates: Vec<Candidate<'_>> = series.iter().map(|(t, v)| Candidate { tags: t, values: v }).collect();
        let ranked = rank(&alert, &alert_tags, at, &candidates, &Options::default());
        let top = &ranked[0];
        assert_eq!(top.index, 1001, "{:?}", &ranked[..3]);
        assert_eq!(top.change_distance, Some(1));
        assert!(top.correlation > 0.8 && top.shared_tags == vec![("appliance".to_string(), "oca-2".to_string())]);
        assert!(ranked.iter().position(|s| s.index == 1000).is_some_and(|p| p > 0));
        // Flat series are not suspects at all.
        let flat = vec![1.0; n];
        let none = rank(&alert, &alert_tags, at, &[Candidate { tags: &[], values: &flat }], &Options::default());
        assert!(none.is_empty());
    }
}
