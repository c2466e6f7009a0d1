use std::fmt;

use fulcrum_core::{BoxError, Endpoint};
use tower_layer::Layer;
use tower_service::Service;

use super::{Balancer, Builder};
use crate::classify::DefaultClassify;
use crate::key::NoKey;

/// A `tower::Layer` that turns a maker of per-endpoint services (a
/// `tower::Service<Endpoint>`, e.g. [`make_fn`](super::make_fn)) into a
/// [`Balancer`], configured by a [`Builder`]: policy, key extractor,
/// classifier and all.
///
/// ```
/// use std::convert::Infallible;
/// use fulcrum_balance::{key::hash_bytes, make_fn, BalanceLayer, Balancer};
/// use fulcrum_core::Endpoint;
/// use tower::{service_fn, Layer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = BalanceLayer::new(
///     Balancer::builder()
///         .policy_name("maglev").unwrap()
///         .key(|x: &u32| Some(u64::from(*x)))
///         .endpoints([Endpoint::new("127.0.0.1:1".parse().unwrap())]),
/// );
/// let balancer = layer.layer(make_fn(|_: &Endpoint| {
///     service_fn(|x: u32| async move { Ok::<_, Infallible>(x + 1) })
/// }));
/// # drop(balancer);
/// # }
/// ```
pub struct BalanceLayer<K = NoKey, C = DefaultClassify> {
    builder: Builder<K, C>,
}

impl<K, C> BalanceLayer<K, C> {
    /// A layer building balancers configured by `builder`.
    pub fn new(builder: Builder<K, C>) -> Self {
        BalanceLayer { builder }
    }
}

impl<K, C: Clone> Clone for BalanceLayer<K, C> {
    fn clone(&self) -> Self {
        BalanceLayer::new(self.builder.clone())
    }
}

impl<K, C> fmt::Debug for BalanceLayer<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalanceLayer")
            .field("builder", &self.builder)
            .finish()
    }
}

impl<M, K, C> Layer<M> for BalanceLayer<K, C>
where
    M: Service<Endpoint> + Send + 'static,
    M::Future: Send + 'static,
    M::Error: Into<BoxError>,
    M::Response: Clone + Send + Sync + 'static,
    C: Clone,
{
    type Service = Balancer<M::Response, K, C>;

    fn layer(&self, make: M) -> Self::Service {
        self.builder.build(make)
    }
}
