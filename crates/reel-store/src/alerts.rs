//! Alert rules, the alerts they fire, and the event outbox.

use crate::{get, Result, Store, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    /// `threshold` or `changepoint`.
    pub kind: String,
    pub expr: String,
    /// `>` or `<` (threshold rules).
    pub op: String,
    pub threshold: f64,
    pub for_s: i64,
    /// How much history a change-point rule looks at.
    pub window_s: i64,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: String,
    pub rule_id: String,
    pub name: String,
    pub labels: serde_json::Value,
    pub state: String,
    pub value: f64,
    pub fired_ms: i64,
    pub resolved_ms: Option<i64>,
    pub suspects: serde_json::Value,
}

fn json_of(s: String) -> Result<serde_json::Value> {
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    pub async fn create_alert_rule(&self, r: &AlertRule) -> Result<()> {
        sqlx::query(
            "INSERT INTO alert_rules (id, name, kind, expr, op, threshold, for_s, window_s, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.kind)
        .bind(&r.expr)
        .bind(&r.op)
        .bind(r.threshold)
        .bind(r.for_s)
        .bind(r.window_s)
        .bind(r.created_ms)
        .execute(&self.pool)
        .await
        .map_err(crate::conflict("alert rule"))?;
        Ok(())
    }

    pub async fn alert_rules(&self) -> Result<Vec<AlertRule>> {
        let rows = sqlx::query("SELECT id, name, kind, expr, op, threshold, for_s, window_s, created_ms FROM alert_rules ORDER BY created_ms, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertRule {
                    id: get(r, "id")?,
                    name: get(r, "name")?,
                    kind: get(r, "kind")?,
                    expr: get(r, "expr")?,
                    op: get(r, "op")?,
                    threshold: get(r, "threshold")?,
                    for_s: get(r, "for_s")?,
                    window_s: get(r, "window_s")?,
                    created_ms: get(r, "created_ms")?,
                })
            })
            .collect()
    }

    pub async fn delete_alert_rule(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Stores a firing alert and its event in one transaction.
    pub async fn fire_alert(&self, a: &Alert) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO alerts (id, rule_id, name, labels, state, value, fired_ms, resolved_ms, suspects) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)",
        )
        .bind(&a.id)
        .bind(&a.rule_id)
        .bind(&a.name)
        .bind(a.labels.to_string())
        .bind(&a.state)
        .bind(a.value)
        .bind(a.fired_ms)
        .bind(a.suspects.to_string())
        .execute(&mut *tx)
        .await?;
        let body = serde_json::to_string(a).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO events (id, kind, subject, body, at_ms) VALUES ($1, 'alert.fired', $2, $3, $4)")
            .bind(reel_domain::new_id("evt"))
            .bind(&a.id)
            .bind(body)
            .bind(a.fired_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn resolve_alert(&self, id: &str, now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE alerts SET state = 'resolved', resolved_ms = $1 WHERE id = $2 AND state = 'firing'")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO events (id, kind, subject, body, at_ms) VALUES ($1, 'alert.resolved', $2, '{}', $3)")
            .bind(reel_domain::new_id("evt"))
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Alerts, newest first.
    pub async fn alerts(&self, limit: i64) -> Result<Vec<Alert>> {
        let rows = sqlx::query(
            "SELECT id, rule_id, name, labels, state, value, fired_ms, resolved_ms, suspects FROM alerts ORDER BY fired_ms DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Alert {
                    id: get(r, "id")?,
                    rule_id: get(r, "rule_id")?,
                    name: get(r, "name")?,
                    labels: json_of(get(r, "labels")?)?,
                    state: get(r, "state")?,
                    value: get(r, "value")?,
                    fired_ms: get(r, "fired_ms")?,
                    resolved_ms: get(r, "resolved_ms")?,
                    suspects: json_of(get(r, "suspects")?)?,
                })
            })
            .collect()
    }

    /// Events at or after `since_ms`, oldest first: (kind, subject, body, at_ms).
    pub async fn events_since(&self, since_ms: i64, limit: i64) -> Result<Vec<(String, String, serde_json::Value, i64)>> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT kind, subject, body, at_ms FROM events WHERE at_ms >= $1 ORDER BY at_ms, id LIMIT $2")
                .bind(since_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(|(k, s, b, t)| Ok((k, s, json_of(b)?, t))).collect()
    }

    /// Events not yet acknowledged by the event stream, oldest first:
    /// (id, kind, subject, body, at_ms).
    pub async fn unpublished_events(&self, limit: i64) -> Result<Vec<(String, String, String, serde_json::Value, i64)>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, kind, subject, body, at_ms FROM events WHERE published_ms IS NULL ORDER BY at_ms, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(id, k, s, b, t)| Ok((id, k, s, json_of(b)?, t))).collect()
    }

    /// Records that the event stream acknowledged these events.
    pub async fn mark_events_published(&self, ids: &[String], at_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query("UPDATE events SET published_ms = $1 WHERE id = $2")
                .bind(at_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
