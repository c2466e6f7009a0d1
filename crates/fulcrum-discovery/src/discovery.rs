//! Where re-resolution is scheduled: the refresh loop behind
//! [`Discovery::stream`].

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum_core::EndpointSet;
use futures_core::Stream;
use futures_util::future::Either;
use futures_util::StreamExt;
use hickory_resolver::TokioResolver;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::dns::{self, Answer};
use crate::{DiscoveryConfig, DiscoveryError, OnEmpty, Target, TargetError};

/// Turns a [`Target`] into endpoint sets.
///
/// ```
/// use fulcrum_discovery::Discovery;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let discovery = Discovery::new("127.0.0.1:8080,127.0.0.1:8081=2").unwrap();
/// let set = discovery.resolve().await.unwrap();
/// assert_eq!(set.len(), 2);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Discovery {
    target: Target,
    config: DiscoveryConfig,
}

impl Discovery {
    /// Parses `target` (see [`Target`]) with the default configuration.
    pub fn new(target: &str) -> Result<Self, TargetError> {
        Ok(Discovery::from_target(target.parse()?))
    }

    /// Discovery of an already parsed target.
    pub fn from_target(target: Target) -> Self {
        Discovery {
            target,
            config: DiscoveryConfig::default(),
        }
    }

    /// Replaces the configuration.
    pub fn with_config(mut self, config: DiscoveryConfig) -> Self {
        self.config = config;
        self
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The configuration.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    fn resolver(&self) -> Result<Option<TokioResolver>, DiscoveryError> {
        match &self.target {
            Target::Dns { .. } | Target::Srv { .. } => {
                dns::resolver(self.target.resolver(), self.config.query_timeout).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Resolves once. An authoritative empty answer is an error here. A
    /// composite target resolves its parts together and combines those
    /// that answered; it fails only when every part does (with the first
    /// part's error).
    pub async fn resolve(&self) -> Result<EndpointSet, DiscoveryError> {
        if let Some(parts) = crate::composite::Parts::of(self) {
            return parts.resolve().await;
        }
        let resolver = self.resolver()?;
        match answer(&self.target, resolver.as_ref(), &self.config).await {
            Answer::Found(set, _) => Ok(set),
            Answer::Empty(e, _) | Answer::NotAvailable(e, _) | Answer::Failed(e) => Err(e),
        }
    }

    /// A stream of whole endpoint sets, refreshed by TTL, and a handle to ask
    /// for an early refresh. The stream yields a set when it changes (or
    /// after an error, to confirm the set again), and errors as they happen
    /// while the last good set stays in force. For a static target it yields
    /// the set once and ends. It needs a tokio runtime with time enabled.
    ///
    /// A composite target's stream combines its parts' own streams (see
    /// [`Target::First`] and [`Target::Weighted`]): it yields the first
    /// combined set once every part has answered (or failed), then a new
    /// one whenever a part's set changes; a part's error is yielded as
    /// [`DiscoveryError::Part`] while the other parts keep serving. An
    /// authoritative empty answer empties that part (the others are its
    /// fallback); [`OnEmpty`] decides only when every part is empty.
    pub fn stream(self) -> (EndpointStream, RefreshHandle) {
        if let Some(parts) = crate::composite::Parts::of(&self) {
            return parts.stream();
        }
        let notify = Arc::new(Notify::new());
        let handle = RefreshHandle {
            notify: vec![notify.clone()],
        };
        let stream = match &self.target {
            Target::Static(set) => {
                let set = set.iter().map(|e| self.config.locality.apply(e.clone()));
                futures_util::stream::iter([Ok(EndpointSet::new(set))]).boxed()
            }
            _ => {
                let state = Refresh {
                    resolver: None,
                    discovery: self,
                    last: None,
                    failures: 0,
                    next_at: None,
                    last_resolve: None,
                    notify,
                    done: false,
                };
                futures_util::stream::unfold(state, |mut state| async move {
                    let item = state.next().await?;
                    Some((item, state))
                })
                .boxed()
            }
        };
        (EndpointStream { inner: stream }, handle)
    }
}

/// One resolution of a single (not composite) `target`, all of its
/// queries bounded by the query timeout together; the endpoints found
/// carry the target's tags, then are placed by the locality map.
async fn answer(
    target: &Target,
    resolver: Option<&TokioResolver>,
    config: &DiscoveryConfig,
) -> Answer {
    let timeout = config.query_timeout;
    let (name, server, tags, lookup) = match (target, resolver) {
        (Target::Static(set), _) => {
            let set = set.iter().map(|e| config.locality.apply(e.clone()));
            return Answer::Found(EndpointSet::new(set), None);
        }
        (
            Target::Dns {
                host,
                port,
                resolver: server,
                tags,
            },
            Some(r),
        ) => (
            host,
            *server,
            tags,
            Either::Left(dns::lookup_host(r, host, *port, *server, timeout)),
        ),
        (
            Target::Srv {
                name,
                resolver: server,
                tags,
            },
            Some(r),
        ) => (
            name,
            *server,
            tags,
            Either::Right(dns::lookup_srv(r, name, *server, timeout)),
        ),
        (Target::First(_) | Target::Weighted(_), _) => {
            return Answer::Failed(DiscoveryError::Config(
                "a composite target is resolved part by part".to_owned(),
            ))
        }
        (_, None) => return Answer::Failed(DiscoveryError::Config("no resolver".to_owned())),
    };
    match tokio::time::timeout(timeout, lookup).await {
        Ok(Answer::Found(set, ttl)) if !tags.is_empty() || !config.locality.is_empty() => {
            let set = set
                .iter()
                .map(|e| config.locality.apply(tags.apply(e.clone())));
            Answer::Found(EndpointSet::new(set), ttl)
        }
        Ok(answer) => answer,
        Err(_elapsed) => Answer::Failed(DiscoveryError::Resolve {
            name: name.clone(),
            reason: dns::no_answer(server, timeout),
        }),
    }
}

/// Asks a discovery stream to resolve again now (rate-limited by
/// [`DiscoveryConfig::min_refresh_interval`]), e.g. after connection
/// failures suggest the endpoints moved.
#[derive(Clone, Debug)]
pub struct RefreshHandle {
    /// One per stream asked (a composite target's parts each have one).
    notify: Vec<Arc<Notify>>,
}

impl RefreshHandle {
    /// Requests an early re-resolve (of every part of a composite target).
    pub fn refresh(&self) {
        for notify in &self.notify {
            notify.notify_one();
        }
    }

    /// One handle that refreshes all of `handles`.
    pub(crate) fn joined(handles: impl IntoIterator<Item = RefreshHandle>) -> Self {
        RefreshHandle {
            notify: handles.into_iter().flat_map(|h| h.notify).collect(),
        }
    }
}

/// Whole endpoint sets from a [`Discovery`]; see [`Discovery::stream`].
pub struct EndpointStream {
    pub(crate) inner: Pin<Box<dyn Stream<Item = Result<EndpointSet, DiscoveryError>> + Send>>,
}

impl fmt::Debug for EndpointStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointStream").finish_non_exhaustive()
    }
}

impl Stream for EndpointStream {
    type Item = Result<EndpointSet, DiscoveryError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// No wait is shorter than this, whatever the TTLs and the configuration
/// say (a TTL of 0 must not turn the loop into a busy one).
const MIN_WAIT: Duration = Duration::from_millis(10);

/// `1 ± jitter`, uniformly; a jitter outside [0, 1] (or NaN) is clamped.
fn jitter_factor(jitter: f64) -> f64 {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    1.0 + (fastrand::f64() * 2.0 - 1.0) * jitter
}

/// `d × factor`, saturating instead of panicking on overflow.
fn scale(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// `at + d`, saturating at a year ahead instead of panicking on overflow.
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(365 * 86_400))
}

struct Refresh {
    discovery: Discovery,
    resolver: Option<TokioResolver>,
    /// The set last yielded; `None` before the first, or after an error
    /// (so that the next good answer is yielded even if unchanged).
    last: Option<EndpointSet>,
    failures: u32,
    next_at: Option<Instant>,
    last_resolve: Option<Instant>,
    notify: Arc<Notify>,
    done: bool,
}

impl Refresh {
    fn config(&self) -> &DiscoveryConfig {
        &self.discovery.config
    }

    /// `base` jittered, then clamped to [min_ttl, max_ttl] (and never
    /// below [`MIN_WAIT`]).
    fn wait(&self, base: Duration) -> Duration {
        let c = self.config();
        let low = c.min_ttl.max(MIN_WAIT);
        let high = c.max_ttl.max(low);
        scale(base, jitter_factor(c.jitter)).clamp(low, high)
    }

    /// Waits for the next scheduled resolve, or an early one when asked
    /// (no sooner than `min_refresh_interval` after the previous resolve).
    async fn until_due(&mut self) {
        let Some(next_at) = self.next_at else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(next_at) => {}
            () = self.notify.notified() => {
                let earliest = self
                    .last_resolve
                    .map(|t| later(t, self.config().min_refresh_interval));
                if let Some(earliest) = earliest.filter(|&e| e < next_at) {
                    tokio::time::sleep_until(earliest).await;
                } else if earliest.is_some() {
                    tokio::time::sleep_until(next_at).await;
                }
            }
        }
    }

    async fn next(&mut self) -> Option<Result<EndpointSet, DiscoveryError>> {
        if self.done {
            return None;
        }
        loop {
            self.until_due().await;
            if self.resolver.is_none() {
                match self.discovery.resolver() {
                    Ok(r) => self.resolver = r,
                    Err(e) => {
                        // Nothing will ever resolve: report it and end.
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
            self.last_resolve = Some(Instant::now());
            let answer = answer(
                &self.discovery.target,
                self.resolver.as_ref(),
                &self.discovery.config,
            )
            .await;
            let now = Instant::now();
            match answer {
                Answer::Found(set, ttl) => {
                    self.failures = 0;
                    let wait = self.wait(ttl.unwrap_or(self.config().max_ttl));
                    self.next_at = Some(later(now, wait));
                    if self.last.as_ref() != Some(&set) {
                        self.last = Some(set.clone());
                        return Some(Ok(set));
                    }
                }
                Answer::NotAvailable(e, ttl) => {
                    tracing::warn!(error = %e, "service not available");
                    self.next_at =
                        Some(later(now, self.wait(ttl.unwrap_or(self.config().min_ttl))));
                    let empty = EndpointSet::empty();
                    if self.last.as_ref() != Some(&empty) {
                        self.last = Some(empty.clone());
                        return Some(Ok(empty));
                    }
                }
                Answer::Empty(e, negative_ttl) => {
                    self.failures = 0;
                    let wait = self.wait(negative_ttl.unwrap_or(self.config().min_ttl));
                    self.next_at = Some(later(now, wait));
                    match self.config().on_empty {
                        OnEmpty::KeepLast => {
                            self.last = None;
                            return Some(Err(e));
                        }
                        OnEmpty::Empty => {
                            let empty = EndpointSet::empty();
                            if self.last.as_ref() != Some(&empty) {
                                self.last = Some(empty.clone());
                                return Some(Ok(empty));
                            }
                        }
                    }
                }
                Answer::Failed(e) => {
                    self.failures = self.failures.saturating_add(1);
                    let c = self.config();
                    let backoff = c
                        .error_backoff
                        .saturating_mul(1 << self.failures.saturating_sub(1).min(20))
                        .min(c.max_ttl);
                    let wait = scale(backoff, jitter_factor(c.jitter)).max(MIN_WAIT);
                    self.next_at = Some(later(now, wait));
                    self.last = None;
                    return Some(Err(e));
                }
            }
        }
    }
}
