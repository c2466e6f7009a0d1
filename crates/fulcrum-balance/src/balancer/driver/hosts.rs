//! Which endpoints serve: a pure function of their tiers, weights and
//! availability.

/// What the selection needs to know of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Host {
    pub(crate) priority: u32,
    pub(crate) weight: u32,
    /// Its service is made and it is in service.
    pub(crate) available: bool,
}

/// The endpoints that serve, with their effective weights (always ≥ 1):
///
/// * only the most preferred priority tier with an available endpoint
///   (SRV priority; the next tier takes over when it has none);
/// * in it, the available endpoints of positive weight; weight 0 marks a
///   standby, which serves (at weight 1) only when no endpoint of positive
///   weight is available.
pub(crate) fn serving(hosts: &[Host]) -> Vec<(usize, u32)> {
    let Some(tier) = fulcrum_core::serving_tier(hosts.iter().map(|h| (h.priority, h.available)))
    else {
        return Vec::new();
    };
    let candidate = |h: &Host| h.available && h.priority == tier;
    let any_positive = hosts.iter().any(|h| candidate(h) && h.weight > 0);
    hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| candidate(h) && (!any_positive || h.weight > 0))
        .map(|(i, h)| (i, h.weight.max(1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(priority: u32, weight: u32, available: bool) -> Host {
        Host {
            priority,
            weight,
            available,
        }
    }

    #[test]
    fn the_most_preferred_tier_with_an_available_endpoint_serves() {
        let hosts = [host(10, 1, true), host(10, 2, true), host(20, 5, true)];
        assert_eq!(serving(&hosts), vec![(0, 1), (1, 2)]);
        let hosts = [host(10, 1, false), host(10, 2, false), host(20, 5, true)];
        assert_eq!(serving(&hosts), vec![(2, 5)]);
    }

    #[test]
    fn standbys_serve_only_when_no_positive_weight_is_available() {
        let hosts = [host(0, 0, true), host(0, 3, true), host(0, 0, true)];
        assert_eq!(serving(&hosts), vec![(1, 3)]);
        let hosts = [host(0, 0, true), host(0, 3, false), host(0, 0, true)];
        assert_eq!(serving(&hosts), vec![(0, 1), (2, 1)]);
    }

    #[test]
    fn nothing_available_serves_nothing() {
        assert!(serving(&[]).is_empty());
        assert!(serving(&[host(0, 1, false)]).is_empty());
    }
}
