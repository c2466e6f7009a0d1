use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One instance of a service: an address to connect to, plus what the
/// balancer needs to know to share load with it.
///
/// An endpoint is identified by its [`addr`](Endpoint::addr): two endpoints
/// with the same address in one [`EndpointSet`](crate::EndpointSet) are the
/// same endpoint.
///
/// * `authority` is the logical name the endpoint was found under (for the
///   `Host` header or TLS SNI), e.g. `api.internal:8080`.
/// * `weight` is its relative capacity, 1 by default. Every picker reads it.
///   Weight 0 marks a standby endpoint: it is picked only when no endpoint
///   with a positive weight is available.
/// * `priority` is its tier (lower is preferred), as in DNS SRV records.
/// * `zone` and `region` place it (an availability zone inside a region):
///   zone-aware routing keeps requests in the client's own zone, and the
///   region is what region fail-over and nearest-region routing choose among.
/// * `labels` are free-form metadata for subsets, policies and stats.
///
/// ```
/// use fulcrum_core::Endpoint;
///
/// let ep = Endpoint::new("10.0.0.7:443".parse().unwrap())
///     .with_authority("api.internal:443")
///     .with_weight(2)
///     .with_zone("eu-west-1a")
///     .with_region("eu-west-1")
///     .with_label("version", "v2");
/// assert_eq!(ep.weight(), 2);
/// assert_eq!(ep.authority(), Some("api.internal:443"));
/// assert_eq!(ep.label("version"), Some("v2"));
/// assert_eq!(ep.attribute("zone"), Some("eu-west-1a"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    addr: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authority: Option<String>,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default)]
    priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

fn default_weight() -> u32 {
    1
}

impl Endpoint {
    /// An endpoint at `addr` with weight 1, priority 0 and no metadata.
    pub fn new(addr: SocketAddr) -> Self {
        Endpoint {
            addr,
            authority: None,
            weight: 1,
            priority: 0,
            zone: None,
            region: None,
            labels: BTreeMap::new(),
        }
    }

    /// Sets the logical authority (`host:port`) used for `Host` / SNI.
    pub fn with_authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    /// Sets the relative weight. 0 makes the endpoint a standby (see the type docs).
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the priority tier; lower is preferred.
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the zone (an availability zone, a rack, a data hall: the
    /// smallest place zone-aware routing keeps requests in).
    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// Sets the region (a group of zones, far from other regions).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Adds a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The socket address; the endpoint's identity.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The logical authority, if discovery knew one.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    /// The configured weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The priority tier.
    pub fn priority(&self) -> u32 {
        self.priority
    }

    /// The zone, if any.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// The region, if any.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// One label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// What a selector matches on: the zone for `zone`, the region for
    /// `region` (when set), otherwise the label `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        match key {
            "zone" if self.zone.is_some() => self.zone(),
            "region" if self.region.is_some() => self.region(),
            _ => self.label(key),
        }
    }

    /// All labels, sorted by key.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// Marks the endpoint as part `part` of a traffic split in which that
    /// part takes `share` (relative to the other parts' shares) of the
    /// requests, whatever its number of endpoints: what a
    /// `weighted(...)` target sets. Kept as the labels
    /// [`PART_LABEL`](Self::PART_LABEL) and [`SHARE_LABEL`](Self::SHARE_LABEL).
    ///
    /// ```
    /// use fulcrum_core::Endpoint;
    ///
    /// let ep = Endpoint::new("10.0.0.7:443".parse().unwrap()).with_traffic_share(1, 10);
    /// assert_eq!(ep.traffic_share(), Some((1, 10)));
    /// assert_eq!(ep.label("fulcrum.share"), Some("10"));
    /// ```
    pub fn with_traffic_share(self, part: u32, share: u32) -> Self {
        self.with_label(Self::PART_LABEL, part.to_string())
            .with_label(Self::SHARE_LABEL, share.to_string())
    }

    /// The traffic split part and share set by
    /// [`with_traffic_share`](Self::with_traffic_share), if both labels
    /// are there and are numbers.
    pub fn traffic_share(&self) -> Option<(u32, u32)> {
        let part = self.label(Self::PART_LABEL)?.parse().ok()?;
        let share = self.label(Self::SHARE_LABEL)?.parse().ok()?;
        Some((part, share))
    }

    /// The label naming an endpoint's part in a traffic split.
    pub const PART_LABEL: &'static str = "fulcrum.part";
    /// The label giving its part's share of the requests.
    pub const SHARE_LABEL: &'static str = "fulcrum.share";

    /// True when `other` differs only in weight or priority, which the
    /// balancer can apply in place without rebuilding the endpoint's service.
    pub fn same_identity(&self, other: &Endpoint) -> bool {
        self.addr == other.addr
            && self.authority == other.authority
            && self.zone == other.zone
            && self.region == other.region
            && self.labels == other.labels
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Endpoint::new(addr)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(authority) = &self.authority {
            write!(f, " ({authority})")?;
        }
        Ok(())
    }
}
