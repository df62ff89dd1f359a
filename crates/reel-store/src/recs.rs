//! What personalization reads and writes: viewing history summed per
//! profile and title, the genres a profile picked, trained models (versioned,
//! one active) and artwork impressions.

use crate::{get, Result, Store, StoreError};
use serde::Serialize;

/// A profile's history with one title, summed from its viewing events.
#[derive(Debug, Clone, Serialize)]
pub struct WatchSummary {
    pub profile_id: String,
    pub title_id: String,
    /// The series, for an episode.
    pub series_id: Option<String>,
    pub plays: i64,
    /// The furthest position reached, seconds.
    pub max_position_s: f64,
    pub duration_s: f64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The region of the latest event, if steering placed one.
    pub region: Option<String>,
}

/// One viewing event to store in bulk (imports, generated history).
#[derive(Debug, Clone)]
pub struct NewViewingEvent {
    pub account_id: String,
    pub profile_id: String,
    pub title_id: String,
    pub kind: &'static str,
    pub position_s: f64,
    pub at_ms: i64,
    pub region: Option<String>,
}

/// A stored model, without its body.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub version: i64,
    pub created_ms: i64,
    pub kind: String,
    pub params: serde_json::Value,
    pub metrics: serde_json::Value,
    pub active: bool,
    pub bytes: i64,
}

/// An impression to log.
#[derive(Debug, Clone)]
pub struct NewImpression {
    pub profile_id: String,
    pub title_id: String,
    pub variant: String,
    pub propensity: f64,
    pub context: serde_json::Value,
}

/// One artwork impression.
#[derive(Debug, Clone, Serialize)]
pub struct Impression {
    pub id: String,
    pub profile_id: String,
    pub title_id: String,
    pub variant: String,
    pub propensity: f64,
    pub context: serde_json::Value,
    pub shown_ms: i64,
    pub played_ms: Option<i64>,
}

/// Viewing events summed per profile and title, filtered and ordered as asked.
fn summaries_sql(filter: &str, order: &str) -> String {
    format!(
        "SELECT e.profile_id, e.title_id, t.parent_id, t.duration_s, \
                SUM(CASE WHEN e.kind = 'play' THEN 1 ELSE 0 END) AS plays, \
                MAX(e.position_s) AS max_position_s, MIN(e.at_ms) AS first_ms, MAX(e.at_ms) AS last_ms, \
                MAX(e.region) AS region \
         FROM viewing_events e JOIN titles t ON t.id = e.title_id \
         WHERE {filter} \
         GROUP BY e.profile_id, e.title_id, t.parent_id, t.duration_s \
         ORDER BY {order}"
    )
}

fn summary_from(r: &sqlx::any::AnyRow) -> Result<WatchSummary> {
    Ok(WatchSummary {
        profile_id: get(r, "profile_id")?,
        title_id: get(r, "title_id")?,
        series_id: get(r, "parent_id")?,
        plays: get(r, "plays")?,
        max_position_s: get(r, "max_position_s")?,
        duration_s: get(r, "duration_s")?,
        first_ms: get(r, "first_ms")?,
        last_ms: get(r, "last_ms")?,
        region: get(r, "region")?,
    })
}

impl Store {
    /// Every profile's history per title, from events at or after `since_ms`.
    pub async fn watch_summaries(&self, since_ms: i64) -> Result<Vec<WatchSummary>> {
        let sql = summaries_sql("e.at_ms >= $1", "e.profile_id, MAX(e.at_ms)");
        let rows = sqlx::query(&sql).bind(since_ms).fetch_all(&self.pool).await?;
        rows.iter().map(summary_from).collect()
    }

    /// The same, for one profile, most recent first.
    pub async fn profile_watch_summaries(&self, profile_id: &str) -> Result<Vec<WatchSummary>> {
        let sql = summaries_sql("e.profile_id = $1", "MAX(e.at_ms) DESC");
        let rows = sqlx::query(&sql).bind(profile_id).fetch_all(&self.pool).await?;
        rows.iter().map(summary_from).collect()
    }

    /// Stores events in bulk, in one transaction per thousand.
    pub async fn insert_viewing_events(&self, events: &[NewViewingEvent]) -> Result<u64> {
        let mut n = 0;
        for chunk in events.chunks(1000) {
            let mut tx = self.pool.begin().await?;
            for e in chunk {
                sqlx::query(
                    "INSERT INTO viewing_events (id, account_id, profile_id, title_id, stream_id, kind, position_s, at_ms, region) \
                     VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8)",
                )
                .bind(reel_domain::new_id("evt"))
                .bind(&e.account_id)
                .bind(&e.profile_id)
                .bind(&e.title_id)
                .bind(e.kind)
                .bind(e.position_s)
                .bind(e.at_ms)
                .bind(&e.region)
                .execute(&mut *tx)
                .await?;
                n += 1;
            }
            tx.commit().await?;
        }
        Ok(n)
    }

    /// Whether any viewing history exists (the demo generates some on an empty store).
    pub async fn viewing_event_count(&self) -> Result<i64> {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM viewing_events").fetch_one(&self.pool).await?;
        Ok(row.0)
    }

    /// Replaces the genres a profile picked.
    pub async fn set_profile_genres(&self, profile_id: &str, genres: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM profile_genres WHERE profile_id = $1").bind(profile_id).execute(&mut *tx).await?;
        for g in genres {
            sqlx::query("INSERT INTO profile_genres (profile_id, genre_slug) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(profile_id)
                .bind(g)
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                    _ => StoreError::Database(e),
                })?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn profile_genres(&self, profile_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT genre_slug FROM profile_genres WHERE profile_id = $1 ORDER BY genre_slug")
            .bind(profile_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Stores a trained model as the next version (not active yet).
    pub async fn save_model(&self, kind: &str, params: &serde_json::Value, metrics: &serde_json::Value, body_b64: &str, now_ms: i64) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        // Write first, so SQLite takes its write lock before reading.
        sqlx::query("UPDATE recs_models SET active = active WHERE version = -1").execute(&mut *tx).await?;
        let row: (i64,) = sqlx::query_as("SELECT COALESCE(MAX(version), 0) + 1 FROM recs_models").fetch_one(&mut *tx).await?;
        sqlx::query("INSERT INTO recs_models (version, created_ms, kind, params, metrics, body, active) VALUES ($1, $2, $3, $4, $5, $6, 0)")
            .bind(row.0)
            .bind(now_ms)
            .bind(kind)
            .bind(params.to_string())
            .bind(metrics.to_string())
            .bind(body_b64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.0)
    }

    /// Makes `version` the one the control plane serves.
    pub async fn activate_model(&self, version: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let hit = sqlx::query("UPDATE recs_models SET active = 1 WHERE version = $1").bind(version).execute(&mut *tx).await?;
        if hit.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE recs_models SET active = 0 WHERE version <> $1").bind(version).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active model's version, if any (cheap: polled to notice a switch).
    pub async fn active_model_version(&self) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM recs_models WHERE active = 1").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.0))
    }

    /// A model's body (base64).
    pub async fn model_body(&self, version: i64) -> Result<String> {
        let row: Option<(String,)> = sqlx::query_as("SELECT body FROM recs_models WHERE version = $1").bind(version).fetch_optional(&self.pool).await?;
        row.map(|r| r.0).ok_or(StoreError::NotFound)
    }

    /// Every stored model, newest first.
    pub async fn recs_models(&self) -> Result<Vec<ModelInfo>> {
        let rows = sqlx::query("SELECT version, created_ms, kind, params, metrics, active, LENGTH(body) AS bytes FROM recs_models ORDER BY version DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let params: String = get(r, "params")?;
                let metrics: String = get(r, "metrics")?;
                Ok(ModelInfo {
                    version: get(r, "version")?,
                    created_ms: get(r, "created_ms")?,
                    kind: get(r, "kind")?,
                    params: serde_json::from_str(&params).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    metrics: serde_json::from_str(&metrics).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    active: get::<i64>(r, "active")? != 0,
                    bytes: get(r, "bytes")?,
                })
            })
            .collect()
    }

    /// Logs impressions (one transaction): for each, the profile, the
    /// title, the variant shown, its propensity and the context.
    pub async fn log_impressions(&self, shown: &[NewImpression], now_ms: i64) -> Result<()> {
        if shown.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for i in shown {
            sqlx::query(
                "INSERT INTO artwork_impressions (id, profile_id, title_id, variant, propensity, context, shown_ms, played_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
            )
            .bind(reel_domain::new_id("imp"))
            .bind(&i.profile_id)
            .bind(&i.title_id)
            .bind(&i.variant)
            .bind(i.propensity)
            .bind(i.context.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The artwork variants of many titles at once.
    pub async fn artwork_variants(&self, title_ids: &[String]) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let mut out: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
        for chunk in title_ids.chunks(200) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT title_id, variant FROM artwork WHERE title_id IN ({}) ORDER BY title_id, variant", marks.join(", "));
            let mut q = sqlx::query_as::<_, (String, String)>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for (t, v) in q.fetch_all(&self.pool).await? {
                out.entry(t).or_default().push(v);
            }
        }
        Ok(out)
    }

    /// Credits a play to the latest impression of the title shown to the
    /// profile within `window_ms` before `now_ms`. Returns whether one was found.
    pub async fn credit_play(&self, profile_id: &str, title_id: &str, now_ms: i64, window_ms: i64) -> Result<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM artwork_impressions WHERE profile_id = $1 AND title_id = $2 AND shown_ms >= $3 AND shown_ms <= $4 \
             AND played_ms IS NULL ORDER BY shown_ms DESC LIMIT 1",
        )
        .bind(profile_id)
        .bind(title_id)
        .bind(now_ms - window_ms)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id,)) = row else { return Ok(false) };
        sqlx::query("UPDATE artwork_impressions SET played_ms = $1 WHERE id = $2").bind(now_ms).bind(id).execute(&self.pool).await?;
        Ok(true)
    }

    /// Impressions at or after `since_ms`, oldest first.
    pub async fn impressions(&self, since_ms: i64, limit: i64) -> Result<Vec<Impression>> {
        let rows = sqlx::query(
            "SELECT id, profile_id, title_id, variant, propensity, context, shown_ms, played_ms FROM artwork_impressions \
             WHERE shown_ms >= $1 ORDER BY shown_ms, id LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let context: String = get(r, "context")?;
                Ok(Impression {
                    id: get(r, "id")?,
                    profile_id: get(r, "profile_id")?,
                    title_id: get(r, "title_id")?,
                    variant: get(r, "variant")?,
                    propensity: get(r, "propensity")?,
                    context: serde_json::from_str(&context).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    shown_ms: get(r, "shown_ms")?,
                    played_ms: get(r, "played_ms")?,
                })
            })
            .collect()
    }
}
