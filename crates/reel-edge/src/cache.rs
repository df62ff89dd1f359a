//! The appliance's disk cache: files under `<dir>/objects/<key>`, bounded in
//! bytes. Eviction keeps what is popular: each object's score is its hit
//! count decayed with a 10-minute half-life, and the lowest scores go first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

const HALF_LIFE_S: f64 = 600.0;

#[derive(Debug)]
struct Entry {
    size: u64,
    score: f64,
    at: Instant,
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
    capacity: u64,
    index: Mutex<(HashMap<String, Entry>, u64)>,
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
                    index.insert(key, Entry { size, score: 0.0, at: now });
                }
            }
        }
        let sums = dir.join("sums");
        std::fs::create_dir_all(&sums)?;
        Ok(Cache { root, sums, capacity, index: Mutex::new((index, used)) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, Entry>, u64)> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file for `key` if cached, counting the hit.
    pub fn hit(&self, key: &str) -> Option<PathBuf> {
        let mut idx = self.lock();
        let now = Instant::now();
        let e = idx.0.get_mut(key)?;
        e.score = e.decayed(now) + 1.0;
        e.at = now;
        Some(self.root.join(key))
    }

    pub fn path_of(&self, key: &str) -> Option<PathBuf> {
        self.lock().0.contains_key(key).then(|| self.root.join(key))
    }

    /// Bytes held and the capacity.
    pub fn usage(&self) -> (u64, u64) {
        (self.lock().1, self.capacity)
    }

    /// Titles with at least one object cached.
    pub fn titles(&self) -> Vec<String> {
        let mut t: Vec<String> = self.lock().0.keys().filter_map(|k| k.split('/').next().map(str::to_string)).collect();
        t.sort();
        t.dedup();
        t
    }

    /// Stores `bytes` under `key`, evicting the least popular objects to fit.
    /// Written to a `.part` file and renamed, so readers never see half a file.
    pub fn insert(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        if !valid_key(key) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid cache key"));
        }
        let size = bytes.len() as u64;
        if size > self.capacity {
            return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "object larger than the cache"));
        }
        let path = self.root.join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let part = path.with_extension("part");
        std::fs::write(&part, bytes)?;
        let sum_path = self.sums.join(key);
        if let Some(parent) = sum_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&sum_path, sha256_hex(bytes))?;
        let victims = {
            let mut idx = self.lock();
            let now = Instant::now();
            let mut victims = Vec::new();
            if let Some(old) = idx.0.remove(key) {
                idx.1 -= old.size;
            }
            while idx.1 + size > self.capacity {
                let Some(k) = idx
                    .0
                    .iter()
                    .min_by(|a, b| a.1.decayed(now).partial_cmp(&b.1.decayed(now)).unwrap_or(std::cmp::Ordering::Equal))
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some(e) = idx.0.remove(&k) {
                    idx.1 -= e.size;
                }
                victims.push(k);
            }
            std::fs::rename(&part, &path)?;
            idx.0.insert(key.to_string(), Entry { size, score: 0.0, at: now });
            idx.1 += size;
            victims
        };
        for v in victims {
            let _ = std::fs::remove_file(self.root.join(&v));
            let _ = std::fs::remove_file(self.sums.join(&v));
        }
        Ok(())
    }

    /// Whether `bytes` match the checksum recorded when `key` was filled
    /// (objects without a recorded sum pass).
    pub fn verify(&self, key: &str, bytes: &[u8]) -> bool {
        match std::fs::read_to_string(self.sums.join(key)) {
            Ok(sum) => sum.trim() == sha256_hex(bytes),
            Err(_) => true,
        }
    }

    /// Drops an object (a corrupted one, say) so the next request refills it.
    pub fn remove(&self, key: &str) {
        let mut idx = self.lock();
        if let Some(e) = idx.0.remove(key) {
            idx.1 -= e.size;
        }
        drop(idx);
        let _ = std::fs::remove_file(self.root.join(key));
        let _ = std::fs::remove_file(self.sums.join(key));
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
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

/// Reads a cached file in one go, with an ETag from its size and mtime.
pub async fn load(path: &Path) -> std::io::Result<Loaded> {
    let meta = tokio::fs::metadata(path).await?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let bytes = tokio::fs::read(path).await?;
    Ok(Loaded { etag: format!("\"{:x}-{:x}\"", bytes.len(), mtime), bytes: bytes.into() })
}
