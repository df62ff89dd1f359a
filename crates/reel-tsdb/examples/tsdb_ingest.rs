//! Crash-test helper: appends batches from several threads and prints `acked <thread> <batch>`
//! after each `append` returns. `tests/crash.rs` SIGKILLs it mid-ingest and checks that every
//! acknowledged batch survives.
//!
//! Usage: `tsdb_ingest <dir> [threads] [series-per-batch]`

use reel_tsdb::{Labels, Options, Tsdb};
use std::io::Write;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: tsdb_ingest <dir> [threads] [series]")?;
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let series: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let db = Arc::new(Tsdb::open(&dir, Options::default())?);
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = Arc::clone(&db);
            let stdout = Arc::clone(&stdout);
            std::thread::spawn(move || -> Result<(), String> {
                let labels: Vec<Labels> = (0..series)
                    .map(|k| {
                        Labels::metric(
                            "crash_test",
                            &[("thread", &t.to_string()), ("s", &k.to_string())],
                        )
                    })
                    .collect();
                for n in 0i64.. {
                    let batch: Vec<(Labels, i64, f64)> = labels
                        .iter()
                        .map(|l| (l.clone(), n * 1000, n as f64))
                        .collect();
                    db.append(&batch).map_err(|e| e.to_string())?;
                    let mut out = stdout.lock().map_err(|e| e.to_string())?;
                    writeln!(out, "acked {t} {n}")
                        .and_then(|()| out.flush())
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "thread panicked")??;
    }
    Ok(())
}
