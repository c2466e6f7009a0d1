//! A builder's locality settings: zone-aware and nearest-region routing.

use super::Builder;
use crate::region::NearestRegion;
use crate::zone::ZoneAware;

impl<K, C> Builder<K, C> {
    /// Zone-aware routing for a client in `zones.zone()` (see
    /// [`zone`](crate::zone)): requests stay in the client's zone while its
    /// healthy endpoints cover the client's share, spill over in
    /// proportion when they do not, and leave when it has none. Works with
    /// every policy: each zone's endpoints get a picker of their own.
    ///
    /// ```
    /// use fulcrum_balance::{zone::ZoneAware, Balancer};
    ///
    /// let builder = Balancer::builder().zone_aware(ZoneAware::new("eu-west-1a"));
    /// // Or from FULCRUM_ZONE, when it is set:
    /// let builder = match ZoneAware::from_env() {
    ///     Some(zones) => builder.zone_aware(zones),
    ///     None => builder,
    /// };
    /// # drop(builder);
    /// ```
    pub fn zone_aware(mut self, zones: ZoneAware) -> Self {
        self.settings.zone_aware = Some(zones);
        self
    }

    /// Nearest-region routing (see [`region`](crate::region)): requests go
    /// to the region with the lowest measured latency (with hysteresis),
    /// spill over to the next-nearest when it is short of healthy
    /// endpoints, and come back when it recovers. Endpoints are placed in
    /// regions by `;region=` in the target or a locality map.
    ///
    /// ```
    /// use fulcrum_balance::{region::NearestRegion, Balancer};
    ///
    /// let builder = Balancer::builder().nearest_region(NearestRegion::default());
    /// # drop(builder);
    /// ```
    pub fn nearest_region(mut self, nearest: NearestRegion) -> Self {
        self.settings.nearest_region = Some(nearest);
        self
    }
}
