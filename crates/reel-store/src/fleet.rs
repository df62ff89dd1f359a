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
