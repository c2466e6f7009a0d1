//! Targets: the names users give fulcrum, parsed into what to resolve.
//!
//! | form | meaning |
//! |---|---|
//! | `127.0.0.1:8080,127.0.0.1:8081=3` or `static:…` | a fixed list; `=N` sets an entry's weight |
//! | `127.0.0.1:8080,127.0.0.1:9090;backup` | `;backup` marks a backup (priority 1): it serves when the others cannot (NGINX's `backup`) |
//! | `127.0.0.1:5432;role=primary,127.0.0.1:5433;role=replica` | `;key=value` labels an entry (for subsets; letters, digits and `-_./`) |
//! | `host:port`, `dns:///host:port` | A/AAAA records of `host` from the system resolver |
//! | `dns://RESOLVER_IP[:PORT]/host:port` | the same from an explicit resolver (port 53 by default) |
//! | `dns+srv:///_service._proto.domain` | SRV records: target hosts, ports, priorities, weights |
//! | `dns+srv://RESOLVER_IP[:PORT]/_service._proto.domain` | the same from an explicit resolver |
//!
//! IPv6 addresses go in brackets: `[::1]:8080`, `dns://[::1]:5353/api.internal:80`.
//!
//! ```
//! use fulcrum_discovery::Target;
//!
//! let t: Target = "dns+srv://127.0.0.1:5353/_http._tcp.api.internal".parse().unwrap();
//! assert_eq!(t.to_string(), "dns+srv://127.0.0.1:5353/_http._tcp.api.internal");
//!
//! let err = "dns:///api.internal".parse::<Target>().unwrap_err();
//! assert!(err.to_string().contains("port"), "{err}");
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use fulcrum_core::{Endpoint, EndpointSet};

/// What to resolve, parsed from a target string. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A fixed list of endpoints.
    Static(EndpointSet),
    /// A/AAAA records of `host`; every address becomes an endpoint on `port`.
    Dns {
        /// An explicit resolver, or `None` for the system configuration.
        resolver: Option<SocketAddr>,
        /// The name to resolve, as given (kept as the endpoints' authority).
        host: String,
        /// The port of every endpoint.
        port: u16,
    },
    /// SRV records of `name` (`_service._proto.domain`).
    Srv {
        /// An explicit resolver, or `None` for the system configuration.
        resolver: Option<SocketAddr>,
        /// The SRV owner name.
        name: String,
    },
}

/// The accepted forms, for error messages.
const FORMS: &str = "host:port, dns:///host:port, dns://RESOLVER_IP:PORT/host:port, \
                     dns+srv:///_service._proto.domain, dns+srv://RESOLVER_IP:PORT/_service._proto.domain, \
                     IP:PORT[=WEIGHT],… or static:IP:PORT[=WEIGHT],…";

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(input: &str) -> Result<Self, TargetError> {
        Target::parse(input)
    }
}

impl Target {
    /// Parses a target; see the [module docs](self) for the forms.
    /// Surrounding whitespace is ignored and schemes are case-insensitive.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let input = input.trim();
        let err = |at, kind| TargetError::new(input, at, kind);
        if input.is_empty() {
            return Err(err(0, TargetErrorKind::Empty));
        }
        if let Some(rest) = strip_scheme(input, "static:") {
            return parse_static(input, rest, "static:".len());
        }
        for (scheme, srv) in [("dns+srv://", true), ("dns://", false)] {
            if let Some(rest) = strip_scheme(input, scheme) {
                let Some(slash) = rest.find('/') else {
                    return Err(err(input.len(), TargetErrorKind::MissingPath));
                };
                let (authority, path) = (&rest[..slash], &rest[slash + 1..]);
                let resolver = if authority.is_empty() {
                    None
                } else {
                    Some(parse_resolver(authority).ok_or_else(|| {
                        err(
                            scheme.len(),
                            TargetErrorKind::InvalidResolver(authority.to_owned()),
                        )
                    })?)
                };
                let path_at = scheme.len() + slash + 1;
                return if srv {
                    parse_srv_name(input, path, path_at).map(|name| Target::Srv { resolver, name })
                } else {
                    parse_host_port(input, path, path_at).map(|(host, port)| Target::Dns {
                        resolver,
                        host,
                        port,
                    })
                };
            }
        }
        if let Some(colon_slash) = input.find("://") {
            let scheme = &input[..colon_slash];
            return Err(err(0, TargetErrorKind::UnknownScheme(scheme.to_owned())));
        }
        // `dns:host:port` (missing the slashes)
        for scheme in ["dns+srv:", "dns:"] {
            if strip_scheme(input, scheme).is_some() {
                return Err(err(scheme.len(), TargetErrorKind::MissingPath));
            }
        }
        if input.contains([',', '=', ';']) || input.parse::<SocketAddr>().is_ok() {
            return parse_static(input, input, 0);
        }
        let (host, port) = parse_host_port(input, input, 0)?;
        match host.parse::<IpAddr>() {
            Ok(ip) => Ok(Target::Static(EndpointSet::new([Endpoint::new(
                SocketAddr::new(ip.to_canonical(), port),
            )]))),
            Err(_) => Ok(Target::Dns {
                resolver: None,
                host,
                port,
            }),
        }
    }

    /// The resolver this target names, if any.
    pub fn resolver(&self) -> Option<SocketAddr> {
        match self {
            Target::Static(_) => None,
            Target::Dns { resolver, .. } | Target::Srv { resolver, .. } => *resolver,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authority = |r: &Option<SocketAddr>| r.map(|r| r.to_string()).unwrap_or_default();
        match self {
            Target::Static(set) => {
                f.write_str("static:")?;
                for (i, ep) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}", ep.addr())?;
                    if ep.weight() != 1 {
                        write!(f, "={}", ep.weight())?;
                    }
                    if ep.priority() > 0 {
                        f.write_str(";backup")?;
                    }
                    for (key, value) in ep.labels() {
                        write!(f, ";{key}={value}")?;
                    }
                }
                Ok(())
            }
            Target::Dns {
                resolver,
                host,
                port,
            } => {
                let host = match host.parse::<std::net::Ipv6Addr>() {
                    Ok(_) => format!("[{host}]"),
                    Err(_) => host.clone(),
                };
                write!(f, "dns://{}/{host}:{port}", authority(resolver))
            }
            Target::Srv { resolver, name } => write!(f, "dns+srv://{}/{name}", authority(resolver)),
        }
    }
}

/// `input` without `scheme`, compared case-insensitively.
fn strip_scheme<'a>(input: &'a str, scheme: &str) -> Option<&'a str> {
    let head = input.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &input[scheme.len()..])
}

/// `IP`, `IP:PORT`, `[V6]` or `[V6]:PORT`. An IPv6 address must be in
/// brackets: `::1:5353` could be an address or an address and a port.
fn parse_resolver(s: &str) -> Option<SocketAddr> {
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

fn parse_port(input: &str, port: &str, at: usize) -> Result<u16, TargetError> {
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
fn parse_host_port(input: &str, s: &str, at: usize) -> Result<(String, u16), TargetError> {
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
fn is_dns_name(name: &str) -> bool {
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

fn parse_srv_name(input: &str, name: &str, at: usize) -> Result<String, TargetError> {
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

/// A label key or value in a static target: letters, digits and `-_./`.
fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

fn parse_static(input: &str, list: &str, at: usize) -> Result<Target, TargetError> {
    let err = |at, kind| TargetError::new(input, at, kind);
    let mut endpoints = Vec::new();
    let mut offset = at;
    for raw in list.split(',') {
        let entry = raw.trim();
        if entry.is_empty() {
            return Err(err(offset, TargetErrorKind::EmptyEntry));
        }
        // Options after the address: `;backup` and `;key=value` labels.
        let mut options = entry.split(';');
        let entry = options.next().unwrap_or_default();
        let mut priority = 0;
        let mut labels = Vec::new();
        let mut at_option = offset + (raw.len() - raw.trim_start().len()) + entry.len() + 1;
        for option in options {
            match option.split_once('=') {
                None if option == "backup" => priority = 1,
                Some((key, value))
                    if valid_label(key)
                        && valid_label(value)
                        && !labels.iter().any(|&(k, _)| k == key) =>
                {
                    labels.push((key, value));
                }
                _ => {
                    return Err(err(
                        at_option,
                        TargetErrorKind::InvalidOption(option.to_owned()),
                    ))
                }
            }
            at_option += option.len() + 1;
        }
        let (addr, weight) = match entry.split_once('=') {
            Some((addr, weight)) => {
                let w = weight
                    .parse::<u32>()
                    .ok()
                    .filter(|_| weight.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        err(
                            offset + addr.len() + 1,
                            TargetErrorKind::InvalidWeight(weight.to_owned()),
                        )
                    })?;
                (addr, w)
            }
            None => (entry, 1),
        };
        let addr: SocketAddr = addr
            .parse()
            .ok()
            .filter(|a: &SocketAddr| a.port() != 0)
            .ok_or_else(|| err(offset, TargetErrorKind::InvalidAddress(addr.to_owned())))?;
        // IPv4-mapped IPv6 is the IPv4 address: the same endpoint.
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let endpoint = labels.into_iter().fold(
            Endpoint::new(addr)
                .with_weight(weight)
                .with_priority(priority),
            |ep, (key, value)| ep.with_label(key, value),
        );
        endpoints.push(endpoint);
        offset += raw.len() + 1;
    }
    Ok(Target::Static(EndpointSet::new(endpoints)))
}

mod error;
#[cfg(test)]
mod tests;

pub use error::{TargetError, TargetErrorKind};
