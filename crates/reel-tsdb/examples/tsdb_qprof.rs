//! Times the phases of the benchmark query on a directory written by `tsdb_bench ours`.
use reel_tsdb::{Matcher, Options, Tsdb};
use std::time::Instant;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: tsdb_qprof <dir>")?;
    let db = Tsdb::open(
        &dir,
        Options {
            retention_ms: None,
            ..Options::default()
        },
    )?;
    let end = db.stats().newest_timestamp.ok_or("empty")?;
    let start = end - 3_590_000;
    for _ in 0..3 {
        let t = Instant::now();
        let s = db.select(
            &[Matcher::eq("__name__", "bench_requests_total")],
            start - 300_000,
            end,
        )?;
        let sel = t.elapsed();
        let t = Instant::now();
        let r = db.query_range(
            "sum by (tag) (rate(bench_requests_total[5m]))",
            start,
            end,
            60_000,
        )?;
        let q = t.elapsed();
        let t = Instant::now();
        let j = serde_json::to_string(&r)?;
        eprintln!(
            "select {} series {:?}; query {:?}; json {:?} ({} bytes)",
            s.len(),
            sel,
            q,
            t.elapsed(),
            j.len()
        );
    }
    Ok(())
}
