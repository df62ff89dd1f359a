//! Reel's state: accounts, sessions, profiles, catalog, streams and viewing
//! history, behind typed functions.
//!
//! This is the only crate that speaks SQL. It runs on SQLite (the embedded
//! default, one file in the data directory) or PostgreSQL (for several
//! control-plane nodes), with one set of migrations written in the SQL both
//! share. It knows nothing of HTTP, cookies or password hashing: callers hand
//! it hashes and ids.
//!
//! ```no_run
//! # async fn demo() -> Result<(), reel_store::StoreError> {
//! let store = reel_store::Store::open("sqlite:///tmp/reel/reel.db").await?;
//! let genres = store.genres().await?;
//! # Ok(()) }
//! ```

mod accounts;
mod alerts;
mod catalog;
mod fleet;
mod playback;
mod recs;

pub use accounts::{Account, NewAccount, Profile};
pub use alerts::{Alert, AlertRule};
pub use fleet::{Appliance, ApplianceModel, AuditEntry, ConfigVersion, Site, APPLIANCE_STATES};
pub use catalog::{Artwork, Genre, NewTitle, Rendition, Title, TitleFilter, TitlePatch};
pub use playback::{Progress, Stream, StreamStart, ViewingEvent};
pub use recs::{Impression, ModelInfo, NewImpression, NewViewingEvent, WatchSummary};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What went wrong in the store, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("limit reached: {0}")]
    Limit(&'static str),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// One connection to a PostgreSQL server, retried for up to 15 s while the
/// server is not up yet, so that a wrong address, password or database is
/// reported as itself rather than as a pool that timed out.
async fn reach_server(url: &str) -> Result<()> {
    use sqlx::Connection;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, sqlx::AnyConnection::connect(url)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            // Refused or reset: the server may still be starting.
            Ok(Err(sqlx::Error::Io(e))) if left > Duration::from_millis(500) && e.kind() != std::io::ErrorKind::AddrNotAvailable => {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::Database(sqlx::Error::Io(e)));
                }
            }
            // Starting up, or at its connection limit: worth waiting for.
            Ok(Err(sqlx::Error::Database(d)))
                if left > Duration::from_millis(500) && d.code().is_some_and(|c| c == "57P03" || c == "53300") =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                return Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the server did not answer within 15 s",
                ))))
            }
        }
    }
}

impl StoreError {
    /// True when a retry might succeed (locks, dropped connections).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on Reel's state; cheap to clone (a connection pool inside).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`:
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(redact(url)));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(15))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL survives a killed process with every committed
                        // transaction; FULL also survives power loss. Foreign
                        // keys are off by default in SQLite.
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                             PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        if backend == Backend::Postgres {
            reach_server(&url).await?;
        }
        let pool = options.connect(&url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// Opens the embedded database inside `data_dir` (created if needed).
    pub async fn open_in_dir(data_dir: &std::path::Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let path = data_dir.join("reel.db");
        Store::open(&format!("sqlite://{}", path.display())).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Returns the setting `key`, storing `init` first if it has none. Every
    /// node that races here reads the same winner.
    pub async fn setting_or_init(&self, key: &str, init: &str) -> Result<String> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(init)
            .execute(&self.pool)
            .await?;
        let row: (String,) = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.0)
    }

    /// Cheap liveness probe of the database.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Hides a password in a database URL before it reaches an error or a log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    Ok(row.try_get(col)?)
}

/// Escapes `%`, `_` and `\` so user text matches literally in `LIKE ... ESCAPE '\'`.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://reel:s3cret@db/reel"), "postgres://reel:***@db/reel");
        assert_eq!(super::redact("postgres://reel@db/reel"), "postgres://reel@db/reel");
    }

    #[test]
    fn like_escapes() {
        assert_eq!(super::like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
