//! Choosing a per-title ladder: the convex hull of quality against bitrate
//! over every candidate encode, rungs picked along it, and the comparison
//! with a fixed ladder at equal quality. Pure arithmetic, no I/O.

use serde::{Deserialize, Serialize};

/// One encode measured: its resolution, the encoder setting, its bitrate
/// and its VMAF against the source (upscaled as a player would).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    pub width: u32,
    pub height: u32,
    /// x264 CRF for candidates; 0 for fixed-bitrate encodes.
    pub crf: u8,
    pub kbps: f64,
    pub vmaf: f64,
}

/// The upper convex hull of (bitrate, VMAF): the encodes no mix of others
/// beats, in increasing bitrate and quality.
pub fn convex_hull(points: &[RatePoint]) -> Vec<RatePoint> {
    let mut pts: Vec<&RatePoint> = points.iter().filter(|p| p.kbps.is_finite() && p.kbps > 0.0 && p.vmaf.is_finite()).collect();
    pts.sort_by(|a, b| a.kbps.total_cmp(&b.kbps).then(b.vmaf.total_cmp(&a.vmaf)));
    let mut hull: Vec<&RatePoint> = Vec::new();
    for p in pts {
        // Quality must rise with bitrate.
        if hull.last().is_some_and(|l| p.vmaf <= l.vmaf) {
            continue;
        }
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            // Drop b when it lies on or under the chord a-p.
            let cross = (b.kbps - a.kbps) * (p.vmaf - a.vmaf) - (b.vmaf - a.vmaf) * (p.kbps - a.kbps);
            if cross >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(p);
    }
    hull.into_iter().cloned().collect()
}

/// How rungs are picked from the hull.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LadderPolicy {
    /// Most rungs in the ladder.
    pub max_rungs: usize,
    /// The bitrate ratio aimed for between neighbouring rungs.
    pub step: f64,
    /// Neighbouring rungs differ by at least this ratio.
    pub min_step: f64,
    /// Quality beyond which more bits are wasted: the top rung is the
    /// cheapest hull point at or above it (or the best there is).
    pub top_vmaf: f64,
    /// Quality too poor to be worth streaming: hull points below it are
    /// left out (unless nothing else is left).
    pub min_vmaf: f64,
}

impl Default for LadderPolicy {
    fn default() -> Self {
        LadderPolicy { max_rungs: 6, step: 1.6, min_step: 1.25, top_vmaf: 95.0, min_vmaf: 20.0 }
    }
}

/// Picks rungs from the hull: the top rung first, then down, each time the
/// hull point nearest (in log bitrate) to `step` times cheaper than the last
/// rung, never closer than `min_step`; the hull's cheapest point closes the
/// ladder when there is room.
pub fn choose_ladder(hull: &[RatePoint], policy: LadderPolicy) -> Vec<RatePoint> {
    let floor = hull.iter().position(|p| p.vmaf >= policy.min_vmaf).unwrap_or(hull.len().saturating_sub(1));
    let hull = &hull[floor.min(hull.len())..];
    if hull.is_empty() {
        return Vec::new();
    }
    let top = hull.iter().position(|p| p.vmaf >= policy.top_vmaf).unwrap_or(hull.len() - 1);
    let mut rungs = vec![hull[top].clone()];
    let mut below = top;
    while rungs.len() < policy.max_rungs {
        let last = rungs.last().map_or(f64::INFINITY, |r| r.kbps);
        let target = (last / policy.step).ln();
        let pick = hull[..below]
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kbps * policy.min_step <= last)
            .min_by(|(_, a), (_, b)| (a.kbps.ln() - target).abs().total_cmp(&(b.kbps.ln() - target).abs()));
        let Some((i, p)) = pick else { break };
        rungs.push(p.clone());
        below = i;
    }
    // The cheapest point gives the worst networks something to play.
    if rungs.len() < policy.max_rungs && rungs.last() != hull.first() {
        let cheapest = &hull[0];
        let last = rungs.last().map_or(f64::INFINITY, |r| r.kbps);
        if cheapest.kbps * policy.min_step <= last {
            rungs.push(cheapest.clone());
        }
    }
    rungs.reverse();
    rungs
}

/// The bitrate a ladder needs for `vmaf`, interpolating between rungs. A
/// quality below the lowest rung costs the lowest rung; above the top rung
/// the ladder cannot reach it (`None`).
pub fn kbps_at(ladder: &[RatePoint], vmaf: f64) -> Option<f64> {
    let first = ladder.first()?;
    if vmaf <= first.vmaf {
        return Some(first.kbps);
    }
    for w in ladder.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if vmaf <= b.vmaf {
            let t = (vmaf - a.vmaf) / (b.vmaf - a.vmaf).max(1e-12);
            return Some(a.kbps + t * (b.kbps - a.kbps));
        }
    }
    None
}

/// One fixed rung against the per-title ladder at the same quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungComparison {
    pub fixed: RatePoint,
    /// What the per-title ladder spends for the fixed rung's VMAF (`None`
    /// if its top rung does not reach it).
    pub per_title_kbps: Option<f64>,
    /// `1 - per_title / fixed`; 0.2 means 20% fewer bits.
    pub savings: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub rungs: Vec<RungComparison>,
    /// Over the fixed rungs the per-title ladder reaches: `1 - Σ per-title
    /// kbps / Σ fixed kbps` at equal VMAF.
    pub savings: f64,
    /// Fixed rungs whose quality the per-title ladder cannot reach (each
    /// counts as no saving).
    pub unreached: usize,
}

/// Compares a fixed ladder with a per-title one at equal VMAF.
pub fn compare(per_title: &[RatePoint], fixed: &[RatePoint]) -> Comparison {
    let mut rungs = Vec::new();
    let (mut sum_fixed, mut sum_ours, mut unreached) = (0.0, 0.0, 0);
    for f in fixed {
        let ours = kbps_at(per_title, f.vmaf);
        match ours {
            Some(k) => {
                sum_fixed += f.kbps;
                sum_ours += k;
            }
            None => {
                unreached += 1;
                sum_fixed += f.kbps;
                sum_ours += f.kbps;
            }
        }
        rungs.push(RungComparison { fixed: f.clone(), per_title_kbps: ours, savings: ours.map(|k| 1.0 - k / f.kbps) });
    }
    let savings = if sum_fixed > 0.0 { 1.0 - sum_ours / sum_fixed } else { 0.0 };
    Comparison { rungs, savings, unreached }
}

/// The classic fixed ladder (the one per-title encoding replaced), by
/// height in kbps: the rungs at or below a source's height are the ones a
/// title of that height gets.
pub const FIXED_LADDER: [(u32, u32); 10] =
    [(240, 235), (288, 375), (384, 560), (384, 750), (480, 1050), (480, 1750), (720, 2350), (720, 3000), (1080, 4300), (1080, 5800)];

#[cfg(test)]
mod tests {
    use super::*;

    fn p(h: u32, crf: u8, kbps: f64, vmaf: f64) -> RatePoint {
        RatePoint { width: h * 3 / 2, height: h, crf, kbps, vmaf }
    }

    #[test]
    fn hull_keeps_only_undominated_concave_points() {
        let pts = vec![
            p(240, 30, 100.0, 40.0),
            p(240, 25, 200.0, 55.0),
            p(480, 30, 210.0, 50.0), // dominated: more bits, less quality
            p(480, 25, 400.0, 80.0),
            p(240, 20, 450.0, 62.0), // dominated
            p(480, 22, 600.0, 86.0),
            p(480, 18, 1200.0, 95.0),
            p(480, 30, 300.0, 60.0), // under the chord 200->400
        ];
        let hull = convex_hull(&pts);
        let rates: Vec<f64> = hull.iter().map(|p| p.kbps).collect();
        assert_eq!(rates, vec![100.0, 200.0, 400.0, 600.0, 1200.0]);
        // Slopes fall along the hull (concave).
        let slopes: Vec<f64> = hull.windows(2).map(|w| (w[1].vmaf - w[0].vmaf) / (w[1].kbps - w[0].kbps)).collect();
        assert!(slopes.windows(2).all(|s| s[1] <= s[0]), "{slopes:?}");
    }

    #[test]
    fn ladder_steps_and_stops_at_the_top_quality() {
        let hull = vec![p(240, 36, 100.0, 40.0), p(240, 30, 180.0, 60.0), p(360, 28, 300.0, 75.0), p(480, 24, 500.0, 88.0), p(480, 20, 900.0, 95.5), p(480, 16, 2000.0, 98.0)];
        let ladder = choose_ladder(&hull, LadderPolicy::default());
        let rates: Vec<f64> = ladder.iter().map(|p| p.kbps).collect();
        assert_eq!(rates, vec![100.0, 180.0, 300.0, 500.0, 900.0]);
        // Below the floor is not worth a rung.
        let mut low = vec![p(240, 45, 50.0, 8.0)];
        low.extend(hull.iter().cloned());
        assert_eq!(choose_ladder(&low, LadderPolicy::default()).first().map(|p| p.kbps), Some(100.0));
        assert!(ladder.windows(2).all(|w| w[1].kbps >= 1.25 * w[0].kbps));
    }

    #[test]
    fn comparison_at_equal_quality() {
        let ours = vec![p(240, 30, 100.0, 50.0), p(480, 24, 400.0, 80.0), p(480, 18, 800.0, 95.0)];
        let fixed = vec![p(240, 0, 235.0, 65.0), p(480, 0, 1750.0, 99.0)];
        let c = compare(&ours, &fixed);
        // 65 is halfway between 50 and 80: 250 kbps.
        assert!((c.rungs[0].per_title_kbps.unwrap() - 250.0).abs() < 1e-9);
        assert_eq!(c.rungs[1].per_title_kbps, None);
        assert_eq!(c.unreached, 1);
        assert!((c.savings - (1.0 - (250.0 + 1750.0) / (235.0 + 1750.0))).abs() < 1e-12);
        assert_eq!(kbps_at(&ours, 10.0), Some(100.0));
    }
}
