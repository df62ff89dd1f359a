//! End-to-end behaviour of the store: ingest, limits, compaction, retention and queries.

use reel_tsdb::{Error, Labels, MatchOp, Matcher, Options, QueryResult, Tsdb};
use std::sync::Arc;

fn open(dir: &std::path::Path) -> Tsdb {
    Tsdb::open(
        dir,
        Options {
            head_retention_ms: 0,
            ..Options::default()
        },
    )
    .expect("open")
}

fn vector(r: QueryResult) -> Vec<(String, f64)> {
    match r {
        QueryResult::Vector { samples, .. } => samples
            .into_iter()
            .map(|(l, v)| (l.to_string(), v))
            .collect(),
        other => panic!("expected vector, got {other:?}"),
    }
}

/// Counter `requests_total{route, code}` rising by `rate` per second, sampled every 10 s.
fn load_counters(db: &Tsdb, minutes: i64) {
    let mut batch = Vec::new();
    for i in 0..=(minutes * 6) {
        let t = i * 10_000;
        for (route, code, rate) in [("/a", "200", 1.0), ("/a", "500", 0.5), ("/b", "200", 2.0)] {
            batch.push((
                Labels::metric("requests_total", &[("route", route), ("code", code)]),
                t,
                rate * t as f64 / 1000.0,
            ));
        }
    }
    db.append(&batch).expect("append");
}

#[test]
fn select_and_matchers() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = open(dir.path());
    load_counters(&db, 10);
    let m = vec![
        Matcher::eq("__name__", "requests_total"),
        Matcher::new("code", MatchOp::NotEqual, "500").expect("m"),
    ];
    let got = db.select(&m, 0, 600_000).expect("select");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1.len(), 61);
    assert_eq!(db.label_values("route"), vec!["/a", "/b"]);
    assert_eq!(
        db.series(&[Matcher::new("route", MatchOp::Regex, "/(a|b)").expect("m")])
            .expect("series")
            .len(),
        3
    );
}

#[test]
fn series_limit_per_metric() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Tsdb::open(
        dir.path(),
        Options {
            max_series_per_metric: 3,
            ..Options::default()
        },
    )
    .expect("open");
    let batch: Vec<_> = (0..3)
        .map(|i| (Labels::metric("m", &[("i", &i.to_string())]), 0, 1.0))
        .collect();
    db.append(&batch).expect("3 series fit");
    let err = db
        .append(&[(Labels::metric("m", &[("i", "x")]), 0, 1.0)])
        .expect_err("limit");
    assert!(
        matches!(&err, Error::TooManySeries { metric, limit: 3 } if metric == "m"),
        "{err}"
    );
    db.append(&[(Labels::metric("other", &[]), 0, 1.0)])
        .expect("other metrics unaffected");
    db.append(&[(Labels::metric("m", &[("i", "0")]), 10, 1.0)])
        .expect("existing series still accept samples");
}

#[test]
fn rate_sum_by_and_histogram_quantile() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = open(dir.path());
    load_counters(&db, 10);
    let got = vector(
        db.query_instant("sum by (route) (rate(requests_total[5m]))", 600_000)
            .expect("query"),
    );
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "{route=\"/a\"}");
    assert!((got[0].1 - 1.5).abs() < 1e-9, "{got:?}");
    assert!((got[1].1 - 2.0).abs() < 1e-9, "{got:?}");

    let got = vector(
        db.query_instant(
            "sum(increase(requests_total{code=\"500\"}[1m] offset 2m))",
            600_000,
        )
        .expect("q"),
    );
    assert!((got[0].1 - 30.0).abs() < 1e-9, "{got:?}");

    let got = vector(
        db.query_instant(
            "sum without (code) (requests_total) / on(route) sum by (route) (requests_total)",
            600_000,
        )
        .expect("q"),
    );
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, v)| (*v - 1.0).abs() < 1e-12), "{got:?}");

    let got = vector(
        db.query_instant("rate(requests_total{route=\"/b\"}[5m]) * 60 + 1", 600_000)
            .expect("q"),
    );
    assert!((got[0].1 - 121.0).abs() < 1e-9);
    assert_eq!(got[0].0, "{code=\"200\", route=\"/b\"}");

    // Latency histogram: buckets rise at 10/s (le 0.1), 60/s (0.5), 90/s (1), 100/s (+Inf).
    let mut batch = Vec::new();
    for i in 0..=60 {
        let t = i * 10_000;
        for (le, r) in [("0.1", 10.0), ("0.5", 60.0), ("1", 90.0), ("+Inf", 100.0)] {
            batch.push((
                Labels::metric("play_start_seconds_bucket", &[("le", le), ("pod", "p1")]),
                t,
                r * t as f64 / 1000.0,
            ));
        }
    }
    db.append(&batch).expect("append");
    let got = vector(
        db.query_instant(
            "histogram_quantile(0.5, sum by (le) (rate(play_start_seconds_bucket[5m])))",
            600_000,
        )
        .expect("q"),
    );
    assert!((got[0].1 - 0.42).abs() < 1e-9, "{got:?}");
    let got = vector(db.query_instant("max_over_time(requests_total{route=\"/b\"}[1m]) - avg_over_time(requests_total{route=\"/b\"}[1m])", 600_000).expect("q"));
    assert!((got[0].1 - 60.0).abs() < 1e-9, "{got:?}");
}

#[test]
fn range_query_json_shape() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = open(dir.path());
    load_counters(&db, 10);
    let r = db
        .query_range("sum(rate(requests_total[1m]))", 300_000, 600_000, 60_000)
        .expect("query");
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["resultType"], "matrix");
    assert_eq!(json["result"][0]["metric"], serde_json::json!({}));
    assert_eq!(
        json["result"][0]["values"][0],
        serde_json::json!([300.0, "3.5"])
    );
    assert_eq!(
        json["result"][0]["values"].as_array().map(Vec::len),
        Some(6)
    );
    let err = db
        .query_range("sum(rate(x[1m])", 0, 10, 1)
        .expect_err("parse error");
    assert_eq!(err.to_string(), "at 15: expected ')', found end of input");
}

#[test]
fn compaction_blocks_reopen_and_retention() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let db = open(dir.path());
        load_counters(&db, 60);
        let before = vector(
            db.query_instant("sum(rate(requests_total[5m]))", 3_600_000)
                .expect("q"),
        );
        db.compact_before(1_800_000).expect("compact half");
        let s = db.stats();
        assert_eq!(s.blocks, 2, "raw + rollup block: {s:?}");
        assert_eq!(s.block_samples, 3 * 180);
        assert_eq!(
            vector(
                db.query_instant("sum(rate(requests_total[5m]))", 3_600_000)
                    .expect("q")
            ),
            before
        );
        // A range spanning the block and the head sees both.
        let got = db
            .select(&[Matcher::eq("route", "/b")], 1_790_000, 1_810_000)
            .expect("select");
        assert_eq!(
            got[0].1.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![1_790_000, 1_800_000, 1_810_000]
        );
    }
    {
        let db = open(dir.path());
        let got = db
            .select(&[Matcher::eq("route", "/b")], 0, i64::MAX)
            .expect("select");
        assert_eq!(
            got[0].1.len(),
            361,
            "block + WAL checkpoint restore everything"
        );
        // Flush all (the newest sample is at 3,600,000), leaving the 2-hour window open, so
        // the blocks stay as written (a complete window would merge them).
        db.compact_before(3_600_001).expect("flush all");
        assert_eq!(db.stats().block_samples, 3 * 361);
        let rollups = std::fs::read_dir(dir.path().join("blocks"))
            .expect("ls")
            .count();
        assert_eq!(rollups, 4);
    }
    {
        // Retention of 20 minutes relative to the newest sample drops the first block.
        let db = Tsdb::open(
            dir.path(),
            Options {
                retention_ms: Some(20 * 60_000),
                ..Options::default()
            },
        )
        .expect("open");
        db.compact().expect("compact");
        assert_eq!(db.stats().blocks, 2);
        assert!(db
            .select(&[Matcher::eq("route", "/b")], 0, 1_000_000)
            .expect("select")
            .is_empty());
    }
}

#[test]
fn concurrent_appenders_share_the_store() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tsdb>();
    let dir = tempfile::tempdir().expect("tmp");
    let db = Arc::new(open(dir.path()));
    std::thread::scope(|s| {
        for th in 0..8 {
            let db = Arc::clone(&db);
            s.spawn(move || {
                for i in 0..200 {
                    db.append(&[(Labels::metric("c", &[("th", &th.to_string())]), i, 1.0)])
                        .expect("append");
                }
            });
        }
    });
    assert_eq!(db.stats().samples_appended, 1600);
    let got = vector(db.query_instant("count(c)", 199).expect("q"));
    assert_eq!(got[0].1, 8.0);
}

#[test]
fn range_query_equals_instant_queries_at_each_step() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = open(dir.path());
    load_counters(&db, 30);
    // Leave a gap so staleness (5m lookback) and empty windows are exercised.
    db.append(&[(
        Labels::metric("requests_total", &[("route", "/c"), ("code", "200")]),
        2_400_000,
        7.0,
    )])
    .expect("append");
    for q in [
        "sum by (route) (rate(requests_total[5m]))",
        "requests_total",
        "max_over_time(requests_total[2m] offset 1m) - requests_total",
        "count without (code) (requests_total)",
        "avg(requests_total)",
        "max by (code) (max_over_time(requests_total[3m]))",
        "sum(rate(requests_total[5m] offset 10m))",
        "irate(requests_total[1m]) * 2",
    ] {
        let QueryResult::Matrix(m) = db.query_range(q, 0, 2_700_000, 45_000).expect("range") else {
            panic!("matrix")
        };
        let mut from_range: Vec<(i64, String, u64)> = m
            .iter()
            .flat_map(|(l, pts)| {
                pts.iter()
                    .map(move |&(t, v)| (t, l.to_string(), v.to_bits()))
            })
            .collect();
        let mut from_instant = Vec::new();
        for t in (0..=2_700_000).step_by(45_000) {
            match db.query_instant(q, t).expect("instant") {
                QueryResult::Vector { samples, .. } => from_instant.extend(
                    samples
                        .into_iter()
                        .map(|(l, v)| (t, l.to_string(), v.to_bits())),
                ),
                other => panic!("{other:?}"),
            }
        }
        from_range.sort();
        from_instant.sort();
        assert_eq!(from_range, from_instant, "{q}");
    }
}

#[test]
fn rollups_keep_min_max_sum_count_per_5_minutes() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = open(dir.path());
    load_counters(&db, 10);
    db.compact_before(i64::MAX).expect("compact");
    let got = db
        .select_rollup(
            &[
                Matcher::eq("route", "/b"),
                Matcher::eq("__rollup__", "count"),
            ],
            0,
            i64::MAX,
            300_000,
        )
        .expect("rollup");
    // Buckets [0,5m), [5m,10m), [10m]: 30 + 30 + 1 samples.
    assert_eq!(
        got[0].1.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![30.0, 30.0, 1.0]
    );
    let got = db
        .select_rollup(
            &[Matcher::eq("route", "/b"), Matcher::eq("__rollup__", "max")],
            0,
            i64::MAX,
            300_000,
        )
        .expect("rollup");
    assert_eq!(got[0].1[0], (290_000, 580.0));
}

/// One process (one open store) per directory: a second open is refused
/// with a clear error, and the directory is free again once the first closes.
#[test]
fn a_second_open_of_one_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = Tsdb::open(dir.path(), Options::default()).expect("open");
    let err = Tsdb::open(dir.path(), Options::default()).err().expect("second open refused");
    assert!(err.to_string().contains("open in another process"), "{err}");
    drop(first);
    Tsdb::open(dir.path(), Options::default()).expect("open after the first closed");
}
