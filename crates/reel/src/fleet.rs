//! Wiring the demo fleet for `reel up`: one `reel edge` child process per
//! demo appliance, each on its own loopback port and cache directory.

use anyhow::{bail, Context, Result};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The running appliances; dropping this stops them.
pub struct Fleet {
    pub children: Vec<Child>,
    /// (appliance id, base URL)
    pub urls: Vec<(String, String)>,
}

/// Starts every demo appliance with `upstream` as its origin and control plane.
pub async fn start(data_dir: &Path, key_b64: &str, upstream: &str) -> Result<Fleet> {
    let exe = std::env::current_exe().context("cannot find the reel binary to start appliances")?;
    let key_file = data_dir.join("fleet.key");
    write_secret(&key_file, key_b64)?;
    let mut fleet = Fleet { children: Vec::new(), urls: Vec::new() };
    for (_, _, _, _, appliance) in reel_control::demo::DEMO_FLEET {
        let cache = data_dir.join("edges").join(appliance);
        let mut child = Command::new(&exe)
            .args(["edge", "--listen", "127.0.0.1:0", "--appliance-id", appliance, "--upstream", upstream, "--control-url", upstream])
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--exit-with-parent")
            // The demo fleet fills around the clock so the effect is visible.
            .args(["--fill-window", "00:00-24:00", "--fill-every-s", "30"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start appliance {appliance}"))?;
        let stdout = child.stdout.take().context("appliance has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // The appliance prints its address first; it picked a free port itself.
        let first = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .with_context(|| format!("appliance {appliance} did not start within 20 s"))??;
        let Some(url) = first.and_then(|l| l.strip_prefix("listening on ").map(|a| format!("http://{}", a.split_whitespace().next().unwrap_or_default()))) else {
            bail!("appliance {appliance} did not report its address");
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        fleet.urls.push((appliance.to_string(), url));
        fleet.children.push(child);
    }
    Ok(fleet)
}

fn write_secret(path: &Path, secret: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    Ok(())
}
