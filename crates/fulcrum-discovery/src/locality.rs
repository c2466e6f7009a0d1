//! Where endpoints are: a map from address ranges and host names to zones
//! and regions, for endpoints whose discovery said nothing of it.

use std::fmt;
use std::net::IpAddr;

use fulcrum_core::Endpoint;
use ipnet::IpNet;

/// The environment variable [`LocalityMap::from_env`] reads.
pub const LOCALITY_MAP_VAR: &str = "FULCRUM_LOCALITY_MAP";

/// Places endpoints in zones and regions by their address or host name.
///
/// Rules are tried in order; the first that matches gives the endpoint the
/// zone and region it names, where the endpoint has none already (a zone
/// from the target's own options, `;zone=`, wins). A rule matches
///
/// * an address range: `10.1.0.0/16` (any IPv4 or IPv6 CIDR), or
/// * a host-name suffix: `*.use1-az1.internal` matches the host of the
///   endpoint's authority, which for SRV is the record's target
///   (`web-3.use1-az1.internal`): the naming convention for SRV targets.
///
/// The text form is what [`parse`](LocalityMap::parse) reads and
/// `FULCRUM_LOCALITY_MAP` holds: rules separated by commas, each a range
/// or a suffix followed by `;zone=Z` and/or `;region=R`.
///
/// ```
/// use fulcrum_core::Endpoint;
/// use fulcrum_discovery::LocalityMap;
///
/// let map = LocalityMap::parse(
///     "10.1.0.0/16;zone=eu-west-1a;region=eu-west-1, *.use1-az1.internal;zone=use1-az1;region=us-east-1",
/// )
/// .unwrap();
/// let ep = map.apply(Endpoint::new("10.1.7.9:80".parse().unwrap()));
/// assert_eq!((ep.zone(), ep.region()), (Some("eu-west-1a"), Some("eu-west-1")));
///
/// let srv = Endpoint::new("192.0.2.4:80".parse().unwrap())
///     .with_authority("web-3.use1-az1.internal:80");
/// assert_eq!(map.apply(srv).zone(), Some("use1-az1"));
///
/// assert!(LocalityMap::parse("10.1.0.0/33;zone=a").is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalityMap {
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    matches: Match,
    zone: Option<String>,
    region: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Match {
    Range(IpNet),
    /// A lowercase suffix, starting with its dot.
    Suffix(String),
}

/// A locality map that could not be parsed: which rule, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalityMapError {
    rule: String,
    reason: &'static str,
}

impl fmt::Display for LocalityMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid locality rule `{}`: {}; write RANGE_OR_SUFFIX;zone=Z;region=R, e.g. \
             10.1.0.0/16;zone=eu-west-1a or *.use1-az1.internal;zone=use1-az1",
            self.rule.escape_debug(),
            self.reason
        )
    }
}

impl std::error::Error for LocalityMapError {}

impl LocalityMap {
    /// No rule: endpoints keep what discovery found.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses rules written as described in the [type docs](LocalityMap).
    pub fn parse(text: &str) -> Result<Self, LocalityMapError> {
        let mut map = LocalityMap::new();
        for raw in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let err = |reason| LocalityMapError {
                rule: raw.to_owned(),
                reason,
            };
            let mut parts = raw.split(';').map(str::trim);
            let matcher = parts.next().unwrap_or_default();
            let (mut zone, mut region) = (None, None);
            for option in parts {
                match option.split_once('=') {
                    Some(("zone", z)) if !z.is_empty() && zone.is_none() => zone = Some(z),
                    Some(("region", r)) if !r.is_empty() && region.is_none() => region = Some(r),
                    _ => return Err(err("options are `;zone=Z` and `;region=R`, each once")),
                }
            }
            if zone.is_none() && region.is_none() {
                return Err(err("a rule needs `;zone=Z`, `;region=R` or both"));
            }
            map = if let Some(suffix) = matcher.strip_prefix("*.") {
                map.suffix(suffix, zone, region)
                    .map_err(|_| err("`*.` must be followed by a host name"))?
            } else {
                map.range(matcher, zone, region).map_err(|_| {
                    err("not an address range (e.g. 10.1.0.0/16, fd00::/8) nor a suffix (*.name)")
                })?
            };
        }
        Ok(map)
    }

    /// The map in `FULCRUM_LOCALITY_MAP`: empty when the variable is unset
    /// or blank, an error when it does not parse.
    pub fn from_env() -> Result<Self, LocalityMapError> {
        match std::env::var(LOCALITY_MAP_VAR) {
            Ok(text) => Self::parse(&text),
            Err(_) => Ok(Self::new()),
        }
    }

    /// Adds a rule for the addresses in `range` (a CIDR such as
    /// `10.1.0.0/16`).
    pub fn range(
        mut self,
        range: &str,
        zone: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, LocalityMapError> {
        let net: IpNet = range.trim().parse().map_err(|_| LocalityMapError {
            rule: range.to_owned(),
            reason: "not an address range (e.g. 10.1.0.0/16, fd00::/8)",
        })?;
        self.rules.push(Rule {
            matches: Match::Range(net.trunc()),
            zone: zone.map(str::to_owned),
            region: region.map(str::to_owned),
        });
        Ok(self)
    }

    /// Adds a rule for the host names ending in `.suffix`.
    pub fn suffix(
        mut self,
        suffix: &str,
        zone: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, LocalityMapError> {
        let suffix = suffix.trim().trim_matches('.').to_ascii_lowercase();
        let valid = !suffix.is_empty()
            && suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(LocalityMapError {
                rule: suffix,
                reason: "not a host-name suffix",
            });
        }
        self.rules.push(Rule {
            matches: Match::Suffix(format!(".{suffix}")),
            zone: zone.map(str::to_owned),
            region: region.map(str::to_owned),
        });
        Ok(self)
    }

    /// Whether the map has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `endpoint`, placed by the first rule that matches it (its own zone
    /// and region, when it has them, are kept).
    pub fn apply(&self, mut endpoint: Endpoint) -> Endpoint {
        if self.rules.is_empty() || (endpoint.zone().is_some() && endpoint.region().is_some()) {
            return endpoint;
        }
        let ip = endpoint.addr().ip();
        let host = endpoint
            .authority()
            .map(|a| a.rsplit_once(':').map_or(a, |(h, _)| h))
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        let Some(rule) = self.rules.iter().find(|r| r.matches(ip, host.as_deref())) else {
            return endpoint;
        };
        if let (None, Some(zone)) = (endpoint.zone(), &rule.zone) {
            endpoint = endpoint.with_zone(zone.clone());
        }
        if let (None, Some(region)) = (endpoint.region(), &rule.region) {
            endpoint = endpoint.with_region(region.clone());
        }
        endpoint
    }
}

impl Rule {
    fn matches(&self, ip: IpAddr, host: Option<&str>) -> bool {
        match &self.matches {
            Match::Range(net) => net.contains(&ip.to_canonical()),
            Match::Suffix(suffix) => host.is_some_and(|h| h.ends_with(suffix.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(addr: &str) -> Endpoint {
        Endpoint::new(addr.parse().unwrap())
    }

    #[test]
    fn the_first_matching_rule_places_an_endpoint() {
        let map = LocalityMap::parse(
            "10.1.2.0/24;zone=a1, 10.1.0.0/16;zone=a;region=r, [::]/0;region=v6, *.b.internal;zone=b",
        );
        // `[::]/0` is not a range (brackets): refused, naming the rule.
        let e = map.unwrap_err();
        assert!(e.to_string().contains("`[::]/0;region=v6`"), "{e}");

        let map = LocalityMap::parse(
            "10.1.2.0/24;zone=a1, 10.1.0.0/16;zone=a;region=r, ::/0;region=v6, *.b.internal;zone=b",
        )
        .unwrap();
        let ep = map.apply(at("10.1.2.3:80"));
        assert_eq!((ep.zone(), ep.region()), (Some("a1"), None));
        let ep = map.apply(at("10.1.9.3:80"));
        assert_eq!((ep.zone(), ep.region()), (Some("a"), Some("r")));
        assert_eq!(map.apply(at("[2001:db8::1]:80")).region(), Some("v6"));
        // An IPv4-mapped address is the IPv4 address.
        assert_eq!(map.apply(at("[::ffff:10.1.9.3]:80")).zone(), Some("a"));
        let named = at("192.0.2.1:80").with_authority("Web-1.B.Internal.:80");
        assert_eq!(map.apply(named).zone(), Some("b"));
        // Not a suffix match: `xb.internal` is not under `.b.internal`.
        let other = at("192.0.2.1:80").with_authority("xb.internal:80");
        assert_eq!(map.apply(other).zone(), None);
        // What the endpoint already has is kept.
        let own = map.apply(at("10.1.9.3:80").with_zone("mine"));
        assert_eq!((own.zone(), own.region()), (Some("mine"), Some("r")));
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for (text, says) in [
            ("10.0.0.0/8", "needs `;zone=Z`"),
            ("10.0.0.0/8;zone=", "options are"),
            ("10.0.0.0/8;zone=a;zone=b", "each once"),
            ("10.0.0.0/8;rack=a", "options are"),
            ("10.0.0.0/40;zone=a", "not an address range"),
            ("api.internal;zone=a", "not an address range"),
            ("*.;zone=a", "host name"),
        ] {
            let e = LocalityMap::parse(text).unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
        assert!(LocalityMap::parse("").unwrap().is_empty());
    }
}
