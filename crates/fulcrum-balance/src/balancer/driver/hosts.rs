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
    /// It starts unhealthy and has not had its first probe yet.
    pub(crate) awaits_probe: bool,
}

/// The endpoints that serve, with their effective weights (always ≥ 1),
/// grouped by tier, each tier's share of requests, and whether the set is
/// in panic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Serving {
    /// In tier order (most preferred first), in set order within a tier.
    pub(crate) endpoints: Vec<(usize, u32)>,
    /// Each serving tier's priority and share of requests, in millionths
    /// (summing to a million); one entry when a single tier serves.
    pub(crate) tiers: Vec<(u32, u32)>,
    /// Too few endpoints are healthy: all the available ones of the most
    /// preferred tier serve, healthy or not.
    pub(crate) panic: bool,
}

/// The settings the selection reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Thresholds {
    /// Below this share of healthy endpoints (percent), panic mode.
    pub(crate) panic: f64,
    /// How much a tier's healthy share is trusted to carry (Envoy's
    /// overprovisioning factor): at 1.4, a tier with 1 / 1.4 ≈ 71.4 % of its
    /// endpoints healthy still takes all the traffic.
    pub(crate) overprovisioning: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            panic: crate::balancer::config::PANIC_THRESHOLD,
            overprovisioning: crate::balancer::config::OVERPROVISIONING,
        }
    }
}

/// A tier's share of requests is counted in millionths.
const WHOLE: u32 = 1_000_000;

/// Which endpoints serve:
///
/// * **Tiers** (SRV priority, backup endpoints): each tier's health is the
///   share of its endpoints that are available and healthy, times
///   the overprovisioning factor (1.4 by default), capped at 100 %. The most preferred tier takes
///   that share of requests, the next tier the share of the rest its own
///   health covers, and so on (Envoy's priority load); when the tiers'
///   health adds up to less than 100 %, their shares are scaled up to
///   cover all requests. At 1.4, a tier at ≥ 71.4 % healthy keeps all the
///   traffic; at 50 %, 70 % stays and 30 % spills to the next tier; when
///   it recovers, the traffic returns. At 1.0 a tier keeps exactly its
///   healthy share.
/// * **Panic**: when the healthy share of the set (the tiers' raw shares
///   added up, capped at 100 %) is below the panic threshold, or no
///   endpoint is healthy, the most preferred tier with an available
///   endpoint serves alone, with every available endpoint, healthy or not
///   (Envoy's panic mode: better to try an ejected endpoint than to bury
///   the few healthy ones, or fail).
/// * In a tier, the ones of positive weight; weight 0 marks a standby,
///   which serves (at weight 1) only when no endpoint of positive weight
///   of its tier would.
pub(crate) fn serving(hosts: &[Host], thresholds: &Thresholds) -> Serving {
    let enabled: Vec<(usize, Host)> = hosts
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, h)| !h.disabled)
        .collect();
    let mut serving = serving_enabled(
        &enabled.iter().map(|&(_, h)| h).collect::<Vec<_>>(),
        thresholds,
    );
    for e in &mut serving.endpoints {
        e.0 = enabled[e.0].0;
    }
    serving
}

fn good(h: &Host) -> bool {
    h.available && h.healthy
}

fn serving_enabled(hosts: &[Host], thresholds: &Thresholds) -> Serving {
    let mut priorities: Vec<u32> = hosts.iter().map(|h| h.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    // Each tier's raw healthy share.
    let raw: Vec<f64> = priorities
        .iter()
        .map(|&p| {
            let tier = hosts.iter().filter(|h| h.priority == p);
            let total = tier.clone().count();
            tier.filter(|h| good(h)).count() as f64 / total as f64
        })
        .collect();
    let healthy = raw.iter().sum::<f64>().min(1.0);
    // While some endpoint still awaits its first probe, the set is warming
    // up, not failing: no panic (it would send requests to the endpoints
    // whose probe already failed, when the others may pass a moment later).
    // The healthy ones serve, or nothing does yet.
    let warming = hosts.iter().any(|h| h.awaits_probe);
    // With panic mode off, likewise: nothing healthy, nothing serves.
    if healthy == 0.0 && (warming || thresholds.panic == 0.0) {
        return Serving::default();
    }
    if !warming && (healthy == 0.0 || healthy < thresholds.panic / 100.0) {
        return in_panic(hosts);
    }
    let health: Vec<f64> = raw
        .iter()
        .map(|r| (r * thresholds.overprovisioning).min(1.0))
        .collect();
    let total_health: f64 = health.iter().sum();
    let mut left = 1.0f64;
    let loads: Vec<f64> = health
        .iter()
        .map(|&h| {
            let load = if total_health < 1.0 {
                h / total_health
            } else {
                h.min(left)
            };
            left = (left - load).max(0.0);
            load
        })
        .collect();
    let mut serving = Serving::default();
    let mut given = 0;
    let last = loads.iter().rposition(|&l| l > 0.0);
    for (t, (&priority, &load)) in priorities.iter().zip(&loads).enumerate() {
        if load <= 0.0 {
            continue;
        }
        // The last serving tier takes what rounding left.
        let share = if Some(t) == last {
            WHOLE - given
        } else {
            ((load * f64::from(WHOLE)).round() as u32).min(WHOLE - given)
        };
        given += share;
        if share == 0 {
            continue;
        }
        serving
            .endpoints
            .extend(tier_endpoints(hosts, priority, good));
        serving.tiers.push((priority, share));
    }
    serving
}

/// Too few healthy endpoints: every available endpoint of the most
/// preferred tier that has one serves. (Panic is reported only when it
/// adds an ejected or unhealthy endpoint: endpoints still being made, or
/// backing off, cannot serve anyway.)
fn in_panic(hosts: &[Host]) -> Serving {
    let Some(tier) = fulcrum_core::serving_tier(hosts.iter().map(|h| (h.priority, h.available)))
    else {
        return Serving::default();
    };
    let panic = hosts
        .iter()
        .any(|h| h.priority == tier && h.available && !h.healthy);
    Serving {
        endpoints: tier_endpoints(hosts, tier, |h| h.available),
        tiers: vec![(tier, WHOLE)],
        panic,
    }
}

/// The endpoints of tier `priority` that pass `candidate`, standbys only
/// when no positive weight does.
fn tier_endpoints(
    hosts: &[Host],
    priority: u32,
    candidate: impl Fn(&Host) -> bool,
) -> Vec<(usize, u32)> {
    let candidate = |h: &Host| h.priority == priority && candidate(h);
    let any_positive = hosts.iter().any(|h| candidate(h) && h.weight > 0);
    hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| candidate(h) && (!any_positive || h.weight > 0))
        .map(|(i, h)| (i, h.weight.max(1)))
        .collect()
}

/// An available endpoint of weight 1 at `priority`, for tests.
#[cfg(test)]
pub(super) fn test_host(priority: u32, healthy: bool) -> Host {
    Host {
        priority,
        weight: 1,
        available: true,
        healthy,
        disabled: false,
        awaits_probe: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_at(panic: f64) -> Thresholds {
        Thresholds {
            panic,
            ..Thresholds::default()
        }
    }

    fn host(priority: u32, weight: u32, available: bool) -> Host {
        Host {
            priority,
            weight,
            available,
            healthy: true,
            disabled: false,
            awaits_probe: false,
        }
    }

    fn ejected(priority: u32) -> Host {
        Host {
            healthy: false,
            ..host(priority, 1, true)
        }
    }

    fn serving(hosts: &[Host]) -> Vec<(usize, u32)> {
        super::serving(hosts, &panic_at(50.0)).endpoints
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
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!(
            (s.endpoints, s.panic),
            (vec![(0, 1), (2, 1), (3, 1)], false)
        );
        // 1 of 4 healthy: panic, every available endpoint serves.
        let hosts = [host(0, 1, true), ejected(0), ejected(0), ejected(0)];
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!(s.endpoints.len(), 4);
        assert!(s.panic);
        // A threshold of 0 never panics, even with nothing healthy.
        let s = super::serving(&hosts, &panic_at(0.0));
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1)], false));
        let s = super::serving(&[ejected(0), ejected(0)], &panic_at(0.0));
        assert_eq!((s.endpoints, s.panic), (vec![], false));
        // Endpoints without a service count against the tier's health
        // but cannot serve even in panic: no panic without an ejected one.
        let hosts = [host(0, 1, true), host(0, 1, false), host(0, 1, false)];
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1)], false));
        let hosts = [host(0, 1, true), host(0, 1, false), ejected(0)];
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1), (2, 1)], true));
    }

    #[test]
    fn no_panic_while_endpoints_await_their_first_probe() {
        let failed = Host {
            healthy: false,
            ..host(0, 1, true)
        };
        let pending = Host {
            awaits_probe: true,
            ..host(0, 1, false)
        };
        // Only a failed probe so far: nothing serves yet (requests wait).
        let s = super::serving(&[failed, pending, pending], &panic_at(50.0));
        assert!(s.endpoints.is_empty() && !s.panic, "{s:?}");
        // One passed, one failed, one pending: the one that passed serves.
        let s = super::serving(&[host(0, 1, true), failed, pending], &panic_at(50.0));
        assert_eq!(s.endpoints, vec![(0, 1)]);
        assert!(!s.panic);
        // Every first probe done, all failed: panic serves them all.
        let s = super::serving(&[failed, failed], &panic_at(50.0));
        assert!(s.panic);
        assert_eq!(s.endpoints.len(), 2);
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
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1), (4, 1)], false));
        // Even in panic.
        let hosts = [disabled, ejected(0), ejected(0), host(0, 1, true)];
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!((s.endpoints, s.panic), (vec![(1, 1), (2, 1), (3, 1)], true));
    }

    #[test]
    fn a_tier_with_only_ejected_endpoints_gives_way_to_a_healthy_one() {
        let hosts = [ejected(0), ejected(0), host(1, 1, true)];
        assert_eq!(serving(&hosts), vec![(2, 1)]);
        // Nowhere healthy: the most preferred available tier, in panic.
        let hosts = [ejected(0), ejected(1)];
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!((s.endpoints, s.panic), (vec![(0, 1)], true));
    }

    fn tiers(hosts: &[Host]) -> Vec<(u32, u32)> {
        super::serving(hosts, &panic_at(50.0)).tiers
    }

    #[test]
    fn a_tier_spills_over_in_proportion_to_its_missing_health() {
        let primary = |n_ok: usize, n_down: usize| {
            let mut h = vec![host(0, 1, true); n_ok];
            h.extend(vec![ejected(0); n_down]);
            h
        };
        let with_backup = |mut h: Vec<Host>| {
            h.extend([host(1, 1, true), host(1, 1, true)]);
            h
        };
        // All healthy, or 8 of 10 (× 1.4 > 100 %): the primary keeps it all.
        assert_eq!(tiers(&with_backup(primary(10, 0))), vec![(0, WHOLE)]);
        assert_eq!(tiers(&with_backup(primary(8, 2))), vec![(0, WHOLE)]);
        // 5 of 10: 70 % stays, 30 % spills, to the backup's healthy two.
        let s = super::serving(&with_backup(primary(5, 5)), &panic_at(50.0));
        assert_eq!(s.tiers, vec![(0, 700_000), (1, 300_000)]);
        assert_eq!(s.endpoints.len(), 5 + 2);
        assert!(!s.panic);
        // None healthy: all to the backup, no panic (the set is healthy).
        let s = super::serving(&with_backup(primary(0, 10)), &panic_at(50.0));
        assert_eq!((s.tiers, s.panic), (vec![(1, WHOLE)], false));
        assert_eq!(s.endpoints, vec![(10, 1), (11, 1)]);
        // Three tiers: the second half healthy too, the third takes the rest.
        let mut hosts = primary(1, 1); // 70 %
        hosts.extend([host(1, 1, true), ejected(1), ejected(1), ejected(1)]); // 35 %
        hosts.extend([host(2, 1, true)]);
        assert_eq!(tiers(&hosts), vec![(0, 700_000), (1, 300_000)]);
        let mut hosts = primary(1, 3); // 35 %
        hosts.extend([host(1, 1, true), ejected(1), ejected(1), ejected(1)]); // 35 %
        hosts.extend([host(2, 1, true)]);
        assert_eq!(
            tiers(&hosts),
            vec![(0, 350_000), (1, 350_000), (2, 300_000)]
        );
    }

    #[test]
    fn the_overprovisioning_factor_sets_how_much_health_a_tier_needs() {
        // 8 of 10 primaries healthy, two backups.
        let mut hosts = vec![host(0, 1, true); 8];
        hosts.extend([ejected(0), ejected(0), host(1, 1, true), host(1, 1, true)]);
        let at = |overprovisioning: f64| {
            super::serving(
                &hosts,
                &Thresholds {
                    overprovisioning,
                    ..Thresholds::default()
                },
            )
            .tiers
        };
        // 80 % × 1.4 covers it all; × 1.0 keeps exactly 80 %; × 1.2 96 %.
        assert_eq!(at(1.4), vec![(0, WHOLE)]);
        assert_eq!(at(1.0), vec![(0, 800_000), (1, 200_000)]);
        assert_eq!(at(1.2), vec![(0, 960_000), (1, 40_000)]);
    }

    #[test]
    fn tiers_short_of_health_share_all_requests_in_proportion() {
        // 25 % and 25 % healthy: health 35 % each, scaled to 50 % each.
        let hosts = [
            host(0, 1, true),
            ejected(0),
            ejected(0),
            ejected(0),
            host(1, 1, true),
            ejected(1),
            ejected(1),
            ejected(1),
        ];
        let s = super::serving(&hosts, &panic_at(50.0));
        assert!(!s.panic);
        assert_eq!(s.tiers, vec![(0, 500_000), (1, 500_000)]);
        assert_eq!(s.endpoints, vec![(0, 1), (4, 1)]);
        // Below the panic threshold overall: the first tier alone, in panic.
        let hosts = [
            ejected(0),
            ejected(0),
            ejected(0),
            host(1, 1, true),
            ejected(1),
            ejected(1),
        ];
        let s = super::serving(&hosts, &panic_at(50.0));
        assert_eq!((s.tiers, s.panic), (vec![(0, WHOLE)], true));
        assert_eq!(s.endpoints.len(), 3);
    }
}
