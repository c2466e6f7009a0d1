//! Nearest-region routing: when a set's endpoints span regions, requests go
//! to the region with the lowest measured latency, with hysteresis so that
//! the choice does not flap; they spill over to the next-nearest region
//! when that one is short of healthy endpoints, and come back when it
//! recovers.
//!
//! **How latency is measured.** Every endpoint keeps a peak-EWMA of its
//! response times (whatever the policy). Each
//! [`interval`](NearestRegion::interval), a region's estimate becomes the
//! median of its endpoints' estimates that had a response in that interval;
//! with none, the region keeps its last estimate (failures do not count:
//! a region that is down keeps the estimate it had while it answered, so
//! that it is preferred again as soon as it is healthy; an endpoint that
//! comes back, by its probe or at the end of an ejection, starts its own
//! estimate over, so that its outage's penalty does not count as latency). A small share of
//! requests ([`explore`](NearestRegion::explore), 0.2 % by default) goes to
//! the other regions so that their estimates stay current. A region never
//! measured serves with the preferred one until it is; the first choice
//! waits until every region that can serve has been measured.
//!
//! **How a region is chosen.** The preferred region changes only when
//! another region's estimate is lower by more than the
//! [`hysteresis`](NearestRegion::hysteresis) (20 % by default) and has
//! stayed so for the [`hold`](NearestRegion::hold) time (2 s). The regions
//! are then ranked: the preferred one, then the others by estimate. Within
//! each tier of the set (SRV priority, backups), a region's endpoints form
//! a sub-tier by that rank, so the usual spill-over applies: the preferred
//! region takes all requests while its healthy share, times the
//! overprovisioning factor, covers them; the next-nearest region takes what
//! it cannot; when it recovers, requests return at once (its estimate was
//! kept).
//!
//! Endpoints with no region form a region of their own (named `None` in
//! the stats). Region order from the target (`first(...)`) is a tier and
//! takes precedence: latency ranks regions within a tier.
//!
//! Where it is decided: the pure [`choose`] and [`ranks`]
//! (`region/choice.rs`); where it enters the snapshot:
//! `balancer/driver/regions.rs`.
//!
//! ```
//! use std::time::Duration;
//! use fulcrum_balance::region::NearestRegion;
//!
//! let nearest = NearestRegion::default()
//!     .hysteresis(0.3)
//!     .unwrap()
//!     .hold(Duration::from_secs(5))
//!     .unwrap();
//! assert_eq!(nearest.hysteresis_share(), 0.3);
//! assert!(NearestRegion::default().explore(0.5).is_err());
//! ```

mod choice;
mod config;

pub use choice::{choose, ranks, Choice};
pub use config::NearestRegion;
