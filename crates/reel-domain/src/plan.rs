//! Subscription plans and account roles.

use serde::{Deserialize, Serialize};

/// What an account pays for: how many streams at once and the tallest picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Basic,
    Standard,
    Premium,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Basic, Plan::Standard, Plan::Premium];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Basic => "basic",
            Plan::Standard => "standard",
            Plan::Premium => "premium",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Plan::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Concurrent streams the plan allows.
    pub fn max_streams(self) -> u32 {
        match self {
            Plan::Basic => 1,
            Plan::Standard => 2,
            Plan::Premium => 4,
        }
    }

    /// The tallest rendition (in lines) the plan may receive.
    pub fn max_height(self) -> u32 {
        match self {
            Plan::Basic => 720,
            Plan::Standard => 1080,
            Plan::Premium => 2160,
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Plan::Basic => "Basic",
            Plan::Standard => "Standard",
            Plan::Premium => "Premium",
        }
    }
}

/// What an account may do beyond watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_limits() {
        assert_eq!((Plan::Basic.max_streams(), Plan::Basic.max_height()), (1, 720));
        assert_eq!((Plan::Standard.max_streams(), Plan::Standard.max_height()), (2, 1080));
        assert_eq!((Plan::Premium.max_streams(), Plan::Premium.max_height()), (4, 2160));
        assert_eq!(Plan::parse("premium"), Some(Plan::Premium));
        assert_eq!(Plan::parse("gold"), None);
    }
}
