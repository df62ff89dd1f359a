//! Mistakes on the command line: one line saying what is wrong, a non-zero
//! exit, no crash, and nothing already stored lost.

use std::process::{Command, Output};

fn reel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reel")).args(args).output().expect("run reel")
}

/// Fails with exactly one line on stderr that contains `says`.
fn refused(args: &[&str], says: &str) {
    let out = reel(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert!(!err.contains("panicked"), "{args:?} crashed: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line, got: {err}");
    assert!(err.contains(says), "{args:?}: {err:?} should say {says:?}");
}

#[test]
fn mistakes_get_one_line_and_no_crash() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let d = data.to_str().expect("utf-8");
    // The argument parser's errors, in one line with where help is.
    refused(&["catalog", "add", "--name", "x", "--year", "abc", "--maturity", "PG", "--data-dir", d], "invalid value 'abc' for '--year");
    refused(&["media", "vmaf"], "--ref");
    refused(&["steer", "explain", "--client", "notanip"], "--client");
    refused(&["serve", "--public-url", "notaurl", "--data-dir", d], "not an http:// or https:// URL");
    refused(&["serve", "--remote-write", "http://prom/api/v1/write", "--data-dir", d], "not an http://HOST:PORT/PATH URL");
    // Frame sizes past 16K (a typo, or a damaged header) are refused
    // before anything is allocated.
    let y4m = dir.path().join("huge.y4m");
    std::fs::write(&y4m, b"YUV4MPEG2 W99999999 H99999999 F25:1 C420\nFRAME\n").expect("write");
    let y = y4m.to_str().expect("utf-8");
    refused(&["media", "vmaf", "--ref", y, "--dist", y], "not a supported frame size");
    let raw = dir.path().join("k.yuv");
    std::fs::write(&raw, [0u8; 64]).expect("write");
    let r = raw.to_str().expect("utf-8");
    refused(&["media", "vmaf", "--ref", r, "--dist", r, "--width", "3369774176", "--height", "3649452082"], "not a supported frame size");
    refused(&["media", "vmaf", "--ref", r, "--dist", r, "--width", "16", "--height", "16", "--threads", "100000"], "--threads");
    refused(&["media", "vmaf", "--ref", r, "--dist", r], "raw YUV needs --width and --height");
    // Listen addresses that cannot be used say why.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr").to_string();
    refused(&["serve", "--listen", &taken, "--data-dir", d], "something else is listening there");
    refused(&["serve", "--listen", "10.255.255.1:8080", "--data-dir", d], "this machine has no such address");
    // Counts that would exhaust memory or never finish.
    refused(&["fill", "plan", "--evaluate", "--views", "99999999999", "--data-dir", d], "--views");
    refused(&["recs", "train", "--factors", "99999999", "--data-dir", d], "--factors");
    refused(&["recs", "train", "--iterations", "0", "--data-dir", d], "--iterations");
}

#[test]
fn the_catalog_cli_checks_what_the_api_checks_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().join("data");
    let d = d.to_str().expect("utf-8");
    let out = reel(&["catalog", "add", "--name", "Kept", "--year", "2001", "--maturity", "PG", "--data-dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    refused(&["catalog", "edit", &id, "--name", "", "--data-dir", d], "name must be 1 to 200");
    refused(&["catalog", "edit", &id, "--year", "3000", "--data-dir", d], "year must be between 1870 and 2100");
    refused(&["catalog", "add", "--name", "a\nb", "--year", "2001", "--maturity", "PG", "--data-dir", d], "one line");
    refused(&["catalog", "add", "--name", "x", "--year", "2001", "--maturity", "PG", "--duration-s", "NaN", "--data-dir", d], "duration_s");
    let args = ["catalog", "add", "--kind", "episode", "--series", "nosuch", "--season", "1", "--episode", "1"];
    let mut args = args.to_vec();
    args.extend(["--name", "e", "--year", "2001", "--maturity", "PG", "--data-dir", d]);
    refused(&args, "series \"nosuch\" does not exist");
    let list = reel(&["catalog", "list", "--data-dir", d]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("Kept") && text.contains("2001"), "the title is unchanged: {text}");
    assert_eq!(text.matches(&id).count(), 1, "nothing else was added: {text}");
}

#[test]
fn updating_a_site_or_model_keeps_what_it_was_not_given() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().join("data");
    let d = d.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--data-dir", d]);
        let out = reel(&args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    // What the newest audit entry says the object now is.
    let newest = || String::from_utf8_lossy(&reel(&["fleet", "audit", "--limit", "1", "--data-dir", d]).stdout).into_owned();
    run(&["fleet", "site", "--id", "s1", "--name", "Site one", "--region", "eu", "--location", "Paris", "--prefix", "127.0.5.0/24"]);
    run(&["fleet", "site", "--id", "s1", "--name", "Site one b", "--region", "eu"]);
    let now = newest();
    assert!(now.contains("Site one b") && now.contains("Paris") && now.contains("127.0.5.0/24"), "the site kept its location and network: {now}");
    run(&["fleet", "model", "--id", "m1", "--name", "M", "--vendor", "V", "--part", "disk:2:1000:SSD"]);
    run(&["fleet", "model", "--id", "m1", "--name", "M two", "--vendor", "V"]);
    let now = newest();
    assert!(now.contains("M two") && now.contains("SSD"), "the model kept its parts: {now}");
    // An appliance that does not exist is not an empty history.
    refused(&["fleet", "config", "versions", "nosuch", "--data-dir", d], "no appliance \"nosuch\"");
    // Given, they replace.
    run(&["fleet", "site", "--id", "s1", "--name", "Site one b", "--region", "eu", "--prefix", "127.0.6.0/24"]);
    let now = newest();
    assert!(now.contains("127.0.6.0/24") && !now.contains("127.0.5.0/24"), "{now}");
}
