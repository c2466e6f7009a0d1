//! Affinity keys read from HTTP requests, for the hash policies
//! (`ring-hash`, `maglev`, `rendezvous`, `sticky`).
//!
//! Each extractor reads one part of a request — a [`Header`], a
//! [`Cookie`], a [`Query`] parameter, the [`Path`] or a [`PathRegex`]
//! capture, the caller's [`ClientIp`], or the first address of
//! `Forwarded` / `X-Forwarded-For` ([`ForwardedFor`]) — and a
//! [`Template`] combines several (the first part present does not
//! shadow the others: each present part counts, in order). A request
//! without the part has no key and goes to the policy's fallback picker.
//! Keys are hashed with `fulcrum_balance::key::hash_bytes`, so every
//! client maps a key to the same endpoint.
//!
//! ```
//! use fulcrum_balance::key::KeyExtractor;
//! use fulcrum_http::key::{Cookie, Header, Template};
//! use http::Request;
//!
//! let by_user = Header::new("x-user-id");
//! let by_tenant_and_session = Template::new().header("x-tenant").cookie("session");
//!
//! let req = Request::get("/").header("x-user-id", "42").header("cookie", "theme=dark; session=abc")
//!     .body(()).unwrap();
//! assert!(by_user.key(&req).is_some());
//! assert!(by_tenant_and_session.key(&req).is_some());
//! assert_eq!(Header::new("x-missing").key(&req), None);
//! ```
//!
//! Reading a key allocates nothing, except a [`PathRegex`] with a capture
//! group.

mod client;
mod cookie;
mod header;
mod path;
mod query;
mod template;

pub use client::{ClientAddr, ClientIp, ForwardedFor};
pub use cookie::Cookie;
pub use header::Header;
pub use path::{Path, PathRegex};
pub use query::Query;
pub use template::Template;

use http::{Extensions, HeaderMap, Request, Uri};

/// The parts of a request a key is read from.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// The request's URI.
    pub uri: &'a Uri,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its extensions (where [`ClientAddr`] lives).
    pub extensions: &'a Extensions,
}

impl<'a> Head<'a> {
    /// The head of `req`.
    pub fn of<B>(req: &'a Request<B>) -> Self {
        Head {
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }
}

/// One part of a request that can key it: the bytes it borrows from the
/// request, if the request has them. Every extractor here is one; so can
/// yours be, to join a [`Template`].
pub trait RequestPart: Send + Sync + 'static {
    /// The part's bytes in `head`, or `None` when the request lacks it.
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]>;
}

/// Implements `KeyExtractor<Request<B>>` for a `RequestPart`: the key is the
/// hash of the part's bytes; a missing or empty part is no key.
macro_rules! key_from_part {
    ($($part:ty),*) => {$(
        impl<B> fulcrum_balance::key::KeyExtractor<http::Request<B>> for $part {
            #[inline]
            fn key(&self, req: &http::Request<B>) -> Option<u64> {
                let bytes = $crate::key::RequestPart::bytes(self, $crate::key::Head::of(req))?;
                (!bytes.is_empty()).then(|| fulcrum_balance::key::hash_bytes(bytes))
            }
        }
    )*};
}

key_from_part!(
    Header,
    Cookie,
    Query,
    Path,
    PathRegex,
    ClientIp,
    ForwardedFor
);

/// Trims ASCII spaces and tabs from both ends.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let Some(start) = start else {
        return &[];
    };
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(start);
    &bytes[start..=end]
}
