//! Real gRPC on loopback for the end-to-end tests: tonic servers of the
//! demo `greeter.Greeter` service with `grpc.health.v1`, each with a
//! behaviour, counting its calls and recording the `:authority` it saw.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use fulcrum::grpc::demo::greeter::greeter_server::{Greeter, GreeterServer};
use fulcrum::grpc::demo::greeter::{HelloReply, HelloRequest, HelloStreamRequest};
use fulcrum::grpc::demo::DemoGreeter;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// What a test server does with each `SayHello`.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answer after this delay.
    Delay(Duration),
    /// Fail with this code.
    Fail(Code),
    /// `RESOURCE_EXHAUSTED` with this `grpc-retry-pushback-ms` value
    /// (taken as is, valid or not).
    Pushback(&'static str),
}

struct TestGreeter {
    demo: DemoGreeter,
    behaviour: Behaviour,
}

#[tonic::async_trait]
impl Greeter for TestGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        match self.behaviour {
            Behaviour::Delay(delay) => {
                tokio::time::sleep(delay).await;
                self.demo.say_hello(request).await
            }
            Behaviour::Fail(code) => {
                self.demo.calls().fetch_add(1, Ordering::Relaxed);
                Err(Status::new(code, "failing on purpose"))
            }
            Behaviour::Pushback(value) => {
                self.demo.calls().fetch_add(1, Ordering::Relaxed);
                let mut metadata = MetadataMap::new();
                metadata.insert("grpc-retry-pushback-ms", value.parse().unwrap());
                Err(Status::with_metadata(
                    Code::ResourceExhausted,
                    "shedding load",
                    metadata,
                ))
            }
        }
    }

    type SayHelloStreamStream = <DemoGreeter as Greeter>::SayHelloStreamStream;

    async fn say_hello_stream(
        &self,
        request: Request<HelloStreamRequest>,
    ) -> Result<Response<Self::SayHelloStreamStream>, Status> {
        self.demo.say_hello_stream(request).await
    }
}

/// Records the `:authority` of every request.
#[derive(Clone)]
struct RecordAuthority<S> {
    inner: S,
    seen: Arc<Mutex<String>>,
}

impl<S, B> tower::Service<http::Request<B>> for RecordAuthority<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> S::Future {
        if let Some(authority) = req.uri().authority() {
            *self.seen.lock().unwrap() = authority.to_string();
        }
        self.inner.call(req)
    }
}

/// A tonic server on 127.0.0.1, on a port the OS picks, serving
/// `greeter.Greeter` and (unless started without) `grpc.health.v1`.
pub struct GrpcBackend {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicU64>,
    /// The `:authority` of the last request.
    pub authority: Arc<Mutex<String>>,
    health: Option<HealthReporter>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl GrpcBackend {
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_with(behaviour, true).await
    }

    /// A server whose health service is missing (`UNIMPLEMENTED`).
    pub async fn start_without_health(behaviour: Behaviour) -> Self {
        Self::start_with(behaviour, false).await
    }

    async fn start_with(behaviour: Behaviour, health: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let demo = DemoGreeter::new(addr.to_string());
        let calls = demo.calls();
        let authority = Arc::new(Mutex::new(String::new()));
        let seen = authority.clone();
        let layer = tower::layer::layer_fn(move |inner| RecordAuthority {
            inner,
            seen: seen.clone(),
        });
        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let mut server = tonic::transport::Server::builder().layer(layer);
        let router = if health {
            server
                .add_service(GreeterServer::new(TestGreeter { demo, behaviour }))
                .add_service(health_service)
        } else {
            server.add_service(GreeterServer::new(TestGreeter { demo, behaviour }))
        };
        let task = tokio::spawn(async move {
            let incoming = TcpListenerStream::new(listener);
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        GrpcBackend {
            addr,
            calls,
            authority,
            health: health.then_some(reporter),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// What its health service says about the whole server.
    pub async fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.health
            .as_ref()
            .expect("started with a health service")
            .set_service_status("", status)
            .await;
    }

    /// Goes away: stops accepting, sends GOAWAY, finishes the calls in
    /// flight (within 5 s) and closes its connections.
    pub async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Three servers answering after 1 ms.
pub async fn three() -> [GrpcBackend; 3] {
    let ok = Behaviour::Delay(Duration::from_millis(1));
    [
        GrpcBackend::start(ok).await,
        GrpcBackend::start(ok).await,
        GrpcBackend::start(ok).await,
    ]
}
