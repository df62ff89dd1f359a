//! Queries read the 5-minute rollups' `last` samples where retention removed the raw blocks
//! (Thanos/M3-style downsampling), and raw samples everywhere else.

use reel_tsdb::block::{self, ROLLUP_LABEL};
use reel_tsdb::{Labels, Matcher, Options, QueryResult, Tsdb};

const T0: i64 = 1_700_000_000_000;
const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const SCRAPE: i64 = 10 * SEC;
const PERIOD: f64 = 6.0 * 3600.0;

fn open(dir: &std::path::Path, retention_ms: Option<i64>, rollup_retention_ms: Option<i64>) -> Tsdb {
    Tsdb::open(
        dir,
        Options {
            retention_ms,
            rollup_retention_ms,
            head_retention_ms: 30 * MIN,
            ..Options::default()
        },
    )
    .expect("open")
}

fn phase(t: i64) -> f64 {
    2.0 * std::f64::consts::PI * ((t - T0) as f64 / 1000.0) / PERIOD
}

/// Six hours of three counters (rates 1, 2, 3 per second, ±20% over a 6 h cycle) and a gauge
/// (100 ± 10 over the same cycle) every 10 s, written hour by hour with a compaction after
/// each hour, into every store given.
fn load(dbs: &[&Tsdb]) {
    let pods = ["a", "b", "c"];
    let counters: Vec<Labels> = pods
        .iter()
        .map(|p| Labels::metric("requests_total", &[("pod", p)]))
        .collect();
    let gauge = Labels::metric("temperature", &[("room", "1")]);
    let mut totals = [0.0f64; 3];
    for hour in 0..6 {
        let mut batch = Vec::new();
        let mut t = T0 + hour * HOUR;
        while t < T0 + (hour + 1) * HOUR {
            for (i, l) in counters.iter().enumerate() {
                let rate = (i + 1) as f64 * (1.0 + 0.2 * phase(t).sin());
                totals[i] += (rate * 10.0).round();
                batch.push((l.clone(), t, totals[i]));
            }
            batch.push((gauge.clone(), t, 100.0 + 10.0 * phase(t).sin()));
            t += SCRAPE;
        }
        for db in dbs {
            db.append(&batch).expect("append");
            db.compact().expect("compact");
        }
    }
}

fn scalar_of(r: QueryResult) -> f64 {
    match r {
        QueryResult::Vector { samples, .. } => {
            assert_eq!(samples.len(), 1, "{samples:?}");
            samples[0].1
        }
        other => panic!("{other:?}"),
    }
}

fn instant(db: &Tsdb, q: &str, t: i64) -> f64 {
    scalar_of(db.query_instant(q, t).expect(q))
}

/// `(timestamp, value)` points of a bare range selector evaluated at `t`.
fn points(db: &Tsdb, q: &str, t: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match db.query_instant(q, t).expect(q) {
        QueryResult::Matrix(m) => m,
        other => panic!("{other:?}"),
    }
}

fn matrix(db: &Tsdb, q: &str, start: i64, end: i64, step: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match db.query_range(q, start, end, step).expect(q) {
        QueryResult::Matrix(m) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn old_queries_read_rollups_recent_queries_read_raw_samples() {
    let dirs = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    // `db`: raw kept 2 h, rollups 24 h. `truth`: everything kept raw.
    let db = open(dirs.0.path(), Some(2 * HOUR), Some(24 * HOUR));
    let truth = open(dirs.1.path(), None, None);
    load(&[&db, &truth]);
    let newest = T0 + 6 * HOUR - SCRAPE;
    let all = [Matcher::eq("__name__", "requests_total")];

    // Raw data older than ~2 h is gone; the seam is the oldest raw sample.
    let raw = db.select(&all, i64::MIN, i64::MAX).expect("select");
    let seam = raw.iter().map(|(_, s)| s[0].0).min().expect("raw data");
    assert!(seam > T0 + 3 * HOUR && seam <= newest - 2 * HOUR, "seam {seam}");
    let old = newest - 4 * HOUR;
    assert!(db.select(&all, old - HOUR, old).expect("select").is_empty());

    // Four hours ago only rollups are left. Rollup `last` samples are real samples, 5 min
    // apart: a 15m window holds ~3 of them and `rate` extrapolates over ~10 min of exact
    // counter values to the window edges, and a 30m window averages 6 gauge samples instead
    // of 180. With a 6 h cycle the rate/gauge change by < 0.3% over the 5 minutes that
    // shift; 2% for `rate` and 0.5% for the gauge leave room for the ±0.5 rounding of
    // each counter increment and for where the compaction cut a bucket in two.
    for t in [old, old + 7 * MIN, old + 13 * MIN + 4 * SEC] {
        let (got, want) = (
            instant(&db, "sum(rate(requests_total[15m]))", t),
            instant(&truth, "sum(rate(requests_total[15m]))", t),
        );
        assert!((got / want - 1.0).abs() < 0.02, "rate at {t}: {got} vs {want}");
        let (got, want) = (
            instant(&db, "avg_over_time(temperature[30m])", t),
            instant(&truth, "avg_over_time(temperature[30m])", t),
        );
        assert!((got / want - 1.0).abs() < 0.005, "avg at {t}: {got} vs {want}");
        // Instant selectors see the latest rollup sample (at most 5 minutes old), which is
        // a real raw sample of the series.
        let (got, want) = (
            instant(&db, "requests_total{pod=\"b\"}", t),
            instant(&truth, "requests_total{pod=\"b\"}", t),
        );
        assert!(got <= want && want - got <= 2.0 * 1.2 * 300.0 + 1.0, "{got} vs {want}");
    }

    // The recent 2 hours are answered from raw samples, bit for bit.
    for q in [
        "sum(rate(requests_total[15m]))",
        "avg_over_time(temperature[30m])",
        "requests_total",
    ] {
        for t in [seam + 30 * MIN, newest - HOUR, newest - 35 * MIN, newest] {
            assert_eq!(
                db.query_instant(q, t).expect(q),
                truth.query_instant(q, t).expect(q),
                "{q} at {t}"
            );
        }
        let (s, e) = (seam + 30 * MIN, newest);
        assert_eq!(matrix(&db, q, s, e, 30 * SEC), matrix(&truth, q, s, e, 30 * SEC), "{q}");
    }

    // Across the seam: no gap, no duplicate, every sample a real one, no `__rollup__` label.
    let m = points(&db, "requests_total{pod=\"a\"}[3h]", seam + HOUR);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, Labels::metric("requests_total", &[("pod", "a")]));
    let pts = &m[0].1;
    let truth_pts = truth
        .select(&[Matcher::eq("pod", "a")], i64::MIN, i64::MAX)
        .expect("select")
        .remove(0)
        .1;
    for w in pts.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap > 0, "duplicate or unordered: {w:?}");
        if w[1].0 > seam {
            assert_eq!(gap, SCRAPE, "raw side at {w:?}");
        } else {
            assert!(gap <= 5 * MIN, "gap at {w:?}");
        }
    }
    assert!(pts.iter().any(|p| p.0 < seam) && pts.iter().any(|p| p.0 == seam));
    let before_seam = pts.iter().filter(|p| p.0 < seam).count();
    assert!((20..=30).contains(&before_seam), "{before_seam} rollup samples in 2 h");
    for p in pts {
        let i = truth_pts.binary_search_by_key(&p.0, |q| q.0).expect("a real timestamp");
        assert_eq!(truth_pts[i], *p);
    }

    // Range queries over the seam: a value at every step, close to the truth.
    let (s, e, step) = (seam - 90 * MIN, seam + 90 * MIN, MIN);
    let steps = ((e - s) / step + 1) as usize;
    for q in ["sum(rate(requests_total[15m]))", "requests_total{pod=\"c\"}"] {
        let got = matrix(&db, q, s, e, step);
        let want = matrix(&truth, q, s, e, step);
        assert_eq!(got.len(), 1, "{q}");
        assert_eq!(got[0].1.len(), steps, "{q}: one point per step, no gap");
        for (g, w) in got[0].1.iter().zip(&want[0].1) {
            assert_eq!(g.0, w.0);
            if g.0 >= seam + 15 * MIN {
                assert_eq!(g.1, w.1, "{q} raw side at {}", g.0);
            } else if q.starts_with("sum") && g.0 < seam {
                assert!((g.1 / w.1 - 1.0).abs() < 0.02, "{q} at {}: {} vs {}", g.0, g.1, w.1);
            } else if q.starts_with("sum") {
                // Windows that begin in rollup samples and end in raw ones: each edge is
                // judged against its own spacing (5 min at the start, 10 s at the end), so
                // the sparse start is extrapolated as a raw window's would be.
                let r = g.1 / w.1;
                assert!((r - 1.0).abs() < 0.02, "{q} at {}: {} vs {}", g.0, g.1, w.1);
            } else {
                // The latest sample at most 5 minutes back: at most 5 min × 3.6/s behind.
                assert!(g.1 <= w.1 && w.1 - g.1 <= 3.0 * 1.2 * 300.0 + 1.0, "{q} at {}", g.0);
            }
        }
    }

    // Listing APIs show the series, never the internal rollup series or label.
    let series = db.series(&all).expect("series");
    assert_eq!(series.len(), 3);
    assert!(series.iter().all(|l| l.get(ROLLUP_LABEL).is_none()));
    assert!(db.label_values(ROLLUP_LABEL).is_empty());
    assert_eq!(db.label_values("pod"), vec!["a", "b", "c"]);
    // A user selector cannot reach the other aggregates.
    assert!(matches!(
        db.query_instant("requests_total{__rollup__=\"sum\"}", old).expect("q"),
        QueryResult::Vector { ref samples, .. } if samples.is_empty()
    ));

    // Rollups outlive raw blocks only up to their own retention.
    drop(db);
    let db = open(dirs.0.path(), Some(2 * HOUR), Some(3 * HOUR));
    db.compact().expect("compact");
    let m = points(&db, "requests_total{pod=\"a\"}[6h]", newest);
    // Retention drops whole blocks; rollup blocks here are merged 2-hour windows.
    assert!(m[0].1[0].0 >= newest - 3 * HOUR - 2 * HOUR, "{:?}", m[0].1[0]);
    assert!(m[0].1[0].0 < seam);
}

#[test]
fn default_options_keep_rollups_as_long_as_raw_blocks() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = open(dir.path(), Some(2 * HOUR), None);
    assert_eq!(Options::default().rollup_retention_ms, None);
    load(&[&db]);
    let blocks = db.stats().blocks;
    // Every raw block has its rollup block beside it: nothing below the seam to read.
    assert_eq!(blocks % 2, 0, "{blocks}");
    let m = points(&db, "requests_total{pod=\"a\"}[6h]", T0 + 6 * HOUR);
    let raw = db.select(&[Matcher::eq("pod", "a")], i64::MIN, i64::MAX).expect("select");
    assert_eq!(m[0].1, raw[0].1);
}

/// Rollup blocks written before `last` existed (min/max/sum/count only) still open and are
/// read by `select_rollup`; queries skip them (no `last` samples: that span reads as empty).
#[test]
fn old_format_rollup_blocks_without_last_still_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let blocks_dir = dir.path().join("blocks");
    std::fs::create_dir_all(&blocks_dir).expect("mkdir");
    let l = Labels::metric("requests_total", &[("pod", "a")]);
    let old: Vec<(i64, f64)> = (0..360).map(|i| (T0 + i * SCRAPE, i as f64)).collect();
    let rolled: Vec<_> = block::rollup(&[(l.clone(), old)], 5 * MIN)
        .into_iter()
        .filter(|(l, _)| l.get(ROLLUP_LABEL) != Some("last"))
        .collect();
    assert_eq!(rolled.len(), 4);
    block::write_block(&blocks_dir, 5 * MIN, &rolled)
        .expect("write")
        .expect("non-empty");

    let db = Tsdb::open(dir.path(), Options::default()).expect("open old store");
    let got = db
        .select_rollup(
            &[Matcher::eq("pod", "a"), Matcher::eq(ROLLUP_LABEL, "count")],
            i64::MIN,
            i64::MAX,
            5 * MIN,
        )
        .expect("rollup");
    assert_eq!(got[0].1.iter().map(|p| p.1).collect::<Vec<_>>(), vec![10.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 20.0]);
    assert!(db
        .select_with_rollups(&[Matcher::eq("pod", "a")], i64::MIN, i64::MAX)
        .expect("select")
        .is_empty());
    assert_eq!(db.series(&[Matcher::eq("pod", "a")]).expect("series"), vec![l.clone()]);

    // New data on top: compaction writes rollups with `last`, queries work as usual.
    let start = T0 + HOUR;
    let fresh: Vec<_> = (0..360).map(|i| (l.clone(), start + i * SCRAPE, 1000.0 + i as f64)).collect();
    db.append(&fresh).expect("append");
    db.compact_before(i64::MAX).expect("compact");
    let got = db
        .select_rollup(&[Matcher::eq(ROLLUP_LABEL, "last")], i64::MIN, i64::MAX, 5 * MIN)
        .expect("rollup");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get(ROLLUP_LABEL), Some("last"));
    // 360 samples in 5-minute buckets: 12 or 13 buckets (T0 is not on a bucket boundary),
    // each holding its last raw sample, and (a counter) each block's first sample: the
    // batch's, and the one after the 2-hour boundary the flush was cut at.
    assert!((13..=15).contains(&got[0].1.len()), "{:?}", got[0].1);
    for &(t, v) in &got[0].1 {
        assert_eq!(v, 1000.0 + ((t - start) / SCRAPE) as f64);
        let block_start = t == start || t.rem_euclid(2 * HOUR) == 0;
        assert!(block_start || t == start + 359 * SCRAPE || (t + SCRAPE).rem_euclid(5 * MIN) == 0, "{t}");
    }
    let r = instant(&db, "sum(rate(requests_total[15m]))", start + HOUR - SCRAPE);
    assert!((r - 0.1).abs() < 1e-9, "{r}");
}

/// A counter that restarts (its process did) in the middle of a 5-minute bucket, and again
/// right at a compaction boundary: once only rollups are left, `increase` over the restart
/// still counts everything, because the rollups keep the samples on both sides of a reset.
#[test]
fn counter_resets_inside_a_bucket_survive_downsampling() {
    let dirs = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let db = open(dirs.0.path(), Some(2 * HOUR), Some(24 * HOUR));
    let truth = open(dirs.1.path(), None, None);
    let jobs = Labels::metric("jobs_total", &[("pod", "a")]);
    let temp = Labels::metric("temperature", &[("room", "2")]);
    // Restarts at 1 h 2 m 30 s (mid-bucket) and 2 h (the first sample of a batch).
    let restarts = [T0 + HOUR + 2 * MIN + 30 * SEC, T0 + 2 * HOUR];
    let mut total = 0.0;
    for hour in 0..6 {
        let mut batch = Vec::new();
        let mut t = T0 + hour * HOUR;
        while t < T0 + (hour + 1) * HOUR {
            if restarts.contains(&t) {
                total = 0.0;
            }
            total += 20.0; // 2 per second
            batch.push((jobs.clone(), t, total));
            batch.push((temp.clone(), t, 20.0 + ((t - T0) / SCRAPE % 7) as f64));
            t += SCRAPE;
        }
        for d in [&db, &truth] {
            d.append(&batch).expect("append");
            d.compact().expect("compact");
        }
    }
    let all = [Matcher::eq("__name__", "jobs_total")];
    assert!(db.select(&all, T0, T0 + 3 * HOUR).expect("select").is_empty(), "raw hours 0-3 are gone");

    // Windows over each restart that start 10 s before a kept sample and end on one, so
    // `increase` barely extrapolates in either store: the downsampled store counts what the
    // raw one does (without the samples kept around a reset, the counts between the
    // bucket's last kept sample and the restart are lost: 100 of 3,620 here, 2.8%).
    let bucket_last = |t: i64| t - (t - T0 - 90 * SEC).rem_euclid(5 * MIN);
    for r in restarts {
        for end in [bucket_last(r + 5 * MIN), bucket_last(r + 20 * MIN)] {
            let q = "increase(jobs_total[1810s])";
            let (got, want) = (instant(&db, q, end), instant(&truth, q, end));
            assert!((got / want - 1.0).abs() < 0.005, "{q} at restart {r} + {}: {got} vs {want}", end - r);
        }
    }
    // The extra samples are there only around the restarts: a gauge that moves up and down
    // keeps one sample per bucket.
    let temp_pts = points(&db, "temperature[1h]", T0 + 2 * HOUR);
    assert!((11..=13).contains(&temp_pts[0].1.len()), "{} gauge samples in 1 h", temp_pts[0].1.len());
    let jobs_pts = points(&db, "jobs_total[1h]", T0 + 2 * HOUR - 1);
    assert!((12..=14).contains(&jobs_pts[0].1.len()), "{} counter samples in 1 h", jobs_pts[0].1.len());
}
