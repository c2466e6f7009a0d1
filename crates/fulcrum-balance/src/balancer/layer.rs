use std::fmt;
use std::marker::PhantomData;

use fulcrum_core::{BoxError, Endpoint};
use tower_layer::Layer;
use tower_service::Service;

use super::{Balancer, Builder};

/// A `tower::Layer` that turns a maker of per-endpoint services (a
/// `tower::Service<Endpoint>`, e.g. [`make_fn`](super::make_fn)) into a
/// [`Balancer`].
///
/// ```
/// use std::convert::Infallible;
/// use fulcrum_balance::{make_fn, BalanceLayer, Balancer};
/// use fulcrum_core::Endpoint;
/// use tower::{service_fn, Layer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = BalanceLayer::<u32>::new(
///     Balancer::builder().endpoints([Endpoint::new("127.0.0.1:1".parse().unwrap())]),
/// );
/// let balancer = layer.layer(make_fn(|_: &Endpoint| {
///     service_fn(|x: u32| async move { Ok::<_, Infallible>(x + 1) })
/// }));
/// # drop(balancer);
/// # }
/// ```
pub struct BalanceLayer<Req> {
    builder: Builder,
    _req: PhantomData<fn(Req)>,
}

impl<Req> BalanceLayer<Req> {
    /// A layer building balancers configured by `builder`.
    pub fn new(builder: Builder) -> Self {
        BalanceLayer {
            builder,
            _req: PhantomData,
        }
    }
}

impl<Req> Clone for BalanceLayer<Req> {
    fn clone(&self) -> Self {
        BalanceLayer::new(self.builder.clone())
    }
}

impl<Req> fmt::Debug for BalanceLayer<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalanceLayer")
            .field("builder", &self.builder)
            .finish()
    }
}

impl<Req, M> Layer<M> for BalanceLayer<Req>
where
    M: Service<Endpoint> + Send + 'static,
    M::Future: Send + 'static,
    M::Error: Into<BoxError>,
    M::Response: Service<Req> + Clone + Send + Sync + 'static,
{
    type Service = Balancer<M::Response, Req>;

    fn layer(&self, make: M) -> Self::Service {
        self.builder.build(make)
    }
}
