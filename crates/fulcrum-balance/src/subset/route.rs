//! The request side of subsets: which subset a request is routed to,
//! carried by the balancer's key extractor.

use std::fmt;
use std::sync::Arc;

use super::config::Predicate;
use crate::key::KeyExtractor;

/// A subset, as a request is routed to it. Made only by the routes of a
/// [`Subsets`](super::Subsets) given to the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubsetId(pub(crate) u16);

/// A key extractor with subset routes: what
/// [`Builder::subsets`](crate::Builder::subsets) makes of the extractor it
/// had. Keys come from the inner extractor; each request is routed to the
/// first subset whose predicate accepts it.
pub struct Routed<K, Req> {
    pub(crate) key: Arc<K>,
    pub(crate) routes: Box<[(u16, Predicate<Req>)]>,
}

impl<K: fmt::Debug, Req> fmt::Debug for Routed<K, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routed")
            .field("key", &self.key)
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl<K, Req> KeyExtractor<Req> for Routed<K, Req>
where
    K: KeyExtractor<Req>,
    Req: 'static,
{
    #[inline]
    fn key(&self, req: &Req) -> Option<u64> {
        self.key.key(req)
    }

    #[inline]
    fn subset(&self, req: &Req) -> Option<SubsetId> {
        self.routes
            .iter()
            .find(|(_, matches)| matches(req))
            .map(|&(i, _)| SubsetId(i))
    }
}
