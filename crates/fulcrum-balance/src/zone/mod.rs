//! Zone-aware routing: keep requests in the client's own zone while that
//! zone's healthy capacity covers the client's share, spill the excess to
//! the other zones in proportion to their spare capacity, and leave the
//! zone entirely when it has nothing healthy. Envoy's zone-aware
//! algorithm, without a control plane.
//!
//! **The rule**, per serving tier. Let `expected` be the local zone's
//! share of the tier's endpoints (counted, healthy or not, as Envoy does: without a
//! control plane, clients are taken to be spread over zones as the
//! endpoints are), and `available` its share of the tier's healthy
//! endpoints:
//!
//! * `available ≥ expected`: every request stays in the zone.
//! * otherwise the zone keeps `available / expected` of the requests, and
//!   the rest goes to the other zones in proportion to their spare
//!   capacity (`available − expected`, where positive).
//! * no healthy endpoint in the zone: the tier serves whole, as without
//!   zone-aware routing (the policy balances across every zone).
//!
//! With three zones of equal size and half of the local zone's endpoints
//! down, the zone keeps (1/5) / (1/3) = 60 % of the requests, and each
//! other zone takes 20 %.
//!
//! It is off (requests go to the whole tier) in panic mode, when the tier
//! has fewer endpoints than [`ZoneAware::min_endpoints`] (6 by default, as
//! in Envoy: with few endpoints, shares are coarse), and when the client's
//! zone is unknown. A client zone that no endpoint is in is no error: it
//! is a zone with nothing healthy, and the tier serves whole (stats show a
//! local share of 0).
//!
//! Where it is decided: the pure [`shares`] (`zone/shares.rs`); where the
//! snapshot is split into zone groups: `balancer/driver/zones.rs`.
//!
//! ```
//! use fulcrum_balance::zone::ZoneAware;
//!
//! let zones = ZoneAware::new("eu-west-1a").min_endpoints(3);
//! assert_eq!(zones.zone(), "eu-west-1a");
//! // In a pod: FULCRUM_ZONE from the node's topology.kubernetes.io/zone.
//! let _from_env: Option<ZoneAware> = ZoneAware::from_env();
//! ```

mod config;
mod shares;

pub use config::ZoneAware;
pub use shares::{shares, ZoneCapacity};
