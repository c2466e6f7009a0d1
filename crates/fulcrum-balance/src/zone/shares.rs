//! The zone-aware split: a pure function of the zones' capacities.

/// One zone's capacity in a tier: how many endpoints it has, and how many
/// are healthy (serving). (The balancer counts endpoints, as Envoy does;
/// any measure works, weights included.)
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ZoneCapacity {
    /// All its endpoints, healthy or not.
    pub total: f64,
    /// Its healthy endpoints.
    pub healthy: f64,
}

/// Each zone's share of the requests of a client in zone `local` (an index
/// into `zones`, or `None` for a zone no endpoint is in); see the
/// [module docs](crate::zone) for the rule. The shares add up to 1, or
/// are all 0 when nothing is healthy.
///
/// ```
/// use fulcrum_balance::zone::{shares, ZoneCapacity};
///
/// let zone = |total, healthy| ZoneCapacity { total, healthy };
/// // Three equal zones; half of the local one is down.
/// let s = shares(Some(0), &[zone(4.0, 2.0), zone(4.0, 4.0), zone(4.0, 4.0)]);
/// assert!((s[0] - 0.6).abs() < 1e-9 && (s[1] - 0.2).abs() < 1e-9);
/// ```
pub fn shares(local: Option<usize>, zones: &[ZoneCapacity]) -> Vec<f64> {
    let total: f64 = zones.iter().map(|z| z.total).sum();
    let healthy: f64 = zones.iter().map(|z| z.healthy).sum();
    if healthy <= 0.0 || total <= 0.0 {
        return vec![0.0; zones.len()];
    }
    let available = |z: &ZoneCapacity| z.healthy / healthy;
    let expected = |z: &ZoneCapacity| z.total / total;
    let proportional = || zones.iter().map(available).collect();
    let Some(here) = local.and_then(|l| zones.get(l)).filter(|z| z.healthy > 0.0) else {
        return proportional();
    };
    let local = local.unwrap_or_default();
    let (have, want) = (available(here), expected(here));
    let mut shares = vec![0.0; zones.len()];
    if have >= want {
        shares[local] = 1.0;
        return shares;
    }
    let keep = have / want;
    let spare: Vec<f64> = zones
        .iter()
        .enumerate()
        .map(|(i, z)| {
            if i == local {
                0.0
            } else {
                (available(z) - expected(z)).max(0.0)
            }
        })
        .collect();
    let spare_total: f64 = spare.iter().sum();
    if spare_total <= 0.0 {
        // Rounding only: the local zone is short, so another has room.
        return proportional();
    }
    shares[local] = keep;
    for (share, room) in shares.iter_mut().zip(&spare) {
        if *room > 0.0 {
            *share = (1.0 - keep) * room / spare_total;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(total: f64, healthy: f64) -> ZoneCapacity {
        ZoneCapacity { total, healthy }
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn a_healthy_zone_keeps_everything() {
        let s = shares(Some(1), &[zone(4.0, 4.0), zone(4.0, 4.0), zone(4.0, 4.0)]);
        assert!(close(&s, &[0.0, 1.0, 0.0]), "{s:?}");
        // Another zone is short: the client's still keeps everything.
        let s = shares(Some(0), &[zone(6.0, 6.0), zone(2.0, 1.0)]);
        assert!(close(&s, &[1.0, 0.0]), "{s:?}");
    }

    #[test]
    fn a_short_zone_spills_to_the_spare_capacity_elsewhere() {
        let s = shares(Some(0), &[zone(4.0, 2.0), zone(4.0, 4.0), zone(4.0, 4.0)]);
        assert!(close(&s, &[0.6, 0.2, 0.2]), "{s:?}");
        // One other zone is short too: it gets nothing of the spill.
        let s = shares(Some(0), &[zone(4.0, 2.0), zone(4.0, 3.0), zone(4.0, 4.0)]);
        let sum: f64 = s.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s[1], 0.0, "{s:?}");
        assert!((s[0] - (2.0 / 9.0) / (1.0 / 3.0)).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_zone_with_nothing_healthy_sends_everything_away() {
        let s = shares(Some(0), &[zone(4.0, 0.0), zone(4.0, 1.0), zone(4.0, 3.0)]);
        assert!(close(&s, &[0.0, 0.25, 0.75]), "{s:?}");
        // A zone no endpoint is in: the same.
        let s = shares(None, &[zone(4.0, 1.0), zone(4.0, 3.0)]);
        assert!(close(&s, &[0.25, 0.75]), "{s:?}");
        // Nothing healthy anywhere: nothing.
        assert!(close(&shares(Some(0), &[zone(1.0, 0.0)]), &[0.0]));
        assert!(shares(Some(0), &[]).is_empty());
    }
}
