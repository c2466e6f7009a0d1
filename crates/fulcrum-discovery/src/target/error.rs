use std::fmt;

use super::FORMS;

/// A target string that could not be parsed.
///
/// Says what was wrong, where (the byte offset and the offending part), and
/// lists the accepted forms, on one line (control characters in the input
/// are escaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
    input: String,
    at: usize,
    kind: TargetErrorKind,
}

/// What was wrong with a target.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetErrorKind {
    /// Nothing was given.
    Empty,
    /// A scheme other than `dns`, `dns+srv` or `static`.
    UnknownScheme(String),
    /// `dns://` or `dns+srv://` without the `/` that starts the name.
    MissingPath,
    /// A host without a port.
    MissingPort(String),
    /// A port that is not a number in 1–65535.
    InvalidPort(String),
    /// A host name that is not a valid DNS name.
    InvalidHost(String),
    /// A resolver that is not `IP` or `IP:PORT`.
    InvalidResolver(String),
    /// An SRV name not of the form `_service._proto.domain`.
    InvalidSrvName(String),
    /// A static entry that is not `IP:PORT`.
    InvalidAddress(String),
    /// A weight that is not a number in 0–4294967295.
    InvalidWeight(String),
    /// An empty entry in a list (`a,,b`).
    EmptyEntry,
    /// An option other than `;backup` (static entries only), `;zone=`,
    /// `;region=` or a `;key=value` label, or one given twice.
    InvalidOption(String),
    /// `name(…)` where `name` is not `first` or `weighted`.
    UnknownComposite(String),
    /// A composite target with no part: `first()`.
    EmptyComposite,
    /// A `(` without its `)`, or the reverse.
    Unbalanced,
    /// A composite target inside another.
    NestedComposite,
    /// A part of `weighted(…)` that does not start with a share `N=` (a
    /// whole number of at least 1).
    InvalidShare(String),
}

impl TargetError {
    pub(super) fn new(input: &str, at: usize, kind: TargetErrorKind) -> Self {
        TargetError {
            input: input.to_owned(),
            at,
            kind,
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> &TargetErrorKind {
        &self.kind
    }

    /// The byte offset in the input where the problem starts.
    pub fn position(&self) -> usize {
        self.at
    }

    /// The target as given.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for TargetErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetErrorKind::Empty => write!(f, "the target is empty"),
            TargetErrorKind::UnknownScheme(s) => {
                write!(f, "unknown scheme `{}` (use dns, dns+srv or static)", s.escape_debug())
            }
            TargetErrorKind::MissingPath => write!(
                f,
                "missing `/` before the name (for the system resolver write three slashes: dns:///name)"
            ),
            TargetErrorKind::MissingPort(h) => {
                let h = h.escape_debug();
                write!(f, "`{h}` needs a port, e.g. `{h}:443`")
            }
            TargetErrorKind::InvalidPort(p) => {
                write!(f, "`{}` is not a port (1-65535)", p.escape_debug())
            }
            TargetErrorKind::InvalidHost(h) => write!(
                f,
                "`{}` is not a valid host name (letters, digits, `-`, `_` and dots; labels of 1-63 characters)",
                h.escape_debug()
            ),
            TargetErrorKind::InvalidResolver(r) => write!(
                f,
                "`{}` is not a resolver address; give an IP and optional port, e.g. 127.0.0.1:53 or [::1]:53",
                r.escape_debug()
            ),
            TargetErrorKind::InvalidSrvName(n) => write!(
                f,
                "`{}` is not an SRV name; write _service._proto.domain, e.g. _http._tcp.api.internal",
                n.escape_debug()
            ),
            TargetErrorKind::InvalidAddress(a) => write!(
                f,
                "`{}` is not IP:PORT (static lists take addresses; use dns:///host:port for names)",
                a.escape_debug()
            ),
            TargetErrorKind::InvalidWeight(w) => {
                write!(f, "`{}` is not a weight (a whole number, 0 for standby)", w.escape_debug())
            }
            TargetErrorKind::EmptyEntry => write!(f, "empty entry in the list"),
            TargetErrorKind::InvalidOption(o) => write!(
                f,
                "`;{}` is not an option (options are `;backup` on static entries, \
                 `;zone=Z`, `;region=R` and labels `;key=value` of letters, digits \
                 and `-_./`, each key once)",
                o.escape_debug()
            ),
            TargetErrorKind::UnknownComposite(name) => write!(
                f,
                "`{}(…)` is not a composite target (use first(…) or weighted(…))",
                name.escape_debug()
            ),
            TargetErrorKind::EmptyComposite => {
                write!(f, "a composite target needs at least one part")
            }
            TargetErrorKind::Unbalanced => write!(
                f,
                "unbalanced parentheses (a static list inside a composite goes in \
                 parentheses: first((IP:PORT,IP:PORT), dns:///host:port))"
            ),
            TargetErrorKind::NestedComposite => {
                write!(f, "composite targets do not nest; list the parts in one")
            }
            TargetErrorKind::InvalidShare(part) => write!(
                f,
                "`{}` needs a share: weighted(90=TARGET, 10=TARGET), shares of at least 1",
                part.escape_debug()
            ),
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid target `{}` at byte {}: {}; accepted forms: {FORMS}",
            self.input.escape_debug(),
            self.at,
            self.kind
        )
    }
}

impl std::error::Error for TargetError {}
