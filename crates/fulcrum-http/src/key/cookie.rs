use http::header::COOKIE;

use super::{trim, Head, RequestPart};

/// Keys a request by a cookie's value, for example a session id.
#[derive(Clone, Debug)]
pub struct Cookie {
    name: Box<[u8]>,
}

impl Cookie {
    /// The cookie `name`.
    pub fn new(name: &str) -> Self {
        Cookie {
            name: name.as_bytes().into(),
        }
    }
}

impl RequestPart for Cookie {
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        head.headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
            .find_map(|pair| {
                let pair = trim(pair);
                let eq = pair.iter().position(|&b| b == b'=')?;
                (trim(&pair[..eq]) == &*self.name).then(|| unquote(trim(&pair[eq + 1..])))
            })
    }
}

/// A cookie value may be in double quotes (RFC 6265).
fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    #[test]
    fn finds_the_named_cookie() {
        let req = Request::get("/")
            .header("cookie", "a=1; session=\"abc\"")
            .header("cookie", "session=later")
            .body(())
            .unwrap();
        let head = Head::of(&req);
        assert_eq!(Cookie::new("session").bytes(head), Some(&b"abc"[..]));
        assert_eq!(Cookie::new("a").bytes(head), Some(&b"1"[..]));
        assert_eq!(Cookie::new("sess").bytes(head), None);
    }
}
