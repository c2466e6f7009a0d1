//! Subsets: requests that match a predicate go to the endpoints with given
//! labels (reads to replicas, writes to the primary), with a fallback rule
//! for when the subset has no endpoint that can serve.
//!
//! A [`Subsets`] names each subset by a [`Selector`] over endpoint labels
//! (every label given must match; labels come from discovery, or from a
//! static target's `;key=value` options) and gives it a [`Fallback`]. Its
//! routes send each request to the first subset whose predicate it
//! matches; a request that matches none is picked among every endpoint.
//! The balancer's policy picks inside the subset, with its tiers, slow
//! start and health, as it would over the whole set.
//!
//! A subset serves with its healthy endpoints (not ejected, not down by
//! their health check) while it has one and, if set, at least
//! [`Subset::min_healthy`] percent of its endpoints are healthy. Otherwise
//! its requests follow the fallback: another subset (in turn subject to
//! its own rule), any endpoint, or a typed error
//! ([`NoEndpointsReason::SubsetEmpty`](fulcrum_core::NoEndpointsReason::SubsetEmpty))
//! — the default, since a write sent to a replica is worse than one that
//! fails. When a chain of fallbacks ends in failure with nothing healthy on
//! the way, the first subset on it with an endpoint the balancer's panic
//! mode put back in service is tried instead: better to try than to fail.
//! Where each subset's requests go now is in
//! [`Stats::subsets`](crate::Stats::subsets); each change is logged.
//!
//! A subset is balanced as a set of its own: its members' tiers (SRV
//! priority, backup endpoints) spill over by the subset's own health, with
//! the balancer's overprovisioning factor, and its panic threshold applies
//! to the subset's endpoints. Its backup replica serves reads when its
//! preferred replicas are down, however healthy the rest of their tier.
//!
//! The decision is a pure function (`resolve`), run by the driver on each
//! change of the serving set; a request pays one branch and one lookup.
//!
//! ```
//! use fulcrum_balance::subset::{Fallback, Selector, Subset, Subsets};
//! use fulcrum_balance::Balancer;
//! use fulcrum_core::Endpoint;
//!
//! enum Query { Read(String), Write(String) }
//!
//! let builder = Balancer::builder()
//!     .endpoints([
//!         Endpoint::new(([10, 0, 0, 1], 5432).into()).with_label("role", "primary"),
//!         Endpoint::new(([10, 0, 0, 2], 5432).into()).with_label("role", "replica"),
//!     ])
//!     .subsets(
//!         Subsets::new()
//!             .subset(Subset::new("primary", Selector::label("role", "primary")))
//!             .subset(
//!                 Subset::new("replicas", Selector::label("role", "replica"))
//!                     .fallback(Fallback::subset("primary")),
//!             )
//!             .route("replicas", |q: &Query| matches!(q, Query::Read(_)))
//!             .route("primary", |q: &Query| matches!(q, Query::Write(_))),
//!     )
//!     .unwrap();
//! # drop(builder);
//! ```

mod config;
pub(crate) mod resolve;
mod route;

pub(crate) use config::SubsetRule;
pub use config::{Fallback, Selector, Subset, Subsets};
pub use route::{Routed, SubsetId};
