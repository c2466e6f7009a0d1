use super::{Head, RequestPart};

/// Keys a request by a query parameter's raw value (as sent, not
/// percent-decoded; the first, if it repeats).
#[derive(Clone, Debug)]
pub struct Query {
    name: Box<[u8]>,
}

impl Query {
    /// The parameter `name`.
    pub fn new(name: &str) -> Self {
        Query {
            name: name.as_bytes().into(),
        }
    }
}

impl RequestPart for Query {
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        head.uri
            .query()?
            .as_bytes()
            .split(|&b| b == b'&')
            .find_map(|pair| {
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                    None => (pair, &pair[pair.len()..]),
                };
                (name == &*self.name).then_some(value)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    #[test]
    fn finds_the_named_parameter() {
        let req = Request::get("/a?user=7&flag&x=1&user=8").body(()).unwrap();
        let head = Head::of(&req);
        assert_eq!(Query::new("user").bytes(head), Some(&b"7"[..]));
        assert_eq!(Query::new("flag").bytes(head), Some(&b""[..]));
        assert_eq!(Query::new("us").bytes(head), None);
        let bare = Request::get("/a").body(()).unwrap();
        assert_eq!(Query::new("user").bytes(Head::of(&bare)), None);
    }
}
