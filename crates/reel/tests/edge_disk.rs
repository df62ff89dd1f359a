//! `reel edge` on a disk smaller than its configured cache: the disk fills
//! up, the appliance lowers its capacity to what the disk holds, keeps the
//! newest objects by evicting the least popular, and every viewer still
//! gets every byte. The small disk is a tmpfs mounted in a private mount
//! namespace (`unshare -m`), so nothing outside the test sees it.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OBJECT: usize = 300_000;

fn object(n: u8) -> Vec<u8> {
    (0..OBJECT).map(|i| (i as u8).wrapping_mul(13).wrapping_add(n)).collect()
}

/// A bare origin: `.../seg_00N.m4s` is `object(N)`; counts requests.
async fn origin() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
                let n = line.split_whitespace().nth(1).and_then(|p| p.rsplit('/').next()).and_then(|f| f.strip_prefix("seg_")).and_then(|f| f.strip_suffix(".m4s")).and_then(|d| d.parse::<u8>().ok());
                let Some(n) = n else {
                    let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                    return;
                };
                seen.fetch_add(1, Ordering::SeqCst);
                let body = object(n);
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: video/iso.segment\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    (addr, count)
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_lowers_the_cache_and_viewers_still_get_every_byte() {
    let (upstream, fetches) = origin().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    std::fs::write(d.join("fleet.key"), "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=").expect("key");
    let cache = d.join("cache");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let reel = env!("CARGO_BIN_EXE_reel");
    let edge_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["edge", "--appliance-id", "disk-test", "--cache-bytes", "100000000", "--upstream", &upstream, "--cache-dir"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(cache.display().to_string());
        a.push("--key-file".into());
        a.push(d.join("fleet.key").display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let token = Command::new(reel).args(edge_args(&["--mint-token-for", "film"])).output().expect("mint").stdout;
    let token = String::from_utf8(token).expect("utf-8").trim().to_string();

    // A 1.2 MB disk under a cache configured for 100 MB.
    let mut child = Command::new("unshare");
    child
        .args(["-m", "sh", "-c", r#"mount -t tmpfs -o size=1200k reel-test-disk "$1" && shift && exec "$@""#, "sh"])
        .arg(&cache)
        .arg(reel)
        .args(edge_args(&["--listen", "127.0.0.1:0"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut edge = Child(child.spawn().expect("unshare (util-linux) runs"));
    let mut line = String::new();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(edge.0.stdout.take().expect("stdout"));
    out.read_line(&mut line).expect("address line");
    if line.is_empty() {
        let mut err = String::new();
        use std::io::Read;
        let _ = edge.0.stderr.take().expect("stderr").read_to_string(&mut err);
        panic!("the appliance did not start on a small tmpfs (this test needs root for unshare -m and mount): {err}");
    }
    let addr = line.trim().strip_prefix("listening on ").expect("an address").to_string();
    let url = |n: u8| format!("http://{addr}/media/{token}/film/720p/seg_00{n}.m4s");

    let http = reqwest::Client::new();
    // Ten objects of 300 kB: 3 MB through a 1.2 MB disk.
    for n in 0..10u8 {
        let r = http.get(url(n)).send().await.expect("get");
        assert_eq!(r.status(), 200, "object {n}");
        assert_eq!(r.bytes().await.expect("body").as_ref(), object(n).as_slice(), "object {n} arrives whole");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // let its fill reach the disk
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 10);
    // The newest object was kept: room was made by evicting older ones.
    let r = http.get(url(9)).send().await.expect("again");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").as_ref(), object(9).as_slice());
    assert_eq!(fetches.load(Ordering::SeqCst), 10, "the newest object is served from the disk, not refetched");
    // And an old one comes back from the origin, whole.
    let r = http.get(url(0)).send().await.expect("old");
    assert_eq!(r.bytes().await.expect("body").as_ref(), object(0).as_slice());
    assert_eq!(fetches.load(Ordering::SeqCst), 11);
    assert!(edge.0.try_wait().expect("status").is_none(), "the appliance is still running");
    let _ = edge.0.kill();
    let _ = edge.0.wait();
    let mut log = String::new();
    use std::io::Read;
    let _ = out.read_to_string(&mut log);
    assert!(log.contains("disk full before the cache's capacity"), "the operator is told: {log}");
}
