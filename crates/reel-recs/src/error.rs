//! The one error type of the engine.

use std::path::PathBuf;

/// Everything that can go wrong in the engine: bad input files, bad
/// parameters, corrupt model bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} line {line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error(
        "the linear system for row {row} is not positive definite; increase the regularization"
    )]
    NotPositiveDefinite { row: usize },
    #[error("corrupt model bytes: {0}")]
    CorruptModel(String),
    #[error("corrupt .npy data: {0}")]
    CorruptNpy(String),
    #[error("could not build a thread pool: {0}")]
    ThreadPool(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
