//! Where each subset's requests go now: a pure function of the subsets'
//! rules and how many of their endpoints serve.

use super::config::{RuleFallback, SubsetRule};

/// One subset's endpoints now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Census {
    /// Members the selector selects, in any state.
    pub(crate) members: usize,
    /// ... of which are healthy (made, in service, not ejected, not down
    /// by their probe), in any of the subset's tiers.
    pub(crate) healthy: usize,
    /// ... of which would take its requests (its serving tiers' healthy
    /// ones, or, in its panic mode, every one made).
    pub(crate) available: usize,
    /// ... of which are still being made.
    pub(crate) warming: usize,
}

/// Where a subset's requests go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteTo {
    /// To subset `i` (itself, or the subset its fallbacks lead to).
    Subset(usize),
    /// To any endpoint.
    Any,
    /// Nowhere: they fail, or wait when an endpoint of the subsets on the
    /// way is still being made.
    Nowhere { warming: bool },
}

/// Whether a subset serves: one endpoint is healthy, and at least its
/// floor.
fn serves(rule: &SubsetRule, census: &Census) -> bool {
    census.healthy > 0 && census.healthy as f64 * 100.0 >= rule.min_healthy * census.members as f64
}

/// Each subset's destination: itself while it serves, else where its
/// fallbacks lead, to the first subset that serves or to any endpoint.
/// A chain that ends in failure (or a loop, refused at build time) goes
/// instead to the first subset on it with an endpoint the balancer's panic
/// mode put back in service: better to try than to fail.
pub(crate) fn resolve(rules: &[SubsetRule], census: &[Census]) -> Vec<RouteTo> {
    (0..rules.len())
        .map(|start| {
            let mut at = start;
            let mut warming = false;
            let mut last_resort = None;
            for _ in 0..=rules.len() {
                let c = census.get(at).copied().unwrap_or_default();
                if serves(&rules[at], &c) {
                    return RouteTo::Subset(at);
                }
                warming |= c.warming > 0;
                if c.available > 0 {
                    last_resort.get_or_insert(at);
                }
                match rules[at].fallback {
                    RuleFallback::Fail => break,
                    RuleFallback::Any => return RouteTo::Any,
                    RuleFallback::Subset(next) => at = next,
                }
            }
            match last_resort {
                Some(at) => RouteTo::Subset(at),
                None => RouteTo::Nowhere { warming },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subset::Selector;

    fn rule(fallback: RuleFallback, min_healthy: f64) -> SubsetRule {
        SubsetRule {
            name: "s".into(),
            selector: Selector::default(),
            fallback,
            min_healthy,
        }
    }

    /// `serving` healthy and available.
    fn census(members: usize, serving: usize, warming: usize) -> Census {
        Census {
            members,
            healthy: serving,
            available: serving,
            warming,
        }
    }

    #[test]
    fn a_subset_with_a_serving_endpoint_serves_itself() {
        let rules = [rule(RuleFallback::Fail, 0.0)];
        assert_eq!(resolve(&rules, &[census(3, 1, 0)]), [RouteTo::Subset(0)]);
    }

    #[test]
    fn an_empty_subset_follows_its_fallback() {
        // replicas → primary → fail; primary serves.
        let rules = [
            rule(RuleFallback::Subset(1), 0.0),
            rule(RuleFallback::Fail, 0.0),
        ];
        let routes = resolve(&rules, &[census(0, 0, 0), census(1, 1, 0)]);
        assert_eq!(routes, [RouteTo::Subset(1), RouteTo::Subset(1)]);
        // Both down: both fail.
        let routes = resolve(&rules, &[census(2, 0, 0), census(1, 0, 0)]);
        assert_eq!(routes, [RouteTo::Nowhere { warming: false }; 2]);
        // Any endpoint as the last resort.
        let rules = [rule(RuleFallback::Any, 0.0)];
        assert_eq!(resolve(&rules, &[census(2, 0, 0)]), [RouteTo::Any]);
    }

    #[test]
    fn below_its_floor_a_subset_falls_back() {
        let rules = [
            rule(RuleFallback::Subset(1), 50.0),
            rule(RuleFallback::Fail, 0.0),
        ];
        let routes = resolve(&rules, &[census(4, 2, 0), census(1, 1, 0)]);
        assert_eq!(routes[0], RouteTo::Subset(0), "2 of 4 is the floor");
        let routes = resolve(&rules, &[census(4, 1, 0), census(1, 1, 0)]);
        assert_eq!(routes[0], RouteTo::Subset(1), "1 of 4 is below it");
    }

    #[test]
    fn a_subset_still_warming_waits_rather_than_fails() {
        let rules = [
            rule(RuleFallback::Subset(1), 0.0),
            rule(RuleFallback::Fail, 0.0),
        ];
        let routes = resolve(&rules, &[census(2, 0, 2), census(1, 0, 0)]);
        assert_eq!(routes[0], RouteTo::Nowhere { warming: true });
        assert_eq!(routes[1], RouteTo::Nowhere { warming: false });
    }

    #[test]
    fn with_nothing_healthy_on_the_chain_an_endpoint_in_panic_is_tried() {
        let rules = [
            rule(RuleFallback::Subset(1), 0.0),
            rule(RuleFallback::Fail, 0.0),
        ];
        // Replicas ejected but back in service by panic mode; the primary
        // down: reads try the replicas rather than fail.
        let ejected = Census {
            members: 2,
            healthy: 0,
            available: 2,
            warming: 0,
        };
        let routes = resolve(&rules, &[ejected, census(1, 0, 0)]);
        assert_eq!(routes[0], RouteTo::Subset(0));
        assert_eq!(routes[1], RouteTo::Nowhere { warming: false });
        // A healthy primary is preferred to ejected replicas.
        let routes = resolve(&rules, &[ejected, census(1, 1, 0)]);
        assert_eq!(routes[0], RouteTo::Subset(1));
    }

    #[test]
    fn a_loop_ends_nowhere() {
        let rules = [
            rule(RuleFallback::Subset(1), 0.0),
            rule(RuleFallback::Subset(0), 0.0),
        ];
        let routes = resolve(&rules, &[census(0, 0, 0), census(0, 0, 0)]);
        assert_eq!(routes, [RouteTo::Nowhere { warming: false }; 2]);
    }
}
