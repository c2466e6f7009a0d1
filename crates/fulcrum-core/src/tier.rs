//! Priority tiers (DNS SRV priority, backup endpoints): which one serves.

/// The tier that serves: the lowest priority among `hosts` (each a
/// `(priority, available)` pair) with an available host; `None` when no
/// host is available.
///
/// ```
/// use fulcrum_core::serving_tier;
///
/// assert_eq!(serving_tier([(10, false), (20, true), (30, true)]), Some(20));
/// assert_eq!(serving_tier([(10, false)]), None);
/// ```
pub fn serving_tier(hosts: impl IntoIterator<Item = (u32, bool)>) -> Option<u32> {
    hosts
        .into_iter()
        .filter(|&(_, available)| available)
        .map(|(priority, _)| priority)
        .min()
}
