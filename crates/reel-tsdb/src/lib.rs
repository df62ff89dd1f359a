//! `reel-tsdb`: the dimensional time-series store engine behind Reel's metrics (in the spirit of
//! Prometheus' TSDB and Netflix Atlas).
//!
//! A series is a metric name plus a sorted label set; samples are `(i64 ms, f64)`. Writes go
//! to a checksummed write-ahead log (group-committed fsync) and then to the in-memory head,
//! which keeps Gorilla-compressed chunks. [`Tsdb::compact`] cuts immutable on-disk blocks,
//! checkpoints the WAL, writes 5-minute rollups (min/max/sum/count/last) and applies retention
//! (rollups may outlive raw blocks: queries then read their `last` samples, see
//! [`Tsdb::select_with_rollups`]).
//!
//! Limits worth knowing: samples must arrive in time order per series (older ones are dropped
//! and counted); compaction blocks appends while it runs; the per-metric series limit counts
//! series in the head, and compaction removes series with no samples left in the head; one process per directory (no lock file yet). Queries take a PromQL
//! subset ([`promql`]) and answer in the shape of Prometheus' JSON API.
//!
//! This crate owns a directory and nothing else: it knows nothing about HTTP, SQL, tokio or
//! the rest of Reel. Calls block; async callers use `spawn_blocking`.
//!
//! ```
//! use reel_tsdb::{Labels, Options, Tsdb};
//! let dir = tempfile::tempdir().unwrap();
//! let db = Tsdb::open(dir.path(), Options::default()).unwrap();
//! let l = Labels::metric("http_requests_total", &[("route", "/play")]);
//! db.append(&[(l.clone(), 0, 1.0), (l.clone(), 10_000, 11.0), (l, 20_000, 21.0)]).unwrap();
//! let r = db.query_instant("sum(rate(http_requests_total[1m]))", 20_000).unwrap();
//! assert_eq!(serde_json::to_value(&r).unwrap()["resultType"], "vector");
//! ```

pub mod block;
pub mod exposition;
pub mod gorilla;
pub mod index;
pub mod labels;
pub mod promql;
pub mod remote_write;
pub mod wal;

pub use labels::{Labels, MatchOp, Matcher, METRIC_NAME};
pub use promql::{ParseError, QueryResult};

use block::{Block, CHUNK_SAMPLES};
use gorilla::ChunkEncoder;
use index::Postings;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "metric {metric:?} already has {limit} series; the per-metric series limit is reached"
    )]
    TooManySeries { metric: String, limit: usize },
    #[error("series without a metric name: {0}")]
    MissingMetricName(String),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("query: {0}")]
    Query(String),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the metrics store in {0} is open in another process; stop it, or give this one its own --data-dir")]
    Locked(PathBuf),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One series' label set and its samples, sorted by time.
pub type SeriesSamples = (Labels, Vec<(i64, f64)>);

#[derive(Clone, Debug)]
pub struct Options {
    /// Maximum series per metric name; appends that would exceed it fail as a whole.
    pub max_series_per_metric: usize,
    /// Blocks whose newest sample is older than this (relative to the newest sample seen) are
    /// deleted by [`Tsdb::compact`]. `None` keeps everything.
    pub retention_ms: Option<i64>,
    /// [`Tsdb::compact`] leaves this much recent data in the head.
    pub head_retention_ms: i64,
    /// Rollup resolution written beside each raw block (0 disables rollups). PromQL selectors
    /// read the rollups' `last` samples where raw blocks are gone ([`Tsdb::select_with_rollups`]);
    /// [`Tsdb::select_rollup`] reads every aggregate.
    ///
    pub rollup_step_ms: i64,
    /// Rollup blocks whose newest sample is older than this (relative to the newest sample
    /// seen) are deleted by [`Tsdb::compact`]. `None` (the default) keeps them exactly as long
    /// as raw blocks. Set it above `retention_ms` to answer old queries from 5-minute samples
    /// once the raw data is gone (Thanos/M3-style downsampling, see
    /// [`Tsdb::select_with_rollups`]).
    pub rollup_retention_ms: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_series_per_metric: 100_000,
            retention_ms: Some(15 * 24 * 3600 * 1000),
            head_retention_ms: 3600 * 1000,
            rollup_step_ms: 5 * 60 * 1000,
            rollup_retention_ms: None,
        }
    }
}

struct MemSeries {
    labels: Arc<Labels>,
    closed: Vec<(i64, i64, Vec<u8>)>,
    open: ChunkEncoder,
    last_t: i64,
}

impl MemSeries {
    fn push(&mut self, t: i64, v: f64) -> bool {
        if t <= self.last_t {
            return false;
        }
        if usize::from(self.open.count()) >= CHUNK_SAMPLES {
            let done = std::mem::take(&mut self.open);
            self.closed
                .push((done.min_t, done.max_t(), done.to_bytes()));
        }
        self.open.append(t, v);
        self.last_t = t;
        true
    }

    fn samples(&self, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        for (lo, hi, bytes) in &self.closed {
            if *hi >= mint && *lo <= maxt {
                // Chunks are produced by us in memory; a decode failure would be a bug.
                let _ = gorilla::decode_into(bytes, &mut out);
            }
        }
        if self.open.count() > 0 && self.open.max_t() >= mint && self.open.min_t <= maxt {
            let _ = gorilla::decode_into(&self.open.to_bytes(), &mut out);
        }
        out.retain(|&(t, _)| t >= mint && t <= maxt);
        out
    }

    fn bytes(&self) -> usize {
        self.closed.iter().map(|c| c.2.len()).sum::<usize>() + self.open.encoded_len()
    }

    fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.count() == 0
    }
}

/// One head series: its label set (outside the series lock, so lookups need no locking) and
/// its samples.
struct HeadSeries {
    labels: Arc<Labels>,
    mem: Arc<Mutex<MemSeries>>,
}

/// Head ids are handed out in increasing order and never reused while the process runs
/// (until [`HeadIndex::renumber`], which only runs inside compaction), so a stale id can
/// never name a different series.
#[derive(Default)]
struct HeadIndex {
    series: HashMap<u32, HeadSeries>,
    next_id: u32,
    by_hash: HashMap<u64, Vec<u32>>,
    postings: Postings,
    per_metric: HashMap<String, usize>,
    /// Series garbage-collected since open.
    removed_total: u64,
}

/// Past this many ids handed out, garbage collection renumbers the head densely.
const RENUMBER_AT: u32 = 1 << 31;

impl HeadIndex {
    fn lookup(&self, labels: &Labels, hash: u64) -> Option<u32> {
        self.by_hash
            .get(&hash)?
            .iter()
            .copied()
            .find(|id| self.series.get(id).is_some_and(|s| *s.labels == *labels))
    }

    fn get(&self, id: u32) -> Option<&Arc<Mutex<MemSeries>>> {
        self.series.get(&id).map(|s| &s.mem)
    }

    /// Head ids in increasing order.
    fn sorted_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.series.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Creates a series; `None` only when the id space is exhausted (2^32 series created since
    /// the last compaction).
    fn create(&mut self, labels: Labels, hash: u64) -> Option<u32> {
        let id = self.next_id;
        self.next_id = id.checked_add(1)?;
        self.postings.add(id, &labels);
        *self
            .per_metric
            .entry(labels.name().to_string())
            .or_default() += 1;
        self.by_hash.entry(hash).or_default().push(id);
        let labels = Arc::new(labels);
        let mem = Arc::new(Mutex::new(MemSeries {
            labels: Arc::clone(&labels),
            closed: Vec::new(),
            open: ChunkEncoder::new(),
            last_t: i64::MIN,
        }));
        self.series.insert(id, HeadSeries { labels, mem });
        Some(id)
    }

    /// Removes every series without samples in the head (garbage collection after compaction),
    /// with its postings, hash entry and per-metric count. Returns how many were removed and
    /// whether ids were renumbered. Callers must exclude appends (hold the gate exclusively):
    /// an appender holds ids from lookup until its samples are applied.
    fn gc(&mut self) -> (usize, bool) {
        let mut gone: Vec<(u32, Arc<Labels>)> = self
            .series
            .iter()
            .filter(|(_, s)| s.mem.lock().is_empty())
            .map(|(&id, s)| (id, Arc::clone(&s.labels)))
            .collect();
        gone.sort_unstable_by_key(|g| g.0);
        for (id, labels) in &gone {
            self.series.remove(id);
            let hash = labels.hash64();
            if let Some(ids) = self.by_hash.get_mut(&hash) {
                ids.retain(|x| x != id);
                if ids.is_empty() {
                    self.by_hash.remove(&hash);
                }
            }
            if let Some(n) = self.per_metric.get_mut(labels.name()) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_metric.remove(labels.name());
                }
            }
        }
        let refs: Vec<(u32, &Labels)> = gone.iter().map(|(id, l)| (*id, &**l)).collect();
        self.postings.remove(&refs);
        index::shrink_map(&mut self.series);
        index::shrink_map(&mut self.by_hash);
        index::shrink_map(&mut self.per_metric);
        self.removed_total += gone.len() as u64;
        let renumbered = self.next_id >= RENUMBER_AT;
        if renumbered {
            self.renumber();
        }
        (gone.len(), renumbered)
    }

    /// Gives the series ids `0..n` in their current order. Only valid while no ids are held
    /// outside the head and when the WAL is rewritten right after.
    fn renumber(&mut self) {
        let old = std::mem::take(&mut self.series);
        let mut entries: Vec<(u32, HeadSeries)> = old.into_iter().collect();
        entries.sort_unstable_by_key(|e| e.0);
        self.by_hash.clear();
        self.postings = Postings::default();
        self.series = HashMap::with_capacity(entries.len());
        for (new_id, (_, s)) in (0u32..).zip(entries) {
            self.postings.add(new_id, &s.labels);
            self.by_hash.entry(s.labels.hash64()).or_default().push(new_id);
            self.series.insert(new_id, s);
        }
        self.next_id = self.series.len() as u32;
    }
}

/// Counters and sizes, for `/metrics` and the benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Series currently in the head (series without head samples are removed by compaction).
    pub head_series: usize,
    /// Head series removed by garbage collection since the store was opened.
    pub head_series_removed: u64,
    pub head_chunk_bytes: usize,
    pub blocks: usize,
    pub block_bytes: u64,
    pub block_samples: u64,
    pub samples_appended: u64,
    pub out_of_order_dropped: u64,
    pub newest_timestamp: Option<i64>,
}

/// Blocks never straddle a multiple of this (2 hours): the smallest merge window.
const BLOCK_ALIGN_MS: i64 = 2 * 3600 * 1000;

/// `series` cut at every multiple of `window`: one list per window, in time order.
fn split_at_windows(series: Vec<SeriesSamples>, window: i64) -> Vec<Vec<SeriesSamples>> {
    let mut parts: BTreeMap<i64, Vec<SeriesSamples>> = BTreeMap::new();
    for (labels, samples) in series {
        let mut rest = &samples[..];
        while let Some(&(t, _)) = rest.first() {
            let start = t.div_euclid(window).saturating_mul(window);
            let end = start.saturating_add(window);
            let n = rest.partition_point(|p| p.0 < end);
            parts.entry(start).or_default().push((labels.clone(), rest[..n].to_vec()));
            rest = &rest[n..];
        }
    }
    parts.into_values().collect()
}

/// The store. `Send + Sync`: share it in an `Arc`.
pub struct Tsdb {
    dir: PathBuf,
    /// Held for the store's life: one process per directory.
    _lock: std::fs::File,
    opts: Options,
    /// Appends take it shared; compaction takes it exclusively while it swaps the WAL.
    gate: RwLock<()>,
    head: RwLock<HeadIndex>,
    wal: wal::Wal,
    blocks: RwLock<Vec<Arc<Block>>>,
    /// One block merge / retention pass at a time (they run outside the append gate).
    maintenance: Mutex<()>,
    max_t: AtomicI64,
    appended: AtomicU64,
    out_of_order: AtomicU64,
}

impl Tsdb {
    /// Opens or creates a store in `dir`, loading blocks and replaying the WAL.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Tsdb> {
        let dir = dir.as_ref().to_path_buf();
        let blocks_dir = dir.join("blocks");
        std::fs::create_dir_all(&blocks_dir)?;
        // Two writers on one WAL would interleave records: refuse a second.
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("LOCK"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked(dir)),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
        let mut blocks = Vec::new();
        // Blocks a merge replaced (a crash came between its rename and their deletion).
        let superseded = block::superseded(&blocks_dir)?;
        for entry in std::fs::read_dir(&blocks_dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(".tmp-") || (path.is_dir() && superseded.contains(name)) {
                std::fs::remove_dir_all(&path)?;
            } else if path.is_dir() {
                blocks.push(Arc::new(Block::open(&path)?));
            }
        }
        blocks.sort_by_key(|b| (b.index.min_t, b.index.resolution_ms));
        let wal_path = dir.join("wal");
        let (records, valid) = wal::read_all(&wal_path)?;
        let mut head = HeadIndex::default();
        let mut max_t = blocks
            .iter()
            .map(|b| b.index.max_t)
            .max()
            .unwrap_or(i64::MIN);
        // WAL ids are those of the writing process; map them to this head's ids.
        let mut ids: HashMap<u32, u32> = HashMap::new();
        for rec in records {
            match rec {
                wal::Record::Series(wid, labels) => {
                    let hash = labels.hash64();
                    let id = match head.lookup(&labels, hash) {
                        Some(id) => Some(id),
                        None => head.create(labels, hash),
                    };
                    let Some(id) = id else {
                        return Err(Error::Io(std::io::Error::other(
                            "WAL names more than 2^32 series",
                        )));
                    };
                    ids.insert(wid, id);
                }
                wal::Record::Samples(samples) => {
                    for (wid, t, v) in samples {
                        if let Some(s) = ids.get(&wid).and_then(|&id| head.get(id)) {
                            if s.lock().push(t, v) {
                                max_t = max_t.max(t);
                            }
                        }
                    }
                }
            }
        }
        // Series whose samples all went to blocks (e.g. from a log written before head GC, or
        // created by an append that then failed) take no head memory.
        head.gc();
        head.removed_total = 0;
        // Samples already persisted in blocks must not come back from an old WAL as new data.
        let wal = wal::Wal::open(&wal_path, valid)?;
        let db = Tsdb {
            _lock: lock,
            dir,
            opts,
            gate: RwLock::new(()),
            head: RwLock::new(head),
            wal,
            blocks: RwLock::new(blocks),
            maintenance: Mutex::new(()),
            max_t: AtomicI64::new(max_t),
            appended: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
        };
        // Rewrite the log with this process's ids so new records never collide with old ids.
        db.checkpoint_wal(&db.head.read())?;
        Ok(db)
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Appends samples; returns once they are durable in the WAL. Samples not newer than the
    /// series' latest sample are dropped (counted in [`Stats::out_of_order_dropped`]). If the
    /// batch would create series beyond the per-metric limit, nothing is written.
    ///
    /// Takes owned or borrowed label sets (`&[(Labels, i64, f64)]` or `&[(&Labels, i64, f64)]`).
    pub fn append<L: std::borrow::Borrow<Labels>>(&self, samples: &[(L, i64, f64)]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let _gate = self.gate.read();
        let mut ids = Vec::with_capacity(samples.len());
        let mut missing = Vec::new();
        {
            let head = self.head.read();
            for (i, (labels, _, _)) in samples.iter().enumerate() {
                let labels = labels.borrow();
                let h = labels.hash64();
                match head.lookup(labels, h) {
                    Some(id) => ids.push(id),
                    None => {
                        ids.push(u32::MAX);
                        missing.push((i, h));
                    }
                }
            }
        }
        if !missing.is_empty() {
            let mut head = self.head.write();
            let mut new_per_metric: HashMap<&str, usize> = HashMap::new();
            let mut fresh: Vec<(usize, u64)> = Vec::new();
            for &(i, h) in &missing {
                let labels = samples[i].0.borrow();
                if labels.name().is_empty() {
                    return Err(Error::MissingMetricName(labels.to_string()));
                }
                if head.lookup(labels, h).is_none()
                    && !fresh
                        .iter()
                        .any(|&(j, hj)| hj == h && samples[j].0.borrow() == labels)
                {
                    fresh.push((i, h));
                    *new_per_metric.entry(labels.name()).or_default() += 1;
                }
            }
            for (metric, n) in &new_per_metric {
                let have = head.per_metric.get(*metric).copied().unwrap_or(0);
                if have + n > self.opts.max_series_per_metric {
                    return Err(Error::TooManySeries {
                        metric: metric.to_string(),
                        limit: self.opts.max_series_per_metric,
                    });
                }
            }
            let mut rec = Vec::new();
            for &(i, h) in &missing {
                let labels = samples[i].0.borrow();
                let id = match head.lookup(labels, h) {
                    Some(id) => id,
                    None => {
                        let Some(id) = head.create(labels.clone(), h) else {
                            // Series made so far are empty; compaction removes them.
                            if !rec.is_empty() {
                                self.wal.stage(&rec);
                            }
                            return Err(Error::Io(std::io::Error::other(
                                "head series ids exhausted; run compaction",
                            )));
                        };
                        wal::encode_series(&mut rec, id, labels);
                        id
                    }
                };
                ids[i] = id;
            }
            // Staged under the head lock: a series record always precedes samples that use it.
            if !rec.is_empty() {
                self.wal.stage(&rec);
            }
        }
        let mut rec = Vec::with_capacity(samples.len() * 20 + 16);
        let triples: Vec<(u32, i64, f64)> = samples
            .iter()
            .zip(&ids)
            .map(|((_, t, v), &id)| (id, *t, *v))
            .collect();
        wal::encode_samples(&mut rec, &triples);
        let seq = self.wal.stage(&rec);
        self.wal.commit(seq)?;
        // The ids are still valid: garbage collection runs only under the exclusive gate, and
        // this append has held the gate shared since it looked them up.
        let head = self.head.read();
        let (mut ok, mut dropped, mut newest, mut lost) = (0u64, 0u64, i64::MIN, 0u64);
        for (id, t, v) in triples {
            let Some(s) = head.get(id) else {
                lost += 1;
                continue;
            };
            if s.lock().push(t, v) {
                ok += 1;
                newest = newest.max(t);
            } else {
                dropped += 1;
            }
        }
        self.appended.fetch_add(ok, Ordering::Relaxed);
        self.out_of_order.fetch_add(dropped, Ordering::Relaxed);
        self.max_t.fetch_max(newest, Ordering::Relaxed);
        if lost > 0 {
            // Unreachable while the gate discipline holds; never report such samples as stored.
            return Err(Error::Io(std::io::Error::other(format!(
                "{lost} samples lost their head series during the append"
            ))));
        }
        Ok(())
    }

    /// Writes a fresh WAL holding every head series and its samples, then swaps it in.
    /// Only the head's current series appear, so the new log never names a removed id; a
    /// series created later gets its series record when it is created. The caller must exclude
    /// appends. If the swap fails after the rename, the log is poisoned: appends would
    /// otherwise go to an unlinked file.
    fn checkpoint_wal(&self, head: &HeadIndex) -> Result<()> {
        let tmp = self.dir.join("wal.tmp");
        let mut buf = Vec::new();
        for id in head.sorted_ids() {
            let Some(s) = head.get(id) else { continue };
            let s = s.lock();
            wal::encode_series(&mut buf, id, &s.labels);
            let samples: Vec<(u32, i64, f64)> = s
                .samples(i64::MIN, i64::MAX)
                .into_iter()
                .map(|(t, v)| (id, t, v))
                .collect();
            if !samples.is_empty() {
                wal::encode_samples(&mut buf, &samples);
            }
        }
        {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &buf)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join("wal"))?;
        let swapped = std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .and_then(|()| self.wal.replace_file(&self.dir.join("wal")));
        if let Err(e) = swapped {
            self.wal.poison(&e);
            return Err(e.into());
        }
        Ok(())
    }

    /// Persists head samples older than `newest - head_retention_ms` into a block, writes
    /// rollups, checkpoints the WAL and deletes blocks past retention.
    pub fn compact(&self) -> Result<()> {
        let newest = self.max_t.load(Ordering::Relaxed);
        if newest == i64::MIN {
            return Ok(());
        }
        self.compact_before(newest.saturating_sub(self.opts.head_retention_ms))
    }

    /// Like [`Tsdb::compact`] but persists every head sample with `t < cutoff`
    /// (`i64::MAX` flushes the whole head).
    pub fn compact_before(&self, cutoff: i64) -> Result<()> {
        // Exclusive gate: no append is between its id lookup and applying its samples, so
        // series can be removed and the WAL swapped without losing or misdirecting a sample.
        let _gate = self.gate.write();
        let mut head = self.head.write();
        let mut flushed: Vec<SeriesSamples> = Vec::new();
        let mut keep: Vec<(u32, Vec<(i64, f64)>)> = Vec::with_capacity(head.series.len());
        for id in head.sorted_ids() {
            let Some(s) = head.get(id) else { continue };
            let s = s.lock();
            let all = s.samples(i64::MIN, i64::MAX);
            let split = all.partition_point(|&(t, _)| t < cutoff);
            if split > 0 {
                flushed.push((Labels::clone(&s.labels), all[..split].to_vec()));
            }
            keep.push((id, all[split..].to_vec()));
        }
        let blocks_dir = self.dir.join("blocks");
        let mut new_blocks = Vec::new();
        // One block per 2-hour window the flushed samples touch, so no block straddles a
        // merge window (see `merge_blocks`).
        for part in split_at_windows(flushed, BLOCK_ALIGN_MS) {
            if let Some(dir) = block::write_block(&blocks_dir, 0, &part)? {
                new_blocks.push(Arc::new(Block::open(&dir)?));
            }
            if self.opts.rollup_step_ms > 0 {
                let rolled = block::rollup(&part, self.opts.rollup_step_ms);
                if let Some(dir) = block::write_block(&blocks_dir, self.opts.rollup_step_ms, &rolled)? {
                    new_blocks.push(Arc::new(Block::open(&dir)?));
                }
            }
        }
        for (id, samples) in keep {
            let Some(s) = head.get(id) else { continue };
            let mut s = s.lock();
            s.closed.clear();
            s.open = ChunkEncoder::new();
            let last = s.last_t;
            s.last_t = i64::MIN;
            for (t, v) in samples {
                s.push(t, v);
            }
            s.last_t = last;
        }
        {
            let mut blocks = self.blocks.write();
            blocks.extend(new_blocks);
            blocks.sort_by_key(|b| (b.index.min_t, b.index.resolution_ms));
        }
        // Series with nothing left in the head live on in the blocks only. Their ids leave
        // the head before the checkpoint, so the new WAL never mentions them.
        let (_, renumbered) = head.gc();
        if let Err(e) = self.checkpoint_wal(&head) {
            // Renumbered ids would misread the old log's records: refuse further appends.
            if renumbered {
                self.wal.poison(&std::io::Error::other(e.to_string()));
            }
            return Err(e);
        }
        drop(head);
        drop(_gate);
        // Appends go on while blocks expire and merge. Retention first: a merge that keeps
        // failing (a full disk, a corrupt chunk) must not stop the step that frees space.
        let _one = self.maintenance.lock();
        self.apply_retention()?;
        // A window is complete only once data newer than its end exists, so flushing the whole
        // head (`cutoff` = i64::MAX) does not merge windows still being written.
        self.merge_blocks(cutoff.min(self.max_t.load(Ordering::Relaxed)))
    }

    /// Merges the blocks of each complete time window into one, Prometheus-style: compactions
    /// write a block per call (every 10 minutes on a node), which would leave thousands of
    /// small blocks, each with its own copy of the series' labels in memory and a directory to
    /// search per query. Raw blocks merge into 2-hour then 1-day windows, rollup blocks into
    /// 2-hour, 1-day then 7-day windows, each level capped at a tenth of that kind's retention (so
    /// retention, which drops whole blocks, stays close to what was asked). A window merges
    /// once it is complete: it ends at or before `cutoff`, the time below which the head has
    /// been flushed.
    fn merge_blocks(&self, cutoff: i64) -> Result<()> {
        const HOUR: i64 = BLOCK_ALIGN_MS / 2;
        let blocks_dir = self.dir.join("blocks");
        let raw_ret = self.opts.retention_ms;
        let rollup_ret = self.opts.rollup_retention_ms.or(raw_ret);
        let kinds: [(bool, &[i64], Option<i64>); 2] =
            [(false, &[2 * HOUR, 24 * HOUR], raw_ret), (true, &[2 * HOUR, 24 * HOUR, 7 * 24 * HOUR], rollup_ret)];
        for (rollup, levels, retention) in kinds {
            for &w in levels {
                if retention.is_some_and(|r| w > r / 10) {
                    continue;
                }
                let mut groups: BTreeMap<(i64, i64), Vec<Arc<Block>>> = BTreeMap::new();
                for b in self.blocks.read().iter().filter(|b| (b.index.resolution_ms > 0) == rollup) {
                    let start = b.index.min_t.div_euclid(w).saturating_mul(w);
                    let end = start.saturating_add(w);
                    if b.index.max_t < end && end <= cutoff {
                        groups.entry((b.index.resolution_ms, start)).or_default().push(b.clone());
                    }
                }
                for group in groups.into_values().filter(|g| g.len() >= 2) {
                    let sources: Vec<&Block> = group.iter().map(|b| b.as_ref()).collect();
                    let Some(dir) = block::merge(&blocks_dir, &sources)? else { continue };
                    let merged = Arc::new(Block::open(&dir)?);
                    {
                        let mut blocks = self.blocks.write();
                        blocks.retain(|b| !group.iter().any(|g| Arc::ptr_eq(g, b)));
                        blocks.push(merged);
                        blocks.sort_by_key(|b| (b.index.min_t, b.index.resolution_ms));
                    }
                    for b in &group {
                        std::fs::remove_dir_all(&b.dir)?;
                    }
                    // Sources gone: the list has done its job (a stale list could name a
                    // later block that reuses a name).
                    std::fs::remove_file(dir.join(block::SOURCES_FILE))?;
                    std::fs::File::open(&dir)?.sync_all()?;
                }
            }
        }
        Ok(())
    }

    /// Deletes raw blocks past `retention_ms` and rollup blocks past the rollup retention
    /// ([`Options::rollup_retention_ms`], or `retention_ms` when that is `None`).
    fn apply_retention(&self) -> Result<()> {
        let raw_ret = self.opts.retention_ms;
        let rollup_ret = self.opts.rollup_retention_ms.or(raw_ret);
        if raw_ret.is_none() && rollup_ret.is_none() {
            return Ok(());
        }
        let newest = self.max_t.load(Ordering::Relaxed);
        let horizon = |ret: Option<i64>| ret.map_or(i64::MIN, |r| newest.saturating_sub(r));
        let (raw_horizon, rollup_horizon) = (horizon(raw_ret), horizon(rollup_ret));
        let expired: Vec<Arc<Block>> = {
            let mut blocks = self.blocks.write();
            let (old, live): (Vec<_>, Vec<_>) = blocks.drain(..).partition(|b| {
                let h = if b.index.resolution_ms == 0 { raw_horizon } else { rollup_horizon };
                b.index.max_t < h
            });
            *blocks = live;
            old
        };
        for b in expired {
            std::fs::remove_dir_all(&b.dir)?;
        }
        Ok(())
    }

    /// Raw samples of every series matching `matchers` within `[mint, maxt]`, merged across
    /// blocks and the head, sorted by labels.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesSamples>> {
        self.select_resolution(matchers, mint, maxt, 0)
    }

    /// Samples for query selectors: raw samples (blocks and head) as [`Tsdb::select`] returns
    /// them, plus, for the span before the oldest raw block's `min_t` (where retention removed
    /// the raw data), the rollup blocks' `last` samples under the series' own labels (no
    /// `__rollup__` label): one sample per rollup bucket, at the bucket's last raw timestamp.
    /// Raw data wins: rollup samples at or after the seam are never returned, and a timestamp
    /// present in both keeps the raw value. Rollup blocks written before `last` existed have
    /// no `last` series and contribute nothing (their span reads as empty).
    pub fn select_with_rollups(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>> {
        Ok(self.select_downsampled(matchers, mint, maxt)?.0)
    }

    /// [`Tsdb::select_with_rollups`], and its seam: the samples before it are rollup
    /// samples, those at or after it raw ones (`i64::MIN`: no rollup sample can appear).
    pub fn select_downsampled(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<(Vec<SeriesSamples>, i64)> {
        self.select_inner(matchers, mint, maxt, 0, true)
    }

    /// Downsampled series from rollup blocks of `resolution_ms` (see [`Options::rollup_step_ms`]):
    /// five series per raw series, labelled `__rollup__` = `min`, `max`, `sum`, `count`, `last`
    /// (blocks written by older versions lack `last`), one point per bucket at the bucket's
    /// last sample time. Only data already compacted has rollups.
    pub fn select_rollup(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        resolution_ms: i64,
    ) -> Result<Vec<SeriesSamples>> {
        if resolution_ms <= 0 {
            return Err(Error::Query("rollup resolution must be positive".into()));
        }
        self.select_resolution(matchers, mint, maxt, resolution_ms)
    }

    fn select_resolution(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        resolution_ms: i64,
    ) -> Result<Vec<SeriesSamples>> {
        Ok(self.select_inner(matchers, mint, maxt, resolution_ms, false)?.0)
    }

    fn select_inner(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        resolution_ms: i64,
        with_rollups: bool,
    ) -> Result<(Vec<SeriesSamples>, i64)> {
        // Head first, then the block list under the same head lock: compaction publishes its
        // blocks before it releases the head, so samples it moves (and series it removes) are
        // seen in exactly one of the two, never in neither.
        let head = self.head.read();
        let (blocks, rollup_blocks, seam): (Vec<Arc<Block>>, Vec<Arc<Block>>, i64) = {
            let all = self.blocks.read();
            let blocks = all
                .iter()
                .filter(|b| {
                    b.index.resolution_ms == resolution_ms
                        && b.index.max_t >= mint
                        && b.index.min_t <= maxt
                })
                .cloned()
                .collect();
            // The seam: raw data exists from the oldest raw block on (the head only holds
            // data newer than every compaction). With no raw block left, every rollup is usable.
            let seam = if with_rollups && resolution_ms == 0 {
                all.iter()
                    .filter(|b| b.index.resolution_ms == 0)
                    .map(|b| b.index.min_t)
                    .min()
                    .or_else(|| {
                        all.iter()
                            .filter(|b| b.index.resolution_ms > 0)
                            .map(|b| b.index.max_t.saturating_add(1))
                            .max()
                    })
                    .unwrap_or(i64::MIN)
            } else {
                i64::MIN
            };
            let rollup_blocks = all
                .iter()
                .filter(|b| {
                    b.index.resolution_ms > 0
                        && b.index.min_t < seam
                        && b.index.max_t >= mint
                        && b.index.min_t <= maxt
                })
                .cloned()
                .collect();
            (blocks, rollup_blocks, seam)
        };
        let mut head_got = Vec::new();
        if resolution_ms == 0 {
            for id in head.postings.candidates(matchers) {
                let Some(s) = head.get(id) else { continue };
                let s = s.lock();
                if s.last_t < mint || !matchers.iter().all(|m| m.matches_labels(&s.labels)) {
                    continue;
                }
                let samples = s.samples(mint, maxt);
                if !samples.is_empty() {
                    head_got.push((Labels::clone(&s.labels), samples));
                }
            }
            head_got.sort_by(|x: &SeriesSamples, y| x.0.cmp(&y.0));
        }
        drop(head);
        // One list per source, each sorted by labels (block indexes are written sorted).
        let mut sources: Vec<Vec<SeriesSamples>> = Vec::new();
        for b in &blocks {
            let mut got = b.select(matchers, mint, maxt)?;
            got.sort_by(|x, y| x.0.cmp(&y.0));
            sources.push(got);
        }
        sources.push(head_got);
        // Rollups come last, so a timestamp also present in raw data keeps the raw value.
        let rollup_maxt = maxt.min(seam.saturating_sub(1));
        if !rollup_blocks.is_empty() && mint <= rollup_maxt {
            let mut m = matchers.to_vec();
            m.push(Matcher::eq(block::ROLLUP_LABEL, "last"));
            // (t, v, resolution) per series, across rollup blocks.
            let mut rolled: BTreeMap<Labels, Vec<(i64, f64, i64)>> = BTreeMap::new();
            for b in &rollup_blocks {
                let res = b.index.resolution_ms;
                for (l, s) in b.select(&m, mint, rollup_maxt)? {
                    rolled
                        .entry(l.filtered(|k| k != block::ROLLUP_LABEL))
                        .or_default()
                        .extend(s.into_iter().map(|(t, v)| (t, v, res)));
                }
            }
            // A compaction cutoff inside a bucket leaves one `last` on each side of it; keep
            // the later one, so samples stay evenly spaced (rate extrapolation relies on it).
            // A counter's samples around a reset stay (see `block::rollup`).
            let got: Vec<SeriesSamples> = rolled
                .into_iter()
                .map(|(l, mut pts)| {
                    pts.sort_by_key(|p| p.0);
                    pts.dedup_by_key(|p| p.0);
                    let counter = block::is_counter(&l);
                    let kept = pts
                        .iter()
                        .enumerate()
                        .filter(|&(i, p)| {
                            let next = pts.get(i + 1);
                            next.is_none_or(|n| n.2 != p.2 || n.0.div_euclid(n.2) != p.0.div_euclid(p.2))
                                || (counter
                                    && block::at_reset(
                                        i.checked_sub(1).map(|j| pts[j].1),
                                        p.1,
                                        next.map(|n| n.1),
                                    ))
                        })
                        .map(|(_, p)| (p.0, p.1))
                        .collect();
                    (l, kept)
                })
                .collect();
            sources.push(got);
        }
        sources.retain(|s| !s.is_empty());
        if sources.len() <= 1 {
            return Ok((sources.pop().unwrap_or_default(), seam));
        }
        let mut merged: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for src in sources {
            for (l, s) in src {
                merged.entry(l).or_default().extend(s);
            }
        }
        let mut out: Vec<SeriesSamples> = merged.into_iter().collect();
        for (_, s) in &mut out {
            s.sort_by_key(|p| p.0);
            s.dedup_by_key(|p| p.0);
        }
        Ok((out, seam))
    }

    /// Label sets of series matching all matchers (head and blocks).
    pub fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>> {
        let mut set: std::collections::BTreeSet<Labels> = std::collections::BTreeSet::new();
        {
            let head = self.head.read();
            for id in head.postings.candidates(matchers) {
                let Some(s) = head.series.get(&id) else { continue };
                if matchers.iter().all(|m| m.matches_labels(&s.labels)) {
                    set.insert(Labels::clone(&s.labels));
                }
            }
        }
        for b in self.blocks.read().iter() {
            if b.index.resolution_ms == 0 {
                for id in b.postings().candidates(matchers) {
                    if let Some((l, _)) = b.index.series.get(id as usize) {
                        if matchers.iter().all(|m| m.matches_labels(l)) {
                            set.insert(l.clone());
                        }
                    }
                }
            } else {
                // Series that outlived their raw data are listed under their own labels; the
                // `__rollup__` series themselves are an internal detail.
                for (l, _) in &b.index.series {
                    if l.get(block::ROLLUP_LABEL).is_none() {
                        continue;
                    }
                    let l = l.filtered(|k| k != block::ROLLUP_LABEL);
                    if !set.contains(&l) && matchers.iter().all(|m| m.matches_labels(&l)) {
                        set.insert(l);
                    }
                }
            }
        }
        Ok(set.into_iter().collect())
    }

    /// Every value the label `name` takes, sorted (series kept only as rollups included; the
    /// internal `__rollup__` label has no values).
    pub fn label_values(&self, name: &str) -> Vec<String> {
        if name == block::ROLLUP_LABEL {
            return Vec::new();
        }
        let mut set: std::collections::BTreeSet<String> = self
            .head
            .read()
            .postings
            .label_values(name)
            .into_iter()
            .collect();
        for b in self.blocks.read().iter() {
            set.extend(b.postings().label_values(name));
        }
        set.into_iter().collect()
    }

    /// Evaluates a PromQL expression at `t` (ms).
    pub fn query_instant(&self, expr: &str, t: i64) -> Result<QueryResult> {
        let e = promql::parse(expr)?;
        promql::eval::instant(self, &e, t)
    }

    /// Evaluates a PromQL expression at `start, start+step, ..., <= end` (ms), as a matrix.
    pub fn query_range(&self, expr: &str, start: i64, end: i64, step: i64) -> Result<QueryResult> {
        if step <= 0 {
            return Err(Error::Query("step must be positive".into()));
        }
        if (end - start) / step > 11_000 {
            return Err(Error::Query(
                "more than 11000 points per series; increase the step".into(),
            ));
        }
        let e = promql::parse(expr)?;
        promql::eval::range(self, &e, start, end, step)
    }

    pub fn stats(&self) -> Stats {
        let head = self.head.read();
        let blocks = self.blocks.read();
        let newest = self.max_t.load(Ordering::Relaxed);
        Stats {
            head_series: head.series.len(),
            head_series_removed: head.removed_total,
            head_chunk_bytes: head.series.values().map(|s| s.mem.lock().bytes()).sum(),
            blocks: blocks.len(),
            block_bytes: blocks
                .iter()
                .filter(|b| b.index.resolution_ms == 0)
                .map(|b| b.bytes_on_disk)
                .sum(),
            block_samples: blocks
                .iter()
                .filter(|b| b.index.resolution_ms == 0)
                .map(|b| {
                    b.index
                        .series
                        .iter()
                        .flat_map(|(_, refs)| refs.iter())
                        .map(|r| u64::from(r.count))
                        .sum::<u64>()
                })
                .sum::<u64>(),
            samples_appended: self.appended.load(Ordering::Relaxed),
            out_of_order_dropped: self.out_of_order.load(Ordering::Relaxed),
            newest_timestamp: (newest != i64::MIN).then_some(newest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_removes_empty_series_and_renumbering_keeps_the_index_consistent() {
        let mut head = HeadIndex::default();
        let mk = |pod: &str| Labels::metric("m", &[("pod", pod)]);
        let mut ids = Vec::new();
        for pod in ["a", "b", "c", "d"] {
            let l = mk(pod);
            let h = l.hash64();
            ids.push(head.create(l, h).expect("id"));
        }
        for &id in &[ids[1], ids[3]] {
            head.get(id).expect("series").lock().push(5, 1.0);
        }
        assert_eq!(head.gc(), (2, false));
        assert_eq!((head.series.len(), head.per_metric["m"], head.postings.len()), (2, 2, 2));
        assert_eq!(head.lookup(&mk("a"), mk("a").hash64()), None);
        assert_eq!(head.lookup(&mk("b"), mk("b").hash64()), Some(ids[1]));
        // Re-created series get fresh ids, never a removed one.
        let again = head.create(mk("a"), mk("a").hash64()).expect("id");
        assert_eq!(again, 4);
        head.get(again).expect("series").lock().push(6, 2.0);
        head.next_id = RENUMBER_AT;
        assert_eq!(head.gc(), (0, true));
        assert_eq!(head.sorted_ids(), vec![0, 1, 2]);
        assert_eq!(head.next_id, 3);
        for (pod, id) in [("b", 0), ("d", 1), ("a", 2)] {
            assert_eq!(head.lookup(&mk(pod), mk(pod).hash64()), Some(id));
            let m = [Matcher::eq("pod", pod)];
            assert_eq!(head.postings.candidates(&m), vec![id]);
            assert_eq!(*head.get(id).expect("series").lock().labels, mk(pod));
        }
    }
}
