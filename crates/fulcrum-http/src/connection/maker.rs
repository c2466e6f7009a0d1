use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use fulcrum_core::{BoxError, Endpoint};
use http::uri::Authority;
use tower_service::Service;

use super::pool::Pool;
use super::{ConnectionConfig, EndpointService};

/// Makes an [`EndpointService`] per endpoint: the balancer's maker for
/// HTTP. `B` is the request body type.
pub struct Connector<B> {
    config: ConnectionConfig,
    _body: PhantomData<fn(B)>,
}

impl<B> Connector<B> {
    /// A maker whose connections follow `config`.
    pub fn new(config: ConnectionConfig) -> Self {
        Connector {
            config,
            _body: PhantomData,
        }
    }
}

impl<B> Clone for Connector<B> {
    fn clone(&self) -> Self {
        Connector::new(self.config.clone())
    }
}

impl<B> fmt::Debug for Connector<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("config", &self.config)
            .finish()
    }
}

impl<B> Service<Endpoint> for Connector<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = EndpointService<B>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<EndpointService<B>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Makes the endpoint's service; connections open on its first
    /// request, not here.
    fn call(&mut self, endpoint: Endpoint) -> Self::Future {
        let authority = authority_of(&endpoint, &self.config);
        let pool = Pool::new(endpoint.addr(), self.config.clone(), authority);
        std::future::ready(Ok(EndpointService::new(Arc::new(pool))))
    }
}

/// The configured authority, else the name the endpoint was discovered by,
/// else its address.
fn authority_of(endpoint: &Endpoint, config: &ConnectionConfig) -> Authority {
    config
        .authority
        .clone()
        .or_else(|| endpoint.authority().and_then(|a| a.parse().ok()))
        .unwrap_or_else(|| {
            endpoint
                .addr()
                .to_string()
                .parse()
                .expect("a socket address is an authority")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_precedence() {
        let config = ConnectionConfig::default();
        let ep = Endpoint::new("10.0.0.1:80".parse().unwrap());
        assert_eq!(authority_of(&ep, &config), "10.0.0.1:80");
        let named = ep.clone().with_authority("orders.internal:80");
        assert_eq!(authority_of(&named, &config), "orders.internal:80");
        let set = config.authority("api.example").unwrap();
        assert_eq!(authority_of(&named, &set), "api.example");
        let v6 = Endpoint::new("[::1]:8080".parse().unwrap());
        assert_eq!(
            authority_of(&v6, &ConnectionConfig::default()),
            "[::1]:8080"
        );
    }
}
