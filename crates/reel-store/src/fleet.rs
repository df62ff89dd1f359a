//! The delivery fleet: sites, their client prefixes, appliances and the
//! latest health report of each.

use crate::{get, Result, Store, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub region: String,
    pub location: String,
    pub prefixes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Appliance {
    pub id: String,
    pub serial: String,
    pub site_id: String,
    pub model: String,
    pub state: String,
    pub base_url: String,
    pub last_report_ms: Option<i64>,
    /// The latest report, as the appliance sent it (JSON).
    pub report: String,
}

/// The states an appliance moves through.
pub const APPLIANCE_STATES: [&str; 5] = ["provisioning", "active", "draining", "maintenance", "failed"];

impl Store {
    /// Creates a site, or updates its name, region, location and prefixes.
    pub async fn upsert_site(&self, site: &Site) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sites (id, name, region, location, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, region = excluded.region, location = excluded.location",
        )
        .bind(&site.id)
        .bind(&site.name)
        .bind(&site.region)
        .bind(&site.location)
        .bind(reel_domain::now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM site_prefixes WHERE site_id = $1").bind(&site.id).execute(&mut *tx).await?;
        for p in &site.prefixes {
            sqlx::query("INSERT INTO site_prefixes (site_id, prefix) VALUES ($1, $2)")
                .bind(&site.id)
                .bind(p)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn sites(&self) -> Result<Vec<Site>> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, name, region, location FROM sites ORDER BY region, id")
                .fetch_all(&self.pool)
                .await?;
        let prefixes: Vec<(String, String)> = sqlx::query_as("SELECT site_id, prefix FROM site_prefixes ORDER BY prefix")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, region, location)| Site {
                prefixes: prefixes.iter().filter(|(s, _)| *s == id).map(|(_, p)| p.clone()).collect(),
                id,
                name,
                region,
                location,
            })
            .collect())
    }

    /// Creates an appliance, or updates one with the same id (its serial,
    /// site, model, state and URL; reports are kept).
    pub async fn upsert_appliance(&self, a: &Appliance) -> Result<()> {
        if !APPLIANCE_STATES.contains(&a.state.as_str()) {
            return Err(StoreError::Corrupt(format!("appliance state {:?}", a.state)));
        }
        sqlx::query(
            "INSERT INTO appliances (id, serial, site_id, model, state, base_url, last_report_ms, report, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, '{}', $7) \
             ON CONFLICT (id) DO UPDATE SET serial = excluded.serial, site_id = excluded.site_id, \
             model = excluded.model, state = excluded.state, base_url = excluded.base_url",
        )
        .bind(&a.id)
        .bind(&a.serial)
        .bind(&a.site_id)
        .bind(&a.model)
        .bind(&a.state)
        .bind(&a.base_url)
        .bind(reel_domain::now_ms())
        .execute(&self.pool)
        .await
        .map_err(crate::conflict("an appliance with this serial"))?;
        Ok(())
    }

    pub async fn appliances(&self) -> Result<Vec<Appliance>> {
        let rows = sqlx::query(
            "SELECT id, serial, site_id, model, state, base_url, last_report_ms, report FROM appliances ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Appliance {
                    id: get(r, "id")?,
                    serial: get(r, "serial")?,
                    site_id: get(r, "site_id")?,
                    model: get(r, "model")?,
                    state: get(r, "state")?,
                    base_url: get(r, "base_url")?,
                    last_report_ms: get(r, "last_report_ms")?,
                    report: get(r, "report")?,
                })
            })
            .collect()
    }

    /// Stores an appliance's health report; unknown appliances are not found.
    pub async fn record_appliance_report(&self, id: &str, report_json: &str, now_ms: i64) -> Result<()> {
        let done = sqlx::query("UPDATE appliances SET last_report_ms = $1, report = $2 WHERE id = $3")
            .bind(now_ms)
            .bind(report_json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplianceModel {
    pub id: String,
    pub name: String,
    pub vendor: String,
    /// `[{kind, description, quantity, capacity}]` as JSON.
    pub parts: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigVersion {
    pub appliance_id: String,
    pub version: i64,
    pub sha256: String,
    #[serde(skip)]
    pub rendered: String,
    pub actor: String,
    pub created_ms: i64,
}

impl Store {
    pub async fn upsert_model(&self, m: &ApplianceModel) -> Result<()> {
        sqlx::query(
            "INSERT INTO appliance_models (id, name, vendor, parts, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, vendor = excluded.vendor, parts = excluded.parts",
        )
        .bind(&m.id)
        .bind(&m.name)
        .bind(&m.vendor)
        .bind(&m.parts)
        .bind(reel_domain::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn models(&self) -> Result<Vec<ApplianceModel>> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, name, vendor, parts FROM appliance_models ORDER BY id").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(id, name, vendor, parts)| ApplianceModel { id, name, vendor, parts }).collect())
    }

    pub async fn appliance(&self, id: &str) -> Result<Option<Appliance>> {
        Ok(self.appliances().await?.into_iter().find(|a| a.id == id))
    }

    pub async fn record_audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, at_ms, actor, action, entity, entity_id, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(reel_domain::new_id("aud"))
        .bind(e.at_ms)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.entity)
        .bind(&e.entity_id)
        .bind(&e.before)
        .bind(&e.after)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest audit entries first.
    pub async fn audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, action, entity, entity_id, before, after FROM audit_log ORDER BY at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at_ms: get(r, "at_ms")?,
                    actor: get(r, "actor")?,
                    action: get(r, "action")?,
                    entity: get(r, "entity")?,
                    entity_id: get(r, "entity_id")?,
                    before: get(r, "before")?,
                    after: get(r, "after")?,
                })
            })
            .collect()
    }

    /// Saves `rendered` as the appliance's next config version unless it is
    /// the same as the latest; returns the version that holds it.
    pub async fn save_config_version(&self, appliance_id: &str, rendered: &str, sha256: &str, actor: &str) -> Result<(i64, bool)> {
        let mut tx = self.pool.begin().await?;
        // Write first (see playback.rs): serialises concurrent renders.
        sqlx::query("UPDATE appliances SET report = report WHERE id = $1").bind(appliance_id).execute(&mut *tx).await?;
        let latest: Option<(i64, String)> = sqlx::query_as(
            "SELECT version, sha256 FROM config_versions WHERE appliance_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(appliance_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((v, sha)) = &latest {
            if sha == sha256 {
                return Ok((*v, false));
            }
        }
        let version = latest.map(|(v, _)| v + 1).unwrap_or(1);
        sqlx::query(
            "INSERT INTO config_versions (appliance_id, version, sha256, rendered, actor, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(appliance_id)
        .bind(version)
        .bind(sha256)
        .bind(rendered)
        .bind(actor)
        .bind(reel_domain::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((version, true))
    }

    /// Every saved version of an appliance's config, oldest first.
    pub async fn config_versions(&self, appliance_id: &str) -> Result<Vec<ConfigVersion>> {
        let rows = sqlx::query(
            "SELECT appliance_id, version, sha256, rendered, actor, created_ms FROM config_versions \
             WHERE appliance_id = $1 ORDER BY version",
        )
        .bind(appliance_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigVersion {
                    appliance_id: get(r, "appliance_id")?,
                    version: get(r, "version")?,
                    sha256: get(r, "sha256")?,
                    rendered: get(r, "rendered")?,
                    actor: get(r, "actor")?,
                    created_ms: get(r, "created_ms")?,
                })
            })
            .collect()
    }
}
