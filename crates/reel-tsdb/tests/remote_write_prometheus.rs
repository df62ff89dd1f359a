//! Remote write against a real Prometheus (Debian's `prometheus` package) started with
//! `--web.enable-remote-write-receiver` on a loopback port with a temporary storage dir.

use reel_tsdb::remote_write::RemoteWriter;
use reel_tsdb::Labels;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PROMETHEUS: &str = "/usr/bin/prometheus";

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path_and_query: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    ))
}

fn start_prometheus(dir: &std::path::Path) -> (KillOnDrop, String) {
    assert!(
        std::path::Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} not found: this test needs Debian's Prometheus. Install it with `apt-get install -y prometheus`."
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("config");
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http_get(&addr, "/-/ready") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not become ready on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, addr)
}

#[test]
fn samples_arrive_in_prometheus() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_prom, addr) = start_prometheus(dir.path());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut w = RemoteWriter::new(&format!("http://{addr}/api/v1/write")).expect("url");
    w.max_batch_samples = 50;
    for i in 0..20 {
        let labels = Labels::metric(
            "reel_rw_test",
            &[("series", &i.to_string()), ("quote", "a\"b")],
        );
        let samples = (0..10)
            .map(|k| (now - 90_000 + k * 10_000, (i * 100 + k) as f64))
            .collect();
        w.push(labels, samples).expect("push");
    }
    w.flush().expect("flush");

    let q = format!(
        "/api/v1/query?query=sum(reel_rw_test)&time={}",
        now as f64 / 1000.0
    );
    let (status, body) = http_get(&addr, &q).expect("query");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    // Latest sample per series is k = 9: sum over i of (100 i + 9).
    let want: f64 = (0..20).map(|i| (i * 100 + 9) as f64).sum();
    assert_eq!(
        v["data"]["result"][0]["value"][1],
        serde_json::json!(want.to_string()),
        "{body}"
    );
    let (_, body) = http_get(
        &addr,
        &format!(
            "/api/v1/query?query=count(reel_rw_test%7Bquote%3D%22a%5C%22b%22%7D)&time={}",
            now / 1000
        ),
    )
    .expect("q");
    assert!(body.contains("\"20\""), "{body}");
}
