//! The `Watch` streams a [`GrpcHealthProbe`](super::GrpcHealthProbe)
//! keeps open, one per endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fulcrum_core::Endpoint;
use fulcrum_http::ConnectionConfig;
use tokio::sync::watch;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::HealthCheckRequest;

use super::{client, verdict};

/// A watch nobody has asked about for this long (or for three of its
/// usual intervals between checks, if longer) is closed: its endpoint has
/// left the set, or the balancer stopped checking it.
const UNASKED: Duration = Duration::from_secs(60);

/// A server that answered `Watch` with `UNIMPLEMENTED` is asked again
/// after this long (it may have been upgraded); `Check` until then.
const RETRY_WATCH: Duration = Duration::from_secs(600);

/// What an endpoint's watch has seen so far.
#[derive(Clone, Debug)]
enum Watched {
    /// Opening the stream; no status yet.
    Opening,
    /// The last status the server sent.
    Status(ServingStatus),
    /// The server answered `Watch` with `UNIMPLEMENTED`: use `Check`.
    Unsupported,
    /// The stream failed or ended; the next check opens a new one.
    Broken(String),
}

struct Entry {
    status: watch::Receiver<Watched>,
    opened: Instant,
    asked: Instant,
    /// About the time between two checks.
    gap: Duration,
}

impl Entry {
    fn open(
        endpoint: &Endpoint,
        service: &str,
        connection: &ConnectionConfig,
        now: Instant,
    ) -> Self {
        Entry {
            status: open(endpoint, service, connection),
            opened: now,
            asked: now,
            gap: Duration::ZERO,
        }
    }

    /// Whether its watch must be opened again: it broke, its task ended
    /// without a verdict, no first status came within `timeout`, or the
    /// server's `UNIMPLEMENTED` is old enough to ask again.
    fn stale(&self, now: Instant, timeout: Duration) -> bool {
        let age = now.duration_since(self.opened);
        let task_gone = self.status.has_changed().is_err();
        match &*self.status.borrow() {
            Watched::Broken(_) => true,
            Watched::Unsupported => age >= RETRY_WATCH,
            Watched::Opening => task_gone || age >= timeout,
            Watched::Status(_) => task_gone,
        }
    }
}

/// The open watches, by endpoint address.
#[derive(Default)]
pub(super) struct Watches {
    entries: Mutex<HashMap<SocketAddr, Entry>>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.entries.lock().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("Watches").field("open", &open).finish()
    }
}

/// A view of one endpoint's watch, for one check.
pub(super) struct Watching {
    status: watch::Receiver<Watched>,
    service: String,
}

impl Watches {
    /// The endpoint's watch, opened if it has none or its last one is
    /// stale (see [`Entry::stale`]).
    pub(super) fn watch(
        &self,
        endpoint: &Endpoint,
        service: &str,
        connection: &ConnectionConfig,
        timeout: Duration,
    ) -> Watching {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Dropping an entry drops its receiver, which ends its task.
        entries.retain(|_, e| now.duration_since(e.asked) < UNASKED.max(e.gap * 3));
        let entry = entries
            .entry(endpoint.addr())
            .or_insert_with(|| Entry::open(endpoint, service, connection, now));
        if entry.stale(now, timeout) {
            let gap = entry.gap;
            *entry = Entry::open(endpoint, service, connection, now);
            entry.gap = gap;
        }
        entry.gap = now.duration_since(entry.asked).max(entry.gap / 2);
        entry.asked = now;
        Watching {
            status: entry.status.clone(),
            service: service.to_owned(),
        }
    }
}

impl Watching {
    /// The verdict of the watch's latest status (waiting for the first),
    /// or `None` if the server does not support `Watch`.
    pub(super) async fn status(&mut self) -> Option<Result<(), String>> {
        loop {
            let seen = self.status.borrow_and_update().clone();
            match seen {
                Watched::Opening => {
                    if self.status.changed().await.is_err() {
                        return Some(Err("the Watch stream closed".to_owned()));
                    }
                }
                Watched::Status(status) => return Some(verdict(status, &self.service)),
                Watched::Unsupported => return None,
                Watched::Broken(why) => return Some(Err(why)),
            }
        }
    }
}

/// Starts a task that keeps `endpoint`'s watch and reports what it sees.
fn open(
    endpoint: &Endpoint,
    service: &str,
    connection: &ConnectionConfig,
) -> watch::Receiver<Watched> {
    let (report, status) = watch::channel(Watched::Opening);
    let mut client = client(endpoint, connection);
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    tokio::spawn(async move {
        let watching = async {
            let mut stream = match client.watch(request).await {
                Ok(response) => response.into_inner(),
                Err(status) if status.code() == Code::Unimplemented => {
                    return Watched::Unsupported;
                }
                Err(status) => return Watched::Broken(format!("Watch failed: {status}")),
            };
            loop {
                match stream.message().await {
                    Ok(Some(response)) => {
                        report.send_replace(Watched::Status(response.status()));
                    }
                    Ok(None) => return Watched::Broken("the server ended the Watch".to_owned()),
                    Err(status) => return Watched::Broken(format!("the Watch failed: {status}")),
                }
            }
        };
        tokio::select! {
            last = watching => {
                report.send_replace(last);
            }
            // Every receiver is gone: nobody checks this endpoint any more.
            () = report.closed() => {}
        }
    });
    status
}
