//! Streams (who is watching what, right now), viewing events and progress.
//!
//! A stream is active while it has not been stopped and its last heartbeat is
//! newer than the caller's staleness cut-off. Nothing about streams lives in a
//! server's memory, so every control-plane node counts the same streams.

use crate::{get, Result, Store, StoreError};
use reel_domain::new_id;
use serde::Serialize;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize)]
pub struct Stream {
    pub id: String,
    pub account_id: String,
    pub profile_id: String,
    pub title_id: String,
    pub max_height: i64,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    pub position_s: f64,
    pub ended_ms: Option<i64>,
    /// The region steering placed the viewer in, if any.
    pub region: Option<String>,
}

pub struct StreamStart<'a> {
    pub account_id: &'a str,
    pub profile_id: &'a str,
    pub title_id: &'a str,
    pub max_height: u32,
    /// The plan's limit on concurrent streams.
    pub max_streams: u32,
    /// Streams whose last heartbeat is older than this no longer count.
    pub stale_before_ms: i64,
    pub position_s: f64,
    pub now_ms: i64,
    pub region: Option<&'a str>,
}

/// Where a profile stands in a title.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub title_id: String,
    pub series_id: Option<String>,
    pub position_s: f64,
    pub duration_s: f64,
    pub completed: bool,
    pub updated_ms: i64,
}

/// One stored viewing event.
#[derive(Debug, Clone, Serialize)]
pub struct ViewingEvent {
    pub id: String,
    pub account_id: String,
    pub profile_id: String,
    pub title_id: String,
    pub stream_id: Option<String>,
    pub kind: String,
    pub position_s: f64,
    pub at_ms: i64,
    pub region: Option<String>,
}

const STREAM_COLS: &str =
    "id, account_id, profile_id, title_id, max_height, started_ms, last_seen_ms, position_s, ended_ms, region";

fn stream_from(row: &AnyRow) -> Result<Stream> {
    Ok(Stream {
        id: get(row, "id")?,
        account_id: get(row, "account_id")?,
        profile_id: get(row, "profile_id")?,
        title_id: get(row, "title_id")?,
        max_height: get(row, "max_height")?,
        started_ms: get(row, "started_ms")?,
        last_seen_ms: get(row, "last_seen_ms")?,
        position_s: get(row, "position_s")?,
        ended_ms: get(row, "ended_ms")?,
        region: get(row, "region")?,
    })
}

fn progress_from(row: &AnyRow) -> Result<Progress> {
    Ok(Progress {
        title_id: get(row, "title_id")?,
        series_id: get(row, "series_id")?,
        position_s: get(row, "position_s")?,
        duration_s: get(row, "duration_s")?,
        completed: get::<i64>(row, "completed")? != 0,
        updated_ms: get(row, "updated_ms")?,
    })
}

/// Share of a title after which it counts as finished.
const COMPLETE_SHARE: f64 = 0.95;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

// Every read-then-write transaction in this crate writes first: SQLite
// refuses at once (no busy wait) a deferred transaction that read and then
// tries to write while another connection writes, so taking the write lock up
// front turns that failure into an ordinary wait.

/// Takes the account's row lock (PostgreSQL) or the write lock (SQLite) so
/// that counting and inserting streams cannot interleave between requests.
async fn gate(tx: &mut Tx<'_>, account_id: &str) -> Result<()> {
    let done = sqlx::query("UPDATE accounts SET stream_gate = stream_gate + 1 WHERE id = $1")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn count_active(tx: &mut Tx<'_>, account_id: &str, stale_before_ms: i64, except: &str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM streams WHERE account_id = $1 AND ended_ms IS NULL \
         AND last_seen_ms >= $2 AND id <> $3",
    )
    .bind(account_id)
    .bind(stale_before_ms)
    .bind(except)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n)
}

async fn insert_event(
    tx: &mut Tx<'_>,
    s: &Stream,
    kind: &str,
    position_s: f64,
    at_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO viewing_events (id, account_id, profile_id, title_id, stream_id, kind, position_s, at_ms, region) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id("evt"))
    .bind(&s.account_id)
    .bind(&s.profile_id)
    .bind(&s.title_id)
    .bind(&s.id)
    .bind(kind)
    .bind(position_s)
    .bind(at_ms)
    .bind(&s.region)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Upserts progress from the title's own duration; returns whether it is complete.
async fn save_progress(tx: &mut Tx<'_>, s: &Stream, position_s: f64, now_ms: i64) -> Result<bool> {
    let (duration,): (f64,) = sqlx::query_as("SELECT duration_s FROM titles WHERE id = $1")
        .bind(&s.title_id)
        .fetch_one(&mut **tx)
        .await?;
    let position = position_s.clamp(0.0, duration.max(0.0));
    let completed = duration > 0.0 && position >= duration * COMPLETE_SHARE;
    sqlx::query(
        "INSERT INTO watch_progress (profile_id, title_id, series_id, position_s, duration_s, completed, updated_ms) \
         SELECT $1, t.id, t.parent_id, $2, t.duration_s, $3, $4 FROM titles t WHERE t.id = $5 \
         ON CONFLICT (profile_id, title_id) DO UPDATE SET position_s = excluded.position_s, \
         duration_s = excluded.duration_s, completed = excluded.completed, updated_ms = excluded.updated_ms",
    )
    .bind(&s.profile_id)
    .bind(position)
    .bind(completed as i64)
    .bind(now_ms)
    .bind(&s.title_id)
    .execute(&mut **tx)
    .await?;
    Ok(completed)
}

impl Store {
    /// Starts a stream unless the account already has `max_streams` active
    /// ones ([`StoreError::Limit`]). Records a `play` event.
    pub async fn start_stream(&self, start: StreamStart<'_>) -> Result<Stream> {
        let mut tx = self.pool.begin().await?;
        gate(&mut tx, start.account_id).await?;
        let active = count_active(&mut tx, start.account_id, start.stale_before_ms, "").await?;
        if active >= start.max_streams as i64 {
            return Err(StoreError::Limit("the plan's concurrent streams are all in use"));
        }
        let s = Stream {
            id: new_id("str"),
            account_id: start.account_id.to_string(),
            profile_id: start.profile_id.to_string(),
            title_id: start.title_id.to_string(),
            max_height: start.max_height as i64,
            started_ms: start.now_ms,
            last_seen_ms: start.now_ms,
            position_s: start.position_s,
            ended_ms: None,
            region: start.region.map(str::to_string),
        };
        sqlx::query(&format!(
            "INSERT INTO streams ({STREAM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)"
        ))
        .bind(&s.id)
        .bind(&s.account_id)
        .bind(&s.profile_id)
        .bind(&s.title_id)
        .bind(s.max_height)
        .bind(s.started_ms)
        .bind(s.last_seen_ms)
        .bind(s.position_s)
        .bind(&s.region)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, &s, "play", s.position_s, start.now_ms).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// A stream of `account_id` (another account's stream is not found).
    pub async fn stream(&self, account_id: &str, stream_id: &str) -> Result<Option<Stream>> {
        let row = sqlx::query(&format!(
            "SELECT {STREAM_COLS} FROM streams WHERE id = $1 AND account_id = $2"
        ))
        .bind(stream_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stream_from).transpose()
    }

    /// Streams of the account that still count against its plan.
    pub async fn active_streams(&self, account_id: &str, stale_before_ms: i64) -> Result<Vec<Stream>> {
        let rows = sqlx::query(&format!(
            "SELECT {STREAM_COLS} FROM streams WHERE account_id = $1 AND ended_ms IS NULL \
             AND last_seen_ms >= $2 ORDER BY started_ms"
        ))
        .bind(account_id)
        .bind(stale_before_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stream_from).collect()
    }

    /// Records a heartbeat. A stream that went stale (the player was paused
    /// or offline) is revived if the plan still has a free slot; a stopped
    /// stream is not ([`StoreError::Conflict`]).
    pub async fn heartbeat(
        &self,
        account_id: &str,
        stream_id: &str,
        position_s: f64,
        max_streams: u32,
        stale_before_ms: i64,
        now_ms: i64,
    ) -> Result<Stream> {
        let mut tx = self.pool.begin().await?;
        gate(&mut tx, account_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {STREAM_COLS} FROM streams WHERE id = $1 AND account_id = $2"
        ))
        .bind(stream_id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let mut s = stream_from(&row)?;
        if s.ended_ms.is_some() {
            return Err(StoreError::Conflict("the stream has ended"));
        }
        if s.last_seen_ms < stale_before_ms
            && count_active(&mut tx, account_id, stale_before_ms, &s.id).await? >= max_streams as i64
        {
            return Err(StoreError::Limit("the stream timed out and its slot is taken"));
        }
        sqlx::query("UPDATE streams SET last_seen_ms = $1, position_s = $2 WHERE id = $3")
            .bind(now_ms)
            .bind(position_s)
            .bind(&s.id)
            .execute(&mut *tx)
            .await?;
        s.last_seen_ms = now_ms;
        s.position_s = position_s;
        insert_event(&mut tx, &s, "heartbeat", position_s, now_ms).await?;
        if save_progress(&mut tx, &s, position_s, now_ms).await? {
            insert_event(&mut tx, &s, "complete", position_s, now_ms).await?;
        }
        tx.commit().await?;
        Ok(s)
    }

    /// Stops a stream, freeing its slot, and saves the final position.
    pub async fn stop_stream(&self, account_id: &str, stream_id: &str, position_s: Option<f64>, now_ms: i64) -> Result<Stream> {
        let mut tx = self.pool.begin().await?;
        gate(&mut tx, account_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {STREAM_COLS} FROM streams WHERE id = $1 AND account_id = $2"
        ))
        .bind(stream_id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let mut s = stream_from(&row)?;
        if s.ended_ms.is_some() {
            return Ok(s);
        }
        let position = position_s.unwrap_or(s.position_s);
        sqlx::query("UPDATE streams SET ended_ms = $1, position_s = $2, last_seen_ms = $1 WHERE id = $3")
            .bind(now_ms)
            .bind(position)
            .bind(&s.id)
            .execute(&mut *tx)
            .await?;
        s.ended_ms = Some(now_ms);
        s.position_s = position;
        insert_event(&mut tx, &s, "stop", position, now_ms).await?;
        if save_progress(&mut tx, &s, position, now_ms).await? {
            insert_event(&mut tx, &s, "complete", position, now_ms).await?;
        }
        tx.commit().await?;
        Ok(s)
    }

    /// Titles the profile started and has not finished, most recent first.
    pub async fn continue_watching(&self, profile_id: &str, limit: i64) -> Result<Vec<Progress>> {
        let rows = sqlx::query(
            "SELECT title_id, series_id, position_s, duration_s, completed, updated_ms FROM watch_progress \
             WHERE profile_id = $1 AND completed = 0 AND position_s >= 1 \
             ORDER BY updated_ms DESC, title_id LIMIT $2",
        )
        .bind(profile_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(progress_from).collect()
    }

    /// Progress of a profile in the given titles (one query for a page of cards).
    pub async fn progress_for(&self, profile_id: &str, title_ids: &[String]) -> Result<Vec<Progress>> {
        if title_ids.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = (2..title_ids.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT title_id, series_id, position_s, duration_s, completed, updated_ms FROM watch_progress \
             WHERE profile_id = $1 AND title_id IN ({})",
            params.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(profile_id);
        for t in title_ids {
            q = q.bind(t.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(progress_from).collect()
    }

    /// Viewing events at or after `since_ms`, oldest first (for the systems that learn from them).
    pub async fn viewing_events(&self, since_ms: i64, limit: i64) -> Result<Vec<ViewingEvent>> {
        let rows = sqlx::query(
            "SELECT id, account_id, profile_id, title_id, stream_id, kind, position_s, at_ms, region \
             FROM viewing_events WHERE at_ms >= $1 ORDER BY at_ms, id LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ViewingEvent {
                    id: get(r, "id")?,
                    account_id: get(r, "account_id")?,
                    profile_id: get(r, "profile_id")?,
                    title_id: get(r, "title_id")?,
                    stream_id: get(r, "stream_id")?,
                    kind: get(r, "kind")?,
                    position_s: get(r, "position_s")?,
                    at_ms: get(r, "at_ms")?,
                    region: get(r, "region")?,
                })
            })
            .collect()
    }
}
