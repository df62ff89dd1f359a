//! The operator's inventory walk from the command line: a site, a model and
//! an appliance; render its config; change the model; render again; the diff
//! shows the change and the audit trail shows both.

use std::process::Command;

fn reel(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("USER", "ops-test")
        .output()
        .expect("run reel");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let (success, out, err) = reel(dir, args);
    assert!(success, "reel {args:?} failed: {err}");
    out
}

#[test]
fn model_change_shows_in_config_diff_and_audit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    ok(d, &["fleet", "site", "--id", "ams1", "--name", "Amsterdam 1", "--region", "eu-west", "--prefix", "127.0.9.0/24"]);
    ok(d, &["fleet", "model", "--id", "flash-v1", "--name", "Flash", "--vendor", "Reel", "--part", "disk:4:3840000000000:NVMe", "--part", "nic:2:100:100GbE"]);
    ok(d, &["fleet", "model", "--id", "flash-v2", "--name", "Flash 2", "--vendor", "Reel", "--part", "disk:8:7680000000000:NVMe", "--part", "nic:2:400:400GbE"]);
    ok(d, &["fleet", "add", "--id", "oca-ams1-01", "--serial", "SN-1", "--site", "ams1", "--model", "flash-v1"]);
    let v1 = ok(d, &["fleet", "config", "render", "oca-ams1-01"]);
    assert!(v1.contains("id = \"flash-v1\"") && v1.contains("nic_gbps = 200"), "{v1}");
    // Rendering again without a change keeps one version.
    ok(d, &["fleet", "config", "render", "oca-ams1-01"]);
    assert_eq!(ok(d, &["fleet", "config", "versions", "oca-ams1-01"]).lines().count(), 1);

    ok(d, &["fleet", "set", "oca-ams1-01", "--model", "flash-v2"]);
    ok(d, &["fleet", "config", "render", "oca-ams1-01"]);
    let diff = ok(d, &["fleet", "config", "diff", "oca-ams1-01"]);
    assert!(diff.contains("-id = \"flash-v1\"") && diff.contains("+id = \"flash-v2\""), "{diff}");
    assert!(diff.contains("-nic_gbps = 200") && diff.contains("+nic_gbps = 800"), "{diff}");

    let audit = ok(d, &["fleet", "audit"]);
    let lines: Vec<&str> = audit.lines().collect();
    assert!(lines.iter().filter(|l| l.contains("render-config")).count() == 2, "both renders are audited:\n{audit}");
    assert!(lines.iter().any(|l| l.contains("update") && l.contains("flash-v2") && l.contains("cli:ops-test")), "who changed the model:\n{audit}");

    // Bad input: one line, non-zero exit, nothing stored.
    let (success, _, err) = reel(d, &["fleet", "set", "oca-ams1-01", "--state", "exploded"]);
    assert!(!success && err.lines().count() == 1 && err.contains("state must be one of"), "{err}");
    let (success, _, err) = reel(d, &["fleet", "add", "--id", "oca-x", "--serial", "SN-2", "--site", "nowhere", "--model", "flash-v1"]);
    assert!(!success && err.contains("no site"), "{err}");
    assert!(ok(d, &["fleet", "list"]).contains("oca-ams1-01"));
    assert!(!ok(d, &["fleet", "list"]).contains("oca-x"));
}
