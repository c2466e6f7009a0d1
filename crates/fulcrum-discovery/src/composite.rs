//! Composite targets: each part discovered and refreshed on its own, the
//! parts' sets combined into one (in `first`, parts become tiers; in
//! `weighted`, endpoint weights are scaled to the parts' shares).

use fulcrum_core::EndpointSet;
use futures_util::StreamExt;

use crate::discovery::{EndpointStream, RefreshHandle};
use crate::{Discovery, DiscoveryConfig, DiscoveryError, OnEmpty, Target};

/// A part's tier is its index times this, plus the tier it gave (SRV
/// priorities are 16 bits, so parts never interleave).
pub(crate) const PART_STRIDE: u32 = 1 << 16;

/// How the parts' sets are combined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Combine {
    First,
    /// Each part's share.
    Weighted(Vec<u32>),
}

/// A composite target's parts, each a discovery of its own.
pub(crate) struct Parts {
    name: String,
    combine: Combine,
    parts: Vec<Discovery>,
    on_empty: OnEmpty,
}

impl Parts {
    /// The parts of `discovery`'s target, if it is a composite. Each part
    /// takes an authoritative empty answer as empty (the other parts are
    /// its fallback); the composite's own `on_empty` applies when all are.
    pub(crate) fn of(discovery: &Discovery) -> Option<Parts> {
        let config = DiscoveryConfig {
            on_empty: OnEmpty::Empty,
            ..discovery.config().clone()
        };
        let part = |t: &Target| Discovery::from_target(t.clone()).with_config(config.clone());
        let (combine, parts) = match discovery.target() {
            Target::First(parts) => (Combine::First, parts.iter().map(part).collect()),
            Target::Weighted(parts) => (
                Combine::Weighted(parts.iter().map(|(share, _)| *share).collect()),
                parts.iter().map(|(_, t)| part(t)).collect(),
            ),
            _ => return None,
        };
        Some(Parts {
            name: discovery.target().to_string(),
            combine,
            parts,
            on_empty: discovery.config().on_empty,
        })
    }

    /// Resolves every part at once and combines those that answered.
    pub(crate) async fn resolve(self) -> Result<EndpointSet, DiscoveryError> {
        let answers =
            futures_util::future::join_all(self.parts.iter().map(Discovery::resolve)).await;
        let mut first_error = None;
        let sets: Vec<Option<EndpointSet>> = answers
            .into_iter()
            .zip(&self.parts)
            .map(|(answer, part)| match answer {
                Ok(set) => Some(set),
                Err(error) => {
                    first_error.get_or_insert_with(|| DiscoveryError::Part {
                        target: part.target().to_string(),
                        error: Box::new(error),
                    });
                    None
                }
            })
            .collect();
        match first_error {
            Some(e) if sets.iter().all(Option::is_none) => Err(e),
            _ => Ok(combine(&self.combine, &sets)),
        }
    }

    /// The parts' streams, merged and combined (see `Discovery::stream`).
    pub(crate) fn stream(self) -> (EndpointStream, RefreshHandle) {
        let count = self.parts.len();
        let names: Vec<String> = self.parts.iter().map(|p| p.target().to_string()).collect();
        let mut handles = Vec::with_capacity(count);
        let mut streams = Vec::with_capacity(count);
        for (i, part) in self.parts.into_iter().enumerate() {
            let (stream, handle) = part.stream();
            handles.push(handle);
            streams.push(stream.map(move |item| (i, item)).boxed());
        }
        let state = Merge {
            merged: futures_util::stream::select_all(streams),
            sets: vec![None; count],
            answered: vec![false; count],
            last: None,
            failing: vec![false; count],
            reported: false,
            dirty: false,
            names,
            name: self.name,
            combine: self.combine,
            on_empty: self.on_empty,
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
        .boxed();
        (
            EndpointStream { inner: stream },
            RefreshHandle::joined(handles),
        )
    }
}

type PartItem = (usize, Result<EndpointSet, DiscoveryError>);

struct Merge {
    merged: futures_util::stream::SelectAll<
        std::pin::Pin<Box<dyn futures_core::Stream<Item = PartItem> + Send>>,
    >,
    /// Each part's last good set.
    sets: Vec<Option<EndpointSet>>,
    /// Each part has answered (with a set or an error) at least once.
    answered: Vec<bool>,
    /// The combined set last yielded.
    last: Option<EndpointSet>,
    /// Each part's last answer was an error.
    failing: Vec<bool>,
    /// An error was yielded and not yet followed by a set with every part
    /// answering.
    reported: bool,
    /// A part answered since the sets were last combined.
    dirty: bool,
    names: Vec<String>,
    name: String,
    combine: Combine,
    on_empty: OnEmpty,
}

impl Merge {
    async fn next(&mut self) -> Option<Result<EndpointSet, DiscoveryError>> {
        loop {
            // The first set waits for every part, so that a slow part does
            // not let a later-preferred one take all traffic for a moment.
            if self.dirty && self.answered.iter().all(|&a| a) {
                self.dirty = false;
                if let Some(item) = self.check() {
                    return Some(item);
                }
            }
            let (i, item) = self.merged.next().await?;
            self.answered[i] = true;
            self.dirty = true;
            match item {
                Ok(set) => {
                    self.sets[i] = Some(set);
                    self.failing[i] = false;
                }
                Err(error) => {
                    self.failing[i] = true;
                    self.reported = true;
                    return Some(Err(DiscoveryError::Part {
                        target: self.names[i].clone(),
                        error: Box::new(error),
                    }));
                }
            }
        }
    }

    /// What the parts' sets say now: a changed set; the same set again
    /// once every part that failed has recovered (which clears the error
    /// a consumer reports); or an error when every part is empty and
    /// `on_empty` keeps the last set.
    fn check(&mut self) -> Option<Result<EndpointSet, DiscoveryError>> {
        if self.sets.iter().all(Option::is_none) {
            // Every part failed: their errors were yielded, and stand.
            return None;
        }
        let combined = combine(&self.combine, &self.sets);
        let recovered = !self.failing.iter().any(|&f| f);
        if combined.is_empty() && self.on_empty == OnEmpty::KeepLast {
            self.reported = true;
            return Some(Err(DiscoveryError::NoRecords {
                name: self.name.clone(),
                nxdomain: false,
            }));
        }
        if self.last.as_ref() != Some(&combined) || (self.reported && recovered) {
            self.reported &= !recovered;
            self.last = Some(combined.clone());
            return Some(Ok(combined));
        }
        None
    }
}

/// The parts' sets as one: in `first`, part `i`'s tiers come after part
/// `i - 1`'s; in `weighted`, each endpoint is marked with its part and the
/// part's share ([`Endpoint::with_traffic_share`]), which the balancer
/// splits each tier's requests by, whatever the policy. A part with no
/// set, or an empty one, contributes nothing (and in `weighted` the others
/// share its part). An address in two parts is the first part's.
pub(crate) fn combine(how: &Combine, sets: &[Option<EndpointSet>]) -> EndpointSet {
    let parts = sets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)));
    match how {
        Combine::First => EndpointSet::new(parts.flat_map(|(i, set)| {
            set.iter().map(move |e| {
                let tier = (i as u32)
                    .saturating_mul(PART_STRIDE)
                    .saturating_add(e.priority().min(0xFFFF));
                e.clone().with_priority(tier)
            })
        })),
        Combine::Weighted(shares) => EndpointSet::new(parts.flat_map(|(i, set)| {
            set.iter()
                .map(move |e| e.clone().with_traffic_share(i as u32, shares[i]))
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fulcrum_core::Endpoint;

    fn set(addrs: &[(u16, u32, u32)]) -> Option<EndpointSet> {
        Some(EndpointSet::new(addrs.iter().map(
            |&(port, weight, priority)| {
                Endpoint::new(([127, 0, 0, 1], port).into())
                    .with_weight(weight)
                    .with_priority(priority)
            },
        )))
    }

    #[test]
    fn first_puts_each_part_in_tiers_after_the_previous() {
        let combined = combine(
            &Combine::First,
            &[
                set(&[(1, 1, 0), (2, 1, 1)]),
                None,
                set(&[(3, 5, 0), (1, 1, 0)]),
            ],
        );
        let tiers: Vec<(u16, u32, u32)> = combined
            .iter()
            .map(|e| (e.addr().port(), e.weight(), e.priority()))
            .collect();
        // Port 1 again in the third part: the first part's endpoint.
        assert_eq!(tiers, [(1, 1, 0), (2, 1, 1), (3, 5, 2 * PART_STRIDE)]);
    }

    #[test]
    fn weighted_marks_each_endpoint_with_its_parts_share() {
        let combined = combine(
            &Combine::Weighted(vec![90, 10]),
            &[set(&[(1, 1, 0), (2, 3, 1)]), set(&[(100, 0, 0)])],
        );
        type Mark = (u16, u32, Option<(u32, u32)>);
        let marks: Vec<Mark> = combined
            .iter()
            .map(|e| (e.addr().port(), e.weight(), e.traffic_share()))
            .collect();
        // Weights (a standby's 0 included) and tiers are the parts' own.
        assert_eq!(
            marks,
            [
                (1, 1, Some((0, 90))),
                (2, 3, Some((0, 90))),
                (100, 0, Some((1, 10)))
            ]
        );
    }
}
