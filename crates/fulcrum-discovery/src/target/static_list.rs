//! Static lists: `IP:PORT[=WEIGHT][;option…],…`.

use std::net::SocketAddr;

use fulcrum_core::{Endpoint, EndpointSet};

use super::options::parse_options;
use super::{Target, TargetError, TargetErrorKind};

/// The list `list`, which starts at byte `at` of `input`.
pub(super) fn parse_static(input: &str, list: &str, at: usize) -> Result<Target, TargetError> {
    let err = |at, kind| TargetError::new(input, at, kind);
    let mut endpoints = Vec::new();
    let mut offset = at;
    for raw in list.split(',') {
        let entry = raw.trim();
        if entry.is_empty() {
            return Err(err(offset, TargetErrorKind::EmptyEntry));
        }
        // Options after the address: `;backup`, `;zone=`, `;region=` and
        // `;key=value` labels.
        let mut options = entry.split(';');
        let entry = options.next().unwrap_or_default();
        let at_option = offset + (raw.len() - raw.trim_start().len()) + entry.len() + 1;
        let (tags, backup) = parse_options(input, options, at_option, true)?;
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
        let endpoint = Endpoint::new(addr)
            .with_weight(weight)
            .with_priority(u32::from(backup));
        endpoints.push(tags.apply(endpoint));
        offset += raw.len() + 1;
    }
    Ok(Target::Static(EndpointSet::new(endpoints)))
}
