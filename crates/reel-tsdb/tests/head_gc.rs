//! Head garbage collection: compaction removes series with no samples left in the head, so
//! label churn neither grows memory nor exhausts the per-metric series limit, while blocks
//! keep answering for the removed series.

use reel_tsdb::{wal, Labels, Matcher, Options, Tsdb};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

fn by_name(name: &str) -> Vec<Matcher> {
    vec![Matcher::eq("__name__", name)]
}

/// Label sets named in the WAL's series records.
fn wal_series(dir: &std::path::Path) -> Vec<(u32, Labels)> {
    let (recs, _) = wal::read_all(&dir.join("wal")).expect("read wal");
    recs.into_iter()
        .filter_map(|r| match r {
            wal::Record::Series(id, l) => Some((id, l)),
            wal::Record::Samples(_) => None,
        })
        .collect()
}

#[test]
fn churn_keeps_head_at_the_live_set() {
    const ROUNDS: i64 = 3;
    const CHURN: usize = 5_000;
    const STABLE: usize = 100;
    const PER_SERIES: i64 = 10;
    let dir = tempfile::tempdir().expect("tmp");
    let opts = Options {
        max_series_per_metric: 6_000,
        retention_ms: None,
        ..Options::default()
    };
    let db = Tsdb::open(dir.path(), opts.clone()).expect("open");
    let stable: Vec<Labels> = (0..STABLE)
        .map(|s| Labels::metric("churn", &[("pod", &format!("stable-{s}"))]))
        .collect();
    for r in 0..ROUNDS {
        let base = r * 1_000_000;
        let churn: Vec<Labels> = (0..CHURN)
            .map(|i| Labels::metric("churn", &[("pod", &format!("r{r}-{i}"))]))
            .collect();
        for k in 0..PER_SERIES {
            let t = base + k * 1000;
            let batch: Vec<(&Labels, i64, f64)> = churn
                .iter()
                .chain(&stable)
                .enumerate()
                .map(|(i, l)| (l, t, (base + i as i64 * 100 + k) as f64))
                .collect();
            db.append(&batch).expect("append within the series limit");
        }
        // The live series get one more sample that stays in the head.
        let late: Vec<(&Labels, i64, f64)> =
            stable.iter().map(|l| (l, base + 500_000, -1.0)).collect();
        db.append(&late).expect("append late");
        let before = db.stats();
        let rss_before = rss_kib();
        db.compact_before(base + 100_000).expect("compact");
        let after = db.stats();
        println!(
            "round {r}: head series {} -> {}, head chunk bytes {} -> {}, removed total {}, \
             rss KiB {:?} -> {:?}",
            before.head_series,
            after.head_series,
            before.head_chunk_bytes,
            after.head_chunk_bytes,
            after.head_series_removed,
            rss_before,
            rss_kib()
        );
        assert_eq!(before.head_series, CHURN + STABLE);
        assert_eq!(after.head_series, STABLE, "only the live set stays: {after:?}");
        assert_eq!(after.head_series_removed, (r as u64 + 1) * CHURN as u64);
        assert!(after.head_chunk_bytes * 20 < before.head_chunk_bytes, "{before:?} {after:?}");
        // Every churned series of this round is still one instant query away (from blocks).
        let got = db
            .query_instant("count(churn)", base + 9_000)
            .expect("query");
        let v = serde_json::to_value(&got).expect("json");
        assert_eq!(
            v["result"][0]["value"][1],
            serde_json::json!((CHURN + STABLE).to_string()),
            "round {r}: {v}"
        );
    }
    // A second open of the directory is refused while this one runs.
    assert!(Tsdb::open(dir.path(), opts.clone()).is_err());
    // All rounds are queryable (blocks + head), before and after a restart.
    let check = |db: &Tsdb| {
        let all = db.select(&by_name("churn"), 0, i64::MAX).expect("select");
        assert_eq!(all.len(), ROUNDS as usize * CHURN + STABLE);
        let mut total = 0usize;
        for (l, s) in &all {
            let pod = l.get("pod").unwrap_or_default();
            if pod.starts_with("stable-") {
                assert_eq!(s.len() as i64, ROUNDS * (PER_SERIES + 1), "{l}");
            } else {
                assert_eq!(s.len() as i64, PER_SERIES, "{l}");
            }
            total += s.len();
        }
        assert_eq!(
            total as i64,
            ROUNDS * (CHURN + STABLE) as i64 * PER_SERIES + ROUNDS * STABLE as i64
        );
        assert_eq!(db.stats().head_series, STABLE);
        assert_eq!(wal_series(dir.path()).len(), STABLE);
    };
    check(&db);
    drop(db);
    let db = Tsdb::open(dir.path(), opts).expect("reopen");
    check(&db);
}

#[test]
fn recreated_series_replay_correctly_after_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = Options {
        retention_ms: None,
        ..Options::default()
    };
    let gone = Labels::metric("svc", &[("pod", "gone")]);
    let kept = Labels::metric("svc", &[("pod", "kept")]);
    let fresh = Labels::metric("svc", &[("pod", "fresh")]);
    {
        let db = Tsdb::open(dir.path(), opts.clone()).expect("open");
        for t in 0..10i64 {
            db.append(&[(&gone, t * 1000, t as f64), (&kept, t * 1000, 100.0 + t as f64)])
                .expect("append");
        }
        db.append(&[(&kept, 50_000, 150.0)]).expect("append");
        db.compact_before(20_000).expect("compact");
        let s = db.stats();
        assert_eq!((s.head_series, s.head_series_removed), (1, 1), "{s:?}");
        let in_wal = wal_series(dir.path());
        assert_eq!(in_wal.len(), 1);
        assert_eq!(in_wal[0].1, kept, "the rewritten WAL names only head series");
        // The removed series comes back with a new id; one sample repeats a block timestamp
        // (a client retry); a series never seen before arrives in the same batch.
        db.append(&[
            (&fresh, 60_000, 7.0),
            (&gone, 9_000, 9.0),
            (&gone, 60_000, 60.0),
            (&kept, 60_000, 160.0),
        ])
        .expect("append after gc");
        db.append(&[(&gone, 61_000, 61.0)]).expect("append");
        assert_eq!(db.stats().head_series, 3);
        let names: Vec<Labels> = wal_series(dir.path()).into_iter().map(|x| x.1).collect();
        assert_eq!(names.len(), 3, "new-series records for re-created series: {names:?}");
    }
    let expect_gone: Vec<(i64, f64)> = (0..10i64)
        .map(|t| (t * 1000, t as f64))
        .chain([(60_000, 60.0), (61_000, 61.0)])
        .collect();
    let mut expect_kept: Vec<(i64, f64)> = (0..10i64)
        .map(|t| (t * 1000, 100.0 + t as f64))
        .chain([(50_000, 150.0), (60_000, 160.0)])
        .collect();
    let check = |db: &Tsdb, kept_expect: &[(i64, f64)]| {
        let got: BTreeMap<String, Vec<(i64, f64)>> = db
            .select(&by_name("svc"), 0, i64::MAX)
            .expect("select")
            .into_iter()
            .map(|(l, s)| (l.get("pod").unwrap_or_default().to_string(), s))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got["gone"], expect_gone);
        assert_eq!(got["kept"], kept_expect);
        assert_eq!(got["fresh"], vec![(60_000, 7.0)]);
    };
    {
        let db = Tsdb::open(dir.path(), opts.clone()).expect("reopen");
        check(&db, &expect_kept);
        assert_eq!(db.stats().head_series, 3);
        // Another cycle: everything but `kept` goes, then `fresh` comes back.
        db.append(&[(&kept, 200_000, 200.0)]).expect("append");
        db.compact_before(100_000).expect("compact");
        assert_eq!(db.stats().head_series, 1);
        db.append(&[(&fresh, 210_000, 8.0)]).expect("append");
        expect_kept.push((200_000, 200.0));
    }
    let db = Tsdb::open(dir.path(), opts).expect("reopen again");
    let fresh_got = db
        .select(&[Matcher::eq("pod", "fresh")], 0, i64::MAX)
        .expect("select");
    assert_eq!(fresh_got[0].1, vec![(60_000, 7.0), (210_000, 8.0)]);
    assert_eq!(db.stats().head_series, 2);
    let got = db.select(&by_name("svc"), 0, i64::MAX).expect("select");
    let kept_got = got
        .iter()
        .find(|(l, _)| *l == kept)
        .map(|(_, s)| s.clone());
    assert_eq!(kept_got, Some(expect_kept));
    assert_eq!(db.label_values("pod"), vec!["fresh", "gone", "kept"]);
}

#[test]
fn appends_racing_compaction_lose_nothing() {
    const THREADS: usize = 4;
    const BATCHES: i64 = 1_500;
    const PER_BATCH: usize = 5;
    let dir = tempfile::tempdir().expect("tmp");
    let opts = Options {
        retention_ms: None,
        head_retention_ms: 20_000,
        rollup_step_ms: 0,
        rollup_retention_ms: None,
        max_series_per_metric: 1_000,
    };
    let db = Arc::new(Tsdb::open(dir.path(), opts.clone()).expect("open"));
    let done = Arc::new(AtomicBool::new(false));
    let compactions = Arc::new(AtomicUsize::new(0));
    let compactor = {
        let (db, done, compactions) = (Arc::clone(&db), Arc::clone(&done), Arc::clone(&compactions));
        std::thread::spawn(move || -> Result<(), String> {
            let mut i = 0u64;
            while !done.load(Ordering::Relaxed) {
                // Alternate: keep the recent head, or flush everything (every series is then
                // removed and re-created by the next append that names it).
                if i % 3 == 2 {
                    db.compact_before(i64::MAX)
                } else {
                    db.compact()
                }
                .map_err(|e| e.to_string())?;
                compactions.fetch_add(1, Ordering::Relaxed);
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(())
        })
    };
    let appenders: Vec<_> = (0..THREADS)
        .map(|th| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || -> Result<Vec<(String, i64)>, String> {
                let mut acked = Vec::new();
                for n in 0..BATCHES {
                    // A rotating window of series: each generation lives 40 batches, and every
                    // 7th batch also writes to an old generation again (a series GC removed).
                    let generation = n / 40;
                    let old = (n % 7 == 0 && generation > 2).then_some(generation - 2);
                    let mut batch = Vec::new();
                    for k in 0..PER_BATCH {
                        let g = if k == 0 { old.unwrap_or(generation) } else { generation };
                        let pod = format!("t{th}-g{g}-k{k}");
                        batch.push((
                            Labels::metric("race", &[("pod", &pod)]),
                            n * 1000,
                            (th as i64 * BATCHES + n) as f64,
                        ));
                    }
                    db.append(&batch).map_err(|e| e.to_string())?;
                    for (l, t, _) in &batch {
                        acked.push((l.get("pod").unwrap_or_default().to_string(), *t));
                    }
                }
                Ok(acked)
            })
        })
        .collect();
    let mut acked = Vec::new();
    for h in appenders {
        acked.extend(h.join().expect("appender panicked").expect("append failed"));
    }
    done.store(true, Ordering::Relaxed);
    compactor.join().expect("compactor panicked").expect("compaction failed");
    let n_compactions = compactions.load(Ordering::Relaxed);
    let stats = db.stats();
    println!(
        "race: {} acked samples, {n_compactions} compactions, head series {}, removed {}",
        acked.len(),
        stats.head_series,
        stats.head_series_removed
    );
    assert!(n_compactions >= 3, "compactions ran: {n_compactions}");
    assert!(stats.head_series_removed > 0);
    let check = |db: &Tsdb| {
        let found: HashSet<(String, i64)> = db
            .select(&by_name("race"), 0, i64::MAX)
            .expect("select")
            .into_iter()
            .flat_map(|(l, s)| {
                let pod = l.get("pod").unwrap_or_default().to_string();
                s.into_iter().map(move |(t, _)| (pod.clone(), t))
            })
            .collect();
        for a in &acked {
            assert!(found.contains(a), "acknowledged sample {a:?} missing");
        }
        assert_eq!(found.len(), acked.len(), "no sample appears that was not written");
    };
    check(&db);
    drop(db);
    let db = Tsdb::open(dir.path(), opts).expect("reopen");
    check(&db);
}
