//! Block merging: a node compacts every 10 minutes, one block each time; complete windows
//! merge (raw: 2 hours, then a day; rollups: a day) so the store keeps a handful of blocks
//! instead of hundreds, every sample stays readable, and a crash between a merge's new block
//! and the deletion of its sources loses and duplicates nothing.

use reel_tsdb::block::{self, Block};
use reel_tsdb::{Labels, Matcher, Options, QueryResult, Tsdb};
use std::collections::BTreeMap;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const T0: i64 = 1_700_006_400_000; // midnight UTC, so days and 2-hour windows align

fn opts() -> Options {
    Options { head_retention_ms: 30 * MIN, ..Options::default() }
}

/// 30 hours of 40 counters at 1-minute steps, appended 10 minutes at a time with a
/// compaction after each batch, as the node does. Returns what was written.
fn load(db: &Tsdb) -> BTreeMap<Labels, Vec<(i64, f64)>> {
    let mut written: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let series: Vec<Labels> = (0..40).map(|i| Labels::metric("jobs_total", &[("pod", &format!("p{i}"))])).collect();
    for batch in 0..(30 * 6) {
        let mut samples = Vec::new();
        for m in 0..10 {
            let t = T0 + (batch * 10 + m) * MIN;
            for (i, l) in series.iter().enumerate() {
                let v = ((batch * 10 + m) * (i as i64 + 1)) as f64;
                samples.push((l.clone(), t, v));
                written.entry(l.clone()).or_default().push((t, v));
            }
        }
        db.append(&samples).expect("append");
        db.compact().expect("compact");
    }
    written
}

fn everything(db: &Tsdb) -> BTreeMap<Labels, Vec<(i64, f64)>> {
    db.select(&[Matcher::eq("__name__", "jobs_total")], i64::MIN, i64::MAX).expect("select").into_iter().collect()
}

fn block_dirs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("blocks"))
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn complete_windows_merge_and_every_sample_stays() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Tsdb::open(dir.path(), opts()).expect("open");
    let written = load(&db);
    // 180 compactions wrote 180 raw and 180 rollup blocks; merged, the first day is one raw
    // block and one rollup block, the complete 2-hour windows after it one raw block each,
    // and only the open window keeps its 10-minute blocks.
    let stats = db.stats();
    assert!(stats.blocks <= 30, "{} blocks after 180 compactions", stats.blocks);
    let blocks: Vec<Block> = block_dirs(dir.path()).iter().map(|d| Block::open(d).expect("open block")).collect();
    let day_raw: Vec<&Block> = blocks.iter().filter(|b| b.index.resolution_ms == 0 && b.index.max_t < T0 + 24 * HOUR).collect();
    assert_eq!(day_raw.len(), 1, "the first day's raw data is one block");
    assert_eq!((day_raw[0].index.min_t, day_raw[0].index.max_t), (T0, T0 + 24 * HOUR - MIN));
    let day_rollup = blocks.iter().filter(|b| b.index.resolution_ms > 0 && b.index.max_t < T0 + 24 * HOUR).count();
    assert_eq!(day_rollup, 1, "the first day's rollups are one block");
    // Merged chunks are full again (a 10-minute block held 10 samples a chunk).
    let full = day_raw[0].index.series.iter().all(|(_, refs)| refs.iter().rev().skip(1).all(|r| r.count as usize == block::CHUNK_SAMPLES));
    assert!(full, "merged chunks hold {} samples", block::CHUNK_SAMPLES);

    // Every sample is still there, once, bit for bit; queries see the same data.
    assert_eq!(everything(&db), written);
    let rate = |db: &Tsdb| match db.query_instant("sum(rate(jobs_total[30m]))", T0 + 20 * HOUR).expect("q") {
        QueryResult::Vector { samples, .. } => samples[0].1,
        other => panic!("{other:?}"),
    };
    let want = (1..=40).sum::<i64>() as f64 / 60.0;
    assert!((rate(&db) - want).abs() < 1e-9, "{} vs {want}", rate(&db));

    // Reopened, the store reads the merged blocks as they are.
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).expect("reopen");
    assert_eq!(everything(&db), written);
    assert!(block_dirs(dir.path()).iter().all(|d| !d.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))));
}

#[test]
fn a_crash_between_a_merge_and_its_cleanup_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Tsdb::open(dir.path(), opts()).expect("open");
    let l = Labels::metric("jobs_total", &[("pod", "a")]);
    let mut written = Vec::new();
    for batch in 0..3 {
        let samples: Vec<_> = (0..10).map(|m| (l.clone(), T0 + (batch * 10 + m) * MIN, (batch * 10 + m) as f64)).collect();
        written.extend(samples.iter().map(|(_, t, v)| (*t, *v)));
        db.append(&samples).expect("append");
        db.compact_before(T0 + (batch + 1) * 10 * MIN).expect("compact");
    }
    drop(db);
    // The raw blocks merged by hand, their deletion "lost" to a crash: sources and merged
    // block side by side.
    let raw: Vec<Block> = block_dirs(dir.path())
        .iter()
        .map(|d| Block::open(d).expect("open block"))
        .filter(|b| b.index.resolution_ms == 0)
        .collect();
    assert_eq!(raw.len(), 3);
    let merged = block::merge(&dir.path().join("blocks"), &raw.iter().collect::<Vec<_>>()).expect("merge").expect("a block");
    let sources: Vec<_> = raw.iter().map(|b| b.dir.clone()).collect();
    drop(raw);

    let db = Tsdb::open(dir.path(), opts()).expect("reopen");
    assert!(merged.exists());
    assert!(sources.iter().all(|s| !s.exists()), "superseded blocks are deleted at open");
    let got = db.select(&[Matcher::eq("pod", "a")], i64::MIN, i64::MAX).expect("select");
    assert_eq!(got[0].1, written);
    assert_eq!(db.stats().block_samples, 30, "no sample counted twice");
}
