-- Reel's first schema: accounts, catalog, playback and viewing history.
-- Written in the SQL that SQLite and PostgreSQL share (TEXT, BIGINT, DOUBLE
-- PRECISION; booleans as 0/1; times as Unix milliseconds) so one migration
-- serves both backends.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    plan          TEXT NOT NULL,
    role          TEXT NOT NULL,
    -- Bumped inside the transaction that starts a stream: it serialises
    -- concurrent starts for one account on every backend and every node.
    stream_gate   BIGINT NOT NULL DEFAULT 0,
    created_ms    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions(account_id);

-- One row per failed sign-in; counted over a sliding window for rate limiting.
CREATE TABLE signin_failures (
    subject TEXT NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX signin_failures_by_subject ON signin_failures(subject, at_ms);

CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    kids         BIGINT NOT NULL,
    avatar_color TEXT NOT NULL,
    created_ms   BIGINT NOT NULL
);
CREATE INDEX profiles_by_account ON profiles(account_id);

CREATE TABLE genres (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE titles (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    parent_id      TEXT REFERENCES titles(id) ON DELETE CASCADE,
    season_number  BIGINT,
    episode_number BIGINT,
    name           TEXT NOT NULL,
    name_lower     TEXT NOT NULL,
    synopsis       TEXT NOT NULL,
    year           BIGINT NOT NULL,
    maturity       TEXT NOT NULL,
    maturity_level BIGINT NOT NULL,
    duration_s     DOUBLE PRECISION NOT NULL,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);
CREATE INDEX titles_by_parent ON titles(parent_id, season_number, episode_number);
CREATE INDEX titles_by_created ON titles(created_ms);

CREATE TABLE title_genres (
    title_id   TEXT NOT NULL REFERENCES titles(id) ON DELETE CASCADE,
    genre_slug TEXT NOT NULL REFERENCES genres(slug),
    PRIMARY KEY (title_id, genre_slug)
);
CREATE INDEX title_genres_by_genre ON title_genres(genre_slug);

CREATE TABLE artwork (
    title_id TEXT NOT NULL REFERENCES titles(id) ON DELETE CASCADE,
    variant  TEXT NOT NULL,
    -- The variant's look (palette, layout) as JSON; the control plane draws it.
    style    TEXT NOT NULL,
    PRIMARY KEY (title_id, variant)
);

CREATE TABLE renditions (
    title_id          TEXT NOT NULL REFERENCES titles(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    width             BIGINT NOT NULL,
    height            BIGINT NOT NULL,
    bandwidth         BIGINT NOT NULL,
    average_bandwidth BIGINT NOT NULL,
    codecs            TEXT NOT NULL,
    playlist          TEXT NOT NULL,
    PRIMARY KEY (title_id, name)
);

CREATE TABLE streams (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    profile_id   TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    title_id     TEXT NOT NULL REFERENCES titles(id) ON DELETE CASCADE,
    max_height   BIGINT NOT NULL,
    started_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    position_s   DOUBLE PRECISION NOT NULL,
    ended_ms     BIGINT
);
CREATE INDEX streams_by_account ON streams(account_id, ended_ms, last_seen_ms);

-- Every play, heartbeat and completion, kept for the systems that learn from it.
CREATE TABLE viewing_events (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    title_id   TEXT NOT NULL,
    stream_id  TEXT,
    kind       TEXT NOT NULL,
    position_s DOUBLE PRECISION NOT NULL,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX viewing_events_by_profile ON viewing_events(profile_id, at_ms);
CREATE INDEX viewing_events_by_time ON viewing_events(at_ms);

-- Where each profile is in each title: the Continue Watching row and resume.
CREATE TABLE watch_progress (
    profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    title_id   TEXT NOT NULL REFERENCES titles(id) ON DELETE CASCADE,
    -- The series an episode belongs to, so the row can show the series once.
    series_id  TEXT,
    position_s DOUBLE PRECISION NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    completed  BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (profile_id, title_id)
);
CREATE INDEX watch_progress_by_profile ON watch_progress(profile_id, updated_ms);
