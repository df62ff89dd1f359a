//! Dimensional metrics cheap enough for the hot path, in the manner of
//! Netflix Spectator: a metric is a name plus tags; the registry hands out a
//! handle once (that lookup takes a lock and may allocate), and every update
//! through the handle is a few relaxed atomic operations: no lock, no
//! allocation.
//!
//! * [`Counter`] — a monotonic count (requests, bytes).
//! * [`Gauge`] — a value that goes up and down (streams in progress).
//! * [`Timer`] — count, total, max of durations.
//! * [`DistributionSummary`] — the same for amounts (response sizes).
//! * [`PercentileTimer`] — a timer that also keeps a histogram over fixed
//!   buckets (1 µs to 500 s), so percentiles can be computed across
//!   instances: exported as a Prometheus histogram.
//!
//! [`Registry::render_prometheus`] writes the Prometheus text exposition
//! format; [`Registry::snapshot`] gives samples to push into a store.
//!
//! ```
//! let r = reel_metrics::Registry::new();
//! let hits = r.counter("edge_cache_hits", &[("appliance", "oca-1")]);
//! hits.increment();
//! let latency = r.percentile_timer("http_server_request_duration", &[("route", "/home")]);
//! latency.record(std::time::Duration::from_millis(3));
//! let text = r.render_prometheus();
//! assert!(text.contains("edge_cache_hits_total{appliance=\"oca-1\"} 1"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tags as sorted (key, value) pairs: the identity of a metric with its name.
type Tags = Vec<(String, String)>;

fn tags_of(tags: &[(&str, &str)]) -> Tags {
    let mut t: Tags = tags.iter().map(|(k, v)| (sanitize(k), (*v).to_string())).collect();
    t.sort();
    t.dedup_by(|a, b| a.0 == b.0);
    t
}

/// Metric and tag names as Prometheus allows: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn sanitize(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// A monotonic count.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    #[inline]
    pub fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (an f64 in an atomic).
#[derive(Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    #[inline]
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    #[inline]
    pub fn add(&self, d: f64) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some((f64::from_bits(b) + d).to_bits()));
    }
    pub fn value(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Count, total and max of recorded amounts (nanoseconds for timers).
#[derive(Default)]
struct Stats {
    count: AtomicU64,
    total: AtomicU64,
    max: AtomicU64,
}

impl Stats {
    #[inline]
    fn record(&self, amount: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(amount, Ordering::Relaxed);
        self.max.fetch_max(amount, Ordering::Relaxed);
    }
}

/// Durations: count, total time, max.
#[derive(Clone, Default)]
pub struct Timer(Arc<Stats>);

impl Timer {
    #[inline]
    pub fn record(&self, d: Duration) {
        self.0.record(d.as_nanos().min(u64::MAX as u128) as u64);
    }
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.total.load(Ordering::Relaxed))
    }
}

/// Amounts (bytes, items): count, total, max.
#[derive(Clone, Default)]
pub struct DistributionSummary(Arc<Stats>);

impl DistributionSummary {
    #[inline]
    pub fn record(&self, amount: u64) {
        self.0.record(amount);
    }
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

/// Bucket upper bounds of percentile timers, in nanoseconds: 1, 1.5, 2, 3,
/// 5 and 7 of every decade from 1 µs to 500 s (53 buckets, plus +Inf);
/// a percentile read from them is within one bucket (at most 1.5x).
fn bounds() -> &'static [u64] {
    static B: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let mut b = Vec::new();
        let mut decade = 1_000u64;
        while decade <= 100_000_000_000 {
            for m in [10u64, 15, 20, 30, 50, 70] {
                b.push(decade * m / 10);
            }
            decade *= 10;
        }
        b.push(1_000_000_000_000);
        b
    })
}

/// Seconds from nanoseconds, written without float noise.
fn seconds_label(ns: u64) -> String {
    let s = format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Which bucket `ns` falls in: the first bound at or above it.
#[inline]
fn bucket_of(ns: u64) -> usize {
    let b = bounds();
    b.partition_point(|&x| x < ns)
}

struct PercentileInner {
    stats: Stats,
    /// One count per bound, plus one for above the last.
    buckets: Vec<AtomicU64>,
}

/// A timer with a histogram, so percentiles can be computed from it (and
/// summed across appliances before they are).
#[derive(Clone)]
pub struct PercentileTimer(Arc<PercentileInner>);

impl Default for PercentileTimer {
    fn default() -> Self {
        PercentileTimer(Arc::new(PercentileInner { stats: Stats::default(), buckets: (0..=bounds().len()).map(|_| AtomicU64::new(0)).collect() }))
    }
}

impl PercentileTimer {
    #[inline]
    pub fn record(&self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.0.stats.record(ns);
        if let Some(b) = self.0.buckets.get(bucket_of(ns)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.stats.count.load(Ordering::Relaxed)
    }

    /// The `q` quantile (0..=1) estimated from the buckets (upper bound of
    /// the bucket it falls in), or `None` before any record.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.0.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let ns = bounds().get(i).copied().unwrap_or_else(|| self.0.stats.max.load(Ordering::Relaxed));
                return Some(Duration::from_nanos(ns));
            }
        }
        None
    }
}

#[derive(Clone)]
enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Timer(Timer),
    Summary(DistributionSummary),
    Percentile(PercentileTimer),
}

impl Metric {
    fn kind(&self) -> &'static str {
        match self {
            Metric::Counter(_) => "counter",
            Metric::Gauge(_) => "gauge",
            Metric::Timer(_) | Metric::Summary(_) => "summary",
            Metric::Percentile(_) => "histogram",
        }
    }
}

/// One exported value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub value: f64,
}

/// Where metrics are registered; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Registry {
    metrics: Arc<Mutex<BTreeMap<(String, Tags), Metric>>>,
    /// Handles already given out, by the caller's exact name and tags: a
    /// repeated lookup (a handler asking per request) takes a read lock and
    /// allocates nothing.
    seen: Arc<std::sync::RwLock<std::collections::HashMap<u64, Vec<Seen>>>>,
    /// Tags added to every metric (the appliance or node id, say).
    common: Arc<Tags>,
}

/// A handle given out, with the name and tags exactly as asked.
struct Seen {
    name: String,
    tags: Vec<(String, String)>,
    metric: Metric,
}

impl Seen {
    fn is(&self, name: &str, tags: &[(&str, &str)]) -> bool {
        self.name == name && self.tags.len() == tags.len() && self.tags.iter().zip(tags).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

/// FNV-1a over the name and tags as given (order matters; a miss only
/// costs the slow path).
fn raw_hash(name: &str, tags: &[(&str, &str)]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |b: &[u8]| {
        for &x in b.iter().chain(&[0xff]) {
            h = (h ^ x as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(name.as_bytes());
    for (k, v) in tags {
        eat(k.as_bytes());
        eat(v.as_bytes());
    }
    h
}

/// One name, one kind: the handle for `name` and `tags`, registering it
/// on first use. A name already registered as another kind gets a detached
/// handle rather than a panic; it records but is not exported.
macro_rules! get_or_make {
    ($self:ident, $name:ident, $tags:ident, $variant:ident, $ty:ty) => {{
        let h = raw_hash($name, $tags);
        if let Some(Metric::$variant(x)) = $self
            .seen
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h)
            .and_then(|v| v.iter().find(|s| s.is($name, $tags)))
            .map(|s| &s.metric)
        {
            return x.clone();
        }
        let key = (sanitize($name), tags_of($tags));
        let mut m = $self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let x = match m.get(&key) {
            Some(Metric::$variant(x)) => x.clone(),
            Some(_) => return <$ty>::default(),
            None => {
                let x = <$ty>::default();
                m.insert(key, Metric::$variant(x.clone()));
                x
            }
        };
        drop(m);
        let seen = Seen {
            name: $name.to_string(),
            tags: $tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            metric: Metric::$variant(x.clone()),
        };
        $self.seen.write().unwrap_or_else(|p| p.into_inner()).entry(h).or_default().push(seen);
        x
    }};
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry whose every metric also carries `tags`.
    pub fn with_common_tags(tags: &[(&str, &str)]) -> Registry {
        Registry { metrics: Arc::default(), seen: Arc::default(), common: Arc::new(tags_of(tags)) }
    }

    pub fn counter(&self, name: &str, tags: &[(&str, &str)]) -> Counter {
        get_or_make!(self, name, tags, Counter, Counter)
    }
    pub fn gauge(&self, name: &str, tags: &[(&str, &str)]) -> Gauge {
        get_or_make!(self, name, tags, Gauge, Gauge)
    }
    pub fn timer(&self, name: &str, tags: &[(&str, &str)]) -> Timer {
        get_or_make!(self, name, tags, Timer, Timer)
    }
    pub fn distribution_summary(&self, name: &str, tags: &[(&str, &str)]) -> DistributionSummary {
        get_or_make!(self, name, tags, Summary, DistributionSummary)
    }
    pub fn percentile_timer(&self, name: &str, tags: &[(&str, &str)]) -> PercentileTimer {
        get_or_make!(self, name, tags, Percentile, PercentileTimer)
    }

    fn all_tags(&self, tags: &Tags) -> Tags {
        let mut t = tags.clone();
        for c in self.common.iter() {
            if !t.iter().any(|x| x.0 == c.0) {
                t.push(c.clone());
            }
        }
        t.sort();
        t
    }

    /// Every value as samples, in the names the exposition uses (counters
    /// end in `_total`; timers give `_seconds_count`, `_seconds_sum`,
    /// `_seconds_max`; percentile timers also `_seconds_bucket{le=...}`).
    pub fn snapshot(&self) -> Vec<Sample> {
        let m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for ((name, tags), metric) in m.iter() {
            let tags = self.all_tags(tags);
            let mut push = |suffix: &str, extra: Option<(&str, String)>, value: f64| {
                let mut t = tags.clone();
                if let Some((k, v)) = extra {
                    t.push((k.to_string(), v));
                }
                out.push(Sample { name: format!("{name}{suffix}"), tags: t, value });
            };
            let stats = |s: &Stats, scale: f64, push: &mut dyn FnMut(&str, Option<(&str, String)>, f64), unit: &str| {
                push(&format!("{unit}_count"), None, s.count.load(Ordering::Relaxed) as f64);
                push(&format!("{unit}_sum"), None, s.total.load(Ordering::Relaxed) as f64 * scale);
                push(&format!("{unit}_max"), None, s.max.load(Ordering::Relaxed) as f64 * scale);
            };
            match metric {
                Metric::Counter(c) => push("_total", None, c.count() as f64),
                Metric::Gauge(g) => push("", None, g.value()),
                Metric::Timer(t) => stats(&t.0, 1e-9, &mut push, "_seconds"),
                Metric::Summary(s) => stats(&s.0, 1.0, &mut push, ""),
                Metric::Percentile(p) => {
                    let mut cumulative = 0u64;
                    for (i, b) in p.0.buckets.iter().enumerate() {
                        cumulative += b.load(Ordering::Relaxed);
                        let le = match bounds().get(i) {
                            Some(ns) => seconds_label(*ns),
                            None => "+Inf".to_string(),
                        };
                        push("_seconds_bucket", Some(("le", le)), cumulative as f64);
                    }
                    stats(&p.0.stats, 1e-9, &mut push, "_seconds");
                }
            }
        }
        out
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let kinds: BTreeMap<String, &'static str> = {
            let m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
            m.iter()
                .map(|((name, _), metric)| {
                    let exported = match metric {
                        Metric::Counter(_) => format!("{name}_total"),
                        Metric::Timer(_) | Metric::Percentile(_) => format!("{name}_seconds"),
                        _ => name.clone(),
                    };
                    (exported, metric.kind())
                })
                .collect()
        };
        let mut out = String::new();
        let mut typed = std::collections::HashSet::new();
        for s in self.snapshot() {
            // A family's TYPE line before its first sample.
            let family = kinds.keys().filter(|k| s.name.starts_with(k.as_str())).max_by_key(|k| k.len()).cloned();
            if let Some(f) = family {
                if typed.insert(f.clone()) {
                    let _ = writeln!(out, "# TYPE {f} {}", kinds[&f]);
                }
            }
            out.push_str(&s.name);
            if !s.tags.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.tags.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_float(s.value));
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_share_one_value_and_tags_are_sorted() {
        let r = Registry::with_common_tags(&[("node", "n1")]);
        r.counter("requests", &[("status", "200"), ("route", "/a")]).increment();
        r.counter("requests", &[("route", "/a"), ("status", "200")]).add(2);
        // The same lookup again (the cached path) is the same counter.
        r.counter("requests", &[("route", "/a"), ("status", "200")]).add(1);
        let text = r.render_prometheus();
        assert!(text.contains("# TYPE requests_total counter"), "{text}");
        assert!(text.contains("requests_total{node=\"n1\",route=\"/a\",status=\"200\"} 4"), "{text}");
    }

    #[test]
    fn concurrent_updates_are_all_counted() {
        let r = Registry::new();
        let c = r.counter("hits", &[]);
        let t = r.percentile_timer("lat", &[]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (c, t) = (c.clone(), t.clone());
                s.spawn(move || {
                    for i in 0..10_000u64 {
                        c.increment();
                        t.record(Duration::from_micros(i % 1000 + 1));
                    }
                });
            }
        });
        assert_eq!(c.count(), 40_000);
        assert_eq!(t.count(), 40_000);
    }

    #[test]
    fn percentiles_from_buckets_are_within_a_bucket() {
        let t = PercentileTimer::default();
        for ms in 1..=1000u64 {
            t.record(Duration::from_millis(ms));
        }
        let p99 = t.percentile(0.99).expect("recorded").as_secs_f64();
        assert!((0.99..=0.99 * 1.5).contains(&p99), "{p99}");
        let p50 = t.percentile(0.5).expect("recorded").as_secs_f64();
        assert!((0.5..=0.5 * 1.5).contains(&p50), "{p50}");
    }

    #[test]
    fn histogram_exposition_is_cumulative_and_ends_at_inf() {
        let r = Registry::new();
        let t = r.percentile_timer("req", &[("route", "/x")]);
        t.record(Duration::from_millis(2));
        t.record(Duration::from_secs(1000));
        let text = r.render_prometheus();
        assert!(text.contains("# TYPE req_seconds histogram"), "{text}");
        assert!(text.contains("req_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("req_seconds_bucket{route=\"/x\",le=\"0.002\"} 1"), "{text}");
        assert!(text.contains("req_seconds_count{route=\"/x\"} 2"));
        let mut last = 0.0;
        for line in text.lines().filter(|l| l.starts_with("req_seconds_bucket")) {
            let v: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value");
            assert!(v >= last, "cumulative: {line}");
            last = v;
        }
    }

    #[test]
    fn odd_names_and_values_are_escaped() {
        let r = Registry::new();
        r.gauge("disk use-bytes", &[("path", "a\"b\\c\nd")]).set(1.5);
        let text = r.render_prometheus();
        assert!(text.contains("disk_use_bytes{path=\"a\\\"b\\\\c\\nd\"} 1.5"), "{text}");
        // One name, two kinds: the second handle works but is not exported twice.
        r.counter("disk_use_bytes", &[("path", "a\"b\\c\nd")]).increment();
        assert_eq!(r.render_prometheus().matches("disk_use_bytes").count(), 2);
    }
}
