//! Which endpoints serve: a pure function of their tiers, weights,
//! availability and health.

/// What the selection needs to know of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Host {
    pub(crate) priority: u32,
    pub(crate) weight: u32,
    /// Its service is made and in service (it could take a request).
    pub(crate) available: bool,
    /// Not ejected as an outlier, nor down by its probe.
    pub(crate) healthy: bool,
    /// Disabled by its manager: not part of its tier at all (it neither
    /// serves nor counts against the tier's health).
    pub(crate) disabled: bool,
}

/// The endpoints that serve, with their effective weights (always ≥ 1),
/// and whether the tier is in panic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Serving {
    pub(crate) endpoints: Vec<(usize, u32)>,
    /// Too few of the tier's endpoints are healthy: all its available
    /// ones serve, healthy or not.
    pub(crate) panic: bool,
}

/// Which endpoints serve:
///
/// * only one priority tier (SRV priority): the most preferred with a
///   healthy available endpoint, or, if none has one, the most preferred
///   with an available endpoint;
/// * in it, the healthy available endpoints, unless fewer than
///   `panic_threshold` percent of the tier's endpoints are healthy and
///   available: then every available one (Envoy's panic mode: better to try
///   an ejected endpoint than to bury the few healthy ones, or fail);
/// * of those, the ones of positive weight; weight 0 marks a standby,
///   which serves (at weight 1) only when no endpoint of positive weight
///   would.
pub(crate) fn serving(hosts: &[Host], panic_threshold: f64) -> Serving {
    let enabled: Vec<(usize, Host)> = hosts
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, h)| !h.disabled)
        .collect();
    let mut serving = serving_enabled(
        &enabled.iter().map(|&(_, h)| h).collect::<Vec<_>>(),
        panic_threshold,
    );
    for e in &mut serving.endpoints {
        e.0 = enabled[e.0].0;
    }
    serving
}

fn serving_enabled(hosts: &[Host], panic_threshold: f64) -> Serving {
    let good = |h: &Host| h.available && h.healthy;
    let tier = fulcrum_core::serving_tier(hosts.iter().map(|h| (h.priority, good(h))))
        .or_else(|| fulcrum_core::serving_tier(hosts.iter().map(|h| (h.priority, h.available))));
    let Some(tier) = tier else {
        return Serving::default();
    };
    let in_tier = hosts.iter().filter(|h| h.priority == tier).count();
    let healthy = hosts
        .iter()
        .filter(|h| h.priority == tier && good(h))
        .count();
    // Panic matters only when it adds an ejected endpoint: endpoints still
    // being made, or backing off, cannot serve anyway.
    let panic = (healthy as f64) < panic_threshold / 100.0 * in_tier as f64
        && hosts
            .iter()
            .any(|h| h.priority == tier && h.available && !h.healthy);
    let candidate = |h: &Host| h.priority == tier && if panic { h.available } else { good(h) };
    let any_positive = hosts.iter().any(|h| candidate(h) && h.weight > 0);
    let endpoints = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| candidate(h) && (!any_positive || h.weight > 0))
        .map(|(i, h)| (i, h.weight.max(1)))
        .collect();
    Serving { endpoints, panic }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(priority: u32, weight: u32, available: bool) -> Host {
        Host {
            priority,
            weight,
            available,
            healthy: true,
            disabled: false,
        }
    }

    fn ejected(priority: u32) -> Host {
        Host {
            healthy: false,
            ..host(priority, 1, true)
        }
    }

    fn serving(hosts: &[Host]) -> Vec<(usize, u32)> {
        super::serving(hosts, 50.0).endpoints
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

    #[test]
    fn ejected_endpoints_serve_only_in_panic() {
        // 3 of 4 healthy: 75 % ≥ 50 %, the ejected one is left out.
        let hosts = [
            host(0, 1, true),
            ejected(0),
            host(0, 1, true),
            host(0, 1, true),
        ];
        let s = super::serving(&hosts, 50.0);
        assert_eq!(
            (s.endpoints, s.panic),
            (vec![(0, 1), (2, 1), (3, 1)], false)
        );
        // 1 of 4 healthy: panic, every available endpoint serves.
        let hosts = [host(0, 1, true), ejected(0), ejected(0), ejected(0)];
        let s = super::serving(&hosts, 50.0);
        assert_eq!(s.endpoints.len(), 4);
        assert!(s.panic);
        // A threshold of 0 never panics.
        let s = super::serving(&hosts, 0.0);
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1)], false));
        // Endpoints without a service count against the tier's health
        // but cannot serve even in panic: no panic without an ejected one.
        let hosts = [host(0, 1, true), host(0, 1, false), host(0, 1, false)];
        let s = super::serving(&hosts, 50.0);
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1)], false));
        let hosts = [host(0, 1, true), host(0, 1, false), ejected(0)];
        let s = super::serving(&hosts, 50.0);
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1), (2, 1)], true));
    }

    #[test]
    fn disabled_endpoints_neither_serve_nor_count_toward_panic() {
        let disabled = Host {
            disabled: true,
            ..host(0, 1, true)
        };
        // Half the tier disabled, one of the rest ejected: 2 of 3 healthy,
        // no panic, and the disabled ones never serve.
        let hosts = [
            host(0, 1, true),
            disabled,
            disabled,
            ejected(0),
            host(0, 1, true),
        ];
        let s = super::serving(&hosts, 50.0);
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1), (4, 1)], false));
        // Even in panic.
        let hosts = [disabled, ejected(0), ejected(0), host(0, 1, true)];
        let s = super::serving(&hosts, 50.0);
        assert_eq!((s.endpoints, s.panic), (vec![(1, 1), (2, 1), (3, 1)], true));
    }

    #[test]
    fn a_tier_with_only_ejected_endpoints_gives_way_to_a_healthy_one() {
        let hosts = [ejected(0), ejected(0), host(1, 1, true)];
        assert_eq!(serving(&hosts), vec![(2, 1)]);
        // Nowhere healthy: the most preferred available tier, in panic.
        let hosts = [ejected(0), ejected(1)];
        let s = super::serving(&hosts, 50.0);
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1)], true));
    }
}
