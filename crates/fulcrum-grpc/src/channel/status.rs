//! The `tonic::Status` a balancer error becomes.

use std::sync::Arc;

use fulcrum_balance::{Error, ErrorKind};
use fulcrum_http::{ConnectError, RequestTimeout};
use tonic::{Code, Status};

/// The status a failed call gets, with `error` as its source.
///
/// Nothing reached a server (no endpoint, none ready, the driver gone):
/// `UNAVAILABLE`, the code gRPC clients retry and wait on. A deadline of
/// fulcrum's (the request timeout, the retry layer's per-try timeout):
/// `DEADLINE_EXCEEDED`. A transport failure after sending (a reset, a
/// closed connection): `UNAVAILABLE`, as gRPC's own channels report it.
/// A panic in code given to the balancer: `INTERNAL`.
pub(crate) fn status_of(error: Error) -> Status {
    let code = code_of(&error);
    let message = message_of(&error);
    let mut status = Status::new(code, message);
    status.set_source(Arc::new(error));
    status
}

fn code_of(error: &Error) -> Code {
    match error.kind() {
        ErrorKind::Service { source, .. } => {
            if let Some(status) = source.downcast_ref::<Status>() {
                status.code()
            } else if source.is::<RequestTimeout>() {
                Code::DeadlineExceeded
            } else {
                Code::Unavailable
            }
        }
        ErrorKind::TimedOut { .. } => Code::DeadlineExceeded,
        ErrorKind::Panicked { .. } => Code::Internal,
        // NoEndpoints, NotReady, DriverStopped, WarmingUp, and whatever a
        // later version adds: nothing was sent.
        _ => Code::Unavailable,
    }
}

/// The error and its causes on one line, so a client that prints only the
/// status message still sees why.
fn message_of(error: &Error) -> String {
    chain(error)
}

/// An error and its causes on one line, each once.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // A connect error's own message already names its io::Error.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        if cause.is::<ConnectError>() {
            break;
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fulcrum_core::{NoEndpoints, NoEndpointsReason};

    use super::*;

    #[test]
    fn nothing_sent_is_unavailable() {
        let none = NoEndpoints::new(
            "dns:///greeter:50051",
            NoEndpointsReason::AllUnavailable,
            Duration::from_secs(3),
        );
        let status = status_of(Error::from(ErrorKind::NoEndpoints(none)));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("no endpoint"), "{status:?}");
        let status = status_of(Error::from(ErrorKind::DriverStopped));
        assert_eq!(status.code(), Code::Unavailable);
        let not_ready = Error::from(ErrorKind::NotReady {
            endpoint: "127.0.0.1:1".parse().unwrap(),
            source: "connection refused".into(),
        });
        let status = status_of(not_ready);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("connection refused"),
            "{status:?}"
        );
    }

    #[test]
    fn deadlines_and_panics() {
        let timed_out = Error::from(ErrorKind::TimedOut {
            endpoint: None,
            after: Duration::from_millis(100),
        });
        assert_eq!(status_of(timed_out).code(), Code::DeadlineExceeded);
        let panicked = Error::from(ErrorKind::Panicked {
            what: "key extractor",
            message: "boom".into(),
        });
        let status = status_of(panicked);
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("boom"));
    }

    #[test]
    fn a_status_from_the_service_keeps_its_code() {
        let error = Error::from(ErrorKind::Service {
            endpoint: "127.0.0.1:1".parse().unwrap(),
            source: Box::new(Status::resource_exhausted("slow down")),
        });
        assert_eq!(status_of(error).code(), Code::ResourceExhausted);
        let reset = Error::from(ErrorKind::Service {
            endpoint: "127.0.0.1:1".parse().unwrap(),
            source: "connection reset".into(),
        });
        assert_eq!(status_of(reset).code(), Code::Unavailable);
    }

    #[test]
    fn tonic_keeps_the_code() {
        // What a generated client does with a channel error.
        let status = status_of(Error::from(ErrorKind::DriverStopped));
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(status);
        assert_eq!(Status::from_error(boxed).code(), Code::Unavailable);
    }
}
