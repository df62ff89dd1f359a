//! Inventory: sites, appliance models and their parts, appliances and their
//! states, configs rendered from all of that (each kept as a numbered
//! version, any two diffable), and an audit trail of who changed what.
//! The API and the CLI both go through these functions.

use reel_store::{Appliance, ApplianceModel, AuditEntry, Site, Store, StoreError, APPLIANCE_STATES};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, InventoryError>;

/// One hardware part of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// disk, nic, cpu or memory.
    pub kind: String,
    pub description: String,
    pub quantity: u32,
    /// Bytes for disks and memory, Gb/s for NICs, cores for CPUs.
    pub capacity: u64,
}

fn check_id(id: &str, what: &str) -> Result<()> {
    if reel_domain::is_valid_id(id) {
        Ok(())
    } else {
        Err(InventoryError::Invalid(format!("{what} id may hold letters, digits, '-' and '_' (1 to 64)")))
    }
}

fn check_name(v: &str, what: &str) -> Result<()> {
    if v.trim().is_empty() || v.chars().count() > 100 || v.chars().any(char::is_control) {
        return Err(InventoryError::Invalid(format!("{what} must be 1 to 100 printable characters")));
    }
    Ok(())
}

async fn audit(store: &Store, actor: &str, action: &str, entity: &str, id: &str, before: Option<String>, after: Option<String>) -> Result<()> {
    store
        .record_audit(&AuditEntry {
            at_ms: reel_domain::now_ms(),
            actor: actor.into(),
            action: action.into(),
            entity: entity.into(),
            entity_id: id.into(),
            before,
            after,
        })
        .await?;
    Ok(())
}

fn json<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_string(v).ok()
}

pub async fn put_site(store: &Store, actor: &str, site: Site) -> Result<Site> {
    check_id(&site.id, "site")?;
    check_name(&site.name, "name")?;
    check_name(&site.region, "region")?;
    for p in &site.prefixes {
        p.parse::<reel_steering::Prefix>().map_err(|e| InventoryError::Invalid(e.to_string()))?;
    }
    let before = store.sites().await?.into_iter().find(|s| s.id == site.id);
    store.upsert_site(&site).await?;
    audit(store, actor, if before.is_some() { "update" } else { "create" }, "site", &site.id, before.as_ref().and_then(json), json(&site)).await?;
    Ok(site)
}

pub async fn put_model(store: &Store, actor: &str, id: &str, name: &str, vendor: &str, parts: &[Part]) -> Result<ApplianceModel> {
    check_id(id, "model")?;
    check_name(name, "name")?;
    check_name(vendor, "vendor")?;
    for p in parts {
        if !["disk", "nic", "cpu", "memory"].contains(&p.kind.as_str()) || p.quantity == 0 {
            return Err(InventoryError::Invalid("each part needs kind disk|nic|cpu|memory and a quantity of at least 1".into()));
        }
    }
    let model = ApplianceModel {
        id: id.into(),
        name: name.into(),
        vendor: vendor.into(),
        parts: serde_json::to_string(parts).unwrap_or_else(|_| "[]".into()),
    };
    let before = store.models().await?.into_iter().find(|m| m.id == id);
    store.upsert_model(&model).await?;
    audit(store, actor, if before.is_some() { "update" } else { "create" }, "model", id, before.as_ref().and_then(json), json(&model)).await?;
    Ok(model)
}

pub async fn add_appliance(store: &Store, actor: &str, a: Appliance) -> Result<Appliance> {
    check_id(&a.id, "appliance")?;
    check_name(&a.serial, "serial")?;
    if store.appliance(&a.id).await?.is_some() {
        return Err(InventoryError::Invalid(format!("appliance {} already exists", a.id)));
    }
    check_refs(store, &a).await?;
    store.upsert_appliance(&a).await.map_err(|e| match e {
        StoreError::Conflict(_) => InventoryError::Invalid("an appliance with this serial already exists".into()),
        e => e.into(),
    })?;
    audit(store, actor, "create", "appliance", &a.id, None, json(&a)).await?;
    Ok(a)
}

async fn check_refs(store: &Store, a: &Appliance) -> Result<()> {
    if !APPLIANCE_STATES.contains(&a.state.as_str()) {
        return Err(InventoryError::Invalid(format!("state must be one of {}", APPLIANCE_STATES.join(", "))));
    }
    if !store.sites().await?.iter().any(|s| s.id == a.site_id) {
        return Err(InventoryError::Invalid(format!("no site {:?}", a.site_id)));
    }
    if !store.models().await?.iter().any(|m| m.id == a.model) {
        return Err(InventoryError::Invalid(format!("no model {:?}", a.model)));
    }
    Ok(())
}

/// Fields of an appliance an operator may change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliancePatch {
    pub state: Option<String>,
    pub model: Option<String>,
    pub site_id: Option<String>,
    pub base_url: Option<String>,
}

pub async fn change_appliance(store: &Store, actor: &str, id: &str, patch: AppliancePatch) -> Result<Appliance> {
    let before = store.appliance(id).await?.ok_or(InventoryError::NotFound("appliance"))?;
    let mut after = before.clone();
    if let Some(v) = patch.state {
        after.state = v;
    }
    if let Some(v) = patch.model {
        after.model = v;
    }
    if let Some(v) = patch.site_id {
        after.site_id = v;
    }
    if let Some(v) = patch.base_url {
        after.base_url = v;
    }
    check_refs(store, &after).await?;
    store.upsert_appliance(&after).await?;
    let strip = |a: &Appliance| {
        let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("report");
            o.remove("last_report_ms");
        }
        v.to_string()
    };
    audit(store, actor, "update", "appliance", id, Some(strip(&before)), Some(strip(&after))).await?;
    Ok(after)
}

/// Renders an appliance's config from the inventory (pure, deterministic).
pub fn render(a: &Appliance, site: &Site, model: &ApplianceModel) -> String {
    let parts: Vec<Part> = serde_json::from_str(&model.parts).unwrap_or_default();
    let disk_bytes: u64 = parts.iter().filter(|p| p.kind == "disk").map(|p| p.capacity * p.quantity as u64).sum();
    let nic_gbps: u64 = parts.iter().filter(|p| p.kind == "nic").map(|p| p.capacity * p.quantity as u64).sum();
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::new();
    out.push_str("# Reel appliance configuration, rendered from the inventory. Do not edit by hand.\n\n");
    out.push_str(&format!("[appliance]\nid = {}\nserial = {}\nstate = {}\nbase_url = {}\n\n", q(&a.id), q(&a.serial), q(&a.state), q(&a.base_url)));
    let prefixes: Vec<String> = site.prefixes.iter().map(|p| q(p)).collect();
    out.push_str(&format!(
        "[site]\nid = {}\nname = {}\nregion = {}\nlocation = {}\nclient_prefixes = [{}]\n\n",
        q(&site.id), q(&site.name), q(&site.region), q(&site.location), prefixes.join(", ")
    ));
    out.push_str(&format!("[model]\nid = {}\nname = {}\nvendor = {}\n\n", q(&model.id), q(&model.name), q(&model.vendor)));
    for p in &parts {
        out.push_str(&format!(
            "[[hardware]]\nkind = {}\ndescription = {}\nquantity = {}\ncapacity = {}\n\n",
            q(&p.kind), q(&p.description), p.quantity, p.capacity
        ));
    }
    // The cache gets 90% of the disks; serving is sized by the NICs.
    out.push_str(&format!("[cache]\nbytes = {}\n\n[serving]\nnic_gbps = {nic_gbps}\n", disk_bytes / 10 * 9));
    out
}

/// Renders the current config and keeps it as a new version if it changed.
pub async fn render_config(store: &Store, actor: &str, id: &str) -> Result<(i64, String, bool)> {
    let a = store.appliance(id).await?.ok_or(InventoryError::NotFound("appliance"))?;
    let site = store.sites().await?.into_iter().find(|s| s.id == a.site_id).ok_or(InventoryError::NotFound("site"))?;
    let model = store.models().await?.into_iter().find(|m| m.id == a.model).ok_or(InventoryError::NotFound("model"))?;
    let text = render(&a, &site, &model);
    let sha: String = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let (version, changed) = store.save_config_version(id, &text, &sha, actor).await?;
    if changed {
        audit(store, actor, "render-config", "appliance", id, None, Some(format!("{{\"version\":{version},\"sha256\":\"{sha}\"}}"))).await?;
    }
    Ok((version, text, changed))
}

/// A unified diff between two saved versions (`to` defaults to the latest,
/// `from` to the one before it).
pub async fn diff(store: &Store, id: &str, from: Option<i64>, to: Option<i64>) -> Result<(i64, i64, String)> {
    let versions = store.config_versions(id).await?;
    let latest = versions.last().map(|v| v.version).ok_or(InventoryError::NotFound("config version"))?;
    let to = to.unwrap_or(latest);
    let from = from.unwrap_or((to - 1).max(1));
    let find = |v: i64| versions.iter().find(|c| c.version == v).ok_or(InventoryError::NotFound("config version"));
    let (a, b) = (find(from)?, find(to)?);
    let text = similar::TextDiff::from_lines(&a.rendered, &b.rendered)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{id} v{from}"), &format!("{id} v{to}"))
        .to_string();
    Ok((from, to, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_deterministic_and_sized_from_parts() {
        let a = Appliance {
            id: "oca-1".into(),
            serial: "S1".into(),
            site_id: "s1".into(),
            model: "m1".into(),
            state: "active".into(),
            base_url: "http://127.0.0.1:9000".into(),
            last_report_ms: Some(1),
            report: "{\"requests\": 5}".into(),
        };
        let site = Site { id: "s1".into(), name: "Site \"One\"".into(), region: "east".into(), location: "x".into(), prefixes: vec!["127.0.1.0/24".into()] };
        let parts = vec![Part { kind: "disk".into(), description: "NVMe".into(), quantity: 2, capacity: 1000 }];
        let model = ApplianceModel { id: "m1".into(), name: "M".into(), vendor: "V".into(), parts: serde_json::to_string(&parts).unwrap_or_default() };
        let text = render(&a, &site, &model);
        assert_eq!(text, render(&a, &site, &model));
        assert!(text.contains("bytes = 1800"), "{text}");
        assert!(text.contains("name = \"Site \\\"One\\\"\""), "quotes escaped: {text}");
        assert!(!text.contains("requests"), "reports are not config");
    }
}
