//! Reading the MovieLens 100K files (GroupLens, `ml-100k`): the one place
//! the engine touches the file system, so evaluations run on a public data
//! set everyone can compare against.
//!
//! * `u.data` — `user \t item \t rating \t unix time`, ids from 1.
//! * `u.item` — `id|title|release date|video release date|IMDb URL|` then
//!   19 genre flags; the text is Latin-1 (titles such as "Misérables"),
//!   not UTF-8.
//! * `u.genre` — `name|index`, the genres in flag order.
//!
//! Ids become 0-based: user `u` is `u − 1`, item `i` is `i − 1`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::interactions::Event;

/// A title of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Movie {
    pub title: String,
    /// Indices into [`MovieLens::genres`].
    pub genres: Vec<usize>,
}

/// The ratings, titles and genres of MovieLens 100K.
#[derive(Debug, Clone, PartialEq)]
pub struct MovieLens {
    /// One event per rating: the rating (1–5) as weight, 0-based ids.
    pub ratings: Vec<Event>,
    /// Item `i` is `movies[i]`.
    pub movies: Vec<Movie>,
    pub genres: Vec<String>,
}

impl MovieLens {
    pub fn n_users(&self) -> usize {
        self.ratings
            .iter()
            .map(|e| e.user as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Items: every listed movie, and any rated item beyond the list.
    pub fn n_items(&self) -> usize {
        let rated = self
            .ratings
            .iter()
            .map(|e| e.item as usize + 1)
            .max()
            .unwrap_or(0);
        rated.max(self.movies.len())
    }
}

fn read(path: PathBuf) -> Result<Vec<u8>> {
    std::fs::read(&path).map_err(|source| Error::Read { path, source })
}

/// Loads `u.data`, `u.item` and `u.genre` from an `ml-100k` directory.
pub fn load_movielens_100k(dir: &Path) -> Result<MovieLens> {
    let ratings = parse_ratings(&read(dir.join("u.data"))?)?;
    let genres = parse_genres(&read(dir.join("u.genre"))?)?;
    let movies = parse_items(&read(dir.join("u.item"))?, genres.len())?;
    Ok(MovieLens {
        ratings,
        movies,
        genres,
    })
}

/// ISO-8859-1 to a Rust string: every byte is the code point of its value.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
}

fn parse_err(file: &str, line: usize, message: impl Into<String>) -> Error {
    Error::Parse {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

fn field<T: std::str::FromStr>(
    file: &str,
    line: usize,
    name: &str,
    raw: Option<&[u8]>,
) -> Result<T> {
    let raw = raw.ok_or_else(|| parse_err(file, line, format!("missing {name}")))?;
    let text = latin1(raw);
    text.trim()
        .parse()
        .map_err(|_| parse_err(file, line, format!("{name} {text:?} is not a number")))
}

fn one_based(file: &str, line: usize, name: &str, v: u64) -> Result<u32> {
    if v == 0 || v > u32::MAX as u64 {
        return Err(parse_err(
            file,
            line,
            format!("{name} {v} is not a 1-based id"),
        ));
    }
    Ok((v - 1) as u32)
}

/// `u.data`: tab-separated user, item, rating, time.
pub fn parse_ratings(bytes: &[u8]) -> Result<Vec<Event>> {
    const F: &str = "u.data";
    let mut out = Vec::new();
    for (line, text) in lines(bytes) {
        let mut parts = text.split(|&b| b == b'\t');
        let user: u64 = field(F, line, "user", parts.next())?;
        let item: u64 = field(F, line, "item", parts.next())?;
        let rating: f32 = field(F, line, "rating", parts.next())?;
        let timestamp: i64 = field(F, line, "time", parts.next())?;
        if !rating.is_finite() {
            return Err(parse_err(F, line, "rating is not finite"));
        }
        out.push(Event {
            user: one_based(F, line, "user", user)?,
            item: one_based(F, line, "item", item)?,
            weight: rating,
            timestamp,
        });
    }
    Ok(out)
}

/// `u.genre`: `name|index` lines, indices 0, 1, 2, … in order.
pub fn parse_genres(bytes: &[u8]) -> Result<Vec<String>> {
    const F: &str = "u.genre";
    let mut out = Vec::new();
    for (line, text) in lines(bytes) {
        let mut parts = text.split(|&b| b == b'|');
        let name = latin1(parts.next().unwrap_or_default());
        let index: usize = field(F, line, "genre index", parts.next())?;
        if index != out.len() {
            return Err(parse_err(
                F,
                line,
                format!("genre index {index}, expected {}", out.len()),
            ));
        }
        out.push(name);
    }
    Ok(out)
}

/// `u.item`: pipe-separated, Latin-1; the last `n_genres` fields are 0/1
/// flags. Movie `id` lands at index `id − 1`; gaps get empty titles.
pub fn parse_items(bytes: &[u8], n_genres: usize) -> Result<Vec<Movie>> {
    const F: &str = "u.item";
    let mut out: Vec<Movie> = Vec::new();
    for (line, text) in lines(bytes) {
        let parts: Vec<&[u8]> = text.split(|&b| b == b'|').collect();
        if parts.len() < 2 + n_genres {
            return Err(parse_err(
                F,
                line,
                format!("{} fields, expected at least {}", parts.len(), 2 + n_genres),
            ));
        }
        let id: u64 = field(F, line, "movie id", parts.first().copied())?;
        let index = one_based(F, line, "movie id", id)? as usize;
        let flags = &parts[parts.len() - n_genres..];
        let mut genres = Vec::new();
        for (g, flag) in flags.iter().enumerate() {
            match flag.trim_ascii() {
                b"1" => genres.push(g),
                b"0" => {}
                other => {
                    return Err(parse_err(
                        F,
                        line,
                        format!("genre flag {:?} is not 0 or 1", latin1(other)),
                    ));
                }
            }
        }
        if index >= out.len() {
            out.resize(
                index + 1,
                Movie {
                    title: String::new(),
                    genres: Vec::new(),
                },
            );
        }
        out[index] = Movie {
            title: latin1(parts[1]),
            genres,
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_decode_latin1_and_genre_flags() {
        // "Misérables" with é as the single Latin-1 byte 0xE9 (invalid UTF-8).
        let mut bytes = b"2|Mis".to_vec();
        bytes.push(0xE9);
        bytes.extend_from_slice(b"rables, Les (1995)|01-Jan-1995||http://x|0|1|1\r\n");
        bytes.extend_from_slice(b"1|Toy Story (1995)|01-Jan-1995||http://y|1|0|0\n");
        assert!(std::str::from_utf8(&bytes).is_err());
        let movies = parse_items(&bytes, 3).expect("valid u.item");
        assert_eq!(movies[1].title, "Misérables, Les (1995)");
        assert_eq!(movies[1].genres, vec![1, 2]);
        assert_eq!(movies[0].title, "Toy Story (1995)");
        assert_eq!(movies[0].genres, vec![0]);
    }

    #[test]
    fn ratings_and_genres_parse_with_line_numbers_on_errors() {
        let r = parse_ratings(b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n").expect("valid");
        assert_eq!(
            r[0],
            Event {
                user: 195,
                item: 241,
                weight: 3.0,
                timestamp: 881250949
            }
        );
        let err = parse_ratings(b"1\t2\t3\t4\n1\tx\t3\t4\n").expect_err("bad item");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(parse_ratings(b"0\t1\t3\t4\n").is_err(), "ids are 1-based");
        let g = parse_genres(b"unknown|0\nAction|1\n\n").expect("valid");
        assert_eq!(g, vec!["unknown", "Action"]);
        assert!(parse_genres(b"unknown|1\n").is_err());
    }
}
