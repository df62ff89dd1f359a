//! Crash consistency: SIGKILL a writer mid-ingest, reopen, and find every acknowledged sample.

use reel_tsdb::{Labels, Matcher, Options, Tsdb};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `cargo test` builds examples next to the test binary's `deps/` directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built; run `cargo test` (which builds examples)",
        path.display()
    );
    path
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tmp");
    for round in 0..3 {
        let mut child = Command::new(example("tsdb_ingest"))
            .arg(dir.path())
            .args(["4", "20"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn helper");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut acked: Vec<(usize, i64)> = Vec::new();
        let target = 1000 + round * 397;
        while acked.len() < target {
            let line = lines.next().expect("helper exited early").expect("read");
            let mut f = line.split_whitespace().skip(1);
            let t: usize = f.next().and_then(|s| s.parse().ok()).expect("thread");
            let n: i64 = f.next().and_then(|s| s.parse().ok()).expect("batch");
            acked.push((t, n));
        }
        child.kill().expect("SIGKILL");
        // Lines already written before death were acknowledged too.
        for line in lines.map_while(Result::ok) {
            let mut f = line.split_whitespace().skip(1);
            if let (Some(t), Some(n)) = (
                f.next().and_then(|s| s.parse().ok()),
                f.next().and_then(|s| s.parse().ok()),
            ) {
                acked.push((t, n));
            }
        }
        child.wait().expect("wait");

        let db = Tsdb::open(dir.path(), Options::default()).expect("reopen after crash");
        for &(t, n) in &acked {
            for k in 0..20 {
                let l = Labels::metric(
                    "crash_test",
                    &[("thread", &t.to_string()), ("s", &k.to_string())],
                );
                let m: Vec<Matcher> = l.iter().map(|(k, v)| Matcher::eq(k, v)).collect();
                let got = db.select(&m, n * 1000, n * 1000).expect("select");
                assert_eq!(
                    got.first().map(|(_, s)| s.as_slice()),
                    Some(&[(n * 1000, n as f64)][..]),
                    "round {round}: acked sample thread {t} batch {n} series {k} missing"
                );
            }
        }
        // Later rounds append after the recovered data; compaction in between exercises the
        // block + WAL checkpoint path under crashes too.
        if round == 1 {
            db.compact_before(i64::MAX).expect("compact");
        }
        drop(db);
    }
}
