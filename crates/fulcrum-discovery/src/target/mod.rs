//! Targets: the names users give fulcrum, parsed into what to resolve.
//!
//! | form | meaning |
//! |---|---|
//! | `127.0.0.1:8080,127.0.0.1:8081=3` or `static:…` | a fixed list; `=N` sets an entry's weight |
//! | `127.0.0.1:8080,127.0.0.1:9090;backup` | `;backup` marks a backup (priority 1): it serves when the others cannot (NGINX's `backup`) |
//! | `127.0.0.1:5432;role=primary,127.0.0.1:5433;role=replica` | `;key=value` labels an entry (for subsets; letters, digits and `-_./`) |
//! | `10.0.0.7:80;zone=eu-west-1a;region=eu-west-1` | `;zone=` and `;region=` place an entry (for zone-aware and regional routing) |
//! | `host:port`, `dns:///host:port` | A/AAAA records of `host` from the system resolver |
//! | `dns://RESOLVER_IP[:PORT]/host:port` | the same from an explicit resolver (port 53 by default) |
//! | `dns+srv:///_service._proto.domain` | SRV records: target hosts, ports, priorities, weights |
//! | `dns+srv://RESOLVER_IP[:PORT]/_service._proto.domain` | the same from an explicit resolver |
//! | `dns:///api.eu.example:443;region=eu` | options after a name place or label every endpoint it resolves to |
//! | `first(dns:///api.eu.example:443, dns:///api.us.example:443)` | fail-over: the first part's endpoints are preferred, the next serve when it cannot (each part is a tier, spilling over by health) |
//! | `weighted(90=dns:///api.v1.example:443, 10=dns:///api.v2.example:443)` | traffic shifting: each part takes its share of requests, whatever its number of endpoints |
//!
//! IPv6 addresses go in brackets: `[::1]:8080`, `dns://[::1]:5353/api.internal:80`.
//!
//! In a composite target each part is discovered and refreshed on its own
//! (its own TTL, its own errors). Parts are separated by commas, so a static
//! list of several entries goes in parentheses:
//! `first((10.0.0.1:80,10.0.0.2:80), dns:///api.us.example:80)`. Composite
//! targets do not nest.
//!
//! ```
//! use fulcrum_discovery::Target;
//!
//! let t: Target = "dns+srv://127.0.0.1:5353/_http._tcp.api.internal".parse().unwrap();
//! assert_eq!(t.to_string(), "dns+srv://127.0.0.1:5353/_http._tcp.api.internal");
//!
//! let t: Target = "first(dns:///api.eu.example:443, dns:///api.us.example:443)".parse().unwrap();
//! assert!(matches!(&t, Target::First(parts) if parts.len() == 2));
//!
//! let err = "dns:///api.internal".parse::<Target>().unwrap_err();
//! assert!(err.to_string().contains("port"), "{err}");
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use fulcrum_core::{Endpoint, EndpointSet};

use options::parse_options;
use parse::{parse_host_port, parse_resolver, parse_srv_name, strip_scheme};
use static_list::parse_static;

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
        /// Zone, region and labels for every endpoint found.
        tags: Tags,
    },
    /// SRV records of `name` (`_service._proto.domain`).
    Srv {
        /// An explicit resolver, or `None` for the system configuration.
        resolver: Option<SocketAddr>,
        /// The SRV owner name.
        name: String,
        /// Zone, region and labels for every endpoint found.
        tags: Tags,
    },
    /// Parts in order of preference: the endpoints of part `i` are in
    /// tiers after those of part `i - 1` (priority `i × 65536 + their
    /// own`), so a part serves when the parts before it cannot.
    First(Vec<Target>),
    /// Parts with shares: part `i` takes `share_i / Σ shares` of the
    /// requests while it has endpoints that serve, whatever its size and
    /// the policy (each endpoint is marked with its part's share,
    /// `Endpoint::with_traffic_share`, and the balancer splits each tier
    /// by part).
    Weighted(Vec<(u32, Target)>),
}

/// The accepted forms, for error messages.
const FORMS: &str = "host:port, dns:///host:port, dns://RESOLVER_IP:PORT/host:port, \
                     dns+srv:///_service._proto.domain, dns+srv://RESOLVER_IP:PORT/_service._proto.domain, \
                     IP:PORT[=WEIGHT],… or static:IP:PORT[=WEIGHT],…, \
                     first(TARGET, …), weighted(SHARE=TARGET, …)";

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
        if let Some(composite) = composite::parse_composite(input) {
            return composite;
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
                let mut options = path.split(';');
                let path = options.next().unwrap_or_default();
                let (tags, _) = parse_options(input, options, path_at + path.len() + 1, false)?;
                return if srv {
                    parse_srv_name(input, path, path_at).map(|name| Target::Srv {
                        resolver,
                        name,
                        tags,
                    })
                } else {
                    parse_host_port(input, path, path_at).map(|(host, port)| Target::Dns {
                        resolver,
                        host,
                        port,
                        tags,
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
        // `name:port;options` is a name with options; anything else with a
        // comma, weight or option is a static list.
        let head = input.split(';').next().unwrap_or_default();
        let named = !input.contains(',')
            && !head.contains('=')
            && head.parse::<SocketAddr>().is_err()
            && head
                .rsplit_once(':')
                .is_some_and(|(host, _)| host.parse::<IpAddr>().is_err() && !host.contains('['));
        if !named && (input.contains([',', '=', ';']) || input.parse::<SocketAddr>().is_ok()) {
            return parse_static(input, input, 0);
        }
        let mut options = input.split(';');
        let name = options.next().unwrap_or_default();
        let (tags, _) = parse_options(input, options, name.len() + 1, false)?;
        let (host, port) = parse_host_port(input, name, 0)?;
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                Ok(Target::Static(EndpointSet::new([tags.apply(
                    Endpoint::new(SocketAddr::new(ip.to_canonical(), port)),
                )])))
            }
            Err(_) => Ok(Target::Dns {
                resolver: None,
                host,
                port,
                tags,
            }),
        }
    }

    /// The resolver this target names, if any (none for a composite:
    /// each part names its own).
    pub fn resolver(&self) -> Option<SocketAddr> {
        match self {
            Target::Dns { resolver, .. } | Target::Srv { resolver, .. } => *resolver,
            Target::Static(_) | Target::First(_) | Target::Weighted(_) => None,
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
                    write!(f, "{}", Tags::of(ep))?;
                }
                Ok(())
            }
            Target::Dns {
                resolver,
                host,
                port,
                tags,
            } => {
                let host = match host.parse::<std::net::Ipv6Addr>() {
                    Ok(_) => format!("[{host}]"),
                    Err(_) => host.clone(),
                };
                write!(f, "dns://{}/{host}:{port}{tags}", authority(resolver))
            }
            Target::Srv {
                resolver,
                name,
                tags,
            } => write!(f, "dns+srv://{}/{name}{tags}", authority(resolver)),
            Target::First(parts) => {
                let parts: Vec<String> = parts.iter().map(composite::part).collect();
                write!(f, "first({})", parts.join(", "))
            }
            Target::Weighted(parts) => {
                let parts: Vec<String> = parts
                    .iter()
                    .map(|(share, t)| format!("{share}={}", composite::part(t)))
                    .collect();
                write!(f, "weighted({})", parts.join(", "))
            }
        }
    }
}

mod composite;
mod error;
mod options;
mod parse;
mod static_list;
#[cfg(test)]
mod tests;

pub use error::{TargetError, TargetErrorKind};
pub use options::Tags;
