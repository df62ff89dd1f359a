-- The delivery fleet: sites (where appliances stand and which client
-- networks they serve) and appliances with their latest health report.

CREATE TABLE sites (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    region     TEXT NOT NULL,
    location   TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE site_prefixes (
    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    prefix  TEXT NOT NULL,
    PRIMARY KEY (site_id, prefix)
);

CREATE TABLE appliances (
    id             TEXT PRIMARY KEY,
    serial         TEXT NOT NULL UNIQUE,
    site_id        TEXT NOT NULL REFERENCES sites(id),
    model          TEXT NOT NULL,
    -- provisioning, active, draining, maintenance, failed
    state          TEXT NOT NULL,
    base_url       TEXT NOT NULL,
    last_report_ms BIGINT,
    -- The latest report as JSON (counters, load, titles held).
    report         TEXT NOT NULL,
    created_ms     BIGINT NOT NULL
);
CREATE INDEX appliances_by_site ON appliances(site_id);
