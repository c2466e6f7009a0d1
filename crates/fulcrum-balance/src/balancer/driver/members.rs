//! The endpoints of the current set, and how an update is applied to them:
//! where a new set becomes members to make, members to keep and members to
//! drain.

use std::any::Any;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use fulcrum_core::{BoxError, Endpoint, EndpointSet, NoEndpointsReason};
use futures_util::future::AbortHandle;
use tokio::time::Instant;

use super::{Driver, Maker, DRAIN_CHECK};
use crate::health::ejection::Ejection;
use crate::health::verdict::Verdict;
use crate::slot::{EndpointState, Slot};

pub(super) struct Member<S> {
    /// Distinguishes a re-added endpoint from an old make still in flight.
    pub(super) id: u64,
    pub(super) slot: Arc<Slot>,
    pub(super) service: Option<S>,
    /// When its service is made again, after a failure.
    pub(super) retry_at: Option<Instant>,
    /// Its make in flight, cancelled if it is removed.
    pub(super) making: Option<AbortHandle>,
    /// Its record with outlier detection.
    pub(super) ejection: Ejection,
    /// What its active health checks say, and when it is next probed.
    pub(super) verdict: Verdict,
    pub(super) probe_at: Option<Instant>,
    /// Its probe running, cancelled if it is removed.
    pub(super) probe_abort: Option<AbortHandle>,
    /// Slow start: it was in the balancer's first set; it served in the
    /// last publish; it has ever served; since when it ramps.
    pub(super) first_set: bool,
    pub(super) serving: bool,
    pub(super) has_served: bool,
    pub(super) ramp_since: Option<Instant>,
    /// Until when it is overloaded (its `Retry-After`), as the driver knows.
    pub(super) overload_until: Option<Instant>,
}

impl<S> Member<S> {
    /// Neither ejected nor down by its probe.
    pub(super) fn is_healthy(&self) -> bool {
        !self.ejection.is_ejected() && self.verdict.is_healthy()
    }
}

/// Members in set order, found by id in O(1).
pub(super) struct Members<S> {
    list: Vec<Member<S>>,
    index: HashMap<u64, usize>,
    next_id: u64,
}

impl<S> Default for Members<S> {
    fn default() -> Self {
        Members {
            list: Vec::new(),
            index: HashMap::new(),
            next_id: 0,
        }
    }
}

impl<S> Members<S> {
    pub(super) fn get(&self, id: u64) -> Option<&Member<S>> {
        self.index.get(&id).map(|&i| &self.list[i])
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Member<S>> {
        self.index.get(&id).map(|&i| &mut self.list[i])
    }

    pub(super) fn index_of(&self, id: u64) -> Option<usize> {
        self.index.get(&id).copied()
    }

    pub(super) fn at(&self, index: usize) -> &Member<S> {
        &self.list[index]
    }

    pub(super) fn at_mut(&mut self, index: usize) -> &mut Member<S> {
        &mut self.list[index]
    }

    pub(super) fn iter(&self) -> std::slice::Iter<'_, Member<S>> {
        self.list.iter()
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn replace(&mut self, list: Vec<Member<S>>) {
        self.index = list.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
        self.list = list;
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    fn new_member(&mut self, endpoint: Endpoint) -> Member<S> {
        let owner: Weak<dyn Any + Send + Sync> = self.shared.clone();
        let verdict = Verdict::new(
            self.checks
                .as_ref()
                .is_some_and(|c| c.unhealthy_until_probed),
        );
        let slot = Arc::new(Slot::new(
            endpoint,
            &self.ewma,
            owner,
            self.control.clone(),
            self.total.clone(),
        ));
        if self.checks.is_some() {
            slot.set_probe_verdict(verdict.is_healthy());
        }
        Member {
            id: self.members.next_id(),
            slot,
            service: None,
            retry_at: None,
            making: None,
            ejection: Ejection::default(),
            verdict,
            probe_at: None,
            probe_abort: None,
            first_set: !self.ever_served,
            serving: false,
            has_served: false,
            ramp_since: None,
            overload_until: None,
        }
    }

    /// Queues the member at `index` for a new service.
    pub(super) fn start_make(&mut self, index: usize) {
        let m = &mut self.members.list[index];
        m.slot.set_state(EndpointState::Warming);
        m.service = None;
        m.retry_at = None;
        self.to_make.push_back(m.id);
    }

    /// A member leaves the set: its make is cancelled, and it drains.
    fn retire(&mut self, member: Member<S>) {
        if let Some(making) = member.making {
            making.abort();
        }
        if let Some(probe) = member.probe_abort {
            probe.abort();
        }
        member.slot.set_state(EndpointState::Draining);
        member.slot.ejection_reason.store(0, Ordering::Relaxed);
        if member.slot.in_flight.get() > 0 {
            self.draining.push(member.slot);
            self.drain_at
                .get_or_insert_with(|| Instant::now() + DRAIN_CHECK);
        }
    }

    pub(super) fn on_update(&mut self, update: Option<Result<EndpointSet, BoxError>>) {
        let set = match update {
            None => {
                tracing::debug!("endpoint discovery ended; keeping the last set");
                self.updates = None;
                self.discovered.ended = true;
                self.dirty = true;
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "endpoint discovery failed; keeping the last good set");
                let error: Arc<str> = e.to_string().into();
                if self.discovered.error.as_deref() != Some(&*error) {
                    self.discovered.error = Some(error);
                    self.dirty = true;
                }
                return;
            }
            Some(Ok(set)) => set,
        };
        if set.duplicates() > 0 {
            tracing::warn!(
                duplicates = set.duplicates(),
                "endpoint set repeats addresses; the first occurrence of each is used"
            );
        }
        let d = &mut self.discovered;
        let mut changed = d.error.is_some() || !d.has_set || d.latest_set_empty != set.is_empty();
        d.error = None;
        d.has_set = true;
        d.ever_had_endpoints |= !set.is_empty();
        d.latest_set_empty = set.is_empty();

        let previous = std::mem::take(&mut self.members.list);
        changed |= previous.len() != set.len();
        let mut old: HashMap<SocketAddr, Member<S>> = previous
            .into_iter()
            .map(|m| (m.slot.endpoint.addr(), m))
            .collect();
        let mut list = Vec::with_capacity(set.len());
        let mut to_make = Vec::new();
        for endpoint in set.iter() {
            match old.remove(&endpoint.addr()) {
                Some(m) if m.slot.endpoint.same_identity(endpoint) => {
                    let weight = m.slot.weight.swap(endpoint.weight(), Ordering::Relaxed);
                    let priority = m.slot.priority.swap(endpoint.priority(), Ordering::Relaxed);
                    changed |= weight != endpoint.weight() || priority != endpoint.priority();
                    list.push(m);
                }
                replaced => {
                    if let Some(m) = replaced {
                        self.retire(m);
                    }
                    to_make.push(list.len());
                    list.push(self.new_member(endpoint.clone()));
                    changed = true;
                }
            }
        }
        for (_, m) in old {
            self.retire(m);
            changed = true;
        }
        self.members.replace(list);
        self.forget_departed_overrides();
        for index in to_make {
            self.start_make(index);
            self.schedule_first_probe(index);
        }
        self.dirty |= changed;
    }

    pub(super) fn empty_reason(&self) -> NoEndpointsReason {
        let d = &self.discovered;
        if !d.ever_had_endpoints {
            if d.ended {
                NoEndpointsReason::DiscoveryEnded
            } else {
                NoEndpointsReason::NeverHadAny
            }
        } else if d.latest_set_empty {
            if d.ended {
                NoEndpointsReason::DiscoveryEnded
            } else {
                NoEndpointsReason::SetBecameEmpty
            }
        } else {
            NoEndpointsReason::AllUnavailable
        }
    }
}
