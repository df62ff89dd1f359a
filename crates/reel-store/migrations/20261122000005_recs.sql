-- Personalization: the genres a profile picked at sign-up, trained
-- recommendation models (versioned; one active), and artwork impressions
-- with the probability each variant was shown with, for offline evaluation.

CREATE TABLE profile_genres (
    profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    genre_slug TEXT NOT NULL REFERENCES genres(slug),
    PRIMARY KEY (profile_id, genre_slug)
);

CREATE TABLE recs_models (
    version    BIGINT PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    -- Training parameters and held-out metrics, JSON.
    params     TEXT NOT NULL,
    metrics    TEXT NOT NULL,
    -- The model itself, base64 (kept in the database so every node loads the same one).
    body       TEXT NOT NULL,
    active     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE artwork_impressions (
    id          TEXT PRIMARY KEY,
    profile_id  TEXT NOT NULL,
    title_id    TEXT NOT NULL,
    variant     TEXT NOT NULL,
    -- The probability the policy gave this variant when it was shown.
    propensity  DOUBLE PRECISION NOT NULL,
    -- The context the policy saw (JSON: features).
    context     TEXT NOT NULL,
    shown_ms    BIGINT NOT NULL,
    played_ms   BIGINT
);
CREATE INDEX artwork_impressions_by_profile ON artwork_impressions(profile_id, title_id, shown_ms);
CREATE INDEX artwork_impressions_by_time ON artwork_impressions(shown_ms);
