//! Prints the TCPD 'default' evaluation report as JSON.
//!
//! Usage: tcpd_eval [TCPD_DIR]   (default: ../shared/data/tcpd from the workspace)

use std::path::PathBuf;

use reel_insight::tcpd;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/tcpd"
            ))
        });
    match tcpd::evaluate_dir(&dir, &tcpd::default_method()) {
        Ok(report) => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("tcpd_eval: {e}"),
        },
        Err(e) => {
            eprintln!("tcpd_eval: {e}");
            std::process::exit(1);
        }
    }
}
