use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use serde::Serialize;

/// How a request ended, for its endpoint's load and health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The endpoint did its job (whatever the application-level answer).
    Success,
    /// The endpoint failed the request.
    Failure(FailureKind),
    /// The endpoint is alive but refused the work for now (HTTP 429 or 503
    /// with `Retry-After`, gRPC `RESOURCE_EXHAUSTED`). It is not a failure:
    /// with `retry_after`, the endpoint takes a twentieth of its share
    /// until then (at most 60 s); without, it takes one failure penalty in
    /// its latency estimate.
    Overload {
        /// How long the endpoint asked callers to stay away, if it said.
        retry_after: Option<Duration>,
    },
    /// The request was dropped before it finished: the caller gave up, a
    /// timeout above the balancer fired, or a response body was dropped
    /// half-read. What it counts as is set by
    /// [`Builder::cancelled`](crate::Builder::cancelled).
    Cancelled,
}

/// What kind of failure a request met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// No connection could be made (refused, unreachable, connect timeout):
    /// the request never reached the endpoint. Takes the endpoint out of
    /// service at once.
    Connect,
    /// The request timed out.
    Timeout,
    /// The connection broke during the request (reset, closed early).
    Reset,
    /// The endpoint answered with an error (a 5xx, `UNAVAILABLE`), or
    /// failed in a way not recognised as one of the above.
    Server,
}

impl FailureKind {
    /// The kind of failure an error describes, read from its chain of
    /// causes: the first `std::io::Error` decides (refused, unreachable or
    /// not-available addresses → `Connect`; reset, aborted, broken pipe,
    /// unexpected EOF → `Reset`; timed out → `Timeout`, or `Connect` when an
    /// error of the chain says it was connecting, as hyper-util's "tcp
    /// connect error" does), as does a tokio timeout (`Timeout`). Anything
    /// else is `Server`.
    ///
    /// ```
    /// use std::io;
    /// use fulcrum_balance::classify::FailureKind;
    ///
    /// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    /// assert_eq!(FailureKind::of_error(&refused), FailureKind::Connect);
    /// let other = io::Error::other("boom");
    /// assert_eq!(FailureKind::of_error(&other), FailureKind::Server);
    /// ```
    pub fn of_error(error: &(dyn StdError + 'static)) -> FailureKind {
        let mut connecting = false;
        let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(e) = cause {
            connecting |= says_connect(e);
            if let Some(io) = e.downcast_ref::<io::Error>() {
                return match io.kind() {
                    io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::NetworkDown => FailureKind::Connect,
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::NotConnected => FailureKind::Reset,
                    io::ErrorKind::TimedOut if connecting => FailureKind::Connect,
                    io::ErrorKind::TimedOut => FailureKind::Timeout,
                    _ if connecting => FailureKind::Connect,
                    _ => FailureKind::Server,
                };
            }
            if e.is::<tokio::time::error::Elapsed>() {
                return if connecting {
                    FailureKind::Connect
                } else {
                    FailureKind::Timeout
                };
            }
            cause = e.source();
        }
        FailureKind::Server
    }
}

/// Whether an error's own message says it happened while connecting: the
/// word "connect" on its own ("tcp connect error", "error trying to
/// connect"), not inside another ("connection", "disconnected",
/// "reconnect"). Read as the message is written, without allocating: a
/// failure storm must not cost memory.
fn says_connect(e: &(dyn StdError + 'static)) -> bool {
    use std::fmt::Write;
    let mut word = ConnectWord {
        window: [b' '; 9],
        found: false,
    };
    let _ = write!(word, "{e}");
    word.push(b' ');
    word.found
}

/// Finds "connect" as a whole word in text written to it, byte by byte.
struct ConnectWord {
    /// The byte before a candidate, its seven letters, the byte after.
    window: [u8; 9],
    found: bool,
}

impl ConnectWord {
    fn push(&mut self, b: u8) {
        self.window.copy_within(1.., 0);
        self.window[8] = b.to_ascii_lowercase();
        self.found |= &self.window[1..8] == b"connect"
            && !self.window[0].is_ascii_alphabetic()
            && !self.window[8].is_ascii_alphabetic();
    }
}

impl std::fmt::Write for ConnectWord {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        s.bytes().for_each(|b| self.push(b));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(&'static str, io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn kinds_from_the_chain_of_causes() {
        let kind = |msg, k| FailureKind::of_error(&Wrapped(msg, io::Error::from(k)));
        assert_eq!(
            kind("client error", io::ErrorKind::ConnectionRefused),
            FailureKind::Connect
        );
        assert_eq!(
            kind("tcp connect error", io::ErrorKind::TimedOut),
            FailureKind::Connect
        );
        assert_eq!(
            kind("read failed", io::ErrorKind::TimedOut),
            FailureKind::Timeout
        );
        assert_eq!(
            kind("connection error", io::ErrorKind::ConnectionReset),
            FailureKind::Reset
        );
        assert_eq!(
            kind(
                "connection closed before message completed",
                io::ErrorKind::Other
            ),
            FailureKind::Server
        );
        assert_eq!(
            FailureKind::of_error(&io::Error::other("no cause")),
            FailureKind::Server
        );
        for not_connecting in [
            "disconnected",
            "reconnect later",
            "connections closed",
            "CONNECTED",
            "connec t",
        ] {
            assert_eq!(
                kind(not_connecting, io::ErrorKind::TimedOut),
                FailureKind::Timeout,
                "{not_connecting}"
            );
        }
        for connecting in [
            "error trying to connect",
            "Connect failed",
            "tcp connect error",
            "(connect)",
        ] {
            assert_eq!(
                kind(connecting, io::ErrorKind::Other),
                FailureKind::Connect,
                "{connecting}"
            );
        }
    }
}
