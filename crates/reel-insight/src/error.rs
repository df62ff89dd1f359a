//! The crate's one error type.

use std::path::PathBuf;

/// Everything the change-point engine can refuse or fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("the signal is empty")]
    EmptySignal,
    #[error("the signal has a non-finite value ({value}) at index {index}")]
    NonFinite { index: usize, value: f64 },
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error(
        "no segmentation is possible: {n} samples cannot hold a segment of min_size {min_size} \
         (jump {jump})"
    )]
    SegmentationImpossible {
        n: usize,
        min_size: usize,
        jump: usize,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad TCPD data in {path}: {reason}")]
    Dataset { path: PathBuf, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
