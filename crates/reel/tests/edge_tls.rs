//! `reel edge` over TLS: HTTP/2 by ALPN and HTTP/1.1, checked with curl
//! against a certificate made by openssl, and refusal of a forged token.

use std::process::{Command, Stdio};

struct Edge(std::process::Child);

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(["-s", "-o", "/dev/null"]).args(args).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn serves_https_with_http2_and_http11() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl made a certificate");
    std::fs::write(d.join("fleet.key"), "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=").expect("key");
    let seg = d.join("cache/objects/film/720p");
    std::fs::create_dir_all(&seg).expect("dirs");
    std::fs::write(seg.join("seg_000.m4s"), vec![42u8; 5000]).expect("segment");

    let common = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_reel"));
        c.args(["edge", "--appliance-id", "tls-test", "--upstream", "http://127.0.0.1:9", "--cache-dir"])
            .arg(d.join("cache"))
            .arg("--key-file")
            .arg(d.join("fleet.key"))
            .args(extra);
        c
    };
    let token = String::from_utf8(common(&["--mint-token-for", "film"]).output().expect("mint").stdout).expect("utf-8");
    let mut child = common(&["--listen", "127.0.0.1:0", "--tls-cert"]);
    child.arg(d.join("cert.pem")).arg("--tls-key").arg(d.join("key.pem")).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut edge = Edge(child.spawn().expect("spawn edge"));
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(edge.0.stdout.take().expect("stdout")).read_line(&mut line).expect("address line");
    let addr = line.trim().strip_prefix("listening on ").and_then(|l| l.split_whitespace().next()).expect("an address").to_string();
    assert!(line.contains("(https)"), "{line}");

    let cacert = d.join("cert.pem");
    let ca = cacert.to_str().expect("utf-8");
    let url = format!("https://{addr}/media/{}/film/720p/seg_000.m4s", token.trim());
    assert_eq!(curl(&["--cacert", ca, "-w", "%{http_code} %{http_version} %{size_download}", &url]), "200 2 5000");
    assert_eq!(curl(&["--http1.1", "--cacert", ca, "-w", "%{http_code} %{http_version}", &url]), "200 1.1");
    assert_eq!(curl(&["--cacert", ca, "-r", "0-99", "-w", "%{http_code} %{size_download}", &url]), "206 100");
    let forged = url.replace(&token.trim()[token.trim().len() - 4..], "AAAA");
    assert_eq!(curl(&["--cacert", ca, "-w", "%{http_code}", &forged]), "403");
    drop(edge);
}
