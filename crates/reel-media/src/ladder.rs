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
    /// x264 CRF for candidates; 0 for fixed-bitrate encodes. For a
    /// per-shot point, the CRF most of its frames were encoded at.
    pub crf: u8,
    pub kbps: f64,
    pub vmaf: f64,
    /// A per-shot point's CRF for each chunk, in order (empty: `crf` for
    /// every chunk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shot_crfs: Vec<u8>,
}

impl RatePoint {
    /// The CRF used for chunk `k`.
    pub fn crf_of_chunk(&self, k: usize) -> u8 {
        self.shot_crfs.get(k).copied().unwrap_or(self.crf)
    }

    /// "26", or "22-30" for a per-shot point whose chunks differ.
    pub fn crf_label(&self) -> String {
        match (self.shot_crfs.iter().min(), self.shot_crfs.iter().max()) {
            (Some(lo), Some(hi)) if lo != hi => format!("{lo}-{hi}"),
            _ => self.crf.to_string(),
        }
    }
}

/// One chunk encoded at one CRF (at the resolution being composed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkEncode {
    pub crf: u8,
    /// The encode's size in bits.
    pub bits: f64,
    /// The sum of its frames' VMAF.
    pub vmaf_sum: f64,
    /// Its frame count.
    pub frames: u64,
}

/// Per-shot encoding (Netflix's dynamic optimizer) at one resolution:
/// every chunk picks its own CRF so that all chunks trade quality for bits
/// at the same rate, which is the most quality any mix of the chunks'
/// encodes gets for its bits. `chunks[k]` lists chunk `k`'s encodes; `fps`
/// turns frames into seconds. Returns the mixes on the
/// hull of (bitrate, mean VMAF), cheapest first; constant-CRF points of
/// the title are among them or under their hull.
///
/// Each chunk's own hull has falling slopes, so applying every chunk's
/// upgrade steps in order of falling slope visits exactly the optimal
/// mixes (the Lagrangian solutions for every λ).
pub fn per_shot_points(width: u32, height: u32, chunks: &[Vec<ChunkEncode>], fps: f64) -> Vec<RatePoint> {
    let frames: u64 = chunks.iter().map(|c| c.first().map_or(0, |e| e.frames)).sum();
    let seconds = frames as f64 / fps;
    if chunks.is_empty() || chunks.iter().any(Vec::is_empty) || frames == 0 || !(seconds > 0.0 && seconds.is_finite()) {
        return Vec::new();
    }
    // Each chunk's hull of (bits, vmaf_sum), cheapest first.
    let hulls: Vec<Vec<ChunkEncode>> = chunks
        .iter()
        .map(|encodes| {
            let pts: Vec<RatePoint> = encodes
                .iter()
                .map(|e| RatePoint { width, height, crf: e.crf, kbps: e.bits, vmaf: e.vmaf_sum, shot_crfs: Vec::new() })
                .collect();
            let n = encodes[0].frames;
            convex_hull(&pts).into_iter().map(|p| ChunkEncode { crf: p.crf, bits: p.kbps, vmaf_sum: p.vmaf, frames: n }).collect()
        })
        .collect();
    if hulls.iter().any(Vec::is_empty) {
        return Vec::new();
    }
    // Every upgrade step (chunk k from hull point i to i + 1) with its
    // slope, never above the chunk's previous step's (rounding could
    // otherwise order a chunk's steps backwards).
    let mut steps: Vec<(f64, usize, usize)> = Vec::new();
    for (k, h) in hulls.iter().enumerate() {
        let mut prev = f64::INFINITY;
        for i in 1..h.len() {
            let slope = ((h[i].vmaf_sum - h[i - 1].vmaf_sum) / (h[i].bits - h[i - 1].bits)).min(prev);
            prev = slope;
            steps.push((slope, k, i));
        }
    }
    // Falling slope; within a chunk the hull's own order.
    steps.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    // Which mixes to keep (counted in steps applied): a long title has
    // thousands of steps, and a ladder needs none closer than MIX_SPACING.
    let mut at: Vec<usize> = vec![0; hulls.len()];
    let mut bits: f64 = hulls.iter().map(|h| h[0].bits).sum();
    let mut kept_bits = bits;
    let mut keep = vec![0usize];
    for (j, &(_, k, i)) in steps.iter().enumerate() {
        bits += hulls[k][i].bits - hulls[k][at[k]].bits;
        at[k] = i;
        if bits >= kept_bits * MIX_SPACING || j + 1 == steps.len() {
            keep.push(j + 1);
            kept_bits = bits;
        }
    }
    let point = |at: &[usize]| {
        let (mut bits, mut vmaf) = (0.0, 0.0);
        // Frames per CRF: the point's `crf` is the most used one.
        let mut by_crf: Vec<(u8, u64)> = Vec::new();
        for (k, &i) in at.iter().enumerate() {
            let e = hulls[k][i];
            bits += e.bits;
            vmaf += e.vmaf_sum;
            match by_crf.iter_mut().find(|(c, _)| *c == e.crf) {
                Some((_, n)) => *n += e.frames,
                None => by_crf.push((e.crf, e.frames)),
            }
        }
        let crf = by_crf.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map_or(0, |c| c.0);
        RatePoint {
            width,
            height,
            crf,
            kbps: bits / seconds / 1000.0,
            vmaf: vmaf / frames as f64,
            shot_crfs: at.iter().enumerate().map(|(k, &i)| hulls[k][i].crf).collect(),
        }
    };
    // Replay the steps, writing out the kept mixes.
    at.fill(0);
    let mut out = Vec::with_capacity(keep.len());
    let mut next = keep.into_iter().peekable();
    for applied in 0..=steps.len() {
        if applied > 0 {
            let (_, k, i) = steps[applied - 1];
            at[k] = i;
        }
        if next.next_if_eq(&applied).is_some() {
            out.push(point(&at));
        }
    }
    // Equal slopes across chunks can leave collinear points; keep the hull.
    convex_hull(&out)
}

/// Per-shot mixes kept along the hull are at least this bitrate ratio apart.
const MIX_SPACING: f64 = 1.01;

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
        LadderPolicy { max_rungs: 8, step: 1.6, min_step: 1.25, top_vmaf: 95.0, min_vmaf: 20.0 }
    }
}

/// Picks rungs from the hull between its cheapest worthwhile point (the
/// bottom rung, for the worst networks) and the top rung, spaced evenly in
/// log bitrate: at most `step` apart, or wider when `max_rungs` would not
/// span the range otherwise. Each rung is the hull point nearest its target, and
/// neighbouring rungs are never closer than `min_step`.
pub fn choose_ladder(hull: &[RatePoint], policy: LadderPolicy) -> Vec<RatePoint> {
    let floor = hull.iter().position(|p| p.vmaf >= policy.min_vmaf).unwrap_or(hull.len().saturating_sub(1));
    let hull = &hull[floor.min(hull.len())..];
    if hull.is_empty() {
        return Vec::new();
    }
    let top = hull.iter().position(|p| p.vmaf >= policy.top_vmaf).unwrap_or(hull.len() - 1);
    let (hi, lo) = (hull[top].kbps, hull[0].kbps);
    let span = (hi / lo).ln().max(0.0);
    // A step of 1 or less would ask for endless rungs: at most max_rungs.
    let per_step = policy.step.max(1.0 + 1e-9).ln();
    let n = ((span / per_step).ceil().min(1e6) as usize).saturating_add(1).clamp(1, policy.max_rungs.max(1));
    let mut rungs = vec![hull[top].clone()];
    let mut below = top;
    for i in 1..n.saturating_sub(1) {
        let last = rungs.last().map_or(f64::INFINITY, |r| r.kbps);
        let target = hi.ln() - span * i as f64 / (n - 1) as f64;
        let pick = hull[..below]
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, p)| p.kbps * policy.min_step <= last && p.kbps >= lo * policy.min_step)
            .min_by(|(_, a), (_, b)| (a.kbps.ln() - target).abs().total_cmp(&(b.kbps.ln() - target).abs()));
        let Some((i, p)) = pick else { break };
        rungs.push(p.clone());
        below = i;
    }
    // The cheapest point gives the worst networks something to play.
    let last = rungs.last().map_or(f64::INFINITY, |r| r.kbps);
    if top > 0 && rungs.len() < policy.max_rungs && lo * policy.min_step <= last {
        rungs.push(hull[0].clone());
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
        RatePoint { width: h * 3 / 2, height: h, crf, kbps, vmaf, shot_crfs: Vec::new() }
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

    /// Two shots: an easy one whose quality saturates early and a hard
    /// one that keeps gaining; three CRFs each.
    fn two_shots() -> Vec<Vec<ChunkEncode>> {
        let e = |crf, kbits: f64, mean: f64| ChunkEncode { crf, bits: kbits * 1000.0, vmaf_sum: mean * 50.0, frames: 50 };
        vec![
            vec![e(22, 400.0, 97.0), e(30, 150.0, 93.0), e(38, 60.0, 80.0)],
            vec![e(22, 4000.0, 85.0), e(30, 1500.0, 70.0), e(38, 600.0, 62.0)],
        ]
    }

    #[test]
    fn per_shot_mixes_are_the_best_any_mix_gets() {
        let chunks = two_shots();
        let mixes = per_shot_points(720, 480, &chunks, 25.0);
        // Every mix of the 3 x 3 encodes lies on or under the per-shot hull.
        for a in &chunks[0] {
            for b in &chunks[1] {
                let kbps = (a.bits + b.bits) / 4.0 / 1000.0;
                let vmaf = (a.vmaf_sum + b.vmaf_sum) / 100.0;
                let reach = kbps_at_rate(&mixes, kbps);
                assert!(vmaf <= reach + 1e-9, "mix {kbps} kb/s {vmaf} beats the hull ({reach})");
            }
        }
        // The cheapest mix is both shots at CRF 38, the dearest both at 22.
        assert_eq!(mixes.first().map(|m| m.shot_crfs.clone()), Some(vec![38, 38]));
        assert_eq!(mixes.last().map(|m| m.shot_crfs.clone()), Some(vec![22, 22]));
        // At the bits of constant CRF 30 (1,650 kbit), the best mix spends
        // them differently and gets more: the easy shot stays cheap.
        let constant_30 = (150.0 + 1500.0) / 4.0;
        let at = kbps_at_rate(&mixes, constant_30);
        assert!(at > (93.0 + 70.0) / 2.0 + 0.5, "per-shot {at} vs constant CRF 81.5");
        let mixed = mixes.iter().find(|m| m.shot_crfs[0] != m.shot_crfs[1]).map(|m| m.crf_label());
        assert!(mixed.as_ref().is_some_and(|l| l.contains('-')), "{mixed:?}");
        assert_eq!(mixes[0].crf_of_chunk(1), 38);
        // Nothing to compose: no points, not a panic.
        assert!(per_shot_points(720, 480, &[], 25.0).is_empty());
        assert!(per_shot_points(720, 480, &[vec![], chunks[0].clone()], 25.0).is_empty());
        assert!(per_shot_points(720, 480, &chunks, 0.0).is_empty());
    }

    /// Quality along a hull at a bitrate (linear between points).
    fn kbps_at_rate(hull: &[RatePoint], kbps: f64) -> f64 {
        hull.windows(2)
            .find(|w| w[0].kbps <= kbps && kbps <= w[1].kbps)
            .map(|w| w[0].vmaf + (kbps - w[0].kbps) / (w[1].kbps - w[0].kbps) * (w[1].vmaf - w[0].vmaf))
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn a_wide_hull_gets_rungs_from_bottom_to_top() {
        // 100 kb/s to 10 Mb/s: eight rungs must reach both ends.
        let hull: Vec<RatePoint> = (0..40)
            .map(|i| {
                let kbps = 100.0 * 1.13f64.powi(i);
                p(480, 40 - i as u8 / 2, kbps, 20.0 + 80.0 * (1.0 - (-(i as f64) / 12.0).exp()))
            })
            .collect();
        let ladder = choose_ladder(&hull, LadderPolicy::default());
        assert_eq!(ladder.len(), 8);
        assert_eq!(ladder.first().map(|r| r.kbps), Some(100.0));
        assert!(ladder.last().is_some_and(|r| r.vmaf >= 95.0 && r.kbps > 5000.0));
        assert!(ladder.windows(2).all(|w| w[1].kbps >= 1.25 * w[0].kbps));
        // Evenly spread: no step more than twice another.
        let steps: Vec<f64> = ladder.windows(2).map(|w| w[1].kbps / w[0].kbps).collect();
        let (lo, hi) = steps.iter().fold((f64::MAX, 0f64), |(a, b), &s| (a.min(s), b.max(s)));
        assert!(hi < 2.0 * lo, "{steps:?}");
    }

    #[test]
    fn per_shot_handles_one_point_chunks_ties_and_long_titles() {
        let e = |crf, kbits: f64, mean: f64| ChunkEncode { crf, bits: kbits * 1000.0, vmaf_sum: mean * 25.0, frames: 25 };
        // A chunk with one encode keeps it in every mix.
        let chunks = vec![vec![e(30, 100.0, 80.0)], vec![e(22, 900.0, 90.0), e(30, 300.0, 75.0), e(38, 100.0, 50.0)]];
        let mixes = per_shot_points(720, 480, &chunks, 25.0);
        assert_eq!(mixes.len(), 3);
        assert!(mixes.iter().all(|m| m.shot_crfs[0] == 30));
        // Identical chunks tie on every slope: still one hull, ending at the best.
        let same = vec![chunks[1].clone(); 4];
        let mixes = per_shot_points(720, 480, &same, 25.0);
        assert!(mixes.windows(2).all(|w| w[1].kbps > w[0].kbps && w[1].vmaf > w[0].vmaf));
        assert_eq!(mixes.last().map(|m| m.shot_crfs.clone()), Some(vec![22; 4]));
        assert_eq!(mixes.first().map(|m| m.shot_crfs.clone()), Some(vec![38; 4]));
        // A two-hour title (3,600 chunks x 7 CRFs): the mixes kept are few,
        // each names a CRF per chunk from the candidates'.
        let crfs = [18u8, 22, 26, 30, 34, 38, 42];
        let long: Vec<Vec<ChunkEncode>> = (0..3600)
            .map(|k| {
                let hard = 1.0 + (k as f64 * 0.618_034).fract() * 4.0;
                crfs.iter()
                    .map(|&c| {
                        let q = f64::from(c);
                        e(c, hard * 2000.0 * (-0.11 * q).exp(), 100.0 - hard.sqrt() * (q - 10.0).powi(2) / 40.0)
                    })
                    .collect()
            })
            .collect();
        let started = std::time::Instant::now();
        let mixes = per_shot_points(1920, 1080, &long, 25.0);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(mixes.len() > 100 && mixes.len() < 1000, "{} mixes", mixes.len());
        assert!(mixes.iter().all(|m| m.shot_crfs.len() == 3600 && m.shot_crfs.iter().all(|c| crfs.contains(c))));
        // Kept mixes are spaced (the dearest is kept however close).
        assert!(mixes[..mixes.len() - 1].windows(2).all(|w| w[1].kbps >= w[0].kbps * MIX_SPACING * 0.999));
    }

    #[test]
    fn odd_hulls_and_policies_give_a_ladder_without_panicking() {
        let one = vec![p(480, 26, 800.0, 90.0)];
        assert_eq!(choose_ladder(&one, LadderPolicy::default()), one);
        // Everything below the floor: the best there is.
        let poor = vec![p(240, 42, 50.0, 5.0), p(240, 38, 80.0, 9.0), p(240, 34, 120.0, 15.0)];
        let ladder = choose_ladder(&poor, LadderPolicy::default());
        assert_eq!(ladder.iter().map(|r| r.kbps).collect::<Vec<_>>(), vec![120.0]);
        // A step of 1 or less cannot ask for endless rungs.
        let hull: Vec<RatePoint> = (0..30).map(|i| p(480, 40, 100.0 * 1.2f64.powi(i), 20.0 + 2.5 * f64::from(i))).collect();
        for step in [1.0, 0.5, f64::NAN] {
            let ladder = choose_ladder(&hull, LadderPolicy { step, ..LadderPolicy::default() });
            assert!(!ladder.is_empty() && ladder.len() <= 8, "step {step}: {} rungs", ladder.len());
            assert!(ladder.windows(2).all(|w| w[1].kbps >= 1.25 * w[0].kbps));
        }
        assert!(choose_ladder(&[], LadderPolicy::default()).is_empty());
    }
}
