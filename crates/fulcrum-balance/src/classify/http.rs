use std::time::Duration;

use fulcrum_core::BoxError;
use http::{HeaderMap, Response, StatusCode};

use super::{Classify, Completion, FailureKind, Outcome, TrackedBody};

/// Classifies HTTP (and gRPC over HTTP/2) responses, and tracks each
/// request until its response body ends.
///
/// * transport errors: a failure of the kind read from the error
///   ([`FailureKind::of_error`]);
/// * `429`, and `503` with `Retry-After`: an overload, with the delay when
///   `Retry-After` gives seconds (anything else in it is ignored);
/// * other `5xx`: [`FailureKind::Server`];
/// * `grpc-status` (in the headers of a trailers-only response, or in the
///   trailers): `UNAVAILABLE`, `INTERNAL`, `UNKNOWN` and `DATA_LOSS` are
///   server failures, `DEADLINE_EXCEEDED` a timeout, `RESOURCE_EXHAUSTED`
///   an overload (delay from `grpc-retry-pushback-ms`); other statuses are
///   the application's answers, successes for the endpoint;
/// * everything else: a success, once the body has ended.
///
/// ```
/// # use fulcrum_balance::{classify::ClassifyHttp, Balancer};
/// let builder = Balancer::builder().classify(ClassifyHttp);
/// # drop(builder);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassifyHttp;

impl<B> Classify<Response<B>> for ClassifyHttp
where
    B: http_body::Body + Send + 'static,
{
    type Response = Response<TrackedBody<B>>;

    fn classify(
        &self,
        result: Result<Response<B>, BoxError>,
        completion: Completion,
    ) -> Result<Self::Response, BoxError> {
        match result {
            Err(e) => {
                completion.finish(Outcome::Failure(FailureKind::of_error(&*e)));
                Err(e)
            }
            Ok(response) => {
                let outcome = grpc_outcome(response.headers())
                    .unwrap_or_else(|| status_outcome(response.status(), response.headers()));
                Ok(response.map(|body| {
                    TrackedBody::new(body, completion, outcome).classify_trailers(grpc_outcome)
                }))
            }
        }
    }
}

/// The outcome an HTTP status says.
fn status_outcome(status: StatusCode, headers: &HeaderMap) -> Outcome {
    let retry_after = || {
        headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    };
    match status {
        StatusCode::TOO_MANY_REQUESTS => Outcome::Overload {
            retry_after: retry_after(),
        },
        StatusCode::SERVICE_UNAVAILABLE if headers.contains_key(http::header::RETRY_AFTER) => {
            Outcome::Overload {
                retry_after: retry_after(),
            }
        }
        s if s.is_server_error() => Outcome::Failure(FailureKind::Server),
        _ => Outcome::Success,
    }
}

/// The outcome a `grpc-status` says, if there is one.
fn grpc_outcome(headers: &HeaderMap) -> Option<Outcome> {
    let code: u32 = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(match code {
        // UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS
        2 | 13 | 14 | 15 => Outcome::Failure(FailureKind::Server),
        4 => Outcome::Failure(FailureKind::Timeout),
        8 => Outcome::Overload {
            retry_after: headers
                .get("grpc-retry-pushback-ms")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis),
        },
        _ => Outcome::Success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|&(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn statuses() {
        let none = HeaderMap::new();
        assert_eq!(status_outcome(StatusCode::OK, &none), Outcome::Success);
        assert_eq!(
            status_outcome(StatusCode::NOT_FOUND, &none),
            Outcome::Success
        );
        assert_eq!(
            status_outcome(StatusCode::BAD_GATEWAY, &none),
            Outcome::Failure(FailureKind::Server)
        );
        assert_eq!(
            status_outcome(StatusCode::SERVICE_UNAVAILABLE, &none),
            Outcome::Failure(FailureKind::Server)
        );
        assert_eq!(
            status_outcome(
                StatusCode::SERVICE_UNAVAILABLE,
                &headers(&[("retry-after", "7")])
            ),
            Outcome::Overload {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        // A date, or garbage: an overload without a delay, never a panic.
        for bad in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "-1",
            "soon",
            "99999999999999999999",
        ] {
            assert_eq!(
                status_outcome(
                    StatusCode::TOO_MANY_REQUESTS,
                    &headers(&[("retry-after", bad)])
                ),
                Outcome::Overload { retry_after: None },
                "{bad}"
            );
        }
    }

    #[test]
    fn grpc_statuses() {
        assert_eq!(grpc_outcome(&HeaderMap::new()), None);
        assert_eq!(
            grpc_outcome(&headers(&[("grpc-status", "0")])),
            Some(Outcome::Success)
        );
        assert_eq!(
            grpc_outcome(&headers(&[("grpc-status", "5")])),
            Some(Outcome::Success),
            "NOT_FOUND is the application's answer"
        );
        assert_eq!(
            grpc_outcome(&headers(&[("grpc-status", "14")])),
            Some(Outcome::Failure(FailureKind::Server))
        );
        assert_eq!(
            grpc_outcome(&headers(&[
                ("grpc-status", "8"),
                ("grpc-retry-pushback-ms", "250")
            ])),
            Some(Outcome::Overload {
                retry_after: Some(Duration::from_millis(250))
            })
        );
        assert_eq!(
            grpc_outcome(&headers(&[
                ("grpc-status", "8"),
                ("grpc-retry-pushback-ms", "-5")
            ])),
            Some(Outcome::Overload { retry_after: None })
        );
        assert_eq!(grpc_outcome(&headers(&[("grpc-status", "x")])), None);
    }
}
