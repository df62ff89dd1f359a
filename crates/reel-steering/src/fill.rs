//! Fill planning: which titles each appliance should hold, decided ahead of
//! demand from a popularity forecast, so that the bytes viewers pull are
//! served from the edge as much as the appliances' disks allow.
//!
//! The forecast is each title's time-decayed demand (bytes viewed) per
//! region. Each appliance is filled greedily by forecast bytes per byte
//! stored (the fractional-knapsack order) within its capacity; the most
//! popular titles are copied onto every appliance of a site, the rest spread
//! across the site's appliances. Also here: a synthetic week of skewed (Zipf)
//! viewing and an LRU cache simulator, to measure a plan against the cache
//! that would otherwise fill on demand.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One viewing, as the forecast sees it.
#[derive(Debug, Clone)]
pub struct View {
    pub at_s: i64,
    pub region: String,
    pub title: String,
    pub bytes: u64,
}

/// An appliance that can be filled.
#[derive(Debug, Clone)]
pub struct FillTarget {
    pub appliance_id: String,
    pub site_id: String,
    pub region: String,
    pub capacity_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplianceFill {
    pub appliance_id: String,
    pub site_id: String,
    pub region: String,
    pub titles: Vec<String>,
    pub bytes_planned: u64,
    pub capacity_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FillPlan {
    pub appliances: Vec<ApplianceFill>,
    /// Share of forecast bytes that the plan serves from the edge.
    pub predicted_hit_ratio: f64,
}

/// Forecast demand: region -> title -> decayed bytes.
pub fn forecast(views: &[View], now_s: i64, half_life_s: f64) -> HashMap<String, HashMap<String, f64>> {
    let mut out: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for v in views {
        let age = (now_s - v.at_s).max(0) as f64;
        let w = 0.5f64.powf(age / half_life_s.max(1.0));
        *out.entry(v.region.clone()).or_default().entry(v.title.clone()).or_default() += v.bytes as f64 * w;
    }
    out
}

/// Plans each appliance's contents. `sizes` gives each title's bytes on disk;
/// titles without a size are skipped. `replicate_share` of a site's
/// capacity goes to copies of its most popular titles on every appliance.
pub fn plan(
    demand: &HashMap<String, HashMap<String, f64>>,
    sizes: &HashMap<String, u64>,
    targets: &[FillTarget],
    replicate_share: f64,
) -> FillPlan {
    let mut by_site: BTreeMap<&str, Vec<&FillTarget>> = BTreeMap::new();
    for t in targets {
        by_site.entry(t.site_id.as_str()).or_default().push(t);
    }
    let mut fills = Vec::new();
    let (mut served, mut total) = (0.0, 0.0);
    let empty = HashMap::new();
    for (site, apps) in by_site {
        let region = apps[0].region.as_str();
        let region_demand = demand.get(region).unwrap_or(&empty);
        // Densest first: forecast bytes per byte stored.
        let mut ranked: Vec<(&String, f64, u64)> = region_demand
            .iter()
            .filter_map(|(t, d)| sizes.get(t).filter(|s| **s > 0).map(|s| (t, *d, *s)))
            .collect();
        ranked.sort_by(|a, b| {
            (b.1 / b.2 as f64).partial_cmp(&(a.1 / a.2 as f64)).unwrap_or(std::cmp::Ordering::Equal).then(a.0.cmp(b.0))
        });
        let mut filled: Vec<ApplianceFill> = apps
            .iter()
            .map(|a| ApplianceFill {
                appliance_id: a.appliance_id.clone(),
                site_id: site.to_string(),
                region: region.to_string(),
                titles: Vec::new(),
                bytes_planned: 0,
                capacity_bytes: a.capacity_bytes,
            })
            .collect();
        let mut placed: HashMap<&str, bool> = HashMap::new();
        // Pass 1: copies of the head on every appliance, within the replica share.
        let replica_budget: Vec<u64> = apps.iter().map(|a| (a.capacity_bytes as f64 * replicate_share) as u64).collect();
        if apps.len() > 1 {
            for (title, _, size) in &ranked {
                if filled.iter().zip(&replica_budget).all(|(f, b)| f.bytes_planned + size <= *b) {
                    for f in filled.iter_mut() {
                        f.titles.push((*title).clone());
                        f.bytes_planned += size;
                    }
                    placed.insert(title.as_str(), true);
                } else {
                    break;
                }
            }
        }
        // Pass 2: the rest, each on the emptiest appliance that fits it.
        for (title, _, size) in &ranked {
            if placed.contains_key(title.as_str()) {
                continue;
            }
            if let Some(f) = filled
                .iter_mut()
                .filter(|f| f.bytes_planned + size <= f.capacity_bytes)
                .min_by_key(|f| f.bytes_planned)
            {
                f.titles.push((*title).clone());
                f.bytes_planned += size;
                placed.insert(title.as_str(), true);
            }
        }
        // Each site serves its share of the region's demand.
        let sites_in_region = targets.iter().filter(|t| t.region == region).map(|t| &t.site_id).collect::<std::collections::HashSet<_>>().len().max(1) as f64;
        for (title, d, _) in &ranked {
            total += d / sites_in_region;
            if placed.contains_key(title.as_str()) {
                served += d / sites_in_region;
            }
        }
        fills.extend(filled);
    }
    FillPlan { appliances: fills, predicted_hit_ratio: if total > 0.0 { served / total } else { 0.0 } }
}

/// A small deterministic generator (SplitMix64), so evaluations repeat exactly.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A week of synthetic viewing: `titles` titles with Zipf(`s`) popularity,
/// each region ranking them differently (a shared head, shuffled tails).
pub struct SyntheticWeek {
    pub views: Vec<View>,
    pub sizes: HashMap<String, u64>,
    pub regions: Vec<String>,
}

pub fn synthetic_week(titles: usize, views: usize, regions: &[&str], s: f64, seed: u64) -> SyntheticWeek {
    let mut rng = SplitMix::new(seed);
    let names: Vec<String> = (0..titles).map(|i| format!("t{i:04}")).collect();
    let sizes: HashMap<String, u64> = names.iter().map(|n| (n.clone(), 200_000_000 + (rng.unit() * 1_800_000_000.0) as u64)).collect();
    // Zipf CDF over ranks.
    let weights: Vec<f64> = (1..=titles).map(|r| 1.0 / (r as f64).powf(s)).collect();
    let sum: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(titles);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / sum;
        cdf.push(acc);
    }
    // Each region's ranking: the same top 10%, the rest shuffled per region.
    let head = titles / 10;
    let rankings: Vec<Vec<usize>> = regions
        .iter()
        .map(|_| {
            let mut order: Vec<usize> = (0..titles).collect();
            for i in (head + 1..titles).rev() {
                let j = head + (rng.next_u64() % (i - head + 1) as u64) as usize;
                order.swap(i, j);
            }
            order
        })
        .collect();
    let week_s = 7 * 86_400;
    let mut out = Vec::with_capacity(views);
    for k in 0..views {
        let r = (rng.next_u64() % regions.len() as u64) as usize;
        let u = rng.unit();
        let rank = cdf.partition_point(|c| *c < u).min(titles - 1);
        let title = &names[rankings[r][rank]];
        let watched = 0.3 + 0.7 * rng.unit();
        out.push(View {
            at_s: (k as i64 * week_s) / views as i64,
            region: regions[r].to_string(),
            title: title.clone(),
            bytes: (sizes[title] as f64 * watched) as u64,
        });
    }
    SyntheticWeek { views: out, sizes, regions: regions.iter().map(|r| r.to_string()).collect() }
}

/// A byte-bounded LRU cache of whole titles, fed request by request.
pub struct LruCache {
    capacity: u64,
    used: u64,
    tick: u64,
    by_title: HashMap<String, (u64, u64)>, // title -> (tick, size)
    by_tick: BTreeMap<u64, String>,
}

impl LruCache {
    pub fn new(capacity: u64) -> Self {
        LruCache { capacity, used: 0, tick: 0, by_title: HashMap::new(), by_tick: BTreeMap::new() }
    }

    /// Requests `title`; true on a hit. A miss inserts it, evicting the least recently used.
    pub fn request(&mut self, title: &str, size: u64) -> bool {
        self.tick += 1;
        if let Some((t, s)) = self.by_title.get(title).copied() {
            self.by_tick.remove(&t);
            self.by_tick.insert(self.tick, title.to_string());
            self.by_title.insert(title.to_string(), (self.tick, s));
            return true;
        }
        if size > self.capacity {
            return false;
        }
        while self.used + size > self.capacity {
            let Some((_, victim)) = self.by_tick.pop_first() else { break };
            if let Some((_, s)) = self.by_title.remove(&victim) {
                self.used -= s;
            }
        }
        self.by_tick.insert(self.tick, title.to_string());
        self.by_title.insert(title.to_string(), (self.tick, size));
        self.used += size;
        false
    }
}

/// Plan against LRU on the same requests: both sized at `capacity_share`
/// of the catalog per site; plan from days 1-6, score both on day 7 by bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub titles: usize,
    pub views: usize,
    pub capacity_bytes_per_site: u64,
    pub plan_predicted_hit_ratio: f64,
    pub plan_realized_hit_ratio: f64,
    pub lru_hit_ratio: f64,
}

pub fn evaluate(week: &SyntheticWeek, targets: &[FillTarget]) -> Evaluation {
    let day7 = 6 * 86_400;
    let train: Vec<View> = week.views.iter().filter(|v| v.at_s < day7).cloned().collect();
    let demand = forecast(&train, day7, 2.0 * 86_400.0);
    let fill = plan(&demand, &week.sizes, targets, 0.3);
    // Each request goes to one site of its region, chosen round-robin.
    let sites_of = |region: &str| -> Vec<&str> {
        let mut s: Vec<&str> = targets.iter().filter(|t| t.region == region).map(|t| t.site_id.as_str()).collect();
        s.sort();
        s.dedup();
        s
    };
    let held: HashMap<&str, std::collections::HashSet<&str>> = {
        let mut m: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
        for a in &fill.appliances {
            m.entry(a.site_id.as_str()).or_default().extend(a.titles.iter().map(String::as_str));
        }
        m
    };
    let mut lrus: HashMap<String, LruCache> = HashMap::new();
    for t in targets {
        lrus.entry(t.site_id.clone()).or_insert_with(|| LruCache::new(0)).capacity += t.capacity_bytes;
    }
    let (mut plan_hit, mut lru_hit, mut total) = (0u64, 0u64, 0u64);
    for (i, v) in week.views.iter().enumerate() {
        let sites = sites_of(&v.region);
        if sites.is_empty() {
            continue;
        }
        let site = sites[i % sites.len()];
        let size = week.sizes.get(&v.title).copied().unwrap_or(v.bytes);
        let hit = lrus.get_mut(site).is_some_and(|c| c.request(&v.title, size));
        if v.at_s >= day7 {
            total += v.bytes;
            if hit {
                lru_hit += v.bytes;
            }
            if held.get(site).is_some_and(|h| h.contains(v.title.as_str())) {
                plan_hit += v.bytes;
            }
        }
    }
    let ratio = |h: u64| if total == 0 { 0.0 } else { h as f64 / total as f64 };
    Evaluation {
        titles: week.sizes.len(),
        views: week.views.len(),
        capacity_bytes_per_site: targets.first().map(|t| t.capacity_bytes).unwrap_or(0),
        plan_predicted_hit_ratio: fill.predicted_hit_ratio,
        plan_realized_hit_ratio: ratio(plan_hit),
        lru_hit_ratio: ratio(lru_hit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(cap: u64) -> Vec<FillTarget> {
        [("a1", "s1", "east"), ("a2", "s2", "east"), ("b1", "s3", "west"), ("b2", "s4", "west")]
            .iter()
            .map(|(a, s, r)| FillTarget { appliance_id: a.to_string(), site_id: s.to_string(), region: r.to_string(), capacity_bytes: cap })
            .collect()
    }

    #[test]
    fn plans_respect_capacity_and_prefer_dense_titles() {
        let demand = HashMap::from([("east".to_string(), HashMap::from([("big".to_string(), 100.0), ("small".to_string(), 60.0)]))]);
        let sizes = HashMap::from([("big".to_string(), 100), ("small".to_string(), 20)]);
        let t = vec![FillTarget { appliance_id: "a".into(), site_id: "s".into(), region: "east".into(), capacity_bytes: 100 }];
        let p = plan(&demand, &sizes, &t, 0.3);
        assert_eq!(p.appliances[0].titles, vec!["small"], "small is denser; big no longer fits");
        assert!(p.appliances[0].bytes_planned <= 100);
        assert!((p.predicted_hit_ratio - 60.0 / 160.0).abs() < 1e-9);
    }

    #[test]
    fn the_head_is_copied_on_every_appliance_of_a_site() {
        let demand = HashMap::from([("east".to_string(), (0..10).map(|i| (format!("t{i}"), 100.0 - i as f64)).collect())]);
        let sizes: HashMap<String, u64> = (0..10).map(|i| (format!("t{i}"), 10)).collect();
        let t: Vec<FillTarget> = (0..2)
            .map(|i| FillTarget { appliance_id: format!("a{i}"), site_id: "s".into(), region: "east".into(), capacity_bytes: 40 })
            .collect();
        let p = plan(&demand, &sizes, &t, 0.3);
        assert!(p.appliances.iter().all(|a| a.titles.contains(&"t0".to_string())), "{:?}", p.appliances);
        assert!(p.appliances.iter().all(|a| a.bytes_planned <= 40));
    }

    #[test]
    fn lru_evicts_the_least_recent() {
        let mut c = LruCache::new(20);
        assert!(!c.request("a", 10));
        assert!(!c.request("b", 10));
        assert!(c.request("a", 10));
        assert!(!c.request("c", 10)); // evicts b
        assert!(c.request("a", 10));
        assert!(!c.request("b", 10));
    }

    #[test]
    fn planned_fill_beats_lru_on_a_zipf_week() {
        let week = synthetic_week(400, 40_000, &["east", "west"], 0.9, 7);
        let catalog: u64 = week.sizes.values().sum();
        let e = evaluate(&week, &targets(catalog / 10));
        assert!(e.plan_realized_hit_ratio > e.lru_hit_ratio, "{e:?}");
        let again = evaluate(&synthetic_week(400, 40_000, &["east", "west"], 0.9, 7), &targets(catalog / 10));
        assert_eq!(again.lru_hit_ratio, e.lru_hit_ratio, "deterministic for a seed");
    }
}
