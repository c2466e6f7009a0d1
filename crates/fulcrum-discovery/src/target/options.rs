//! Options after an entry or a name: `;backup`, `;zone=Z`, `;region=R` and
//! `;key=value` labels.

use std::collections::BTreeMap;
use std::fmt;

use fulcrum_core::Endpoint;

use super::{TargetError, TargetErrorKind};

/// What options put on endpoints: a zone, a region and labels.
///
/// On a static entry they describe that endpoint; on a DNS or SRV target
/// (`dns:///api.eu.example:443;region=eu`) every endpoint the name
/// resolves to.
///
/// ```
/// use fulcrum_discovery::Target;
///
/// let t: Target = "dns:///api.eu.example:443;region=eu-west-1;tier=gold".parse().unwrap();
/// let Target::Dns { tags, .. } = &t else { unreachable!() };
/// assert_eq!(tags.region.as_deref(), Some("eu-west-1"));
/// assert_eq!(tags.labels["tier"], "gold");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// `;zone=Z`.
    pub zone: Option<String>,
    /// `;region=R`.
    pub region: Option<String>,
    /// Every other `;key=value`.
    pub labels: BTreeMap<String, String>,
}

impl Tags {
    /// No zone, no region, no label.
    pub fn is_empty(&self) -> bool {
        self.zone.is_none() && self.region.is_none() && self.labels.is_empty()
    }

    /// `endpoint` with these tags, where it has none of its own.
    pub fn apply(&self, mut endpoint: Endpoint) -> Endpoint {
        if let (None, Some(zone)) = (endpoint.zone(), &self.zone) {
            endpoint = endpoint.with_zone(zone.clone());
        }
        if let (None, Some(region)) = (endpoint.region(), &self.region) {
            endpoint = endpoint.with_region(region.clone());
        }
        for (key, value) in &self.labels {
            if endpoint.label(key).is_none() {
                endpoint = endpoint.with_label(key.clone(), value.clone());
            }
        }
        endpoint
    }

    /// The tags an endpoint carries (to print it back as options).
    pub(super) fn of(endpoint: &Endpoint) -> Tags {
        Tags {
            zone: endpoint.zone().map(str::to_owned),
            region: endpoint.region().map(str::to_owned),
            labels: endpoint.labels().clone(),
        }
    }
}

/// Writes the tags as options: `;zone=Z;region=R;key=value…`.
impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(zone) = &self.zone {
            write!(f, ";zone={zone}")?;
        }
        if let Some(region) = &self.region {
            write!(f, ";region={region}")?;
        }
        for (key, value) in &self.labels {
            write!(f, ";{key}={value}")?;
        }
        Ok(())
    }
}

/// A label key or value: letters, digits and `-_./`.
fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

/// The options in `options` (each after a `;`, the first of which is at
/// byte `at` of `input`): the tags, and whether `;backup` was given (only
/// where `backup_allowed`).
pub(super) fn parse_options<'a>(
    input: &str,
    options: impl Iterator<Item = &'a str>,
    mut at: usize,
    backup_allowed: bool,
) -> Result<(Tags, bool), TargetError> {
    let mut tags = Tags::default();
    let mut backup = false;
    for option in options {
        let fresh = |key: &str, tags: &Tags| match key {
            "zone" => tags.zone.is_none(),
            "region" => tags.region.is_none(),
            _ => !tags.labels.contains_key(key),
        };
        match option.split_once('=') {
            None if option == "backup" && backup_allowed => backup = true,
            Some((key, value)) if valid_label(key) && valid_label(value) && fresh(key, &tags) => {
                match key {
                    "zone" => tags.zone = Some(value.to_owned()),
                    "region" => tags.region = Some(value.to_owned()),
                    _ => {
                        tags.labels.insert(key.to_owned(), value.to_owned());
                    }
                }
            }
            _ => {
                return Err(TargetError::new(
                    input,
                    at,
                    TargetErrorKind::InvalidOption(option.to_owned()),
                ))
            }
        }
        at += option.len() + 1;
    }
    Ok((tags, backup))
}
