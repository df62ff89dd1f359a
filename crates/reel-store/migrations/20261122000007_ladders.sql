-- The per-title ladder the ingest pipeline chose for a title: every
-- candidate encode measured (bitrate, VMAF), the convex hull, the rungs, and
-- (once computed) the comparison with a fixed ladder, as one JSON document.

CREATE TABLE title_ladders (
    title_id    TEXT PRIMARY KEY REFERENCES titles(id) ON DELETE CASCADE,
    ladder      TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL
);
