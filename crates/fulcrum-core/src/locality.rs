//! Where a client runs: its own zone and region.

/// The environment variable [`Locality::from_env`] reads the zone from.
pub const ZONE_VAR: &str = "FULCRUM_ZONE";
/// The environment variable [`Locality::from_env`] reads the region from.
pub const REGION_VAR: &str = "FULCRUM_REGION";

/// Where this client runs: its zone and region. Zone-aware routing
/// compares the zone with the endpoints' own
/// ([`Endpoint::zone`](crate::Endpoint::zone)); the region is for the
/// caller's own use (nearest-region routing chooses among the endpoints'
/// [regions](crate::Endpoint::region) by measured latency, not by name).
///
/// In Kubernetes a pod can set `FULCRUM_ZONE` from its node's
/// `topology.kubernetes.io/zone` label (through the downward API, or an
/// init step that reads the node), and read it with
/// [`from_env`](Locality::from_env).
///
/// ```
/// use fulcrum_core::Locality;
///
/// let here = Locality::new().with_zone("eu-west-1a").with_region("eu-west-1");
/// assert_eq!(here.zone(), Some("eu-west-1a"));
/// assert!(Locality::new().is_unknown());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Locality {
    zone: Option<String>,
    region: Option<String>,
}

impl Locality {
    /// Nowhere in particular: no zone, no region.
    pub fn new() -> Self {
        Self::default()
    }

    /// The zone from `FULCRUM_ZONE` and the region from `FULCRUM_REGION`;
    /// a variable unset or blank leaves that part unknown.
    pub fn from_env() -> Self {
        let read = |var| {
            std::env::var(var)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Locality {
            zone: read(ZONE_VAR),
            region: read(REGION_VAR),
        }
    }

    /// Sets the zone.
    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The zone, if known.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// The region, if known.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Neither the zone nor the region is known.
    pub fn is_unknown(&self) -> bool {
        self.zone.is_none() && self.region.is_none()
    }
}
