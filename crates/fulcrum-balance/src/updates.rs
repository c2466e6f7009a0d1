//! Feeding endpoint sets to balancers by hand.
//!
//! ```
//! use fulcrum_balance::updates;
//! use fulcrum_core::{Endpoint, EndpointSet};
//!
//! let (updater, updates) = updates::channel(EndpointSet::empty());
//! // give `updates` to `Balancer::builder().updates(updates)`, then later:
//! updater.update([Endpoint::new("127.0.0.1:9000".parse().unwrap())].into_iter().collect());
//! assert_eq!(updater.current().len(), 1);
//! # drop(updates);
//! ```

use std::pin::Pin;

use fulcrum_core::{BoxError, EndpointSet};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::sync::watch;

pub(crate) type BoxUpdates = Pin<Box<dyn Stream<Item = Result<EndpointSet, BoxError>> + Send>>;

/// A channel of whole endpoint sets: the [`Updater`] publishes, every
/// [`Updates`] (and every balancer built from one) sees the latest set.
pub fn channel(initial: EndpointSet) -> (Updater, Updates) {
    let (tx, rx) = watch::channel(initial);
    (Updater { tx }, Updates { rx })
}

/// Publishes endpoint sets. Dropping it ends discovery: balancers keep the
/// last set.
#[derive(Debug)]
pub struct Updater {
    tx: watch::Sender<EndpointSet>,
}

impl Updater {
    /// Replaces the endpoint set. Balancers apply it even when no request flows.
    pub fn update(&self, set: EndpointSet) {
        self.tx.send_replace(set);
    }

    /// The set last published.
    pub fn current(&self) -> EndpointSet {
        self.tx.borrow().clone()
    }

    /// Another receiving end.
    pub fn subscribe(&self) -> Updates {
        Updates {
            rx: self.tx.subscribe(),
        }
    }
}

/// The receiving end of [`channel`]; give it to
/// [`Builder::updates`](crate::Builder::updates).
#[derive(Clone, Debug)]
pub struct Updates {
    rx: watch::Receiver<EndpointSet>,
}

impl Updates {
    pub(crate) fn into_stream(self) -> BoxUpdates {
        futures_util::stream::unfold((self.rx, true), |(mut rx, first)| async move {
            if !first && rx.changed().await.is_err() {
                return None;
            }
            let set = rx.borrow_and_update().clone();
            Some((Ok(set), (rx, false)))
        })
        .boxed()
    }
}
