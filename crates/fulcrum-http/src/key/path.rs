use regex::Regex;

use super::{Head, RequestPart};

/// Keys a request by its whole path (without the query).
#[derive(Clone, Copy, Debug, Default)]
pub struct Path;

impl RequestPart for Path {
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        Some(head.uri.path().as_bytes())
    }
}

/// Keys a request by a part of its path that a regular expression finds:
/// its first capture group, or the whole match if it has none. A path it
/// does not match has no key.
///
/// ```
/// use fulcrum_http::key::{Head, PathRegex, RequestPart};
///
/// let by_user = PathRegex::new(r"^/users/([^/]+)").unwrap();
/// let req = http::Request::get("/users/42/orders").body(()).unwrap();
/// assert_eq!(by_user.bytes(Head::of(&req)), Some(&b"42"[..]));
/// ```
///
/// With a capture group, reading the key allocates (the regex engine's
/// capture slots); without one it does not.
#[derive(Clone, Debug)]
pub struct PathRegex {
    regex: Regex,
    capture: bool,
}

impl PathRegex {
    /// The expression `pattern` (Rust `regex` syntax), or an error that
    /// says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(pattern)?;
        let capture = regex.captures_len() > 1;
        Ok(PathRegex { regex, capture })
    }
}

impl RequestPart for PathRegex {
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        let path = head.uri.path();
        let found = if self.capture {
            self.regex.captures(path)?.get(1)?
        } else {
            self.regex.find(path)?
        };
        Some(found.as_str().as_bytes())
    }
}
