//! Zone groups in the snapshot: each serving tier split by zone, with the
//! shares the pure `zone::shares` gives (local zone first), so that a
//! request's draw picks a zone's range and its picker the endpoint.

use super::hosts::{Host, Serving};
use super::{Driver, Maker};
use crate::stats::{ZoneShare, ZoneStats};
use crate::zone::{shares, ZoneCapacity};

/// Each item's id (its first occurrence's place among the distinct ones),
/// and the distinct items: for zone and region names, few and repeated.
pub(super) fn intern<T: PartialEq>(items: impl Iterator<Item = T>) -> (Vec<u32>, Vec<T>) {
    let mut distinct: Vec<T> = Vec::new();
    let ids = items
        .map(|item| match distinct.iter().position(|d| *d == item) {
            Some(i) => i as u32,
            None => {
                distinct.push(item);
                distinct.len() as u32 - 1
            }
        })
        .collect();
    (ids, distinct)
}

/// Each endpoint's part (0–1) of a range drawn with `share` (millionths),
/// by its weight among `endpoints` (`(member, weight)`): for stats.
pub(super) fn by_weight(
    endpoints: &[(usize, u32)],
    share: u32,
) -> impl Iterator<Item = (usize, f64)> + '_ {
    let weight: f64 = endpoints.iter().map(|&(_, w)| f64::from(w)).sum();
    endpoints
        .iter()
        .map(move |&(i, w)| (i, f64::from(share) / 1e6 * f64::from(w) / weight))
}

/// A member with no zone.
pub(super) const NO_ZONE: u32 = u32::MAX;

/// What the split needs: the client's zone (its id among the members'
/// zones, `None` when no member is in it) and the smallest tier it splits.
#[derive(Clone, Copy, Debug)]
pub(super) struct ZoneRouting {
    pub(super) local: Option<u32>,
    pub(super) min_endpoints: usize,
}

/// Serving endpoints in group order, and each group's share.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Groups {
    /// `(member, weight, group)`, each group's endpoints together.
    pub(super) endpoints: Vec<(usize, u32, u32)>,
    /// `(group, share in millionths)`, in order.
    pub(super) shares: Vec<(u32, u32)>,
    /// Each zone's share of requests (zone id, 0–1), when zone routing is
    /// configured: from the split where it applied, from the endpoints'
    /// weights where it did not.
    pub(super) zones: Vec<(u32, f64)>,
    /// The split applied to some tier.
    pub(super) split: bool,
}

/// `serving`'s endpoints grouped by tier, and within a tier by zone when
/// `routing` applies (not in panic, a tier of at least `min_endpoints`,
/// something healthy in the client's zone: otherwise the tier serves
/// whole).
/// `zones[i]` is member `i`'s zone id; `within` says which members count
/// (a subset's), all when `None`.
pub(super) fn groups(
    serving: &Serving,
    hosts: &[Host],
    zones: &[u32],
    parts: &[Option<(u32, u32)>],
    within: Option<&[usize]>,
    routing: Option<ZoneRouting>,
) -> Groups {
    let mut out = Groups::default();
    let mut per_zone: Vec<(u32, f64)> = Vec::new();
    let mut add = |zone: u32, share: f64| match per_zone.iter_mut().find(|(z, _)| *z == zone) {
        Some((_, s)) => *s += share,
        None => per_zone.push((zone, share)),
    };
    let counted = |i: &usize| !hosts[*i].disabled;
    let mut split_any = false;
    for &(priority, tier_share) in &serving.tiers {
        let members: Vec<usize> = match within {
            Some(w) => w.iter().copied().filter(counted).collect::<Vec<usize>>(),
            None => (0..hosts.len()).filter(counted).collect(),
        }
        .into_iter()
        .filter(|&i| hosts[i].priority == priority)
        .collect();
        let serving_here: Vec<(usize, u32)> = serving
            .endpoints
            .iter()
            .copied()
            .filter(|&(i, _)| hosts[i].priority == priority)
            .collect();
        // A traffic split (`weighted(...)`) comes first: its shares are
        // the user's explicit rule, zones do not split its parts.
        if let Some(split) = super::parts::split_by_part(&serving_here, parts, tier_share) {
            for (members, share) in split {
                let group = out.shares.len() as u32;
                out.endpoints
                    .extend(members.iter().map(|&(i, w)| (i, w, group)));
                out.shares.push((group, share));
                if routing.is_some() {
                    for (i, part) in by_weight(&members, share) {
                        add(zones[i], part);
                    }
                }
            }
            continue;
        }
        // With nothing healthy in the client's zone (or no such zone), the
        // tier serves whole: the policy balances across every zone, as it
        // would without zone-aware routing.
        let local_serves = |local: Option<u32>| {
            local.is_some_and(|l| serving_here.iter().any(|&(i, _)| zones[i] == l))
        };
        let split = routing.filter(|r| {
            !serving.panic && members.len() >= r.min_endpoints.max(1) && local_serves(r.local)
        });
        let Some(split) = split else {
            let group = out.shares.len() as u32;
            out.endpoints
                .extend(serving_here.iter().map(|&(i, w)| (i, w, group)));
            out.shares.push((group, tier_share));
            if routing.is_some() {
                for (i, part) in by_weight(&serving_here, tier_share) {
                    add(zones[i], part);
                }
            }
            continue;
        };
        // The tier's zones, the client's first.
        let mut ids: Vec<u32> = members.iter().map(|&i| zones[i]).collect();
        ids.sort_unstable_by_key(|&z| (Some(z) != split.local, z));
        ids.dedup();
        let capacity: Vec<ZoneCapacity> = ids
            .iter()
            .map(|&z| ZoneCapacity {
                total: members.iter().filter(|&&i| zones[i] == z).count() as f64,
                healthy: serving_here.iter().filter(|&&(i, _)| zones[i] == z).count() as f64,
            })
            .collect();
        let local = split.local.and_then(|l| ids.iter().position(|&z| z == l));
        let fractions = shares(local, &capacity);
        split_any = true;
        for (&zone, &fraction) in ids.iter().zip(&fractions) {
            let share = (f64::from(tier_share) * fraction).round() as u32;
            if share == 0 {
                continue;
            }
            let group = out.shares.len() as u32;
            out.endpoints.extend(
                serving_here
                    .iter()
                    .filter(|&&(i, _)| zones[i] == zone)
                    .map(|&(i, w)| (i, w, group)),
            );
            out.shares.push((group, share));
            add(zone, f64::from(tier_share) / 1e6 * fraction);
        }
    }
    // The client's zone first.
    per_zone.sort_by_key(|&(z, _)| (routing.and_then(|r| r.local) != Some(z), z));
    out.zones = per_zone;
    out.split = split_any;
    out
}

/// Stats of the split: the local zone's share of requests, and each
/// zone's, named.
fn zone_shares(split: &[(u32, f64)], names: &[String]) -> Vec<ZoneShare> {
    split
        .iter()
        .map(|&(z, share)| ZoneShare {
            zone: names.get(z as usize).cloned(),
            share,
        })
        .collect()
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// The stats of a split of the set: where its requests go by zone.
    pub(super) fn zone_stats(&self, groups: &Groups, names: &[String]) -> Option<ZoneStats> {
        let z = self.zone_aware.as_ref()?;
        let shares = zone_shares(&groups.zones, names);
        let local_share = shares
            .iter()
            .filter(|s| s.zone.as_deref() == Some(z.zone()))
            .map(|s| s.share)
            .sum::<f64>();
        Some(ZoneStats {
            zone: z.zone().to_owned(),
            local_share,
            spill: if shares.is_empty() {
                0.0
            } else {
                1.0 - local_share
            },
            split: groups.split,
            shares,
        })
    }

    /// Each member's zone id, and the zones' names (ids index them); both
    /// empty when zone-aware routing is off.
    pub(super) fn zone_ids(&self) -> (Vec<u32>, Vec<String>) {
        if self.zone_aware.is_none() {
            return (Vec::new(), Vec::new());
        }
        let (ids, names) = intern(self.members.iter().map(|m| m.slot.endpoint.zone()));
        // Endpoints with no zone are in none (never the client's).
        let none = names.iter().position(Option::is_none).map(|i| i as u32);
        let ids = ids
            .into_iter()
            .map(|id| if Some(id) == none { NO_ZONE } else { id })
            .collect();
        (
            ids,
            names
                .into_iter()
                .map(|n| n.unwrap_or_default().to_owned())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::driver::hosts::test_host as host;
    use crate::balancer::driver::hosts::{serving, Thresholds};

    fn routing(local: u32) -> Option<ZoneRouting> {
        Some(ZoneRouting {
            local: Some(local),
            min_endpoints: 6,
        })
    }

    /// Each group's members and share.
    fn split(g: &Groups) -> Vec<(Vec<usize>, u32)> {
        g.shares
            .iter()
            .map(|&(group, share)| {
                let members = g
                    .endpoints
                    .iter()
                    .filter(|e| e.2 == group)
                    .map(|e| e.0)
                    .collect();
                (members, share)
            })
            .collect()
    }

    #[test]
    fn a_tier_splits_by_zone_the_clients_first() {
        // Zones 0, 1, 2 with 3 endpoints each; the client is in zone 1.
        let hosts = vec![host(0, true); 9];
        let zones = [0, 0, 0, 1, 1, 1, 2, 2, 2];
        let s = serving(&hosts, &Thresholds::default());
        let g = groups(&s, &hosts, &zones, &[], None, routing(1));
        assert_eq!(split(&g), vec![(vec![3, 4, 5], 1_000_000)]);
        assert_eq!(g.zones, vec![(1, 1.0)]);
        assert!(g.split);

        // One of the client zone's three down: 2/8 of the healthy against
        // 3/9 of all, so it keeps 75 %, the others split the rest.
        let mut hosts = hosts;
        hosts[3].healthy = false;
        let s = serving(&hosts, &Thresholds::default());
        let g = groups(&s, &hosts, &zones, &[], None, routing(1));
        let parts = split(&g);
        assert_eq!(parts[0], (vec![4, 5], 750_000));
        assert_eq!(parts[1], (vec![0, 1, 2], 125_000));
        assert_eq!(parts[2], (vec![6, 7, 8], 125_000));
    }

    #[test]
    fn small_tiers_panic_and_unknown_zones_do_not_split() {
        let hosts = vec![host(0, true); 4];
        let zones = [0, 0, 1, 1];
        let s = serving(&hosts, &Thresholds::default());
        let g = groups(&s, &hosts, &zones, &[], None, routing(0));
        assert_eq!(split(&g), vec![(vec![0, 1, 2, 3], 1_000_000)], "below 6");
        assert!(!g.split);
        assert_eq!(g.zones, vec![(0, 0.5), (1, 0.5)], "by weight");
        let g = groups(&s, &hosts, &zones, &[], None, None);
        assert_eq!(split(&g), vec![(vec![0, 1, 2, 3], 1_000_000)]);

        // In panic, every available endpoint of the tier serves, unsplit.
        let mut hosts = vec![host(0, false); 8];
        hosts[0].healthy = true;
        let zones = [0, 0, 0, 0, 1, 1, 1, 1];
        let s = serving(&hosts, &Thresholds::default());
        assert!(s.panic);
        let g = groups(&s, &hosts, &zones, &[], None, routing(0));
        assert_eq!(split(&g).len(), 1);
    }

    #[test]
    fn a_zone_with_nothing_healthy_leaves_the_tier_whole() {
        let mut hosts = vec![host(0, true); 9];
        for h in &mut hosts[..3] {
            h.healthy = false;
        }
        let zones = [0, 0, 0, 1, 1, 1, 2, 2, 2];
        let s = serving(&hosts, &Thresholds::default());
        let g = groups(&s, &hosts, &zones, &[], None, routing(0));
        assert_eq!(split(&g), vec![((3..9).collect(), 1_000_000)]);
        assert!(!g.split);
        assert_eq!(g.zones, vec![(1, 0.5), (2, 0.5)]);
    }

    #[test]
    fn each_serving_tier_splits_on_its_own() {
        // Tier 0: zones 0 and 1, 3 each, two of zone 0's down (spills to
        // tier 1, 4 of 6 healthy × 1.4 ≈ 93 %); tier 1: zone 0 only.
        let mut hosts = vec![host(0, true); 6];
        hosts.extend(vec![host(1, true); 6]);
        hosts[0].healthy = false;
        hosts[1].healthy = false;
        let zones = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0];
        let s = serving(&hosts, &Thresholds::default());
        assert_eq!(s.tiers.len(), 2);
        let g = groups(&s, &hosts, &zones, &[], None, routing(0));
        let parts = split(&g);
        // Tier 0: zone 0 keeps (1/4) / (1/2) = 50 % of the tier's share.
        assert_eq!(parts[0].0, vec![2]);
        assert_eq!(parts[1].0, vec![3, 4, 5]);
        assert_eq!(parts[0].1, parts[1].1);
        assert_eq!(parts[2].0, (6..12).collect::<Vec<_>>());
        let total: u32 = parts.iter().map(|p| p.1).sum();
        assert!((999_998..=1_000_002).contains(&total), "{total}");
    }
}
