//! Manual control of endpoints at runtime: drain, disable, enable and
//! re-weight one without an endpoint-set update.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::slot::Slot;

/// How often a drain looks at the endpoint's requests in flight.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// What a [`Manager`] asks the driver to do.
pub(crate) enum Command {
    /// Take no new requests until enabled; replies with the endpoint.
    Disable(SocketAddr, oneshot::Sender<Result<Arc<Slot>, ManageError>>),
    Enable(SocketAddr, oneshot::Sender<Result<(), ManageError>>),
    /// Override the weight (`None`: back to discovery's).
    Weight(
        SocketAddr,
        Option<u32>,
        oneshot::Sender<Result<(), ManageError>>,
    ),
}

/// Why a [`Manager`] command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManageError {
    /// No endpoint with this address in the balancer's current set (nor
    /// draining).
    UnknownEndpoint(SocketAddr),
    /// The balancer's driver has stopped (every balancer clone was
    /// dropped, or its runtime shut down).
    DriverStopped,
}

impl fmt::Display for ManageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManageError::UnknownEndpoint(addr) => write!(
                f,
                "no endpoint {addr} in the balancer's current set; `stats()` lists the endpoints it has"
            ),
            ManageError::DriverStopped => write!(
                f,
                "the balancer's driver has stopped; nothing to manage (keep a balancer clone alive)"
            ),
        }
    }
}

impl std::error::Error for ManageError {}

/// A handle to drain, disable, enable and re-weight a balancer's endpoints
/// at runtime, without an endpoint-set update: mod_proxy's
/// balancer-manager, as a library call. Get one with
/// [`Balancer::manager`](crate::Balancer::manager); clone it freely.
///
/// Changes are made by the balancer's driver, keyed by address, and
/// outlive set updates that keep the endpoint (a re-resolve, a new weight
/// from discovery); they are forgotten once the address has left the set
/// and finished draining, so that a new instance on a reused address (a
/// pod IP) starts afresh. A disabled endpoint takes no new request, even
/// in panic mode, and does not count in its tier's health; its service and
/// its requests in flight are kept. Each call returns once the change is
/// in effect for new requests (the driver has published it).
///
/// A rolling update without a failed request: add the new endpoint, then
/// [`drain`](Self::drain) the old one and remove it from the set.
///
/// ```
/// # use std::{convert::Infallible, time::Duration};
/// # use fulcrum_balance::{make_fn, Balancer, EndpointState};
/// # use fulcrum_core::Endpoint;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (a, b) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
/// let lb = Balancer::builder()
///     .endpoints([Endpoint::new(a), Endpoint::new(b)])
///     .build(make_fn(|_: &Endpoint| tower::service_fn(|()| async { Ok::<_, Infallible>(()) })));
/// lb.ready_all(Duration::from_secs(1)).await.unwrap();
/// let manager = lb.manager();
/// manager.drain(a).await.unwrap(); // no new requests; in-flight ones done
/// assert_eq!(lb.stats().endpoint(a).unwrap().state, EndpointState::Disabled);
/// manager.set_weight(b, 5).await.unwrap();
/// manager.enable(a).await.unwrap();
/// assert!(manager.disable("127.0.0.1:3".parse().unwrap()).await.is_err());
/// # }
/// ```
#[derive(Clone)]
pub struct Manager {
    commands: mpsc::UnboundedSender<Command>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    pub(crate) fn new(commands: mpsc::UnboundedSender<Command>) -> Self {
        Manager { commands }
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, ManageError>>) -> Command,
    ) -> Result<T, ManageError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| ManageError::DriverStopped)?;
        answer.await.map_err(|_| ManageError::DriverStopped)?
    }

    /// Stops new requests to the endpoint at `addr`, then waits until its
    /// requests in flight have finished (their response bodies included).
    /// It stays disabled until [`enable`](Self::enable)d. The wait has no
    /// deadline of its own: wrap it in a timeout if a request may hang.
    pub async fn drain(&self, addr: SocketAddr) -> Result<(), ManageError> {
        let slot = self.ask(|reply| Command::Disable(addr, reply)).await?;
        // A request picks its endpoint and counts itself in flight in one
        // synchronous step of `call`; a thread preempted between the two
        // could still send one after a single idle reading, so the drain
        // ends after two, a poll apart.
        let mut idle_readings = 0;
        while idle_readings < 2 {
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            if slot.in_flight.get() == 0 {
                idle_readings += 1;
            } else {
                idle_readings = 0;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        Ok(())
    }

    /// Stops new requests to the endpoint at `addr` (requests in flight
    /// go on) until it is enabled.
    pub async fn disable(&self, addr: SocketAddr) -> Result<(), ManageError> {
        self.ask(|reply| Command::Disable(addr, reply))
            .await
            .map(drop)
    }

    /// Lets a disabled or drained endpoint take requests again (health
    /// permitting).
    pub async fn enable(&self, addr: SocketAddr) -> Result<(), ManageError> {
        self.ask(|reply| Command::Enable(addr, reply)).await
    }

    /// Overrides the endpoint's weight (0 makes it a standby; at most
    /// `u32::MAX - 1`), whatever discovery says, until
    /// [`reset_weight`](Self::reset_weight).
    pub async fn set_weight(&self, addr: SocketAddr, weight: u32) -> Result<(), ManageError> {
        self.ask(|reply| Command::Weight(addr, Some(weight), reply))
            .await
    }

    /// Back to the weight discovery gives the endpoint.
    pub async fn reset_weight(&self, addr: SocketAddr) -> Result<(), ManageError> {
        self.ask(|reply| Command::Weight(addr, None, reply)).await
    }
}
