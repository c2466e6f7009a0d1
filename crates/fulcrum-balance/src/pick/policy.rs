//! The two traits every policy implements.

use std::any::Any;
use std::fmt;

use super::{Loads, PickContext};

/// A load-balancing policy: builds a [`Picker`] for a set of ready endpoints.
///
/// A policy is configuration ("P2C on peak EWMA"), shared by every balancer
/// built from one [`Builder`](crate::Builder). Whatever state picking needs
/// (a rotation counter, a session table) lives in the pickers it builds, and
/// is handed from one picker to the next through `previous`, so it belongs to
/// one balancer: two balancers built from one builder never share it.
pub trait Policy: Send + Sync + fmt::Debug + 'static {
    /// The policy's name, as used on the command line and in stats.
    fn name(&self) -> &str;

    /// Builds the picker for these endpoints. Called by the balancer's
    /// driver, off the request path, when the ready set or a weight changes.
    ///
    /// `previous` is the picker the new one replaces in the same balancer
    /// (`None` for the balancer's first picker). A picker with state of its
    /// own takes it over from there: downcast it with
    /// `(previous as &dyn Any).downcast_ref::<MyPicker>()`.
    fn build(&self, loads: &Loads<'_>, previous: Option<&dyn Picker>) -> Box<dyn Picker>;

    /// Whether this policy reads latency ([`Loads::latency`]). If so, every
    /// request is timed (two clock reads). If not, the balancer times one
    /// request in 16 per handle, enough for stats and health, and saves most
    /// of the clock cost (~20 ns per request on a VM). Failures are recorded
    /// either way. Defaults to `true`, the safe choice.
    fn uses_latency(&self) -> bool {
        true
    }

    /// Whether this policy reads [`Loads::total_in_flight`] (bounded-load
    /// hashing does). Only then does the balancer keep that count, which
    /// costs a shared atomic update per request.
    fn tracks_total_load(&self) -> bool {
        false
    }

    /// Whether this policy's picks follow the request's key (the hash
    /// policies, `sticky`). During slow start the balancer picks again when
    /// a policy without a key lands on a ramping endpoint; a policy with a
    /// key keeps its own order, skipping the endpoints that do not
    /// [admit the key](Loads::admits_key). Defaults to `false`.
    fn picks_by_key(&self) -> bool {
        false
    }
}

/// Chooses one endpoint per request. Must be cheap, must not block, and must
/// not allocate: it runs on every request.
pub trait Picker: Any + Send + Sync + fmt::Debug {
    /// The index (into [`PickContext::loads`]) of the endpoint to use, or
    /// `None` if this picker has nothing to offer. An index out of range, or
    /// of an endpoint that is no longer [active](Loads::is_active), is
    /// ignored: the balancer then picks any active endpoint.
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize>;
}

/// `previous` as a `T`, if it is one: how a picker takes over its
/// predecessor's state.
pub(crate) fn previous_as<T: Picker>(previous: Option<&dyn Picker>) -> Option<&T> {
    previous.and_then(|p| (p as &dyn Any).downcast_ref::<T>())
}
