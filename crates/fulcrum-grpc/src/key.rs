//! Affinity keys from gRPC calls.
//!
//! A call's metadata travels as HTTP/2 headers, so [`Metadata`] reads
//! one by name: `x-user-id`, `x-tenant`, or a binary `-bin` entry (keyed by
//! its base64 text as sent). It is a [`RequestPart`], so it joins a
//! [`Template`] with the method's path ([`Path`]) or anything else
//! [`fulcrum_http::key`] offers.
//!
//! ```
//! use fulcrum_grpc::key::{Metadata, Path, Template};
//!
//! // The same user on the same endpoint:
//! let by_user = Metadata::new("x-user-id");
//! // ... per method:
//! let by_user_and_method = Template::new().part(Metadata::new("x-user-id")).part(Path);
//! # drop((by_user, by_user_and_method));
//! ```

use fulcrum_balance::key::{hash_bytes, KeyExtractor};
use fulcrum_http::key::{Head, Header};

pub use fulcrum_http::key::{Path, RequestPart, Template};

/// Keys a call by one of its metadata entries (the first, if it repeats).
/// A call without it has no key and goes to the hash policy's fallback.
#[derive(Clone, Debug)]
pub struct Metadata {
    header: Header,
}

impl Metadata {
    /// The metadata entry `name`.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid metadata key; use
    /// [`try_new`](Self::try_new) for names from configuration.
    pub fn new(name: &str) -> Self {
        Self::try_new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The metadata entry `name`, or an error that says why it cannot be
    /// one: metadata keys are lowercase letters, digits, `-`, `_` and `.`,
    /// and `grpc-` names belong to the protocol.
    pub fn try_new(name: &str) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'));
        if !valid {
            return Err(format!(
                "{name:?} is not a gRPC metadata key: use lowercase letters, digits, '-', '_' \
                 and '.'"
            ));
        }
        if name.starts_with("grpc-") {
            return Err(format!(
                "{name:?} is reserved for gRPC itself; key calls by metadata of your own"
            ));
        }
        Ok(Metadata {
            header: Header::try_new(name)?,
        })
    }
}

impl RequestPart for Metadata {
    #[inline]
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        self.header.bytes(head)
    }
}

impl<B> KeyExtractor<http::Request<B>> for Metadata {
    #[inline]
    fn key(&self, req: &http::Request<B>) -> Option<u64> {
        let bytes = self.bytes(Head::of(req))?;
        (!bytes.is_empty()).then(|| hash_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(metadata: &[(&str, &str)]) -> http::Request<()> {
        let mut req = http::Request::post("/greeter.Greeter/SayHello");
        for (name, value) in metadata {
            req = req.header(*name, *value);
        }
        req.body(()).unwrap()
    }

    #[test]
    fn keys_by_the_entry_and_only_it() {
        let key = Metadata::new("x-user-id");
        let a = key.key(&call(&[("x-user-id", "alice")]));
        assert_eq!(
            a,
            key.key(&call(&[("x-user-id", "alice"), ("x-other", "1")]))
        );
        assert_ne!(a, key.key(&call(&[("x-user-id", "bob")])));
        assert_eq!(key.key(&call(&[("x-other", "alice")])), None);
        assert_eq!(key.key(&call(&[("x-user-id", "")])), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(Metadata::try_new("X-User")
            .unwrap_err()
            .contains("lowercase"));
        assert!(Metadata::try_new("").is_err());
        assert!(Metadata::try_new("grpc-timeout")
            .unwrap_err()
            .contains("reserved"));
        assert!(Metadata::try_new("trace.id-bin").is_ok());
    }

    #[test]
    fn joins_a_template() {
        let key = Template::new().part(Metadata::new("x-user-id")).part(Path);
        let hello = call(&[("x-user-id", "alice")]);
        let mut other = call(&[("x-user-id", "alice")]);
        *other.uri_mut() = "/greeter.Greeter/SayGoodbye".parse().unwrap();
        assert_ne!(key.key(&hello), key.key(&other));
    }
}
