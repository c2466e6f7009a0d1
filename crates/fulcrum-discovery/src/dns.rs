//! Where a DNS answer becomes endpoints: A/AAAA and SRV lookups through
//! hickory-resolver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use fulcrum_core::{Endpoint, EndpointSet};
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::DiscoveryError;

/// The result of one resolution.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Endpoints, and the TTL after which to look again.
    Found(EndpointSet, Option<Duration>),
    /// An authoritative "nothing here", with the negative TTL if the zone gave one.
    Empty(DiscoveryError, Option<Duration>),
    /// SRV `.`: the service is decidedly not available.
    NotAvailable(DiscoveryError, Option<Duration>),
    /// The resolver failed; try again after a backoff.
    Failed(DiscoveryError),
}

/// hickory's per-query timeout is at most this (it computes deadlines as
/// `now + timeout`, which would overflow for an unbounded one); the whole
/// resolution is bounded by `query_timeout` anyway.
const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Builds a resolver: the system configuration, or only `server` (UDP with
/// TCP for truncated answers). The answer cache is off: fulcrum schedules
/// its own re-resolution from the TTLs and must see fresh answers.
///
/// Each query gets one attempt of at most `timeout` (within which hickory
/// retransmits over UDP). hickory's `attempts` counts retries *after* the
/// first try: 1 would double the time a silent resolver takes to fail.
/// The whole resolution (A and AAAA, or SRV and its targets, and the
/// system resolver's search domains) is bounded by `timeout` in
/// `discovery.rs`.
pub(crate) fn resolver(
    server: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TokioResolver, DiscoveryError> {
    let mut builder = match server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => {
            TokioResolver::builder_tokio().map_err(|e| DiscoveryError::Config(e.to_string()))?
        }
    };
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = timeout.min(MAX_QUERY_TIMEOUT);
    opts.attempts = 0;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    if server.is_some() {
        // An explicit resolver answers for its own zones; /etc/hosts is not asked.
        opts.use_hosts_file = ResolveHosts::Never;
    }
    builder
        .build()
        .map_err(|e| DiscoveryError::Config(e.to_string()))
}

/// With an explicit resolver there is no search list: query names as fully
/// qualified. With the system resolver, keep the name as given so that its
/// search domains apply (e.g. Kubernetes' `svc.cluster.local`).
pub(crate) fn query_name(name: &str, explicit: bool) -> String {
    if explicit && !name.ends_with('.') {
        format!("{name}.")
    } else {
        name.to_owned()
    }
}

/// Why a resolution timed out: which resolver did not answer, within how
/// long.
pub(crate) fn no_answer(server: Option<SocketAddr>, timeout: Duration) -> String {
    match server {
        Some(addr) => format!("the resolver {addr} did not answer within {timeout:?}"),
        None => format!("the system resolver did not answer within {timeout:?}"),
    }
}

/// What the resolver reported, in words that name the resolver when it
/// did not answer.
fn reason(e: &NetError, server: Option<SocketAddr>, timeout: Duration) -> String {
    match e {
        NetError::Timeout => no_answer(server, timeout),
        other => other.to_string(),
    }
}

fn failed(name: &str, e: NetError, server: Option<SocketAddr>, timeout: Duration) -> Answer {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            let error = DiscoveryError::NoRecords {
                name: name.to_owned(),
                nxdomain: nr.response_code == ResponseCode::NXDomain,
            };
            Answer::Empty(
                error,
                nr.negative_ttl.map(|t| Duration::from_secs(u64::from(t))),
            )
        }
        other => Answer::Failed(DiscoveryError::Resolve {
            name: name.to_owned(),
            reason: reason(&other, server, timeout),
        }),
    }
}

/// `host:port`, with an IPv6 literal in brackets.
fn authority(host: &str, port: u16) -> String {
    let host = host.trim_end_matches('.');
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A canonical order (tier, then address), so that a server rotating its
/// answers (round-robin DNS) does not look like a change, and every client
/// sees the same order.
fn canonical(mut endpoints: Vec<Endpoint>) -> EndpointSet {
    endpoints.sort_by_key(|e| (e.priority(), e.addr()));
    EndpointSet::new(endpoints)
}

fn min_ttl(ttls: impl IntoIterator<Item = u32>) -> Option<Duration> {
    ttls.into_iter()
        .min()
        .map(|t| Duration::from_secs(u64::from(t)))
}

/// A/AAAA: every address of `host` is an endpoint on `port`, with
/// `host:port` as its authority. `server` is the explicit resolver, if
/// any, and `timeout` the query timeout (both for error messages).
pub(crate) async fn lookup_host(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    server: Option<SocketAddr>,
    timeout: Duration,
) -> Answer {
    let authority = format!("{}:{port}", host.trim_end_matches('.'));
    if let Ok(ip) = host.parse::<IpAddr>() {
        let ep = Endpoint::new(SocketAddr::new(ip, port)).with_authority(authority);
        return Answer::Found(EndpointSet::new([ep]), None);
    }
    match resolver.lookup_ip(query_name(host, server.is_some())).await {
        Ok(ips) => {
            let ttl = min_ttl(ips.as_lookup().answers().iter().map(|r| r.ttl));
            let set = ips
                .iter()
                .map(|ip| {
                    Endpoint::new(SocketAddr::new(ip, port)).with_authority(authority.clone())
                })
                .collect();
            Answer::Found(set, ttl)
        }
        Err(e) => failed(host, e, server, timeout),
    }
}

/// SRV per RFC 2782: each record's target host, resolved to addresses (from
/// the additional section when present, else looked up), becomes endpoints
/// on the record's port, with its priority as the tier and its weight as the
/// weight. Each address of a target carries the record's weight. Records
/// with port 0 cannot be connected to and are skipped; records whose target
/// is `.` mean the service is not available. A target that fails to resolve
/// for a transient reason fails the whole answer (the last good set stays);
/// one that authoritatively has no address is skipped. `server` and
/// `timeout` are as for [`lookup_host`].
pub(crate) async fn lookup_srv(
    resolver: &TokioResolver,
    name: &str,
    server: Option<SocketAddr>,
    timeout: Duration,
) -> Answer {
    let lookup = match resolver
        .srv_lookup(query_name(name, server.is_some()))
        .await
    {
        Ok(lookup) => lookup,
        Err(e) => return failed(name, e, server, timeout),
    };
    let mut ttls: Vec<u32> = Vec::new();
    let mut records = Vec::new();
    for rec in lookup.answers() {
        if let RData::SRV(srv) = &rec.data {
            ttls.push(rec.ttl);
            records.push(srv.clone());
        }
    }
    if !records.is_empty() && records.iter().all(|r| r.target.is_root()) {
        let error = DiscoveryError::NotAvailable {
            name: name.to_owned(),
        };
        return Answer::NotAvailable(error, min_ttl(ttls));
    }
    // Addresses the server sent along, by owner name.
    let mut additional: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for rec in lookup.additionals() {
        let ip = match &rec.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        additional
            .entry(rec.name.to_ascii().to_ascii_lowercase())
            .or_default()
            .push(ip);
        ttls.push(rec.ttl);
    }
    let mut endpoints = Vec::new();
    for srv in records {
        if srv.target.is_root() {
            continue;
        }
        let target = srv.target.to_ascii();
        let host = target.trim_end_matches('.');
        if srv.port == 0 {
            tracing::warn!(
                srv = name,
                target = host,
                "SRV record with port 0 skipped: nothing can connect to port 0"
            );
            continue;
        }
        let ips = match additional.get(&target.to_ascii_lowercase()) {
            Some(ips) => ips.clone(),
            None => match resolver.lookup_ip(target.as_str()).await {
                Ok(found) => {
                    ttls.extend(found.as_lookup().answers().iter().map(|r| r.ttl));
                    found.iter().collect()
                }
                Err(e) if e.is_no_records_found() => {
                    // Authoritatively gone: the other targets serve.
                    tracing::warn!(
                        srv = name,
                        target = host,
                        "SRV target has no address; skipped"
                    );
                    continue;
                }
                Err(e) => {
                    // A transient failure: keep the last good set rather
                    // than dropping this target until the next refresh.
                    return Answer::Failed(DiscoveryError::Resolve {
                        name: host.to_owned(),
                        reason: format!("{} (target of {name})", reason(&e, server, timeout)),
                    });
                }
            },
        };
        let authority = authority(host, srv.port);
        for ip in ips {
            endpoints.push(
                Endpoint::new(SocketAddr::new(ip, srv.port))
                    .with_authority(authority.clone())
                    .with_priority(u32::from(srv.priority))
                    .with_weight(u32::from(srv.weight)),
            );
        }
    }
    if endpoints.is_empty() {
        // Records, but none usable (port 0, targets without addresses): an
        // authoritative "nothing here", subject to `OnEmpty`.
        let error = DiscoveryError::NoRecords {
            name: name.to_owned(),
            nxdomain: false,
        };
        return Answer::Empty(error, min_ttl(ttls));
    }
    Answer::Found(canonical(endpoints), min_ttl(ttls))
}
