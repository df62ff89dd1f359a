//! The edge appliance (`reel edge`): serves manifests and segments to players
//! from its own disk cache, filling misses from its upstream (a parent
//! appliance or the origin) once per object however many clients miss at once.
//!
//! It never calls the database and keeps serving what it holds when the
//! control plane is down. It trusts a playback token by its signature alone,
//! with the key shared at provisioning, and mints its own short fill tokens
//! with the same key to pull from upstream. It reports health and counters
//! to the control plane, signed with that key.

mod cache;
mod fill;
mod h1;
mod prefill;
mod report;
mod server;

pub use cache::{Cache, Hit, Loaded, MemoryTier};
pub use prefill::{prefill, prefill_loop, FillWindow, PrefillCounters};
pub use report::{report_loop, Report};
pub use server::{load_tls, router, serve, serve_tls, TlsConfig, HEADER_READ_TIMEOUT};

use reel_domain::TokenKey;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use fill::Filling;

/// How one appliance is set up.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub appliance_id: String,
    pub cache_dir: PathBuf,
    /// The most bytes the cache may hold.
    pub cache_bytes: u64,
    /// Bytes of hot objects kept in memory as well.
    pub memory_bytes: u64,
    /// Where misses are filled from: a parent appliance or the origin.
    pub upstream: String,
    pub key: TokenKey,
    /// The control plane to report health to, if any.
    pub control_url: Option<String>,
    pub report_interval: Duration,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// How long one upstream fetch may take before it counts as failed.
    pub fill_timeout: Duration,
    /// Send cached files by sendfile(2) on plain HTTP/1.1 (off: copy them
    /// from the memory tier, to measure the difference).
    pub sendfile: bool,
}

/// Counters an appliance reports.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub bytes_served: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub upstream_fetches: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// The kinds of route requests are counted under (see `server::route_of`).
pub(crate) const ROUTES: [&str; 4] = ["playlist", "segment", "ops", "other"];
const STATUS_CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// Per-route request counters (by status class) and latency, registered once.
pub struct RequestMetrics {
    counts: Vec<reel_metrics::Counter>,
    durations: Vec<reel_metrics::PercentileTimer>,
}

impl RequestMetrics {
    fn new(r: &reel_metrics::Registry) -> RequestMetrics {
        RequestMetrics {
            counts: ROUTES
                .iter()
                .flat_map(|route| STATUS_CLASSES.iter().map(move |status| r.counter("edge_http_requests", &[("route", route), ("status", status)])))
                .collect(),
            durations: ROUTES.iter().map(|route| r.percentile_timer("edge_http_request_duration", &[("route", route)])).collect(),
        }
    }
}

impl Edge {
    /// Records one answered request: by kind of route and status, timed.
    /// Handles were made at start, so this is a few atomic adds.
    pub(crate) fn observe(&self, route: &'static str, status: u16, started: std::time::Instant) {
        let r = ROUTES.iter().position(|x| *x == route).unwrap_or(ROUTES.len() - 1);
        let s = match status {
            200..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        };
        let m = &self.request_metrics;
        m.counts[r * STATUS_CLASSES.len() + s].increment();
        m.durations[r].record(started.elapsed());
    }

    /// Prometheus text: the registry's metrics and the appliance's counters
    /// and cache gauges.
    pub fn render_metrics(&self) -> String {
        let mut out = self.metrics.render_prometheus();
        let id = &self.config.appliance_id;
        let c = &self.counters;
        let (used, capacity) = self.cache.usage();
        for (name, kind, v) in [
            ("edge_requests_total", "counter", c.requests.load(Ordering::Relaxed) as f64),
            ("edge_bytes_served_total", "counter", c.bytes_served.load(Ordering::Relaxed) as f64),
            ("edge_cache_hits_total", "counter", c.hits.load(Ordering::Relaxed) as f64),
            ("edge_cache_misses_total", "counter", c.misses.load(Ordering::Relaxed) as f64),
            ("edge_upstream_fetches_total", "counter", c.upstream_fetches.load(Ordering::Relaxed) as f64),
            ("edge_errors_total", "counter", c.errors.load(Ordering::Relaxed) as f64),
            ("edge_cache_used_bytes", "gauge", used as f64),
            ("edge_cache_capacity_bytes", "gauge", capacity as f64),
        ] {
            out.push_str(&format!("# TYPE {name} {kind}\n{name}{{appliance=\"{id}\"}} {v}\n"));
        }
        out
    }
}

/// A running appliance: configuration, cache, fills in flight and counters.
pub struct Edge {
    pub config: EdgeConfig,
    pub cache: Cache,
    /// Hot objects in memory, over the disk cache, for the paths that cannot
    /// hand a file to the kernel (TLS, HTTP/2).
    pub memory: MemoryTier,
    pub counters: Counters,
    pub prefill: PrefillCounters,
    inflight: Mutex<HashMap<String, Arc<Filling>>>,
    http: reqwest::Client,
    /// Request latency and status per route (the counters above are
    /// exported next to it at `/metrics`).
    pub metrics: reel_metrics::Registry,
    request_metrics: RequestMetrics,
    /// Faults injected on purpose (chaos experiments): see [`Chaos`].
    pub chaos: Chaos,
}

/// Faults an operator injects into one appliance to see what the rest of
/// the system does: a share of object requests answered 500, and added
/// latency. Set over `POST /chaos` from loopback; off by default.
#[derive(Default)]
pub struct Chaos {
    /// Parts per million of object requests that fail.
    pub error_ppm: AtomicU64,
    pub latency_ms: AtomicU64,
    draws: AtomicU64,
}

impl Chaos {
    /// Whether this request should fail, and how long to stall it first.
    pub(crate) fn draw(&self) -> (bool, Option<Duration>) {
        let ppm = self.error_ppm.load(Ordering::Relaxed);
        let ms = self.latency_ms.load(Ordering::Relaxed);
        if ppm == 0 && ms == 0 {
            return (false, None);
        }
        // SplitMix64 over a counter: cheap, and spread evenly.
        let mut z = self.draws.fetch_add(1, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z % 1_000_000) < ppm, (ms > 0).then(|| Duration::from_millis(ms)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("upstream could not supply {key}: {reason}")]
    Upstream { key: String, reason: String },
    #[error("cache: {0}")]
    Cache(#[from] std::io::Error),
}

impl Edge {
    /// Opens the cache directory (indexing what it already holds).
    pub fn open(config: EdgeConfig) -> Result<Arc<Edge>, EdgeError> {
        let cache = Cache::open(&config.cache_dir, config.cache_bytes)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(config.fill_timeout)
            .build()
            .map_err(|e| EdgeError::Upstream { key: String::new(), reason: e.to_string() })?;
        let memory = MemoryTier::new(config.memory_bytes);
        let metrics = reel_metrics::Registry::with_common_tags(&[("appliance", &config.appliance_id)]);
        Ok(Arc::new(Edge { config, cache, memory, counters: Counters::default(), prefill: PrefillCounters::default(), inflight: Mutex::new(HashMap::new()), http, request_metrics: RequestMetrics::new(&metrics), metrics, chaos: Chaos::default() }))
    }

    /// The whole of `key` (`title/rendition/file` or `title/master.m3u8`):
    /// from the cache, or filled from upstream first. Concurrent callers for
    /// one key share one upstream fetch.
    pub async fn ensure(self: &Arc<Self>, key: &str) -> Result<bytes::Bytes, EdgeError> {
        for _ in 0..3 {
            if let Some(hit) = self.cache.hit(key) {
                Counters::add(&self.counters.hits, 1);
                match cache::read_verified(&self.cache, key, &hit.path).await {
                    Ok(Some((bytes, _))) => return Ok(bytes),
                    Ok(None) => {} // damaged and dropped: fill it again
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // evicted meanwhile
                    Err(e) => return Err(EdgeError::Cache(e)),
                }
            }
            if let Some(filling) = self.fill(key) {
                return filling.whole().await.map_err(|reason| EdgeError::Upstream { key: key.to_string(), reason });
            }
        }
        Err(EdgeError::Upstream { key: key.to_string(), reason: "the object kept changing under the cache".into() })
    }

    /// The fill of `key` in flight, joining one if it is already running or
    /// starting one. The fill runs on its own task: a client that goes away
    /// does not stop it, and every client waiting on it reads its bytes as
    /// they arrive.
    ///
    /// `None` when the object reached the cache since the caller looked:
    /// look again.
    pub fn fill(self: &Arc<Self>, key: &str) -> Option<Arc<Filling>> {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = inflight.get(key) {
            Counters::add(&self.counters.misses, 1);
            return Some(f.clone());
        }
        if self.cache.path_of(key).is_some() {
            return None;
        }
        Counters::add(&self.counters.misses, 1);
        let filling = Arc::new(Filling::new());
        inflight.insert(key.to_string(), filling.clone());
        drop(inflight);
        let edge = self.clone();
        let key = key.to_string();
        let f = filling.clone();
        tokio::spawn(async move {
            let result = edge.fetch(&key, &f).await;
            let result = match result {
                Ok(()) => {
                    let whole = f.assemble();
                    match self::store(&edge, &key, &whole).await {
                        Ok(()) => {}
                        Err(e) => {
                            // The viewers still get every byte; the object is just not kept.
                            Counters::add(&edge.counters.errors, 1);
                            tracing::warn!(message = "filled object not cached", key = %key, error = %e);
                        }
                    }
                    Ok(whole.len() as u64)
                }
                Err(e) => Err(e),
            };
            f.finish(result);
            let mut inflight = edge.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &f)) {
                inflight.remove(&key);
            }
        });
        Some(filling)
    }

    /// A short-lived token this appliance signs for its own upstream fetches.
    fn fill_token(&self, title: &str) -> String {
        let now = reel_domain::now_ms() / 1000;
        self.config.key.sign(&reel_domain::PlaybackClaims {
            sid: format!("fill-{}", self.config.appliance_id),
            tid: title.to_string(),
            mh: u32::MAX,
            exp: now + 300,
        })
    }

    /// Streams `key` from upstream into `into`, chunk by chunk.
    async fn fetch(&self, key: &str, into: &Filling) -> Result<(), String> {
        let (title, rest) = key.split_once('/').ok_or("bad cache key")?;
        let url = format!("{}/media/{}/{title}/{rest}", self.config.upstream.trim_end_matches('/'), self.fill_token(title));
        Counters::add(&self.counters.upstream_fetches, 1);
        let mut res = self.http.get(&url).send().await.map_err(|e| format!("fetch failed: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("upstream answered {}", res.status()));
        }
        let len = res.content_length();
        if len.is_some_and(|l| l > self.config.cache_bytes) {
            return Err(format!("object of {} bytes is larger than the cache", len.unwrap_or(0)));
        }
        into.started(len);
        let mut got = 0u64;
        while let Some(chunk) = res.chunk().await.map_err(|e| format!("fetch broke off: {e}"))? {
            got += chunk.len() as u64;
            if got > self.config.cache_bytes {
                return Err("object larger than the cache".into());
            }
            into.push(chunk);
        }
        if len.is_some_and(|l| l != got) {
            return Err(format!("upstream sent {got} of {} bytes", len.unwrap_or(0)));
        }
        Ok(())
    }
}

/// Writes a filled object to the disk cache (off the async threads).
async fn store(edge: &Arc<Edge>, key: &str, bytes: &bytes::Bytes) -> std::io::Result<()> {
    let e = edge.clone();
    let (k, b) = (key.to_string(), bytes.clone());
    let sum = tokio::task::spawn_blocking(move || e.cache.insert(&k, &b)).await.map_err(std::io::Error::other)??;
    edge.memory.put(key, Loaded { bytes: bytes.clone(), etag: cache::etag_of(&sum) });
    Ok(())
}
