-- Alerting: rules (threshold with a for-duration, or a change point in a
-- signal), the alerts they fire with their suspects, and an outbox of
-- events for the systems that act on them (remediation).

CREATE TABLE alert_rules (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    expr        TEXT NOT NULL,
    op          TEXT NOT NULL,
    threshold   DOUBLE PRECISION NOT NULL,
    for_s       BIGINT NOT NULL,
    window_s    BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- The alerting series' labels, JSON.
    labels      TEXT NOT NULL,
    state       TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    fired_ms    BIGINT NOT NULL,
    resolved_ms BIGINT,
    -- Ranked related series with their evidence, JSON.
    suspects    TEXT NOT NULL
);
CREATE INDEX alerts_by_rule ON alerts(rule_id, state);
CREATE INDEX alerts_by_time ON alerts(fired_ms);

CREATE TABLE events (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    body    TEXT NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX events_by_time ON events(at_ms);
