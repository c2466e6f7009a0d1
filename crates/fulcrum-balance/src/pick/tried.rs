//! The endpoints a request has already been sent to, which a retry or a
//! hedge of it avoids.

/// Endpoints already tried for one request, by address hash
/// ([`endpoint_hash`](crate::key::endpoint_hash)): small and inline, as a
/// request makes a handful of attempts at most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tried {
    hashes: [u64; Tried::CAPACITY],
    len: u8,
}

impl Tried {
    /// Attempts beyond this many are not remembered (the oldest stay
    /// avoided); no retry policy makes this many.
    pub(crate) const CAPACITY: usize = 8;

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Remembers an endpoint by its address hash.
    pub(crate) fn insert_hash(&mut self, hash: u64) {
        if self.contains(hash) || self.len() == Self::CAPACITY {
            return;
        }
        self.hashes[self.len()] = hash;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.hashes[..self.len()].contains(&hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn hash(addr: SocketAddr) -> u64 {
        crate::key::endpoint_hash(addr)
    }

    #[test]
    fn remembers_each_endpoint_once_up_to_its_capacity() {
        let mut tried = Tried::default();
        assert!(tried.is_empty());
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        tried.insert_hash(hash(a));
        tried.insert_hash(hash(a));
        assert_eq!(tried.len(), 1);
        assert!(tried.contains(crate::key::endpoint_hash(a)));
        for port in 2..20 {
            tried.insert_hash(hash(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        assert_eq!(tried.len(), Tried::CAPACITY);
        assert!(tried.contains(crate::key::endpoint_hash(a)));
    }
}
