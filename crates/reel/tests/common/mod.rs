//! Running the real `reel` binary on loopback for the tests beside this file.
#![allow(dead_code)]

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery 9";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Generated demo video, shared by every test run on this target directory.
pub fn demo_cache() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reel-demo-cache")
}

/// A `reel` process; killed when dropped, so a failed assertion leaves none behind.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `reel <args> --listen 127.0.0.1:<free port>` and waits until healthy.
pub async fn start(args: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn reel");
    let mut server = Server { child, base: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await {
            if r.status().is_success() {
                return server;
            }
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("reel {args:?} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "reel {args:?} not healthy within 300 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// POSTs JSON; the body of a 2xx answer, else `None`.
pub async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Option<Value> {
    post_status(http, url, token, body).await.ok()
}

/// POSTs JSON; `Ok(body)` for 2xx, `Err(status)` otherwise (0 when unreachable).
pub async fn post_status(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Result<Value, u16> {
    let mut req = http.post(url).json(&body).timeout(Duration::from_secs(20));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.map_err(|_| 0u16)?;
    let status = res.status();
    if !status.is_success() {
        return Err(status.as_u16());
    }
    res.json().await.map_err(|_| status.as_u16())
}

/// `reel up` on `data_dir` with the shared demo-video cache.
pub async fn up_demo(data_dir: &std::path::Path) -> Server {
    let dir = data_dir.to_str().expect("utf-8 data dir");
    let cache = demo_cache();
    start(&["up", "--data-dir", dir, "--demo-cache", cache.to_str().expect("utf-8 cache dir")]).await
}

/// Signs up a new account; its session token and first profile id.
pub async fn sign_up(http: &reqwest::Client, base: &str, email: &str, plan: &str) -> (String, String) {
    let body = serde_json::json!({"email": email, "password": PASSWORD, "plan": plan});
    let signup = post(http, format!("{base}/api/v1/accounts"), None, body).await.expect("sign up");
    let token = signup["token"].as_str().expect("token").to_string();
    let profile = signup["profiles"][0]["id"].as_str().expect("profile").to_string();
    (token, profile)
}
