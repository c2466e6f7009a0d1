//! Where a builder's endpoints come from: a fixed list, an updates
//! channel, a stream, or discovery from a target.

use std::sync::{Arc, Mutex};

use fulcrum_core::{BoxError, Endpoint, EndpointSet};
use futures_core::Stream;
use futures_util::StreamExt;

use super::Builder;
use crate::balancer::config::RefreshFn;
use crate::updates::{BoxUpdates, Updates};

#[derive(Clone)]
pub(super) enum Source {
    None,
    Static(EndpointSet),
    Updates(Updates),
    /// A one-shot stream: the first balancer built takes it.
    Stream(Arc<Mutex<Option<BoxUpdates>>>),
    /// A fresh discovery stream for each balancer built.
    #[cfg(feature = "discovery")]
    Discovery(Box<fulcrum_discovery::Discovery>),
}

impl Source {
    /// The update stream, and how to ask the source for an early refresh
    /// (discovery re-resolves, rate-limited, when endpoints fail).
    pub(super) fn into_updates(self) -> (BoxUpdates, Option<RefreshFn>) {
        let updates = match self {
            Source::None => futures_util::stream::empty().boxed(),
            Source::Static(set) => futures_util::stream::iter([Ok(set)]).boxed(),
            Source::Updates(updates) => updates.into_stream(),
            #[cfg(feature = "discovery")]
            Source::Discovery(discovery) => {
                let (stream, handle) = (*discovery).stream();
                let refresh: RefreshFn = Arc::new(move || handle.refresh());
                let stream = stream.map(|r| r.map_err(BoxError::from)).boxed();
                return (stream, Some(refresh));
            }
            Source::Stream(slot) => match slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(stream) => stream,
                None => futures_util::stream::iter([Err(BoxError::from(
                    "this discovery stream was already used by another balancer; \
                     use `Builder::updates` (clonable) to feed several balancers",
                ))])
                .boxed(),
            },
        };
        (updates, None)
    }
}

impl<K, C> Builder<K, C> {
    /// A fixed set of endpoints.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.source = Source::Static(endpoints.into_iter().collect());
        self
    }

    /// Deterministic subsetting ([`Subsetting`](crate::subsetting::Subsetting)):
    /// this client uses only its subset of each endpoint set discovery
    /// gives, chosen so that every endpoint gets close to the same number
    /// of clients. Off by default (every endpoint is used).
    ///
    /// ```
    /// use fulcrum_balance::{subsetting::Subsetting, Balancer};
    ///
    /// let builder = Balancer::builder()
    ///     .subsetting(Subsetting::rendezvous("orders-7f9c", 10).unwrap());
    /// # drop(builder);
    /// ```
    pub fn subsetting(mut self, subsetting: crate::subsetting::Subsetting) -> Self {
        self.settings.subsetting = Some(subsetting);
        self
    }

    /// Endpoint sets from an [`Updater`](crate::Updater) channel. Clonable:
    /// several balancers (or a layer applied many times) can share it.
    pub fn updates(mut self, updates: Updates) -> Self {
        self.source = Source::Updates(updates);
        self
    }

    /// Endpoint sets from any stream (e.g. a discovery crate's). Errors are
    /// reported in stats while the last good set is kept. When the stream
    /// ends, the last set stays. One stream feeds one balancer.
    pub fn discover<D, E>(mut self, stream: D) -> Self
    where
        D: Stream<Item = Result<EndpointSet, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let stream: BoxUpdates = stream.map(|r| r.map_err(Into::into)).boxed();
        self.source = Source::Stream(Arc::new(Mutex::new(Some(stream))));
        self
    }

    /// Endpoints from a target string: a static list, `dns:///host:port`
    /// (A/AAAA) or `dns+srv:///_service._proto.domain` (SRV), re-resolved by
    /// TTL (see `fulcrum_discovery`). Also names the balancer after it.
    ///
    /// ```
    /// let builder = fulcrum_balance::Balancer::builder()
    ///     .discover_target("dns+srv://127.0.0.1:5353/_http._tcp.api.internal")
    ///     .unwrap();
    /// let err = fulcrum_balance::Balancer::builder().discover_target("dns:///api").unwrap_err();
    /// assert!(err.to_string().contains("needs a port"));
    /// # drop(builder);
    /// ```
    #[cfg(feature = "discovery")]
    pub fn discover_target(self, target: &str) -> Result<Self, fulcrum_discovery::TargetError> {
        Ok(self.discovery(fulcrum_discovery::Discovery::new(target)?))
    }

    /// Endpoints from a configured [`Discovery`](fulcrum_discovery::Discovery).
    /// Each balancer built gets its own discovery stream.
    #[cfg(feature = "discovery")]
    pub fn discovery(mut self, discovery: fulcrum_discovery::Discovery) -> Self {
        self.settings.target = discovery.target().to_string();
        self.source = Source::Discovery(Box::new(discovery));
        self
    }
}
