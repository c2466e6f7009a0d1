use std::fmt;

use fulcrum_balance::key::{hash_bytes, mix64, KeyExtractor};
use http::Request;

use super::{ClientIp, Cookie, ForwardedFor, Head, Header, Path, Query, RequestPart};

/// A key combining several parts of a request, in order: the parts the
/// request has are hashed together (each separately, then mixed with its
/// position, so `("ab", "c")` and `("a", "bc")` differ); missing or empty
/// parts are skipped; a request with none has no key. The GovWay-style
/// affinity templates: `${header:x-tenant}${cookie:session}`.
///
/// ```
/// use fulcrum_http::key::Template;
///
/// let key = Template::new().header("x-tenant").cookie("session").query("user").client_ip();
/// # drop(key);
/// ```
#[derive(Default)]
pub struct Template {
    parts: Vec<Box<dyn RequestPart>>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl Template {
    /// A template with no part yet.
    pub fn new() -> Self {
        Template::default()
    }

    /// Adds any part.
    pub fn part(mut self, part: impl RequestPart) -> Self {
        self.parts.push(Box::new(part));
        self
    }

    /// Adds a header's value (see [`Header::new`] for when it panics).
    pub fn header(self, name: &str) -> Self {
        self.part(Header::new(name))
    }

    /// Adds a cookie's value.
    pub fn cookie(self, name: &str) -> Self {
        self.part(Cookie::new(name))
    }

    /// Adds a query parameter's value.
    pub fn query(self, name: &str) -> Self {
        self.part(Query::new(name))
    }

    /// Adds the path.
    pub fn path(self) -> Self {
        self.part(Path)
    }

    /// Adds the [`ClientAddr`](super::ClientAddr) extension.
    pub fn client_ip(self) -> Self {
        self.part(ClientIp)
    }

    /// Adds the client a proxy names in `Forwarded` / `X-Forwarded-For`.
    pub fn forwarded_for(self) -> Self {
        self.part(ForwardedFor)
    }

    fn combine(&self, head: Head<'_>) -> Option<u64> {
        let mut key = None::<u64>;
        for (i, part) in self.parts.iter().enumerate() {
            if let Some(bytes) = part.bytes(head).filter(|b| !b.is_empty()) {
                let h = hash_bytes(bytes) ^ mix64(i as u64 + 1);
                key = Some(mix64(key.unwrap_or(0).rotate_left(23) ^ h));
            }
        }
        key
    }
}

impl<B> KeyExtractor<Request<B>> for Template {
    fn key(&self, req: &Request<B>) -> Option<u64> {
        self.combine(Head::of(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(tenant: Option<&str>, session: Option<&str>) -> Request<()> {
        let mut r = Request::get("/");
        if let Some(t) = tenant {
            r = r.header("x-tenant", t);
        }
        if let Some(s) = session {
            r = r.header("cookie", format!("session={s}"));
        }
        r.body(()).unwrap()
    }

    #[test]
    fn parts_combine_in_order() {
        let t = Template::new().header("x-tenant").cookie("session");
        let both = t.key(&req(Some("a"), Some("b"))).unwrap();
        assert_ne!(both, t.key(&req(Some("b"), Some("a"))).unwrap());
        assert_ne!(both, t.key(&req(Some("a"), None)).unwrap());
        // Only the session: not the same key as only a tenant of that value.
        assert_ne!(
            t.key(&req(None, Some("a"))).unwrap(),
            t.key(&req(Some("a"), None)).unwrap()
        );
        assert_eq!(t.key(&req(None, None)), None);
        assert_eq!(both, t.key(&req(Some("a"), Some("b"))).unwrap());
    }
}
