//! What a finished attempt means for its request: the pure decision the
//! retry future acts on.

use crate::classify::FailureKind;
use crate::{Error, ErrorKind};

/// What an attempt's result says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attempted {
    /// An answer to hand back.
    Answered,
    /// The endpoint failed the request (an error, a timeout, an answer
    /// the policy retries): another endpoint may do better.
    Failed,
    /// The request never reached the endpoint (its connection was refused,
    /// its service not ready): moving it costs nothing.
    NotSent,
    /// Nothing another attempt would change (no endpoint at all, the
    /// driver stopped, a panic).
    Final,
}

impl Attempted {
    /// Reads a result; `sent` says whether the request left for its
    /// endpoint (a per-attempt timeout may fire before it did);
    /// `retry_response` whether an answer is one the policy retries.
    pub(crate) fn of<R>(
        result: &Result<R, Error>,
        sent: bool,
        retry_response: impl FnOnce(&R) -> bool,
    ) -> Self {
        match result.as_ref().map_err(Error::kind) {
            Ok(r) if retry_response(r) => Attempted::Failed,
            Ok(_) => Attempted::Answered,
            Err(ErrorKind::NotReady { .. }) => Attempted::NotSent,
            Err(ErrorKind::Service { source, .. })
                if FailureKind::of_error(&**source) == FailureKind::Connect =>
            {
                Attempted::NotSent
            }
            Err(ErrorKind::TimedOut { .. }) if !sent => Attempted::NotSent,
            Err(ErrorKind::Service { .. } | ErrorKind::TimedOut { .. }) => Attempted::Failed,
            Err(_) => Attempted::Final,
        }
    }
}

/// Attempts made so far for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Attempts that reached an endpoint (or may have).
    pub(crate) sent: u32,
    /// Attempts that never left.
    pub(crate) not_sent: u32,
}

/// Moves of requests that were never sent, beyond `max_attempts`: each one
/// is free, but a request must not circle a dead set for ever.
pub(crate) const MAX_NOT_SENT: u32 = 4;

/// What to do after an attempt failed, with no other attempt in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Hand the last result back.
    Return,
    /// Try again elsewhere; a retry of a sent request spends the budget.
    Retry {
        /// Whether the budget pays for it.
        spends_budget: bool,
    },
}

/// Decides after an attempt (already counted in `tally`) ended as
/// `attempted`. `max_attempts` counts the first.
pub(crate) fn next(attempted: Attempted, tally: Tally, max_attempts: u32) -> Next {
    match attempted {
        Attempted::Answered | Attempted::Final => Next::Return,
        Attempted::NotSent if tally.not_sent <= MAX_NOT_SENT => Next::Retry {
            spends_budget: false,
        },
        // Past the free moves, unsent attempts count as sent ones.
        Attempted::Failed | Attempted::NotSent
            if tally.sent + tally.not_sent.saturating_sub(MAX_NOT_SENT) < max_attempts =>
        {
            Next::Retry {
                spends_budget: true,
            }
        }
        Attempted::Failed | Attempted::NotSent => Next::Return,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::time::Duration;

    fn service_error(kind: io::ErrorKind) -> Result<u16, Error> {
        Err(Error::from(ErrorKind::Service {
            endpoint: ([127, 0, 0, 1], 1).into(),
            source: Box::new(io::Error::from(kind)),
        }))
    }

    #[test]
    fn results_are_read_as_the_retry_layer_needs() {
        let never = |_: &u16| false;
        assert_eq!(Attempted::of(&Ok(200u16), true, never), Attempted::Answered);
        assert_eq!(
            Attempted::of(&Ok(503u16), true, |s| *s == 503),
            Attempted::Failed
        );
        assert_eq!(
            Attempted::of(
                &service_error(io::ErrorKind::ConnectionRefused),
                true,
                never
            ),
            Attempted::NotSent
        );
        assert_eq!(
            Attempted::of(&service_error(io::ErrorKind::ConnectionReset), true, never),
            Attempted::Failed
        );
        let timed_out: Result<u16, _> = Err(Error::from(ErrorKind::TimedOut {
            endpoint: None,
            after: Duration::from_millis(5),
        }));
        assert_eq!(Attempted::of(&timed_out, true, never), Attempted::Failed);
        // Timed out while still waiting for its endpoint: it never left.
        assert_eq!(Attempted::of(&timed_out, false, never), Attempted::NotSent);
        let stopped: Result<u16, _> = Err(Error::from(ErrorKind::DriverStopped));
        assert_eq!(Attempted::of(&stopped, false, never), Attempted::Final);
    }

    #[test]
    fn sent_attempts_stop_at_the_maximum_and_unsent_ones_move_free() {
        let tally = |sent, not_sent| Tally { sent, not_sent };
        let spend = Next::Retry {
            spends_budget: true,
        };
        let free = Next::Retry {
            spends_budget: false,
        };
        assert_eq!(next(Attempted::Failed, tally(1, 0), 3), spend);
        assert_eq!(next(Attempted::Failed, tally(3, 0), 3), Next::Return);
        assert_eq!(next(Attempted::Failed, tally(1, 0), 1), Next::Return);
        assert_eq!(next(Attempted::NotSent, tally(3, 1), 3), free);
        assert_eq!(next(Attempted::NotSent, tally(0, MAX_NOT_SENT), 3), free);
        // Past the free moves, an unsent attempt counts as any other.
        assert_eq!(
            next(Attempted::NotSent, tally(1, MAX_NOT_SENT + 1), 3),
            spend
        );
        assert_eq!(
            next(Attempted::NotSent, tally(3, MAX_NOT_SENT + 1), 3),
            Next::Return
        );
        // A request refused everywhere stops after max_attempts beyond the
        // free moves, whatever the budget.
        assert_eq!(
            next(Attempted::NotSent, tally(0, MAX_NOT_SENT + 3), 3),
            Next::Return
        );
        assert_eq!(next(Attempted::NotSent, tally(0, 20), 3), Next::Return);
        assert_eq!(next(Attempted::Answered, tally(1, 0), 3), Next::Return);
        assert_eq!(next(Attempted::Final, tally(1, 0), 3), Next::Return);
    }
}
