//! Immutable on-disk blocks: one directory per block (`<min_t>-<max_t>-<resolution>-<unique>`) holding `chunks` (concatenated
//! Gorilla chunks, each series' chunks contiguous) and `index`. Written into a `.tmp-*`
//! directory, fsync'd, then renamed into place, so a crash leaves either no block or a whole one.
//!
//! `index` layout (varints are LEB128, `z` = zigzag):
//! ```text
//! "RTI1" | z min_t | z max_t | resolution_ms | n_symbols | n × (len, utf-8 bytes)
//! | n_series | per series: n_labels, n × (name symbol, value symbol), n_chunks,
//!   per chunk: byte len, sample count, z (min_t − previous chunk's max_t, or block min_t), max_t − min_t
//! | u32 LE crc32 of everything before
//! ```
//! Chunk offsets are implicit: chunks are stored in index order.

use crate::gorilla;
use crate::index::Postings;
use crate::labels::{Labels, Matcher};
use crate::SeriesSamples;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Samples per chunk in blocks and in the head.
pub const CHUNK_SAMPLES: usize = 120;

#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct ChunkRef {
    pub offset: u64,
    pub len: u32,
    pub min_t: i64,
    pub max_t: i64,
    pub count: u32,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BlockIndex {
    pub min_t: i64,
    pub max_t: i64,
    /// 0 for raw samples; otherwise the rollup step in ms (series carry a `__rollup__` label).
    pub resolution_ms: i64,
    pub series: Vec<(Labels, Vec<ChunkRef>)>,
}

pub struct Block {
    pub dir: PathBuf,
    pub index: BlockIndex,
    postings: Postings,
    chunks: File,
    pub bytes_on_disk: u64,
}

impl Block {
    pub fn open(dir: &Path) -> std::io::Result<Block> {
        let raw = std::fs::read(dir.join("index"))?;
        let index = decode_index(&raw).ok_or_else(|| {
            std::io::Error::other(format!("corrupt block index in {}", dir.display()))
        })?;
        let mut postings = Postings::default();
        for (i, (labels, _)) in index.series.iter().enumerate() {
            postings.add(i as u32, labels);
        }
        let chunks = File::open(dir.join("chunks"))?;
        let bytes_on_disk = raw.len() as u64 + chunks.metadata()?.len();
        Ok(Block {
            dir: dir.to_path_buf(),
            index,
            postings,
            chunks,
            bytes_on_disk,
        })
    }

    pub fn postings(&self) -> &Postings {
        &self.postings
    }

    /// Series matching all matchers with their samples in `[mint, maxt]`.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> std::io::Result<Vec<SeriesSamples>> {
        let mut out = Vec::new();
        if self.index.max_t < mint || self.index.min_t > maxt {
            return Ok(out);
        }
        // (series index, first wanted chunk index, last wanted chunk index)
        let mut wanted: Vec<(usize, usize, usize)> = Vec::new();
        for id in self.postings.candidates(matchers) {
            let Some((labels, refs)) = self.index.series.get(id as usize) else {
                continue;
            };
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let first = refs.iter().position(|r| r.max_t >= mint && r.min_t <= maxt);
            let last = refs
                .iter()
                .rposition(|r| r.max_t >= mint && r.min_t <= maxt);
            if let (Some(f), Some(l)) = (first, last) {
                wanted.push((id as usize, f, l));
            }
        }
        let span = |&(i, f, l): &(usize, usize, usize)| {
            let refs = &self.index.series[i].1;
            (refs[f].offset, refs[l].offset + u64::from(refs[l].len))
        };
        let (Some(lo), Some(hi)) = (
            wanted.iter().map(|w| span(w).0).min(),
            wanted.iter().map(|w| span(w).1).max(),
        ) else {
            return Ok(out);
        };
        // Chunks are contiguous per series and series are stored in index order, so one read
        // covers every wanted chunk; when the selection is sparse, read per series instead.
        let needed: u64 = wanted.iter().map(|w| span(w).1 - span(w).0).sum();
        let whole = if needed * 2 >= hi - lo {
            let mut buf = vec![0u8; (hi - lo) as usize];
            self.chunks.read_exact_at(&mut buf, lo)?;
            Some(buf)
        } else {
            None
        };
        let corrupt = || std::io::Error::other(format!("corrupt chunk in {}", self.dir.display()));
        let decoded: Vec<std::io::Result<Option<SeriesSamples>>> = wanted
            .par_iter()
            .map(|w @ &(i, f, l)| {
                let (labels, refs) = &self.index.series[i];
                let (a, b) = span(w);
                let own;
                let (buf, base) = match &whole {
                    Some(buf) => (&buf[(a - lo) as usize..(b - lo) as usize], a),
                    None => {
                        let mut v = vec![0u8; (b - a) as usize];
                        self.chunks.read_exact_at(&mut v, a)?;
                        own = v;
                        (&own[..], a)
                    }
                };
                let mut samples =
                    Vec::with_capacity(refs[f..=l].iter().map(|r| r.count as usize).sum());
                for r in &refs[f..=l] {
                    let at = (r.offset - base) as usize;
                    buf.get(at..at + r.len as usize)
                        .and_then(|c| gorilla::decode_into(c, &mut samples))
                        .ok_or_else(corrupt)?;
                }
                samples.retain(|&(t, _)| t >= mint && t <= maxt);
                Ok((!samples.is_empty()).then(|| (labels.clone(), samples)))
            })
            .collect();
        for d in decoded {
            if let Some(x) = d? {
                out.push(x);
            }
        }
        Ok(out)
    }
}

/// Writes a block from whole series and returns its final directory.
pub fn write_block(
    blocks_dir: &Path,
    resolution_ms: i64,
    series: &[SeriesSamples],
) -> std::io::Result<Option<PathBuf>> {
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    for (_, s) in series {
        if let (Some(first), Some(last)) = (s.first(), s.last()) {
            min_t = min_t.min(first.0);
            max_t = max_t.max(last.0);
        }
    }
    if min_t > max_t {
        return Ok(None);
    }
    let mut w = BlockWriter::begin(blocks_dir, min_t, max_t, resolution_ms)?;
    let mut sorted: Vec<&(Labels, Vec<(i64, f64)>)> =
        series.iter().filter(|(_, s)| !s.is_empty()).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (labels, samples) in sorted {
        w.series(labels, samples)?;
    }
    w.finish(None).map(Some)
}

/// A block being written: `.tmp-<name>/` with its chunks file open; [`BlockWriter::finish`]
/// writes the index, fsyncs and renames it into place, so a crash leaves either no block or
/// a whole one.
struct BlockWriter {
    blocks_dir: PathBuf,
    name: String,
    tmp: PathBuf,
    chunks: std::io::BufWriter<File>,
    offset: u64,
    index: BlockIndex,
}

impl BlockWriter {
    fn begin(blocks_dir: &Path, min_t: i64, max_t: i64, resolution_ms: i64) -> std::io::Result<BlockWriter> {
        // Names are never reused (a merge's `sources` list names blocks): the time range and
        // resolution, then when and in which order this process wrote it.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("{min_t:020}-{max_t:020}-{resolution_ms}-{nanos:x}-{seq}");
        let tmp = blocks_dir.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let chunks = std::io::BufWriter::new(File::create(tmp.join("chunks"))?);
        Ok(BlockWriter {
            blocks_dir: blocks_dir.to_path_buf(),
            name,
            tmp,
            chunks,
            offset: 0,
            index: BlockIndex { min_t, max_t, resolution_ms, series: Vec::new() },
        })
    }

    /// Appends one series (time-ordered samples; series in label order) as full chunks.
    fn series(&mut self, labels: &Labels, samples: &[(i64, f64)]) -> std::io::Result<()> {
        let mut refs = Vec::with_capacity(samples.len().div_ceil(CHUNK_SAMPLES));
        for part in samples.chunks(CHUNK_SAMPLES) {
            let bytes = gorilla::encode(part);
            self.chunks.write_all(&bytes)?;
            refs.push(ChunkRef {
                offset: self.offset,
                len: bytes.len() as u32,
                min_t: part[0].0,
                max_t: part[part.len() - 1].0,
                count: part.len() as u32,
            });
            self.offset += bytes.len() as u64;
        }
        self.index.series.push((labels.clone(), refs));
        Ok(())
    }

    /// Writes the index (and `extra` = (file name, contents)), then renames the block into
    /// place (a name already taken gets a `.N` suffix) and returns its directory.
    fn finish(self, extra: Option<(&str, &[u8])>) -> std::io::Result<PathBuf> {
        let chunks = self.chunks.into_inner().map_err(|e| e.into_error())?;
        chunks.sync_all()?;
        let mut f = File::create(self.tmp.join("index"))?;
        f.write_all(&encode_index(&self.index))?;
        f.sync_all()?;
        if let Some((file, contents)) = extra {
            let mut f = File::create(self.tmp.join(file))?;
            f.write_all(contents)?;
            f.sync_all()?;
        }
        File::open(&self.tmp)?.sync_all()?;
        let mut dest = self.blocks_dir.join(&self.name);
        let mut n = 1;
        while dest.exists() {
            dest = self.blocks_dir.join(format!("{}.{n}", self.name));
            n += 1;
        }
        std::fs::rename(&self.tmp, &dest)?;
        File::open(&self.blocks_dir)?.sync_all()?;
        Ok(dest)
    }
}

/// The file in a merged block's directory that names the blocks it replaces (one directory
/// name a line). A merge renames its block into place before deleting its sources, so a crash
/// between the two leaves both; [`superseded`] tells which to delete at the next open.
pub const SOURCES_FILE: &str = "sources";

/// Directory names listed as sources by the blocks in `blocks_dir`: blocks a merge replaced
/// whose deletion a crash interrupted.
pub fn superseded(blocks_dir: &Path) -> std::io::Result<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    for entry in std::fs::read_dir(blocks_dir)? {
        let path = entry?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
        if hidden || !path.is_dir() {
            continue;
        }
        match std::fs::read_to_string(path.join(SOURCES_FILE)) {
            Ok(text) => out.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Merges blocks of one resolution into one new block and returns its directory (the
/// sources are left for the caller to delete). Series by series in label order, so memory
/// holds one series' samples at a time: each series' chunks from every source are decoded,
/// ordered by time (a timestamp present twice keeps the first block's sample) and re-encoded
/// into full chunks.
pub fn merge(blocks_dir: &Path, sources: &[&Block]) -> std::io::Result<Option<PathBuf>> {
    let Some(first) = sources.first() else { return Ok(None) };
    let resolution_ms = first.index.resolution_ms;
    if sources.iter().any(|b| b.index.resolution_ms != resolution_ms) {
        return Err(std::io::Error::other("cannot merge blocks of different resolutions"));
    }
    let mut order: Vec<&Block> = sources.to_vec();
    order.sort_by_key(|b| (b.index.min_t, b.index.max_t));
    let min_t = order.iter().map(|b| b.index.min_t).min().unwrap_or(i64::MAX);
    let max_t = order.iter().map(|b| b.index.max_t).max().unwrap_or(i64::MIN);
    // Every series once, in label order, with where it is in each source.
    let mut by_labels: std::collections::BTreeMap<&Labels, Vec<(usize, usize)>> = Default::default();
    for (b, block) in order.iter().enumerate() {
        for (i, (labels, _)) in block.index.series.iter().enumerate() {
            by_labels.entry(labels).or_default().push((b, i));
        }
    }
    let mut w = BlockWriter::begin(blocks_dir, min_t, max_t, resolution_ms)?;
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for (labels, places) in by_labels {
        samples.clear();
        let mut sorted = true;
        for &(b, i) in &places {
            let block = order[b];
            let refs = &block.index.series[i].1;
            let (Some(a), Some(z)) = (refs.first(), refs.last()) else { continue };
            buf.resize((z.offset + u64::from(z.len) - a.offset) as usize, 0);
            block.chunks.read_exact_at(&mut buf, a.offset)?;
            let before = samples.last().map(|p| p.0);
            for r in refs {
                let at = (r.offset - a.offset) as usize;
                buf.get(at..at + r.len as usize)
                    .and_then(|c| gorilla::decode_into(c, &mut samples))
                    .ok_or_else(|| std::io::Error::other(format!("corrupt chunk in {}", block.dir.display())))?;
            }
            if before.is_some_and(|t| refs.first().is_some_and(|r| r.min_t <= t)) {
                sorted = false;
            }
        }
        if !sorted {
            samples.sort_by_key(|p| p.0); // stable: the earlier block's sample stays first
            samples.dedup_by_key(|p| p.0);
        }
        if samples.is_empty() {
            continue;
        }
        w.series(labels, &samples)?;
    }
    let names: Vec<&str> = order.iter().filter_map(|b| b.dir.file_name().and_then(|n| n.to_str())).collect();
    w.finish(Some((SOURCES_FILE, names.join("\n").as_bytes()))).map(Some)
}

/// The label that marks rollup series in rollup blocks.
pub const ROLLUP_LABEL: &str = "__rollup__";

/// Rollup kinds written per series, in this order. Blocks written before `last` existed hold
/// only the first four; readers treat a missing `last` series as "no downsampled samples".
pub const ROLLUP_KINDS: [&str; 5] = ["min", "max", "sum", "count", "last"];

/// Whether a series is a counter by Prometheus' naming conventions (`_total`, and the
/// `_count`, `_sum` and `_bucket` series of summaries and histograms): its value only falls
/// when the process behind it restarts.
pub fn is_counter(labels: &Labels) -> bool {
    let name = labels.name();
    ["_total", "_count", "_sum", "_bucket"].iter().any(|s| name.ends_with(s))
}

/// Whether `v` is a counter reset marker among its neighbours: the sample before a fall or
/// the one after it.
pub fn at_reset(prev: Option<f64>, v: f64, next: Option<f64>) -> bool {
    next.is_some_and(|n| n < v) || prev.is_some_and(|p| v < p)
}

/// Downsamples series to `step_ms` buckets, producing five series per input labelled
/// `__rollup__` = `min`, `max`, `sum`, `count`, `last` (the bucket's last sample value). Every
/// bucket's timestamp is its last sample's, so `last` is a real sample of the series. A
/// counter's `last` also keeps the sample before each reset (and the one after it when the
/// counter climbs back above the reset's top within the bucket), and the batch's first sample
/// (a reset may lie between it and the previous batch), so `rate` and `increase` over
/// downsampled data lose nothing to a restart inside a bucket; readers drop the extra samples
/// that mark no reset ([`crate::Tsdb::select_with_rollups`]).
pub fn rollup(series: &[SeriesSamples], step_ms: i64) -> Vec<SeriesSamples> {
    let mut out = Vec::with_capacity(series.len() * ROLLUP_KINDS.len());
    for (labels, samples) in series {
        let counter = is_counter(labels);
        let mut agg: [Vec<(i64, f64)>; 5] = Default::default();
        let mut i = 0;
        while i < samples.len() {
            let bucket = samples[i].0.div_euclid(step_ms);
            let (mut mn, mut mx, mut sum, mut cnt, mut last_t, mut last_v) =
                (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0, 0, 0.0);
            while i < samples.len() && samples[i].0.div_euclid(step_ms) == bucket {
                let (t, v) = samples[i];
                // A counter's reset markers (not the bucket's last sample, which is kept
                // anyway): the sample before a fall; the one after it only if the counter
                // climbs back above the fall's top within the bucket (else the fall shows
                // between the kept samples); and the batch's first sample.
                let next = samples.get(i + 1).filter(|n| n.0.div_euclid(step_ms) == bucket);
                if counter && next.is_some() {
                    let before_fall = next.is_some_and(|n| n.1 < v);
                    let after_fall = i.checked_sub(1).map(|p| samples[p].1).filter(|&p| v < p).is_some_and(|top| {
                        samples[i..].iter().take_while(|s| s.0.div_euclid(step_ms) == bucket).last().is_some_and(|l| l.1 >= top)
                    });
                    if i == 0 || before_fall || after_fall {
                        agg[4].push((t, v));
                    }
                }
                mn = mn.min(v);
                mx = mx.max(v);
                sum += v;
                cnt += 1.0;
                last_t = t;
                last_v = v;
                i += 1;
            }
            agg[0].push((last_t, mn));
            agg[1].push((last_t, mx));
            agg[2].push((last_t, sum));
            agg[3].push((last_t, cnt));
            agg[4].push((last_t, last_v));
        }
        for (kind, s) in ROLLUP_KINDS.into_iter().zip(agg) {
            let pairs = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([(ROLLUP_LABEL.to_string(), kind.to_string())]);
            out.push((Labels::new(pairs), s));
        }
    }
    out
}

use crate::wal::{put_varint, read_varint, unzigzag, zigzag};


pub fn encode_index(index: &BlockIndex) -> Vec<u8> {
    let mut symbols: Vec<&str> = index
        .series
        .iter()
        .flat_map(|(l, _)| l.iter().flat_map(|(k, v)| [k, v]))
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    let sym_id = |s: &str| symbols.binary_search(&s).unwrap_or(0) as u64;
    let mut out = b"RTI1".to_vec();
    put_varint(&mut out, zigzag(index.min_t));
    put_varint(&mut out, zigzag(index.max_t));
    put_varint(&mut out, index.resolution_ms as u64);
    put_varint(&mut out, symbols.len() as u64);
    for s in &symbols {
        put_varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    put_varint(&mut out, index.series.len() as u64);
    for (labels, refs) in &index.series {
        put_varint(&mut out, labels.len() as u64);
        for (k, v) in labels.iter() {
            put_varint(&mut out, sym_id(k));
            put_varint(&mut out, sym_id(v));
        }
        put_varint(&mut out, refs.len() as u64);
        let mut prev = index.min_t;
        for r in refs {
            put_varint(&mut out, u64::from(r.len));
            put_varint(&mut out, u64::from(r.count));
            put_varint(&mut out, zigzag(r.min_t.wrapping_sub(prev)));
            put_varint(&mut out, r.max_t.wrapping_sub(r.min_t) as u64);
            prev = r.max_t;
        }
    }
    let crc = crate::wal::crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub fn decode_index(raw: &[u8]) -> Option<BlockIndex> {
    let (body, crc) = raw.split_at(raw.len().checked_sub(4)?);
    if crate::wal::crc32(body).to_le_bytes() != crc || !body.starts_with(b"RTI1") {
        return None;
    }
    let mut pos2 = 4;
    let read = |pos2: &mut usize| read_varint(body, pos2);
    let min_t = unzigzag(read(&mut pos2)?);
    let max_t = unzigzag(read(&mut pos2)?);
    let resolution_ms = read(&mut pos2)? as i64;
    let n_sym = read(&mut pos2)? as usize;
    let mut symbols = Vec::with_capacity(n_sym.min(1 << 20));
    for _ in 0..n_sym {
        let len = read(&mut pos2)? as usize;
        let s = std::str::from_utf8(body.get(pos2..pos2 + len)?).ok()?;
        symbols.push(s.to_string());
        pos2 += len;
    }
    let n_series = read(&mut pos2)? as usize;
    let mut series = Vec::with_capacity(n_series.min(1 << 24));
    let mut offset = 0u64;
    for _ in 0..n_series {
        let n = read(&mut pos2)? as usize;
        let mut pairs = Vec::with_capacity(n.min(256));
        for _ in 0..n {
            let k = symbols.get(read(&mut pos2)? as usize)?.clone();
            let v = symbols.get(read(&mut pos2)? as usize)?.clone();
            pairs.push((k, v));
        }
        let nc = read(&mut pos2)? as usize;
        let mut refs = Vec::with_capacity(nc.min(1 << 16));
        let mut prev = min_t;
        for _ in 0..nc {
            let len = u32::try_from(read(&mut pos2)?).ok()?;
            let count = u32::try_from(read(&mut pos2)?).ok()?;
            let cmin = prev.wrapping_add(unzigzag(read(&mut pos2)?));
            let cmax = cmin.wrapping_add(read(&mut pos2)? as i64);
            refs.push(ChunkRef {
                offset,
                len,
                min_t: cmin,
                max_t: cmax,
                count,
            });
            offset += u64::from(len);
            prev = cmax;
        }
        series.push((Labels::new(pairs), refs));
    }
    Some(BlockIndex {
        min_t,
        max_t,
        resolution_ms,
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_detects_corruption() {
        let series = vec![
            (
                Labels::metric("a", &[("x", "1")]),
                (0..300).map(|i| (i * 10, i as f64)).collect::<Vec<_>>(),
            ),
            (Labels::metric("b", &[("x", "é")]), vec![(-5, 0.5)]),
        ];
        let dir = tempfile::tempdir().expect("tmp");
        let path = write_block(dir.path(), 0, &series)
            .expect("write")
            .expect("non-empty");
        let b = Block::open(&path).expect("open");
        assert_eq!(b.index.series.len(), 2);
        assert_eq!((b.index.min_t, b.index.max_t), (-5, 2990));
        let got = b
            .select(&[Matcher::eq("x", "1")], 100, 200)
            .expect("select");
        assert_eq!(got[0].1.len(), 11);
        let got = b
            .select(&[Matcher::eq("x", "é")], i64::MIN, i64::MAX)
            .expect("select");
        assert_eq!(got[0].1, vec![(-5, 0.5)]);
        let mut raw = std::fs::read(path.join("index")).expect("read");
        raw[10] ^= 1;
        assert!(decode_index(&raw).is_none());
    }
}
