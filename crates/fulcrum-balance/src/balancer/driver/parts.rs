//! Traffic splits in the snapshot: a tier whose endpoints carry a part and
//! its share (a `weighted(...)` target) is split into one range per part,
//! each drawn with its share, whatever the policy and the parts' sizes.

/// One part of a tier: its serving endpoints (`(member, weight)`) and its
/// share (millionths).
pub(super) type Part = (Vec<(usize, u32)>, u32);

/// The endpoints of one tier (`(member, weight)`, serving ones) split by
/// part: each part's endpoints and its share of `tier_share`
/// (millionths), in part order; `None` when no endpoint has a part.
/// `parts[i]` is member `i`'s `(part, share)`. A part keeps its share
/// while it has a serving endpoint in the tier; the parts that do share
/// the tier in proportion. Endpoints with no part take nothing while some
/// part serves.
pub(super) fn split_by_part(
    serving: &[(usize, u32)],
    parts: &[Option<(u32, u32)>],
    tier_share: u32,
) -> Option<Vec<Part>> {
    if parts.is_empty() {
        return None;
    }
    let mut present: Vec<(u32, u32)> = serving.iter().filter_map(|&(i, _)| parts[i]).collect();
    present.sort_unstable();
    present.dedup_by_key(|p| p.0);
    let total: u64 = present.iter().map(|&(_, s)| u64::from(s)).sum();
    if present.is_empty() || total == 0 {
        return None;
    }
    let groups = present
        .iter()
        .map(|&(part, share)| {
            let members = serving
                .iter()
                .copied()
                .filter(|&(i, _)| parts[i].map(|p| p.0) == Some(part))
                .collect();
            let share = (u64::from(tier_share) * u64::from(share) / total) as u32;
            (members, share)
        })
        .collect();
    Some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_takes_its_share_whatever_its_size() {
        let serving = [(0, 1), (1, 1), (2, 1), (3, 5)];
        let parts = [Some((0, 90)), Some((0, 90)), Some((0, 90)), Some((1, 10))];
        let split = split_by_part(&serving, &parts, 1_000_000).unwrap();
        assert_eq!(
            split,
            vec![
                (vec![(0, 1), (1, 1), (2, 1)], 900_000),
                (vec![(3, 5)], 100_000)
            ]
        );
        // Part 1 has nothing serving: part 0 takes the whole tier.
        let split = split_by_part(&serving[..3], &parts, 600_000).unwrap();
        assert_eq!(split, vec![(vec![(0, 1), (1, 1), (2, 1)], 600_000)]);
        assert_eq!(split_by_part(&serving, &[], 1_000_000), None);
        assert_eq!(split_by_part(&serving, &[None; 4], 1_000_000), None);
    }
}
