//! What users configure: named subsets (a label selector and a fallback
//! rule) and the routes that send requests to them.

use std::fmt;

use fulcrum_core::Endpoint;

use crate::health::ConfigError;

/// The most subsets one balancer takes.
const MAX_SUBSETS: usize = 64;

/// Which endpoints belong to a subset: those carrying every label given.
/// A selector with no label selects every endpoint. The keys `zone` and
/// `region` match the endpoint's zone and region (see
/// [`Endpoint::attribute`]).
///
/// ```
/// use fulcrum_balance::subset::Selector;
/// use fulcrum_core::Endpoint;
///
/// let replicas_in_a = Selector::label("role", "replica").and("zone", "a");
/// let ep = Endpoint::new(([10, 0, 0, 1], 80).into())
///     .with_label("role", "replica")
///     .with_zone("a");
/// assert!(replicas_in_a.matches(&ep));
/// assert!(!Selector::label("role", "primary").matches(&ep));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Vec<(String, String)>,
}

impl Selector {
    /// Endpoints whose label `key` is `value`.
    pub fn label(key: impl Into<String>, value: impl Into<String>) -> Self {
        Selector::default().and(key, value)
    }

    /// ... and whose label `key` is also `value`.
    pub fn and(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Whether `endpoint` carries every label of the selector.
    pub fn matches(&self, endpoint: &Endpoint) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| endpoint.attribute(k) == Some(v.as_str()))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str("every endpoint");
        }
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// Where a subset's requests go while it cannot serve (Envoy's subset
/// fallback policies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fallback {
    /// Fail them with `NoEndpoints` (reason `SubsetEmpty`): the default, as
    /// a request sent where it must not go is worse than one that fails.
    #[default]
    Fail,
    /// Pick among every endpoint of the set.
    AnyEndpoint,
    /// Send them to another subset, which follows its own rule in turn.
    Subset(String),
}

impl Fallback {
    /// [`Fallback::Subset`] by name.
    pub fn subset(name: impl Into<String>) -> Self {
        Fallback::Subset(name.into())
    }
}

/// One named subset: its selector, fallback and health floor.
#[derive(Clone, Debug, PartialEq)]
pub struct Subset {
    name: String,
    selector: Selector,
    fallback: Fallback,
    min_healthy: f64,
}

impl Subset {
    /// The subset `name` of the endpoints `selector` selects, failing its
    /// requests when none can serve.
    pub fn new(name: impl Into<String>, selector: Selector) -> Self {
        Subset {
            name: name.into(),
            selector,
            fallback: Fallback::Fail,
            min_healthy: 0.0,
        }
    }

    /// Where its requests go while it cannot serve.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// The share of its endpoints, in percent, that must serve for the
    /// subset to serve (0 by default: any one will do). Below it, its
    /// requests follow the fallback instead of piling onto the few left.
    pub fn min_healthy(mut self, percent: f64) -> Self {
        self.min_healthy = percent;
        self
    }
}

/// A request predicate, type-erased.
pub(crate) type Predicate<Req> = Box<dyn Fn(&Req) -> bool + Send + Sync>;

/// Checked subsets: the driver's rules, and the routes by subset index.
pub(crate) type Checked<Req> = (Vec<SubsetRule>, Vec<(u16, Predicate<Req>)>);

/// Subsets and the routes to them; see the [module docs](super). Given to
/// [`Builder::subsets`](crate::Builder::subsets), which checks it.
pub struct Subsets<Req> {
    pub(crate) subsets: Vec<Subset>,
    pub(crate) routes: Vec<(String, Predicate<Req>)>,
}

impl<Req> Default for Subsets<Req> {
    fn default() -> Self {
        Subsets {
            subsets: Vec::new(),
            routes: Vec::new(),
        }
    }
}

impl<Req> fmt::Debug for Subsets<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subsets")
            .field("subsets", &self.subsets)
            .field(
                "routes",
                &self.routes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<Req> Subsets<Req> {
    /// No subset and no route yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subset.
    pub fn subset(mut self, subset: Subset) -> Self {
        self.subsets.push(subset);
        self
    }

    /// Sends the requests `matches` accepts to the subset `name`. Routes
    /// are tried in the order given; the first match wins, and a request
    /// no route matches is picked among every endpoint. A predicate that
    /// panics fails that request with `ErrorKind::Panicked`.
    pub fn route(
        mut self,
        name: impl Into<String>,
        matches: impl Fn(&Req) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.routes.push((name.into(), Box::new(matches)));
        self
    }

    /// Checks names, fallbacks and floors, and splits the configuration
    /// into what the driver needs (the rules) and what requests need (the
    /// routes, as subset indices).
    pub(crate) fn validate(self) -> Result<Checked<Req>, ConfigError> {
        let index_of = |name: &str| self.subsets.iter().position(|s| s.name == name);
        if self.subsets.len() > MAX_SUBSETS {
            return Err(ConfigError::invalid(
                "subsets",
                format!(
                    "{} subsets given, at most {MAX_SUBSETS} are supported; merge some",
                    self.subsets.len()
                ),
            ));
        }
        for (i, s) in self.subsets.iter().enumerate() {
            if s.name.is_empty() {
                return Err(ConfigError::invalid(
                    "subset name",
                    "is empty; give each subset a name".to_owned(),
                ));
            }
            if index_of(&s.name) != Some(i) {
                return Err(ConfigError::invalid(
                    "subset name",
                    format!("`{}` is given twice; names must be unique", s.name),
                ));
            }
            if !(0.0..=100.0).contains(&s.min_healthy) {
                return Err(ConfigError::percent("subset min_healthy", s.min_healthy));
            }
            if let Fallback::Subset(to) = &s.fallback {
                if index_of(to).is_none() {
                    return Err(ConfigError::invalid(
                        "subset fallback",
                        format!(
                            "subset `{}` falls back to `{to}`, which is not a subset; add it \
                             or name one of {:?}",
                            s.name,
                            self.subsets.iter().map(|s| &s.name).collect::<Vec<_>>()
                        ),
                    ));
                }
            }
        }
        // A fallback chain must end: in a subset that serves, any
        // endpoint, or a failure, not back where it began.
        for start in 0..self.subsets.len() {
            let mut at = start;
            for _ in 0..=self.subsets.len() {
                match &self.subsets[at].fallback {
                    Fallback::Subset(to) => at = index_of(to).unwrap_or(start),
                    _ => break,
                }
                if at == start {
                    return Err(ConfigError::invalid(
                        "subset fallback",
                        format!(
                            "the fallbacks of `{}` lead back to it; end the chain with \
                             Fallback::Fail or Fallback::AnyEndpoint",
                            self.subsets[start].name
                        ),
                    ));
                }
            }
        }
        let rules = self
            .subsets
            .iter()
            .map(|s| SubsetRule {
                name: s.name.clone(),
                selector: s.selector.clone(),
                fallback: match &s.fallback {
                    Fallback::Fail => RuleFallback::Fail,
                    Fallback::AnyEndpoint => RuleFallback::Any,
                    Fallback::Subset(to) => RuleFallback::Subset(index_of(to).unwrap_or(0)),
                },
                min_healthy: s.min_healthy,
            })
            .collect();
        let mut routes = Vec::with_capacity(self.routes.len());
        for (name, predicate) in self.routes {
            let Some(i) = index_of(&name) else {
                return Err(ConfigError::invalid(
                    "subset route",
                    format!(
                        "routes to `{name}`, which is not a subset; add it with Subsets::subset"
                    ),
                ));
            };
            routes.push((i as u16, predicate));
        }
        Ok((rules, routes))
    }
}

/// A checked subset, as the driver applies it.
#[derive(Clone, Debug)]
pub(crate) struct SubsetRule {
    pub(crate) name: String,
    pub(crate) selector: Selector,
    pub(crate) fallback: RuleFallback,
    pub(crate) min_healthy: f64,
}

/// A fallback with the subset named by its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuleFallback {
    Fail,
    Any,
    Subset(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str) -> Subset {
        Subset::new(name, Selector::label("role", name))
    }

    fn check(subsets: Subsets<()>) -> Result<Vec<SubsetRule>, ConfigError> {
        subsets.validate().map(|(rules, _)| rules)
    }

    #[test]
    fn names_fallbacks_and_routes_must_resolve() {
        let ok = Subsets::new()
            .subset(s("a").fallback(Fallback::subset("b")))
            .subset(s("b").fallback(Fallback::AnyEndpoint))
            .route("a", |_: &()| true);
        let (rules, routes) = ok.validate().unwrap();
        assert_eq!(rules[0].fallback, RuleFallback::Subset(1));
        assert_eq!(routes[0].0, 0);

        let err = check(Subsets::new().subset(s("a")).subset(s("a"))).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = check(Subsets::new().subset(s("a").fallback(Fallback::subset("z")))).unwrap_err();
        assert!(
            err.to_string().contains("`z`, which is not a subset"),
            "{err}"
        );
        let err = check(Subsets::new().subset(s("a")).route("b", |_| true)).unwrap_err();
        assert_eq!(err.setting(), "subset route");
        let err = check(Subsets::new().subset(s("a").min_healthy(120.0))).unwrap_err();
        assert_eq!(err.setting(), "subset min_healthy");
        let err = check(Subsets::new().subset(Subset::new("", Selector::default()))).unwrap_err();
        assert_eq!(err.setting(), "subset name");
    }

    #[test]
    fn a_fallback_chain_that_loops_is_refused() {
        let err = check(
            Subsets::new()
                .subset(s("a").fallback(Fallback::subset("b")))
                .subset(s("b").fallback(Fallback::subset("c")))
                .subset(s("c").fallback(Fallback::subset("a"))),
        )
        .unwrap_err();
        assert!(err.to_string().contains("lead back"), "{err}");
        let err = check(Subsets::new().subset(s("a").fallback(Fallback::subset("a")))).unwrap_err();
        assert!(err.to_string().contains("lead back"), "{err}");
        // A chain into a loop that does not include the start is caught
        // from the loop's own members.
        assert!(check(
            Subsets::new()
                .subset(s("x").fallback(Fallback::subset("a")))
                .subset(s("a").fallback(Fallback::subset("b")))
                .subset(s("b").fallback(Fallback::subset("a")))
        )
        .is_err());
    }

    #[test]
    fn a_selector_matches_every_label_it_names() {
        let ep = Endpoint::new(([127, 0, 0, 1], 1).into()).with_label("role", "replica");
        assert!(Selector::default().matches(&ep));
        assert!(Selector::label("role", "replica").matches(&ep));
        assert!(!Selector::label("role", "replica")
            .and("zone", "a")
            .matches(&ep));
        assert_eq!(
            Selector::label("role", "replica")
                .and("zone", "a")
                .to_string(),
            "role=replica,zone=a"
        );
    }
}
