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
mod prefill;
mod report;
mod server;

pub use cache::{Cache, Loaded, MemoryTier};
pub use prefill::{prefill, prefill_loop, FillWindow, PrefillCounters};
pub use report::{report_loop, Report};
pub use server::{router, serve, serve_tls, HEADER_READ_TIMEOUT};

use reel_domain::TokenKey;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

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

type Fill = Arc<OnceCell<Result<u64, String>>>;

/// A running appliance: configuration, cache, fills in flight and counters.
pub struct Edge {
    pub config: EdgeConfig,
    pub cache: Cache,
    /// Hot objects in memory, over the disk cache.
    pub memory: MemoryTier,
    pub counters: Counters,
    pub prefill: PrefillCounters,
    inflight: Mutex<HashMap<String, Fill>>,
    http: reqwest::Client,
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
        Ok(Arc::new(Edge { config, cache, memory, counters: Counters::default(), prefill: PrefillCounters::default(), inflight: Mutex::new(HashMap::new()), http }))
    }

    /// Makes sure `key` (`title/rendition/file` or `title/master.m3u8`) is in
    /// the cache. Concurrent callers for one key share one upstream fetch.
    pub async fn ensure(&self, key: &str) -> Result<PathBuf, EdgeError> {
        if let Some(path) = self.cache.hit(key) {
            Counters::add(&self.counters.hits, 1);
            return Ok(path);
        }
        Counters::add(&self.counters.misses, 1);
        let cell = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            inflight.entry(key.to_string()).or_default().clone()
        };
        let result = cell.get_or_init(|| self.fill(key)).await.clone();
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if inflight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                inflight.remove(key);
            }
        }
        match result {
            Ok(_) => self.cache.path_of(key).ok_or_else(|| EdgeError::Upstream { key: key.into(), reason: "evicted while filling".into() }),
            Err(reason) => Err(EdgeError::Upstream { key: key.to_string(), reason }),
        }
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

    async fn fill(&self, key: &str) -> Result<u64, String> {
        let (title, rest) = key.split_once('/').ok_or("bad cache key")?;
        let url = format!("{}/media/{}/{title}/{rest}", self.config.upstream.trim_end_matches('/'), self.fill_token(title));
        Counters::add(&self.counters.upstream_fetches, 1);
        let res = self.http.get(&url).send().await.map_err(|e| format!("fetch failed: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("upstream answered {}", res.status()));
        }
        let body = res.bytes().await.map_err(|e| format!("fetch broke off: {e}"))?;
        self.cache.insert(key, &body).map_err(|e| format!("cannot store: {e}"))?;
        self.memory.forget(key);
        Ok(body.len() as u64)
    }
}
