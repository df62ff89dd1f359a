//! Steering: for one client and one title, the ordered list of places to
//! fetch video from, each with the reasons for its place.
//!
//! Appliances at the site whose client prefixes contain the client's address
//! come first (longest prefix wins), then the rest of that site's region, then
//! every other region, then the origin. Within a tier, appliances that hold
//! the title beat those that would have to fill it, and more load headroom
//! beats less. Appliances that are not active and healthy are left out, and
//! the decision says why.
//!
//! A plain engine: no network, no database. Callers pass in the fleet's state.
//!
//! ```
//! use reel_steering::{steer, ApplianceInfo, Prefix, SiteInfo};
//! let sites = vec![SiteInfo { id: "s1".into(), name: "One".into(), region: "east".into(),
//!                             prefixes: vec!["127.0.1.0/24".parse().unwrap()] }];
//! let fleet = vec![ApplianceInfo { id: "a1".into(), site_id: "s1".into(), base_url: "http://127.0.0.1:9001".into(),
//!                                  active: true, healthy: true, load: 0.1, holds_title: Some(true) }];
//! let d = steer("127.0.1.9".parse().unwrap(), &sites, &fleet, "http://127.0.0.1:8080");
//! assert_eq!(d.places[0].url, "http://127.0.0.1:9001");
//! assert_eq!(d.places.last().map(|p| p.url.as_str()), Some("http://127.0.0.1:8080"));
//! ```

pub mod fill;

use serde::Serialize;
use std::net::IpAddr;

/// An IPv4 or IPv6 network prefix such as `127.0.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixError(pub String);

impl std::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a network prefix like 127.0.1.0/24 or 2001:db8::/32", self.0)
    }
}

impl std::error::Error for PrefixError {}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u32::from(v4) as u128, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let all = if width == 32 { u32::MAX as u128 } else { u128::MAX };
        all & !((1u128 << (width - len)) - 1) & all
    }
}

impl std::str::FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PrefixError(s.to_string());
        let (addr, len) = s.trim().split_once('/').ok_or_else(err)?;
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let len: u8 = len.parse().map_err(|_| err())?;
        let (value, width) = bits(addr);
        if len > width || value & !mask(len, width) != 0 {
            return Err(err()); // host bits set, or too long
        }
        Ok(Prefix { addr, len })
    }
}

impl From<Prefix> for String {
    fn from(p: Prefix) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Prefix {
    pub fn len(&self) -> u8 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` lies in this prefix (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let (net, width) = bits(self.addr);
        let (value, w) = bits(ip);
        w == width && value & mask(self.len, width) == net
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteInfo {
    pub id: String,
    pub name: String,
    pub region: String,
    pub prefixes: Vec<Prefix>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplianceInfo {
    pub id: String,
    pub site_id: String,
    pub base_url: String,
    /// In the `active` state (not provisioning, draining, maintenance, failed).
    pub active: bool,
    /// Reporting on time and without faults.
    pub healthy: bool,
    /// Share of capacity in use, 0 to 1.
    pub load: f64,
    /// Whether it holds the title; `None` when unknown.
    pub holds_title: Option<bool>,
}

/// How close a place is to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// At a site whose prefixes contain the client.
    ClientSite,
    /// Another site in the client's region.
    Region,
    /// Any other site.
    Elsewhere,
    /// The origin, always last.
    Origin,
}

/// One place in the ranking.
#[derive(Debug, Clone, Serialize)]
pub struct Place {
    pub rank: usize,
    pub url: String,
    pub tier: Tier,
    pub appliance_id: Option<String>,
    pub site_id: Option<String>,
    pub reasons: Vec<String>,
}

/// The ranking, and what was left out and why.
#[derive(Debug, Clone, Serialize)]
pub struct SteeringDecision {
    pub client: IpAddr,
    /// The site whose prefix matched the client (longest match), if any.
    pub client_site: Option<String>,
    pub client_region: Option<String>,
    pub places: Vec<Place>,
    pub excluded: Vec<(String, String)>,
}

/// Ranks the fleet for `client`; the origin is always the last place.
pub fn steer(client: IpAddr, sites: &[SiteInfo], appliances: &[ApplianceInfo], origin_url: &str) -> SteeringDecision {
    // Longest prefix match over every site.
    let matched = sites
        .iter()
        .filter_map(|s| s.prefixes.iter().filter(|p| p.contains(client)).map(|p| p.len()).max().map(|len| (s, len)))
        .max_by_key(|(s, len)| (*len, std::cmp::Reverse(s.id.clone())));
    let client_region = matched.map(|(s, _)| s.region.clone());

    let mut excluded = Vec::new();
    let mut ranked: Vec<(Tier, bool, f64, &ApplianceInfo, Vec<String>)> = Vec::new();
    for a in appliances {
        if !a.active {
            excluded.push((a.id.clone(), "not in the active state".to_string()));
            continue;
        }
        if !a.healthy {
            excluded.push((a.id.clone(), "unhealthy: missed its health reports or reported faults".to_string()));
            continue;
        }
        let site = sites.iter().find(|s| s.id == a.site_id);
        let mut reasons = Vec::new();
        let tier = match (matched, site) {
            (Some((cs, len)), Some(s)) if cs.id == s.id => {
                reasons.push(format!("at {} whose prefix /{len} contains {client}", s.name));
                Tier::ClientSite
            }
            (Some((cs, _)), Some(s)) if cs.region == s.region => {
                reasons.push(format!("at {} in the client's region {}", s.name, s.region));
                Tier::Region
            }
            (_, Some(s)) => {
                reasons.push(format!("at {} in region {}, outside the client's", s.name, s.region));
                Tier::Elsewhere
            }
            (_, None) => {
                reasons.push("its site is unknown".to_string());
                Tier::Elsewhere
            }
        };
        let holds = a.holds_title.unwrap_or(false);
        reasons.push(match a.holds_title {
            Some(true) => "holds the title".to_string(),
            Some(false) => "would fill the title from upstream".to_string(),
            None => "unknown whether it holds the title".to_string(),
        });
        let load = if a.load.is_finite() { a.load.clamp(0.0, 1.0) } else { 1.0 };
        reasons.push(format!("{:.0}% load headroom", (1.0 - load) * 100.0));
        ranked.push((tier, holds, load, a, reasons));
    }
    ranked.sort_by(|x, y| {
        x.0.cmp(&y.0)
            .then(y.1.cmp(&x.1))
            .then(x.2.partial_cmp(&y.2).unwrap_or(std::cmp::Ordering::Equal))
            .then(x.3.id.cmp(&y.3.id))
    });
    let mut places: Vec<Place> = ranked
        .into_iter()
        .enumerate()
        .map(|(i, (tier, _, _, a, reasons))| Place {
            rank: i + 1,
            url: a.base_url.clone(),
            tier,
            appliance_id: Some(a.id.clone()),
            site_id: Some(a.site_id.clone()),
            reasons,
        })
        .collect();
    places.push(Place {
        rank: places.len() + 1,
        url: origin_url.to_string(),
        tier: Tier::Origin,
        appliance_id: None,
        site_id: None,
        reasons: vec!["the origin holds everything; last resort".to_string()],
    });
    SteeringDecision {
        client,
        client_site: matched.map(|(s, _)| s.id.clone()),
        client_region,
        places,
        excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn site(id: &str, region: &str, prefixes: &[&str]) -> SiteInfo {
        SiteInfo { id: id.into(), name: id.into(), region: region.into(), prefixes: prefixes.iter().map(|s| p(s)).collect() }
    }

    fn app(id: &str, site: &str, load: f64, holds: bool) -> ApplianceInfo {
        ApplianceInfo { id: id.into(), site_id: site.into(), base_url: format!("http://{id}"), active: true, healthy: true, load, holds_title: Some(holds) }
    }

    fn order(d: &SteeringDecision) -> Vec<String> {
        d.places.iter().map(|p| p.appliance_id.clone().unwrap_or_else(|| "origin".into())).collect()
    }

    #[test]
    fn prefixes_parse_and_match() {
        assert!(p("127.0.1.0/24").contains("127.0.1.200".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(!p("127.0.1.0/24").contains("127.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(p("0.0.0.0/0").contains("8.8.8.8".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(p("127.0.0.0/8").contains("::ffff:127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(p("2001:db8::/32").contains("2001:db8::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        for bad in ["127.0.1.1/24", "127.0.1.0", "127.0.1.0/33", "x/8", "::/129"] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn client_site_then_region_then_elsewhere_then_origin() {
        let sites = [site("a", "east", &["127.0.1.0/24"]), site("b", "east", &["127.0.2.0/24"]), site("c", "west", &["127.0.3.0/24"])];
        let fleet = [app("c1", "c", 0.0, true), app("b1", "b", 0.0, true), app("a1", "a", 0.9, false)];
        let d = steer("127.0.1.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), &sites, &fleet, "http://origin");
        assert_eq!(order(&d), ["a1", "b1", "c1", "origin"]);
        assert_eq!(d.client_region.as_deref(), Some("east"));
        assert!(d.places[0].reasons[0].contains("/24"));
    }

    #[test]
    fn longest_prefix_wins() {
        let sites = [site("wide", "east", &["127.0.0.0/16"]), site("narrow", "east", &["127.0.1.0/24"])];
        let fleet = [app("w", "wide", 0.0, true), app("n", "narrow", 0.5, true)];
        let d = steer("127.0.1.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), &sites, &fleet, "o");
        assert_eq!(order(&d), ["n", "w", "origin"]);
    }

    #[test]
    fn holding_the_title_then_headroom_break_ties() {
        let sites = [site("a", "east", &["127.0.1.0/24"])];
        let fleet = [app("busy", "a", 0.8, true), app("idle", "a", 0.1, true), app("empty", "a", 0.0, false)];
        let d = steer("127.0.1.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), &sites, &fleet, "o");
        assert_eq!(order(&d), ["idle", "busy", "empty", "origin"]);
    }

    #[test]
    fn unhealthy_and_inactive_are_left_out_with_reasons() {
        let sites = [site("a", "east", &["127.0.1.0/24"])];
        let mut sick = app("sick", "a", 0.0, true);
        sick.healthy = false;
        let mut drain = app("drain", "a", 0.0, true);
        drain.active = false;
        let d = steer("127.0.1.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), &sites, &[sick, drain, app("ok", "a", 0.5, true)], "o");
        assert_eq!(order(&d), ["ok", "origin"]);
        assert_eq!(d.excluded.len(), 2);
    }

    #[test]
    fn unknown_clients_get_every_healthy_appliance_then_origin() {
        let sites = [site("a", "east", &["127.0.1.0/24"])];
        let d = steer("10.9.9.9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), &sites, &[app("x", "a", 0.0, true)], "o");
        assert_eq!(order(&d), ["x", "origin"]);
        assert_eq!(d.places[0].tier, Tier::Elsewhere);
        assert_eq!(d.client_site, None);
    }
}
