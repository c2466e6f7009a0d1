//! Affinity keys: what a request is hashed by.
//!
//! A [`KeyExtractor`] turns a request into an optional 64-bit key; the hash
//! pickers (`ring-hash`, `maglev`, `rendezvous`) send equal keys to the same
//! endpoint, and requests without a key to the policy's fallback picker.
//!
//! Keys and endpoints are hashed with fixed, documented functions and no
//! per-process seed, so every client maps the same key and endpoint set to
//! the same endpoint:
//!
//! * bytes → key: [`hash_bytes`], XXH3-64 with seed 0;
//! * an endpoint's identity: XXH3-64 of its address as text (`10.0.0.1:80`,
//!   `[::1]:80`);
//! * mixing: the SplitMix64 finalizer ([`mix64`]).
//!
//! ```
//! use fulcrum_balance::key::{hash_bytes, KeyExtractor, KeyTemplate};
//!
//! struct Req { tenant: String, user: Option<String> }
//!
//! // A closure is an extractor.
//! let by_tenant = |r: &Req| Some(hash_bytes(r.tenant.as_bytes()));
//! // A template combines parts; missing or empty parts are skipped, and a
//! // request with no part at all has no key.
//! let by_tenant_and_user = KeyTemplate::new()
//!     .part(|r: &Req| Some(r.tenant.as_bytes()))
//!     .part(|r: &Req| r.user.as_deref().map(str::as_bytes));
//!
//! let r = Req { tenant: "acme".into(), user: None };
//! assert_eq!(by_tenant.key(&r), Some(hash_bytes(b"acme")));
//! assert!(by_tenant_and_user.key(&r).is_some());
//! let nothing = Req { tenant: String::new(), user: None };
//! assert_eq!(by_tenant_and_user.key(&nothing), None);
//! ```

use std::fmt;
use std::net::SocketAddr;

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// Extracts a request's affinity key.
pub trait KeyExtractor<Req>: Send + Sync + 'static {
    /// The key, or `None` when the request has none (it then goes to the
    /// hash policy's fallback picker).
    fn key(&self, req: &Req) -> Option<u64>;

    /// The subset the request is routed to, if any: only the extractor
    /// [`Builder::subsets`](crate::Builder::subsets) makes routes requests
    /// (see [`subset`](crate::subset)); others keep this default.
    #[inline]
    fn subset(&self, _req: &Req) -> Option<crate::subset::SubsetId> {
        None
    }
}

impl<Req, F> KeyExtractor<Req> for F
where
    F: Fn(&Req) -> Option<u64> + Send + Sync + 'static,
{
    fn key(&self, req: &Req) -> Option<u64> {
        self(req)
    }
}

/// No key extractor: every request goes to the policy unkeyed (the hash
/// policies' fallback). The default of a [`Builder`](crate::Builder).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoKey;

impl<Req> KeyExtractor<Req> for NoKey {
    #[inline]
    fn key(&self, _req: &Req) -> Option<u64> {
        None
    }
}

/// XXH3-64 (seed 0) of `bytes`: the documented way to turn text into a key.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

/// The SplitMix64 finalizer: a fixed bijection on `u64` that spreads bits.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An endpoint's identity for hashing: XXH3-64 of its address as text.
pub fn endpoint_hash(addr: SocketAddr) -> u64 {
    use std::io::Write;
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // An address always fits in 64 bytes (`[v6%scope]:port` is at most 55).
    let _ = write!(cursor, "{addr}");
    let len = cursor.position() as usize;
    hash_bytes(&buf[..len])
}

type Part<Req> = Box<dyn for<'a> Fn(&'a Req) -> Option<&'a [u8]> + Send + Sync>;

/// A key made of several parts of a request, hashed together without
/// allocating. Each part is length-prefixed, so `("ab", "c")` and
/// `("a", "bc")` differ. Missing and empty parts are skipped; with no part
/// at all, the request has no key.
pub struct KeyTemplate<Req> {
    parts: Vec<Part<Req>>,
}

impl<Req> fmt::Debug for KeyTemplate<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTemplate")
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl<Req> Default for KeyTemplate<Req> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Req> KeyTemplate<Req> {
    /// A template with no part yet.
    pub fn new() -> Self {
        KeyTemplate { parts: Vec::new() }
    }

    /// Adds a part: the bytes it borrows from the request, if any.
    pub fn part<F>(mut self, part: F) -> Self
    where
        F: for<'a> Fn(&'a Req) -> Option<&'a [u8]> + Send + Sync + 'static,
    {
        self.parts.push(Box::new(part));
        self
    }
}

impl<Req: 'static> KeyExtractor<Req> for KeyTemplate<Req> {
    fn key(&self, req: &Req) -> Option<u64> {
        let mut hasher = Xxh3::new();
        let mut any = false;
        for (i, part) in self.parts.iter().enumerate() {
            if let Some(bytes) = part(req).filter(|b| !b.is_empty()) {
                hasher.update(&(i as u32).to_le_bytes());
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
                any = true;
            }
        }
        any.then(|| hasher.digest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_documented_values() {
        // Pinned: changing these would remap every key in every client.
        assert_eq!(hash_bytes(b""), 0x2D06_8005_38D3_94C2);
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161D_100B_05E5);
        assert_eq!(
            endpoint_hash("10.0.0.1:80".parse().unwrap()),
            hash_bytes(b"10.0.0.1:80")
        );
        assert_eq!(
            endpoint_hash("[::1]:80".parse().unwrap()),
            hash_bytes(b"[::1]:80")
        );
    }

    #[test]
    fn template_parts_are_unambiguous() {
        let t = KeyTemplate::new()
            .part(|r: &(&str, &str)| Some(r.0.as_bytes()))
            .part(|r: &(&str, &str)| Some(r.1.as_bytes()));
        assert_ne!(t.key(&("ab", "c")), t.key(&("a", "bc")));
        assert_ne!(t.key(&("a", "")), t.key(&("", "a")));
        assert_eq!(t.key(&("", "")), None);
    }
}
