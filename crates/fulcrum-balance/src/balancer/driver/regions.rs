//! Nearest-region routing in the snapshot: the regions' latency estimates
//! taken on a timer, the preferred region chosen (the pure
//! `region::choose`), and each tier's endpoints split into sub-tiers by
//! their region's rank, so that the usual spill-over carries requests to
//! the next-nearest region; plus a small share explored elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::hosts::{Host, Serving};
use super::{Driver, Maker};
use crate::region::{choose, ranks, Choice, NearestRegion};
use crate::stats::{RegionShare, RegionStats};

/// A tier's sub-tiers: effective priority = `priority × RANKS + rank`.
pub(super) const RANKS: u32 = 256;

/// A region's name; endpoints with none form the region `None`.
type Region = Option<String>;

/// How hosts were moved to sub-tiers (see `Driver::rank_hosts`).
#[derive(Clone, Debug, Default)]
pub(super) struct Ranked {
    /// Each region's rank, by region id.
    ranks: Vec<u32>,
    /// The set's priorities, by their place (a sub-tier's `p / RANKS`).
    tiers: Vec<u32>,
    /// The hosts were moved (not in panic, nor with the routing off).
    on: bool,
}

/// The driver's nearest-region state.
#[derive(Debug)]
pub(super) struct Regions {
    pub(super) config: NearestRegion,
    /// Each region's last estimate, in seconds.
    estimates: BTreeMap<Region, f64>,
    preferred: Option<Region>,
    challenger: Option<(Region, Duration)>,
    /// When the estimates are next taken.
    pub(super) at: Option<Instant>,
    last_tick: Option<Instant>,
    /// How many times the preferred region changed.
    changes: u64,
}

impl Regions {
    pub(super) fn new(config: NearestRegion) -> Self {
        Regions {
            config,
            estimates: BTreeMap::new(),
            preferred: None,
            challenger: None,
            at: None,
            last_tick: None,
            changes: 0,
        }
    }

    /// Each region's rank among `names` (`reachable`: it has an endpoint
    /// that can serve).
    fn ranks(&self, names: &[Region], reachable: &[bool]) -> Vec<u32> {
        let estimates: Vec<Option<f64>> = names
            .iter()
            .map(|n| self.estimates.get(n).copied())
            .collect();
        let preferred = self
            .preferred
            .as_ref()
            .and_then(|p| names.iter().position(|n| n == p));
        ranks(preferred, &estimates, reachable)
    }
}

/// The median of `values` (sorted in place); `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// `serving` plus, when `share` > 0 and not in panic, the healthy
/// endpoints of every other sub-tier of the first serving tier that serves
/// nothing now (other regions), each drawn with an equal part of `share`;
/// the serving tiers give up that much.
pub(super) fn explore(mut serving: Serving, hosts: &[Host], share: f64) -> Serving {
    let Some(&(first, _)) = serving.tiers.first() else {
        return serving;
    };
    if share <= 0.0 || serving.panic {
        return serving;
    }
    let tier = first / RANKS;
    let mut others: Vec<u32> = hosts
        .iter()
        .filter(|h| {
            h.priority / RANKS == tier
                && !h.disabled
                && h.available
                && h.healthy
                && h.weight > 0
                && !serving.tiers.iter().any(|&(p, _)| p == h.priority)
        })
        .map(|h| h.priority)
        .collect();
    others.sort_unstable();
    others.dedup();
    if others.is_empty() {
        return serving;
    }
    let each = (share / others.len() as f64 * 1e6).round() as u32;
    let given = each * others.len() as u32;
    let scale = f64::from(1_000_000 - given) / 1e6;
    for (_, s) in &mut serving.tiers {
        *s = (f64::from(*s) * scale).round() as u32;
    }
    for p in others {
        serving.endpoints.extend(
            hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| {
                    h.priority == p && !h.disabled && h.available && h.healthy && h.weight > 0
                })
                .map(|(i, h)| (i, h.weight)),
        );
        serving.tiers.push((p, each));
    }
    serving
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// Each member's region id, and the regions (ids index them); both
    /// empty when nearest-region routing is off.
    pub(super) fn region_ids(&self) -> (Vec<u32>, Vec<Region>) {
        if self.regions.is_none() {
            return (Vec::new(), Vec::new());
        }
        super::zones::intern(
            self.members
                .iter()
                .map(|m| m.slot.endpoint.region().map(str::to_owned)),
        )
    }

    /// Moves every host to its region's sub-tier: its tier's place among
    /// the set's tiers × [`RANKS`] + its region's rank (dense, so that no
    /// priority overflows).
    pub(super) fn rank_hosts(&self, hosts: &mut [Host], ids: &[u32], names: &[Region]) -> Ranked {
        let Some(regions) = &self.regions else {
            return Ranked::default();
        };
        let mut reachable = vec![false; names.len()];
        for (h, &id) in hosts.iter().zip(ids) {
            reachable[id as usize] |= h.available && h.healthy && !h.disabled;
        }
        let ranks = regions.ranks(names, &reachable);
        let mut tiers: Vec<u32> = hosts.iter().map(|h| h.priority).collect();
        tiers.sort_unstable();
        tiers.dedup();
        for (h, &id) in hosts.iter_mut().zip(ids) {
            let place = tiers.binary_search(&h.priority).unwrap_or_default() as u32;
            h.priority = place * RANKS + ranks[id as usize].min(RANKS - 1);
        }
        Ranked {
            ranks,
            tiers,
            on: true,
        }
    }

    /// The serving tiers as stats show them (sub-tiers merged back into
    /// their tier, with its own priority), and the regions' stats: each
    /// region's share is its serving endpoints' part of their sub-tier's.
    pub(super) fn region_view(
        &self,
        serving: &Serving,
        hosts: &[Host],
        ranked: &Ranked,
        ids: &[u32],
        names: &[Region],
    ) -> (Vec<(u32, u32)>, Option<RegionStats>) {
        let Some(regions) = &self.regions else {
            return (serving.tiers.clone(), None);
        };
        let base = |p: u32| match ranked.on {
            true => ranked
                .tiers
                .get((p / RANKS) as usize)
                .copied()
                .unwrap_or(p / RANKS),
            false => p,
        };
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for &(p, share) in &serving.tiers {
            match merged.iter_mut().find(|(q, _)| *q == base(p)) {
                Some((_, s)) => *s += share,
                None => merged.push((base(p), share)),
            }
        }
        let mut shares = vec![0.0; names.len()];
        for &(p, share) in &serving.tiers {
            let here: Vec<(usize, u32)> = serving
                .endpoints
                .iter()
                .copied()
                .filter(|&(i, _)| hosts[i].priority == p)
                .collect();
            for (i, part) in super::zones::by_weight(&here, share) {
                shares[ids[i] as usize] += part;
            }
        }
        let rank_of = |id: usize| ranked.ranks.get(id).copied().unwrap_or(0);
        let mut list: Vec<RegionShare> = names
            .iter()
            .enumerate()
            .zip(&shares)
            .map(|((id, name), &share)| RegionShare {
                region: name.clone(),
                latency_ms: regions.estimates.get(name).map(|s| s * 1e3),
                rank: rank_of(id),
                share,
            })
            .collect();
        list.sort_by_key(|r| r.rank);
        let stats = RegionStats {
            preferred: regions.preferred.clone().flatten(),
            changes: regions.changes,
            regions: list,
        };
        (merged, Some(stats))
    }

    /// Takes the regions' estimates and chooses again; a new ranking is
    /// published.
    pub(super) fn on_region_tick(&mut self) {
        let (ids, names) = self.region_ids();
        let Some(regions) = &mut self.regions else {
            return;
        };
        let now = Instant::now();
        let interval = regions.config.every();
        regions.at = Some(now + interval);
        let elapsed = regions.last_tick.map_or(interval, |t| now - t);
        regions.last_tick = Some(now);
        let clock = fulcrum_core::time::now();
        let fresh = (elapsed.max(interval)).as_nanos() as u64;
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let mut reachable = vec![false; names.len()];
        for (m, &id) in self.members.iter().zip(&ids) {
            reachable[id as usize] |= m.slot.is_active();
            // Only endpoints in service say how far their region is: a
            // dying one's last answers (requests abandoned as it died
            // count as lower bounds) describe the outage.
            if !m.slot.is_active() {
                continue;
            }
            if let Some((estimate, age)) = m.slot.ewma.last_latency(clock) {
                if age <= fresh {
                    samples[id as usize].push(estimate / 1e9);
                }
            }
        }
        // Ranked before the new estimates, so that a region measured for
        // the first time (or a new order of the others) is published.
        let before = regions.ranks(&names, &reachable);
        for (name, values) in names.iter().zip(&mut samples) {
            if let Some(m) = median(values) {
                regions.estimates.insert(name.clone(), m);
            }
        }
        let estimates: Vec<Option<f64>> = names
            .iter()
            .map(|n| regions.estimates.get(n).copied())
            .collect();
        // The first choice waits until every region that can serve has
        // been measured (they all serve meanwhile).
        let pending = estimates
            .iter()
            .zip(&reachable)
            .any(|(e, &r)| e.is_none() && r);
        if regions.preferred.is_none() && pending {
            return;
        }
        let index = |r: &Region| names.iter().position(|n| n == r);
        let previous = Choice {
            preferred: regions.preferred.as_ref().and_then(index),
            challenger: regions
                .challenger
                .as_ref()
                .and_then(|(r, held)| index(r).map(|i| (i, *held))),
        };
        let choice = choose(
            previous,
            &estimates,
            elapsed,
            regions.config.hysteresis_share(),
            regions.config.hold_time(),
        );
        let preferred = choice.preferred.map(|i| names[i].clone());
        if preferred != regions.preferred {
            if regions.preferred.is_some() {
                regions.changes += 1;
                tracing::info!(
                    from = ?regions.preferred.clone().flatten(),
                    to = ?preferred.clone().flatten(),
                    "nearest region changed"
                );
            }
            regions.preferred = preferred;
        }
        regions.challenger = choice.challenger.map(|(i, held)| (names[i].clone(), held));
        if regions.ranks(&names, &reachable) != before {
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::driver::hosts::test_host as host;

    #[test]
    fn other_regions_are_explored_with_a_small_share() {
        // Tier 0: region ranks 0, 1, 2; rank 0 serves alone.
        let hosts = [host(0, true), host(1, true), host(2, true), host(2, false)];
        let serving = Serving {
            endpoints: vec![(0, 1)],
            tiers: vec![(0, 1_000_000)],
            panic: false,
        };
        let s = explore(serving.clone(), &hosts, 0.01);
        assert_eq!(s.tiers, vec![(0, 990_000), (1, 5_000), (2, 5_000)]);
        assert_eq!(s.endpoints, vec![(0, 1), (1, 1), (2, 1)]);
        // Off, or in panic: unchanged.
        assert_eq!(explore(serving.clone(), &hosts, 0.0), serving);
        let panicking = Serving {
            panic: true,
            ..serving
        };
        assert_eq!(explore(panicking.clone(), &hosts, 0.01), panicking);
    }

    #[test]
    fn a_backup_tier_is_not_explored_from_the_primary() {
        // Ranks of tier 1 (priority 256..) are another tier's regions.
        let hosts = [host(0, true), host(RANKS + 1, true)];
        let serving = Serving {
            endpoints: vec![(0, 1)],
            tiers: vec![(0, 1_000_000)],
            panic: false,
        };
        assert_eq!(explore(serving.clone(), &hosts, 0.01), serving);
    }

    #[test]
    fn the_median_of_fresh_estimates() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
