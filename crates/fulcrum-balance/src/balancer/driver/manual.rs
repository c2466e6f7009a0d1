//! Where a [`Manager`](crate::balancer::Manager)'s commands are applied:
//! manual overrides, keyed by address, that outlive set updates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Driver, Maker};
use crate::balancer::manage::{Command, ManageError};
use crate::slot::{EndpointState, Slot, NO_WEIGHT_OVERRIDE};

/// What an operator set on one address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Override {
    pub(super) disabled: bool,
    pub(super) weight: Option<u32>,
}

/// The overrides, by address.
pub(super) type Overrides = HashMap<SocketAddr, Override>;

impl<S, M> Driver<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Maker<S>,
{
    /// The endpoint at `addr`: a member, or one still draining.
    fn managed_slot(&self, addr: SocketAddr) -> Option<Arc<Slot>> {
        self.members
            .iter()
            .map(|m| &m.slot)
            .chain(self.draining.iter())
            .find(|slot| slot.endpoint.addr() == addr)
            .cloned()
    }

    fn set_override(&mut self, addr: SocketAddr, change: impl FnOnce(&mut Override)) {
        let o = self.overrides.entry(addr).or_default();
        change(o);
        if *o == Override::default() {
            self.overrides.remove(&addr);
        }
        self.dirty = true;
    }

    /// Overrides of addresses that left the set (and finished draining)
    /// are forgotten: a new instance on a reused address (a pod IP) starts
    /// afresh.
    pub(super) fn forget_departed_overrides(&mut self) {
        if self.overrides.is_empty() {
            return;
        }
        let present: std::collections::HashSet<SocketAddr> = self
            .members
            .iter()
            .map(|m| &m.slot)
            .chain(self.draining.iter())
            .map(|slot| slot.endpoint.addr())
            .collect();
        self.overrides.retain(|addr, _| present.contains(addr));
    }

    /// Answers the commands waiting for the snapshot just published.
    pub(super) fn answer_after_publish(&mut self) {
        for reply in self.after_publish.drain(..) {
            let _ = reply.send(Ok(()));
        }
    }

    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Disable(addr, reply) => {
                let answer = match self.managed_slot(addr) {
                    Some(slot) => {
                        self.set_override(addr, |o| o.disabled = true);
                        // In effect for new requests before the reply: the
                        // publish that follows only confirms it.
                        slot.hold_out(EndpointState::Disabled);
                        tracing::info!(endpoint = %slot.endpoint, "endpoint disabled by its manager");
                        Ok(slot)
                    }
                    None => Err(ManageError::UnknownEndpoint(addr)),
                };
                let _ = reply.send(answer);
            }
            Command::Enable(addr, reply) => {
                let known = self.overrides.contains_key(&addr);
                match self.managed_slot(addr) {
                    Some(slot) => {
                        tracing::info!(endpoint = %slot.endpoint, "endpoint enabled by its manager");
                    }
                    None if known => {}
                    None => {
                        let _ = reply.send(Err(ManageError::UnknownEndpoint(addr)));
                        return;
                    }
                }
                self.set_override(addr, |o| o.disabled = false);
                self.after_publish.push(reply);
            }
            Command::Weight(addr, weight, reply) => {
                // `u32::MAX` marks "no override" in the slot.
                let weight = weight.map(|w| w.min(NO_WEIGHT_OVERRIDE - 1));
                let known = self.overrides.contains_key(&addr);
                match self.managed_slot(addr) {
                    Some(slot) => {
                        tracing::info!(endpoint = %slot.endpoint, ?weight, "endpoint weight set by its manager");
                    }
                    None if known && weight.is_none() => {}
                    None => {
                        let _ = reply.send(Err(ManageError::UnknownEndpoint(addr)));
                        return;
                    }
                }
                self.set_override(addr, |o| o.weight = weight);
                self.after_publish.push(reply);
            }
        }
    }
}
