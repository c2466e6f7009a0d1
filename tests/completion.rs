//! A request finishes when its HTTP response body does: `TrackedBody` over
//! in-memory bodies (data, trailers, errors, early drops), and the request
//! path with it allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use fulcrum::classify::ClassifyHttp;
use fulcrum::{make_fn, Balancer, Endpoint};
use http::{HeaderMap, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Frame};
use tower::{service_fn, Service, ServiceExt};

struct Counting;

std::thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One frame of a scripted body.
#[derive(Clone, Copy)]
enum Step {
    Data(&'static str),
    /// Trailers with this `grpc-status`.
    Trailers(&'static str),
    Reset,
}

type Frames = std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>;
type Scripted = StreamBody<futures_util::stream::Iter<Frames>>;

/// Answers with a body that plays its script.
#[derive(Clone)]
struct Script(&'static [Step]);

impl Service<()> for Script {
    type Response = Response<Scripted>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Scripted>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, (): ()) -> Self::Future {
        let frames: Vec<_> = self
            .0
            .iter()
            .map(|step| match *step {
                Step::Data(d) => Ok(Frame::data(Bytes::from_static(d.as_bytes()))),
                Step::Trailers(status) => Ok(trailers(status)),
                Step::Reset => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            })
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(frames));
        std::future::ready(Ok(Response::new(body)))
    }
}

fn streaming(script: &'static [Step]) -> Balancer<Script, fulcrum::key::NoKey, ClassifyHttp> {
    Balancer::builder()
        .endpoints([Endpoint::new(([127, 0, 0, 1], 9).into())])
        .classify(ClassifyHttp)
        .build(make_fn(move |_: &Endpoint| Script(script)))
}

fn trailers(status: &'static str) -> Frame<Bytes> {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", status.parse().unwrap());
    Frame::trailers(t)
}

#[tokio::test]
async fn trailers_decide_the_outcome_at_the_end_of_the_stream() {
    const OK: &[Step] = &[Step::Data("a"), Step::Trailers("0")];
    const UNAVAILABLE: &[Step] = &[Step::Data("a"), Step::Trailers("14")];
    const NOT_FOUND: &[Step] = &[Step::Data("a"), Step::Trailers("5")];
    for (script, status, failed) in [(OK, "0", 0), (UNAVAILABLE, "14", 1), (NOT_FOUND, "5", 0)] {
        let mut lb = streaming(script);
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        let response = lb.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!(lb.stats().endpoints[0].in_flight, 1);
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], status);
        let e = lb.stats().endpoints[0].clone();
        assert_eq!(
            (e.in_flight, e.failures, e.cancelled),
            (0, failed, 0),
            "{status}: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_body_that_breaks_is_a_reset() {
    let mut lb = streaming(&[Step::Data("a"), Step::Reset]);
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let response = lb.ready().await.unwrap().call(()).await.unwrap();
    assert!(response.into_body().collect().await.is_err());
    let e = lb.stats().endpoints[0].clone();
    assert_eq!((e.in_flight, e.failures), (0, 1), "{e:?}");
}

#[tokio::test]
async fn an_empty_body_dropped_unread_is_a_success() {
    // A 204 or a reply to HEAD: nothing to read, nothing cancelled.
    let mut lb = Balancer::builder()
        .endpoints([Endpoint::new(([127, 0, 0, 1], 9).into())])
        .classify(ClassifyHttp)
        .build(make_fn(|_: &Endpoint| {
            service_fn(|()| async {
                Ok::<_, Infallible>(Response::new(http_body_util::Empty::<Bytes>::new()))
            })
        }));
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    drop(lb.ready().await.unwrap().call(()).await.unwrap());
    let e = lb.stats().endpoints[0].clone();
    assert_eq!((e.in_flight, e.cancelled, e.failures), (0, 0, 0), "{e:?}");
}

/// The request path, body to its end included, with `ClassifyHttp`.
#[test]
fn the_tracked_body_path_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut lb = rt.block_on(async {
        let lb = Balancer::builder()
            .endpoints((0..10u16).map(|i| Endpoint::new(([127, 0, 0, 1], 32_000 + i).into())))
            .classify(ClassifyHttp)
            .build(make_fn(|_: &Endpoint| {
                service_fn(|()| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                })
            }));
        lb.ready_all(Duration::from_secs(5)).await.unwrap();
        lb
    });
    let _guard = rt.enter();
    let mut cx = Context::from_waker(Waker::noop());
    let mut one = |lb: &mut Balancer<_, _, ClassifyHttp>| {
        assert!(matches!(lb.poll_ready(&mut cx), Poll::Ready(Ok(()))));
        let fut = pin!(Service::call(lb, ()));
        let Poll::Ready(Ok(response)) = fut.poll(&mut cx) else {
            panic!("not ready")
        };
        let mut body = pin!(response.into_body());
        let mut frames = 0;
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            frame.unwrap();
            frames += 1;
        }
        assert_eq!(frames, 1);
    };
    for _ in 0..1_000 {
        one(&mut lb);
    }
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    for _ in 0..20_000 {
        one(&mut lb);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0);
    assert!(lb.stats().endpoints.iter().all(|e| e.in_flight == 0));
}
