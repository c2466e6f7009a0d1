use std::net::IpAddr;

use http::HeaderName;

use super::{trim, Head, RequestPart};

/// The address of the client a request is made for, set by you as a
/// request extension (a service that calls another on behalf of its own
/// caller knows that caller's address). [`ClientIp`] keys by it.
///
/// ```
/// use fulcrum_http::key::ClientAddr;
///
/// let mut req = http::Request::get("/").body(()).unwrap();
/// req.extensions_mut().insert(ClientAddr::new("203.0.113.9".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    ip: IpAddr,
    // IPv4 as IPv4-mapped IPv6, so both spellings of an address key alike.
    octets: [u8; 16],
}

impl ClientAddr {
    /// The client at `ip`.
    pub fn new(ip: IpAddr) -> Self {
        let octets = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        ClientAddr { ip, octets }
    }

    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

/// Keys a request by its [`ClientAddr`] extension: all of one client's
/// requests go to one endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientIp;

impl RequestPart for ClientIp {
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        head.extensions.get::<ClientAddr>().map(|c| &c.octets[..])
    }
}

/// Keys a request by the original client a proxy in front of you names:
/// the first `for=` of `Forwarded` (RFC 7239), else the first address of
/// `X-Forwarded-For`. The address is used as written (quotes and brackets
/// removed, a port kept).
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardedFor;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

impl RequestPart for ForwardedFor {
    fn bytes<'a>(&self, head: Head<'a>) -> Option<&'a [u8]> {
        let forwarded = head
            .headers
            .get_all(http::header::FORWARDED)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b',' || b == b';'))
            .find_map(|pair| {
                let pair = trim(pair);
                let eq = pair.iter().position(|&b| b == b'=')?;
                let value = node(trim(&pair[eq + 1..]));
                // `unknown` and obfuscated (`_hidden`) nodes name nobody.
                let useful = !value.is_empty()
                    && !value.eq_ignore_ascii_case(b"unknown")
                    && !value.starts_with(b"_");
                (pair[..eq].eq_ignore_ascii_case(b"for") && useful).then_some(value)
            });
        forwarded.or_else(|| {
            let first = head.headers.get(&X_FORWARDED_FOR)?.as_bytes();
            let first = first.split(|&b| b == b',').next()?;
            Some(trim(first))
        })
    }
}

/// A `Forwarded` node without its quotes and IPv6 brackets.
fn node(v: &[u8]) -> &[u8] {
    let v = match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    };
    match v {
        [b'[', rest @ ..] => match rest.iter().position(|&b| b == b']') {
            Some(end) => &rest[..end],
            None => rest,
        },
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    #[test]
    fn forwarded_before_x_forwarded_for() {
        let req = Request::get("/")
            .header("x-forwarded-for", " 198.51.100.7 , 10.0.0.1")
            .body(())
            .unwrap();
        assert_eq!(
            ForwardedFor.bytes(Head::of(&req)),
            Some(&b"198.51.100.7"[..])
        );
        let req = Request::get("/")
            .header(
                "forwarded",
                "proto=https; For=\"[2001:db8::1]:4711\", for=10.0.0.1",
            )
            .header("x-forwarded-for", "198.51.100.7")
            .body(())
            .unwrap();
        assert_eq!(
            ForwardedFor.bytes(Head::of(&req)),
            Some(&b"2001:db8::1"[..])
        );
        let hidden = Request::get("/")
            .header("forwarded", "for=unknown, for=_gazonk")
            .header("x-forwarded-for", "198.51.100.8")
            .body(())
            .unwrap();
        assert_eq!(
            ForwardedFor.bytes(Head::of(&hidden)),
            Some(&b"198.51.100.8"[..])
        );
        let none = Request::get("/").body(()).unwrap();
        assert_eq!(ForwardedFor.bytes(Head::of(&none)), None);
    }

    #[test]
    fn client_addr_spellings_key_alike() {
        let v4 = ClientAddr::new("192.0.2.1".parse().unwrap());
        let mapped = ClientAddr::new("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(v4.octets, mapped.octets);
    }
}
