//! Maturity ratings and what a kids profile may see.

use serde::{Deserialize, Serialize};

/// The highest [`Maturity::level`] a kids profile may see or play.
pub const KIDS_MAX_LEVEL: u8 = 1;

/// A content rating, US-style (film and TV scales share one ladder of levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Maturity {
    #[serde(rename = "TV-Y")]
    TvY,
    #[serde(rename = "TV-Y7")]
    TvY7,
    #[serde(rename = "G")]
    G,
    #[serde(rename = "TV-G")]
    TvG,
    #[serde(rename = "PG")]
    Pg,
    #[serde(rename = "TV-PG")]
    TvPg,
    #[serde(rename = "PG-13")]
    Pg13,
    #[serde(rename = "TV-14")]
    Tv14,
    #[serde(rename = "R")]
    R,
    #[serde(rename = "TV-MA")]
    TvMa,
    #[serde(rename = "NC-17")]
    Nc17,
}

impl Maturity {
    pub const ALL: [Maturity; 11] = [
        Maturity::TvY,
        Maturity::TvY7,
        Maturity::G,
        Maturity::TvG,
        Maturity::Pg,
        Maturity::TvPg,
        Maturity::Pg13,
        Maturity::Tv14,
        Maturity::R,
        Maturity::TvMa,
        Maturity::Nc17,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Maturity::TvY => "TV-Y",
            Maturity::TvY7 => "TV-Y7",
            Maturity::G => "G",
            Maturity::TvG => "TV-G",
            Maturity::Pg => "PG",
            Maturity::TvPg => "TV-PG",
            Maturity::Pg13 => "PG-13",
            Maturity::Tv14 => "TV-14",
            Maturity::R => "R",
            Maturity::TvMa => "TV-MA",
            Maturity::Nc17 => "NC-17",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Maturity::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// 0 little kids, 1 older kids, 2 teens, 3 adults.
    pub fn level(self) -> u8 {
        match self {
            Maturity::TvY | Maturity::G | Maturity::TvG => 0,
            Maturity::TvY7 | Maturity::Pg | Maturity::TvPg => 1,
            Maturity::Pg13 | Maturity::Tv14 => 2,
            Maturity::R | Maturity::TvMa | Maturity::Nc17 => 3,
        }
    }

    pub fn is_for_kids(self) -> bool {
        self.level() <= KIDS_MAX_LEVEL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_see_only_kids_ratings() {
        assert!(Maturity::TvY.is_for_kids());
        assert!(Maturity::Pg.is_for_kids());
        assert!(!Maturity::Pg13.is_for_kids());
        assert!(!Maturity::TvMa.is_for_kids());
        for m in Maturity::ALL {
            assert_eq!(Maturity::parse(m.as_str()), Some(m));
        }
    }
}
