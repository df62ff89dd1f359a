//! Embeds the web UI (`web/`) and the player library installed from npm
//! (`web/node_modules/hls.js`) into the binary. A missing file is replaced
//! by a placeholder that says how to get it, so a plain `cargo build` works
//! before `npm ci` has run.

use std::path::Path;

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let files = [
        ("index.html", "index.html", "<!doctype html><title>Reel</title><p>The web UI is missing from this build."),
        ("app.js", "app.js", "document.body.textContent='The web UI is missing from this build.';"),
        ("style.css", "style.css", ""),
        ("node_modules/hls.js/dist/hls.min.js", "hls.min.js", ""),
    ];
    for (src, dst, placeholder) in files {
        let path = web.join(src);
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).unwrap_or_else(|_| placeholder.as_bytes().to_vec());
        if let Err(e) = std::fs::write(out.join(dst), bytes) {
            panic!("cannot write {dst} into OUT_DIR: {e}");
        }
    }
    println!("cargo:rerun-if-changed={}", web.join("node_modules/hls.js/package.json").display());
}
