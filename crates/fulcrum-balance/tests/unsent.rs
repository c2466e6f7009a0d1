//! A request the endpoint's service gives back unsent (`Unsent`: its
//! connection closed before the request was written) goes out again at
//! once, without a retry layer and without a mark against the endpoint.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_balance::{make_fn, Balancer, EndpointState, Error, ErrorKind};
use fulcrum_core::{BoxError, Endpoint, Unsent};
use tower::{service_fn, Service, ServiceExt};

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9000 + i))
}

#[tokio::test]
async fn a_request_given_back_is_sent_again_without_a_failure() {
    // Endpoint 1's service gives back its first three requests; both
    // answer the others with their address.
    let given_back = Arc::new(AtomicU32::new(0));
    let mut lb = Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .endpoints([Endpoint::new(addr(1)), Endpoint::new(addr(2))])
        .build(make_fn(move |ep: &Endpoint| {
            let (me, given_back) = (ep.addr(), given_back.clone());
            service_fn(move |req: String| {
                let given_back = given_back.clone();
                async move {
                    if me == addr(1) && given_back.fetch_add(1, Ordering::Relaxed) < 3 {
                        return Err(BoxError::from(Unsent::new(req, "connection closed")));
                    }
                    Ok::<_, BoxError>(format!("{me} answered {req}"))
                }
            })
        }));
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    for i in 0..20 {
        let answer = lb.ready().await.unwrap().call(format!("#{i}")).await;
        let answer = answer.unwrap_or_else(|e| panic!("#{i}: {e}"));
        assert!(answer.ends_with(&format!("answered #{i}")), "{answer}");
    }
    let stats = lb.stats();
    let first = stats.endpoint(addr(1)).unwrap();
    assert_eq!(first.not_sent, 3, "{first:?}");
    assert_eq!(first.failures, 0, "given back is not a failure");
    assert_eq!(first.cancelled, 0);
    assert_eq!(first.state, EndpointState::Active);
    assert_eq!(first.in_flight, 0);
    let total: u64 = stats
        .endpoints
        .iter()
        .map(|e| e.requests - e.not_sent)
        .sum();
    assert_eq!(total, 20, "each request answered once");
}

#[tokio::test]
async fn requests_always_given_back_fail_after_their_moves_without_hanging() {
    let mut lb = Balancer::builder()
        .endpoints([Endpoint::new(addr(1))])
        .build(make_fn(|_: &Endpoint| {
            service_fn(|req: u32| async move {
                Err::<u32, _>(BoxError::from(Unsent::new(req, "connection closed")))
            })
        }));
    let result = tokio::time::timeout(Duration::from_secs(5), lb.ready().await.unwrap().call(7))
        .await
        .expect("no hang");
    match result.map_err(Error::into_kind) {
        Err(ErrorKind::NotReady { endpoint, source }) => {
            assert_eq!(endpoint, addr(1));
            assert!(source.to_string().contains("connection closed"), "{source}");
        }
        other => panic!("{other:?}"),
    }
    let stats = lb.stats();
    let e = stats.endpoint(addr(1)).unwrap();
    assert_eq!((e.not_sent, e.failures, e.in_flight), (4, 0, 0), "{e:?}");
}
