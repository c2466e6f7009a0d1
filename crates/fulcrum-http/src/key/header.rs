use http::HeaderName;

use super::{trim, Head, RequestPart};

/// Keys a request by a header's value (the first, if it repeats), for
/// example `x-user-id` or `x-tenant`.
#[derive(Clone, Debug)]
pub struct Header {
    name: HeaderName,
}

impl Header {
    /// The header `name`.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid header name; use [`try_new`](Self::try_new)
    /// for names from configuration.
    pub fn new(name: &str) -> Self {
        Self::try_new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The header `name`, or an error that says why it is not one.
    pub fn try_new(name: &str) -> Result<Self, String> {
        HeaderName::from_bytes(name.as_bytes())
            .map(|name| Header { name })
            .map_err(|_| {
                format!(
                    "{name:?} is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~"
                )
            })
    }
}

impl RequestPart for Header {
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        head.headers.get(&self.name).map(|v| trim(v.as_bytes()))
    }
}
