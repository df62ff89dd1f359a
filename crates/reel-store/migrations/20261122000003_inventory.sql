-- Inventory: appliance models and their parts, an audit trail of changes,
-- and every rendered appliance config kept as a numbered version.

CREATE TABLE appliance_models (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    vendor     TEXT NOT NULL,
    -- [{kind, description, quantity, capacity}] as JSON.
    parts      TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id        TEXT PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before    TEXT,
    after     TEXT
);
CREATE INDEX audit_log_by_time ON audit_log(at_ms);

CREATE TABLE config_versions (
    appliance_id TEXT NOT NULL,
    version      BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    rendered     TEXT NOT NULL,
    actor        TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (appliance_id, version)
);
