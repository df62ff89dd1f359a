//! The catalog: titles (movies, series, episodes), genres, artwork variants and
//! the renditions each playable title was packaged into.

use crate::{conflict, get, like_pattern, Result, Store, StoreError};
use reel_domain::{Maturity, TitleKind};
use serde::Serialize;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize)]
pub struct Genre {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Title {
    pub id: String,
    pub kind: TitleKind,
    pub parent_id: Option<String>,
    pub season_number: Option<i64>,
    pub episode_number: Option<i64>,
    pub name: String,
    pub synopsis: String,
    pub year: i64,
    pub maturity: Maturity,
    pub duration_s: f64,
    /// Genre slugs, sorted.
    pub genres: Vec<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewTitle {
    /// A chosen id (the demo catalog uses readable slugs); random when `None`.
    pub id: Option<String>,
    pub kind: TitleKind,
    pub parent_id: Option<String>,
    pub season_number: Option<i64>,
    pub episode_number: Option<i64>,
    pub name: String,
    pub synopsis: String,
    pub year: i64,
    pub maturity: Maturity,
    pub duration_s: f64,
    pub genres: Vec<String>,
    /// (variant, style JSON) pairs.
    pub artwork: Vec<(String, String)>,
    /// Creation time; `None` means now. The demo spreads these out so "New" has an order.
    pub created_ms: Option<i64>,
}

/// Fields an editor may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TitlePatch {
    pub name: Option<String>,
    pub synopsis: Option<String>,
    pub year: Option<i64>,
    pub maturity: Option<Maturity>,
    pub duration_s: Option<f64>,
    pub genres: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Artwork {
    pub variant: String,
    pub style: String,
}

/// One packaged rendition of a playable title.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rendition {
    pub name: String,
    pub width: i64,
    pub height: i64,
    /// Peak bits per second, as HLS `BANDWIDTH`.
    pub bandwidth: i64,
    pub average_bandwidth: i64,
    /// RFC 6381 codecs string, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    /// The media playlist, relative to the title's origin directory.
    pub playlist: String,
}

/// Which titles a listing returns.
#[derive(Debug, Clone, Default)]
pub struct TitleFilter {
    /// Highest maturity level to include (kids profiles pass 1).
    pub max_level: Option<u8>,
    /// Only these kinds; empty means movies and series (what a browse shows).
    pub kinds: Vec<TitleKind>,
    pub genre: Option<String>,
    /// Case-insensitive substring of the name.
    pub query: Option<String>,
    pub limit: Option<i64>,
}

const TITLE_COLS: &str = "id, kind, parent_id, season_number, episode_number, name, synopsis, \
                          year, maturity, duration_s, created_ms, updated_ms";

fn title_from(row: &AnyRow) -> Result<Title> {
    let kind: String = get(row, "kind")?;
    let maturity: String = get(row, "maturity")?;
    Ok(Title {
        id: get(row, "id")?,
        kind: TitleKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind:?}")))?,
        parent_id: get(row, "parent_id")?,
        season_number: get(row, "season_number")?,
        episode_number: get(row, "episode_number")?,
        name: get(row, "name")?,
        synopsis: get(row, "synopsis")?,
        year: get(row, "year")?,
        maturity: Maturity::parse(&maturity)
            .ok_or_else(|| StoreError::Corrupt(format!("maturity {maturity:?}")))?,
        duration_s: get(row, "duration_s")?,
        genres: Vec::new(),
        created_ms: get(row, "created_ms")?,
        updated_ms: get(row, "updated_ms")?,
    })
}

impl Store {
    pub async fn upsert_genre(&self, slug: &str, name: &str) -> Result<()> {
        sqlx::query("INSERT INTO genres (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO UPDATE SET name = $2")
            .bind(slug)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn genres(&self) -> Result<Vec<Genre>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT slug, name FROM genres ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(slug, name)| Genre { slug, name }).collect())
    }

    pub async fn title_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM titles").fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Adds a title with its genres and artwork in one transaction. Unknown
    /// genre slugs are rejected as [`StoreError::NotFound`].
    pub async fn create_title(&self, new: NewTitle) -> Result<Title> {
        let now = reel_domain::now_ms();
        let created = new.created_ms.unwrap_or(now);
        let id = new.id.clone().unwrap_or_else(|| reel_domain::new_id("ttl"));
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO titles ({TITLE_COLS}, name_lower, maturity_level) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&id)
        .bind(new.kind.as_str())
        .bind(&new.parent_id)
        .bind(new.season_number)
        .bind(new.episode_number)
        .bind(&new.name)
        .bind(&new.synopsis)
        .bind(new.year)
        .bind(new.maturity.as_str())
        .bind(new.duration_s)
        .bind(created)
        .bind(now)
        .bind(new.name.to_lowercase())
        .bind(new.maturity.level() as i64)
        .execute(&mut *tx)
        .await
        .map_err(conflict("a title with this id"))?;
        set_genres(&mut tx, &id, &new.genres).await?;
        for (variant, style) in &new.artwork {
            sqlx::query("INSERT INTO artwork (title_id, variant, style) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(variant)
                .bind(style)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.title(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn update_title(&self, id: &str, patch: TitlePatch) -> Result<Title> {
        let mut tx = self.pool.begin().await?;
        // Write first, so SQLite takes its write lock before the read (see playback.rs).
        sqlx::query("UPDATE titles SET updated_ms = updated_ms WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("SELECT {TITLE_COLS} FROM titles WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut t = title_from(&row)?;
        if let Some(v) = patch.name {
            t.name = v;
        }
        if let Some(v) = patch.synopsis {
            t.synopsis = v;
        }
        if let Some(v) = patch.year {
            t.year = v;
        }
        if let Some(v) = patch.maturity {
            t.maturity = v;
        }
        if let Some(v) = patch.duration_s {
            t.duration_s = v;
        }
        sqlx::query(
            "UPDATE titles SET name = $1, name_lower = $2, synopsis = $3, year = $4, maturity = $5, \
             maturity_level = $6, duration_s = $7, updated_ms = $8 WHERE id = $9",
        )
        .bind(&t.name)
        .bind(t.name.to_lowercase())
        .bind(&t.synopsis)
        .bind(t.year)
        .bind(t.maturity.as_str())
        .bind(t.maturity.level() as i64)
        .bind(t.duration_s)
        .bind(reel_domain::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(genres) = patch.genres {
            sqlx::query("DELETE FROM title_genres WHERE title_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            set_genres(&mut tx, id, &genres).await?;
        }
        tx.commit().await?;
        self.title(id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn delete_title(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM titles WHERE id = $1").bind(id).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn title(&self, id: &str) -> Result<Option<Title>> {
        let row = sqlx::query(&format!("SELECT {TITLE_COLS} FROM titles WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut t = vec![title_from(&row)?];
        self.fill_genres(&mut t).await?;
        Ok(t.pop())
    }

    /// Titles matching `filter`, newest first.
    pub async fn titles(&self, filter: &TitleFilter) -> Result<Vec<Title>> {
        let mut sql = format!("SELECT {TITLE_COLS} FROM titles t WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        let kinds: Vec<&str> = if filter.kinds.is_empty() {
            vec!["movie", "series"]
        } else {
            filter.kinds.iter().map(|k| k.as_str()).collect()
        };
        let kind_params: Vec<String> = kinds.iter().map(|_| next()).collect();
        sql.push_str(&format!(" AND kind IN ({})", kind_params.join(", ")));
        if filter.max_level.is_some() {
            sql.push_str(&format!(" AND maturity_level <= {}", next()));
        }
        if filter.genre.is_some() {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM title_genres g WHERE g.title_id = t.id AND g.genre_slug = {})",
                next()
            ));
        }
        if filter.query.is_some() {
            sql.push_str(&format!(" AND name_lower LIKE {} ESCAPE '\\'", next()));
        }
        sql.push_str(" ORDER BY created_ms DESC, id");
        if filter.limit.is_some() {
            sql.push_str(&format!(" LIMIT {}", next()));
        }
        let mut q = sqlx::query(&sql);
        for k in kinds {
            q = q.bind(k);
        }
        if let Some(level) = filter.max_level {
            q = q.bind(level as i64);
        }
        if let Some(g) = &filter.genre {
            q = q.bind(g.clone());
        }
        if let Some(text) = &filter.query {
            q = q.bind(like_pattern(&text.to_lowercase()));
        }
        if let Some(limit) = filter.limit {
            q = q.bind(limit);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut titles = rows.iter().map(title_from).collect::<Result<Vec<_>>>()?;
        self.fill_genres(&mut titles).await?;
        Ok(titles)
    }

    /// A series' episodes in season and episode order.
    pub async fn episodes(&self, series_id: &str) -> Result<Vec<Title>> {
        let rows = sqlx::query(&format!(
            "SELECT {TITLE_COLS} FROM titles WHERE parent_id = $1 AND kind = 'episode' \
             ORDER BY season_number, episode_number, id"
        ))
        .bind(series_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(title_from).collect()
    }

    pub async fn artwork(&self, title_id: &str) -> Result<Vec<Artwork>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT variant, style FROM artwork WHERE title_id = $1 ORDER BY variant")
                .bind(title_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(variant, style)| Artwork { variant, style }).collect())
    }

    pub async fn renditions(&self, title_id: &str) -> Result<Vec<Rendition>> {
        let rows = sqlx::query(
            "SELECT name, width, height, bandwidth, average_bandwidth, codecs, playlist \
             FROM renditions WHERE title_id = $1 ORDER BY height DESC, bandwidth DESC",
        )
        .bind(title_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Rendition {
                    name: get(r, "name")?,
                    width: get(r, "width")?,
                    height: get(r, "height")?,
                    bandwidth: get(r, "bandwidth")?,
                    average_bandwidth: get(r, "average_bandwidth")?,
                    codecs: get(r, "codecs")?,
                    playlist: get(r, "playlist")?,
                })
            })
            .collect()
    }

    /// The ladder document the ingest pipeline stored for a title.
    pub async fn ladder(&self, title_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT ladder FROM title_ladders WHERE title_id = $1")
            .bind(title_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get(&r, "ladder")).transpose()
    }

    /// Stores (or replaces) a title's ladder document.
    pub async fn set_ladder(&self, title_id: &str, ladder: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM title_ladders WHERE title_id = $1")
            .bind(title_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO title_ladders (title_id, ladder, updated_ms) VALUES ($1, $2, $3)")
            .bind(title_id)
            .bind(ladder)
            .bind(reel_domain::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a title's renditions (after packaging) in one transaction.
    pub async fn set_renditions(&self, title_id: &str, renditions: &[Rendition]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM renditions WHERE title_id = $1")
            .bind(title_id)
            .execute(&mut *tx)
            .await?;
        for r in renditions {
            sqlx::query(
                "INSERT INTO renditions (title_id, name, width, height, bandwidth, average_bandwidth, codecs, playlist) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(title_id)
            .bind(&r.name)
            .bind(r.width)
            .bind(r.height)
            .bind(r.bandwidth)
            .bind(r.average_bandwidth)
            .bind(&r.codecs)
            .bind(&r.playlist)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fill_genres(&self, titles: &mut [Title]) -> Result<()> {
        if titles.is_empty() {
            return Ok(());
        }
        let params: Vec<String> = (1..=titles.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT title_id, genre_slug FROM title_genres WHERE title_id IN ({}) ORDER BY genre_slug",
            params.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, String)>(&sql);
        for t in titles.iter() {
            q = q.bind(t.id.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let index: std::collections::HashMap<String, usize> =
            titles.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
        for (tid, slug) in rows {
            if let Some(&i) = index.get(&tid) {
                titles[i].genres.push(slug);
            }
        }
        Ok(())
    }
}

async fn set_genres(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str, genres: &[String]) -> Result<()> {
    for g in genres {
        sqlx::query("INSERT INTO title_genres (title_id, genre_slug) VALUES ($1, $2)")
            .bind(id)
            .bind(g)
            .execute(&mut **tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("genre on title"),
                _ => StoreError::Database(e),
            })?;
    }
    Ok(())
}
