//! The parts of a target: schemes, hosts, ports, resolvers, SRV names.

use std::net::{IpAddr, SocketAddr};

use super::{TargetError, TargetErrorKind};

/// `input` without `scheme`, compared case-insensitively.
pub(super) fn strip_scheme<'a>(input: &'a str, scheme: &str) -> Option<&'a str> {
    let head = input.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &input[scheme.len()..])
}

/// `IP`, `IP:PORT`, `[V6]` or `[V6]:PORT`. An IPv6 address must be in
/// brackets: `::1:5353` could be an address or an address and a port.
pub(super) fn parse_resolver(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return (addr.port() != 0).then_some(addr);
    }
    if let Some(v6) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| SocketAddr::new(IpAddr::V6(ip), 53));
    }
    s.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|ip| SocketAddr::new(IpAddr::V4(ip), 53))
}

pub(super) fn parse_port(input: &str, port: &str, at: usize) -> Result<u16, TargetError> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(TargetError::new(
            input,
            at,
            TargetErrorKind::InvalidPort(port.to_owned()),
        )),
    }
}

/// `host:port` or `[v6]:port`; the host is a DNS name or an IP literal.
pub(super) fn parse_host_port(
    input: &str,
    s: &str,
    at: usize,
) -> Result<(String, u16), TargetError> {
    let err = |at, kind| TargetError::new(input, at, kind);
    if let Some(rest) = s.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Err(err(at, TargetErrorKind::InvalidHost(s.to_owned())));
        };
        let ip = &rest[..close];
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(err(at + 1, TargetErrorKind::InvalidHost(ip.to_owned())));
        }
        let after = &rest[close + 1..];
        let Some(port) = after.strip_prefix(':') else {
            return Err(err(
                at + close + 2,
                TargetErrorKind::MissingPort(format!("[{ip}]")),
            ));
        };
        return Ok((ip.to_owned(), parse_port(input, port, at + close + 3)?));
    }
    let Some(colon) = s.rfind(':') else {
        if s.is_empty() {
            return Err(err(at, TargetErrorKind::InvalidHost(String::new())));
        }
        return Err(err(
            at + s.len(),
            TargetErrorKind::MissingPort(s.to_owned()),
        ));
    };
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    if host.contains(':') {
        // An IPv6 address without brackets: ambiguous with the port.
        return Err(err(
            at,
            TargetErrorKind::InvalidHost(format!(
                "{host} (IPv6 addresses go in brackets: [{host}]:PORT)"
            )),
        ));
    }
    let port = parse_port(input, port, at + colon + 1)?;
    if host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
        return Err(err(at, TargetErrorKind::InvalidHost(host.to_owned())));
    }
    Ok((host.to_owned(), port))
}

/// RFC 1123 host names, also allowing `_` (SRV labels) and a trailing dot.
pub(super) fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub(super) fn parse_srv_name(input: &str, name: &str, at: usize) -> Result<String, TargetError> {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    let valid = is_dns_name(name)
        && labels.len() >= 3
        && labels[0].starts_with('_')
        && labels[1].starts_with('_')
        && labels[0].len() > 1
        && labels[1].len() > 1;
    if valid {
        Ok(name.to_owned())
    } else {
        Err(TargetError::new(
            input,
            at,
            TargetErrorKind::InvalidSrvName(name.to_owned()),
        ))
    }
}
