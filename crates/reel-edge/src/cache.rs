//! The appliance's disk cache: files under `<dir>/objects/<key>`, bounded in
//! bytes. Eviction keeps what is popular: each object's score is its hit
//! count decayed with a 10-minute half-life, and the lowest scores go first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const HALF_LIFE_S: f64 = 600.0;

#[derive(Debug)]
struct Entry {
    size: u64,
    score: f64,
    at: Instant,
    /// The SHA-256 recorded when the object was filled.
    sum: Option<String>,
    /// Whether the file on disk was checked against `sum` since the cache
    /// was opened (a fill writes what it hashed, so it starts checked).
    verified: bool,
    /// Which copy of the object this is (a refill is a new generation).
    generation: u64,
}

/// A cached object, found.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: PathBuf,
    pub size: u64,
    /// Known once the object's checksum is known.
    pub etag: Option<String>,
    /// Checked against its checksum since this cache was opened.
    pub verified: bool,
    pub generation: u64,
}

/// Open files kept for sendfile, like nginx's open_file_cache: opening a
/// file per request costs two system calls a small object cannot afford.
const OPEN_FILES: usize = 256;

/// The validator of an object: derived from its content, so every appliance
/// holding the same bytes gives the same ETag (a player that fails over can
/// keep using `If-Range`).
pub fn etag_of(sum: &str) -> String {
    format!("\"{}\"", &sum[..sum.len().min(24)])
}

impl Entry {
    fn decayed(&self, now: Instant) -> f64 {
        self.score * 0.5f64.powf(now.duration_since(self.at).as_secs_f64() / HALF_LIFE_S)
    }
}

#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    /// `<dir>/sums/<key>`: the SHA-256 of each object, written at fill.
    sums: PathBuf,
    /// The configured bytes, lowered if the disk turns out to hold less.
    capacity: AtomicU64,
    index: Mutex<(HashMap<String, Entry>, u64)>,
    next_generation: AtomicU64,
    /// Key → (generation, file, last use): a stale generation is reopened.
    open: Mutex<(HashMap<String, (u64, std::sync::Arc<std::fs::File>, u64)>, u64)>,
}

/// A cache key is `title/master.m3u8` or `title/rendition/file`, each part
/// made of safe characters; anything else never touches the disk.
pub fn valid_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    (2..=3).contains(&parts.len()) && parts.iter().all(|p| reel_domain::is_media_name(p))
}

impl Cache {
    /// Opens `dir`, indexing the objects already there (a restart keeps its cache).
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<Cache> {
        let root = dir.join("objects");
        std::fs::create_dir_all(&root)?;
        let mut index = HashMap::new();
        let mut used = 0;
        let now = Instant::now();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let entry = entry?;
                let path = entry.path();
                let ft = entry.file_type()?;
                if ft.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.ends_with(".part") || !valid_key(&key) {
                        let _ = std::fs::remove_file(&path); // a fill cut short by a crash
                        continue;
                    }
                    let size = entry.metadata()?.len();
                    used += size;
                    let sum = std::fs::read_to_string(dir.join("sums").join(&key)).ok().map(|s| s.trim().to_string()).filter(|s| s.len() == 64);
                    let generation = index.len() as u64 + 1;
                    index.insert(key, Entry { size, score: 0.0, at: now, sum, verified: false, generation });
                }
            }
        }
        let sums = dir.join("sums");
        std::fs::create_dir_all(&sums)?;
        let next = index.len() as u64 + 1;
        Ok(Cache {
            root,
            sums,
            capacity: AtomicU64::new(capacity),
            index: Mutex::new((index, used)),
            next_generation: AtomicU64::new(next),
            open: Mutex::new((HashMap::new(), 0)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, Entry>, u64)> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The object `key` if cached, counting the hit.
    pub fn hit(&self, key: &str) -> Option<Hit> {
        let mut idx = self.lock();
        let now = Instant::now();
        let e = idx.0.get_mut(key)?;
        e.score = e.decayed(now) + 1.0;
        e.at = now;
        Some(Hit { path: self.root.join(key), size: e.size, etag: e.sum.as_deref().map(etag_of), verified: e.verified, generation: e.generation })
    }

    /// The open file of generation `generation` of `key`, opening it if needed.
    pub fn open_file(&self, key: &str, generation: u64) -> std::io::Result<std::sync::Arc<std::fs::File>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.1 += 1;
        let tick = open.1;
        if let Some(e) = open.0.get_mut(key) {
            if e.0 == generation {
                e.2 = tick;
                return Ok(e.1.clone());
            }
        }
        let file = std::sync::Arc::new(std::fs::File::open(self.root.join(key))?);
        if open.0.len() >= OPEN_FILES && !open.0.contains_key(key) {
            if let Some(oldest) = open.0.iter().min_by_key(|(_, v)| v.2).map(|(k, _)| k.clone()) {
                open.0.remove(&oldest);
            }
        }
        open.0.insert(key.to_string(), (generation, file.clone(), tick));
        Ok(file)
    }

    /// Records that the file for `key` matched (or, lacking a recorded sum,
    /// now has) the checksum `sum`.
    fn mark_verified(&self, key: &str, sum: &str) {
        let mut idx = self.lock();
        if let Some(e) = idx.0.get_mut(key) {
            if e.sum.is_none() {
                let _ = std::fs::write(self.sums.join(key), sum);
                e.sum = Some(sum.to_string());
            }
            e.verified = true;
        }
    }

    fn recorded_sum(&self, key: &str) -> Option<String> {
        self.lock().0.get(key).and_then(|e| e.sum.clone())
    }

    pub fn path_of(&self, key: &str) -> Option<PathBuf> {
        self.lock().0.contains_key(key).then(|| self.root.join(key))
    }

    /// Bytes held and the capacity.
    pub fn usage(&self) -> (u64, u64) {
        (self.lock().1, self.capacity.load(Ordering::Relaxed))
    }

    /// Titles with at least one object cached.
    pub fn titles(&self) -> Vec<String> {
        let mut t: Vec<String> = self.lock().0.keys().filter_map(|k| k.split('/').next().map(str::to_string)).collect();
        t.sort();
        t.dedup();
        t
    }

    /// Stores `bytes` under `key`, evicting the least popular objects to
    /// fit, and returns its SHA-256. Written to a `.part` file and renamed, so
    /// readers never see half a file. A disk that fills up before the
    /// configured capacity lowers the capacity to what it holds and makes
    /// room by eviction, once.
    pub fn insert(&self, key: &str, bytes: &[u8]) -> std::io::Result<String> {
        if !valid_key(key) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid cache key"));
        }
        let size = bytes.len() as u64;
        if size > self.capacity.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "object larger than the cache"));
        }
        let sum = sha256_hex(bytes);
        let path = self.root.join(key);
        let sum_path = self.sums.join(key);
        let part = path.with_extension("part");
        self.make_room(key, size);
        let write = |()| -> std::io::Result<()> {
            for p in [&path, &sum_path] {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
            }
            std::fs::write(&part, bytes)?;
            std::fs::write(&sum_path, &sum)
        };
        if let Err(e) = write(()) {
            let _ = std::fs::remove_file(&part);
            if !is_disk_full(&e) {
                return Err(e);
            }
            let held = self.lock().1;
            tracing::warn!(message = "disk full before the cache's capacity; lowering it", held_bytes = held);
            self.capacity.fetch_min(held, Ordering::Relaxed);
            if size > held {
                return Err(e);
            }
            self.make_room(key, size);
            if let Err(e) = write(()) {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        }
        let victims = {
            let mut idx = self.lock();
            if let Err(e) = std::fs::rename(&part, &path) {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
            if let Some(old) = idx.0.remove(key) {
                idx.1 -= old.size;
            }
            // Fills that ran side by side may each have made room for
            // themselves only.
            let victims = self.evict_over(&mut idx, size, key);
            let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
            idx.0.insert(key.to_string(), Entry { size, score: 0.0, at: Instant::now(), sum: Some(sum.clone()), verified: true, generation });
            idx.1 += size;
            victims
        };
        self.delete(victims);
        Ok(sum)
    }

    /// Evicts the least popular objects until `size` more bytes fit.
    fn make_room(&self, key: &str, size: u64) {
        let victims = {
            let mut idx = self.lock();
            let mut victims = Vec::new();
            if let Some(old) = idx.0.remove(key) {
                idx.1 -= old.size;
                victims.push(key.to_string());
            }
            victims.extend(self.evict_over(&mut idx, size, key));
            victims
        };
        self.delete(victims);
    }

    /// Takes the least popular objects (never `keep`) out of the index until
    /// `extra` more bytes fit; their files are for the caller to delete.
    fn evict_over(&self, idx: &mut (HashMap<String, Entry>, u64), extra: u64, keep: &str) -> Vec<String> {
        let capacity = self.capacity.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut victims = Vec::new();
        while idx.1 + extra > capacity {
            let Some(k) = idx
                .0
                .iter()
                .filter(|(k, _)| k.as_str() != keep)
                // Least popular first; among equals, the least recently used.
                .min_by(|a, b| a.1.decayed(now).partial_cmp(&b.1.decayed(now)).unwrap_or(std::cmp::Ordering::Equal).then(a.1.at.cmp(&b.1.at)))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = idx.0.remove(&k) {
                idx.1 -= e.size;
            }
            victims.push(k);
        }
        victims
    }

    fn delete(&self, victims: Vec<String>) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        for v in &victims {
            open.0.remove(v);
        }
        drop(open);
        for v in victims {
            let _ = std::fs::remove_file(self.root.join(&v));
            let _ = std::fs::remove_file(self.sums.join(&v));
        }
    }

    /// Drops an object (a corrupted one, say) so the next request refills it.
    pub fn remove(&self, key: &str) {
        let mut idx = self.lock();
        if let Some(e) = idx.0.remove(key) {
            idx.1 -= e.size;
        }
        drop(idx);
        self.delete(vec![key.to_string()]);
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    // ENOSPC, and EDQUOT for a quota.
    e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded || matches!(e.raw_os_error(), Some(28) | Some(122))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(valid_key("t1/master.m3u8"));
        assert!(valid_key("t1/720p/seg_001.m4s"));
        for bad in ["", "t1", "../x/y", "t1/../../etc", "t1/.hidden", "t1//x", "a/b/c/d", "t1/a b"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn bounded_and_keeps_the_popular() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = Cache::open(dir.path(), 300).unwrap_or_else(|e| panic!("{e}"));
        c.insert("t/a/hot", &[0; 100]).unwrap_or_else(|e| panic!("{e}"));
        c.insert("t/a/cold", &[0; 100]).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..5 {
            assert!(c.hit("t/a/hot").is_some());
        }
        c.insert("t/a/new", &[0; 150]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.path_of("t/a/hot").is_some(), "popular object kept");
        assert!(c.path_of("t/a/cold").is_none(), "unpopular object evicted");
        assert!(c.usage().0 <= 300);
        assert!(c.insert("t/a/huge", &[0; 301]).is_err());
        // Reopening indexes what is on disk.
        let again = Cache::open(dir.path(), 300).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.usage().0, 250);
    }
}

/// A memory tier over the disk cache for objects up to [`MEMORY_OBJECT_MAX`]:
/// a hit is served from shared bytes with no file system call at all.
pub const MEMORY_OBJECT_MAX: u64 = 8 * 1024 * 1024;

/// An object ready to send: its bytes and a validator.
#[derive(Clone)]
pub struct Loaded {
    pub bytes: bytes::Bytes,
    pub etag: String,
}

pub struct MemoryTier {
    capacity: u64,
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    used: u64,
    tick: u64,
    objects: HashMap<String, (u64, Loaded)>,
    order: std::collections::BTreeMap<u64, String>,
}

impl MemoryTier {
    pub fn new(capacity: u64) -> Self {
        MemoryTier { capacity, inner: Mutex::new(MemoryInner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Loaded> {
        let mut m = self.lock();
        m.tick += 1;
        let tick = m.tick;
        let (old, loaded) = m.objects.get(key).map(|(t, l)| (*t, l.clone()))?;
        m.order.remove(&old);
        m.order.insert(tick, key.to_string());
        if let Some(e) = m.objects.get_mut(key) {
            e.0 = tick;
        }
        Some(loaded)
    }

    /// Keeps `loaded` in memory, dropping the least recently used to fit.
    pub fn put(&self, key: &str, loaded: Loaded) {
        let size = loaded.bytes.len() as u64;
        if size > MEMORY_OBJECT_MAX || size > self.capacity {
            return;
        }
        let mut m = self.lock();
        if let Some((t, old)) = m.objects.remove(key) {
            m.order.remove(&t);
            m.used -= old.bytes.len() as u64;
        }
        while m.used + size > self.capacity {
            let Some((_, victim)) = m.order.pop_first() else { break };
            if let Some((_, v)) = m.objects.remove(&victim) {
                m.used -= v.bytes.len() as u64;
            }
        }
        m.tick += 1;
        let tick = m.tick;
        m.order.insert(tick, key.to_string());
        m.objects.insert(key.to_string(), (tick, loaded));
        m.used += size;
    }

    pub fn forget(&self, key: &str) {
        let mut m = self.lock();
        if let Some((t, old)) = m.objects.remove(key) {
            m.order.remove(&t);
            m.used -= old.bytes.len() as u64;
        }
    }
}

/// Reads the cached object `key` whole. The first read since the cache was
/// opened checks it against the checksum taken at fill; a damaged copy is
/// dropped (`Ok(None)`: fill it again).
/// Returns the bytes and their SHA-256.
pub async fn read_verified(cache: &Cache, key: &str, path: &Path) -> std::io::Result<Option<(bytes::Bytes, String)>> {
    let bytes: bytes::Bytes = tokio::fs::read(path).await?.into();
    let checked = cache.lock().0.get(key).filter(|e| e.verified).and_then(|e| e.sum.clone());
    if let Some(sum) = checked {
        return Ok(Some((bytes, sum)));
    }
    let b = bytes.clone();
    let sum = tokio::task::spawn_blocking(move || sha256_hex(&b)).await.map_err(std::io::Error::other)?;
    match cache.recorded_sum(key) {
        Some(recorded) if recorded != sum => {
            tracing::warn!(message = "corrupted cache object dropped", key = %key);
            cache.remove(key);
            Ok(None)
        }
        _ => {
            cache.mark_verified(key, &sum);
            Ok(Some((bytes, sum)))
        }
    }
}
