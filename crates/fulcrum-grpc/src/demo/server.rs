use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tonic::{Request, Response, Status};

use super::greeter::greeter_server::Greeter;
use super::greeter::{HelloReply, HelloRequest, HelloStreamRequest};

/// The most replies one `SayHelloStream` call may ask for.
const MAX_STREAM: u32 = 10_000;

/// A `greeter.Greeter` server that answers after `delay`, naming itself
/// in every reply, and counts the calls it served.
///
/// ```
/// use std::time::Duration;
/// use fulcrum_grpc::demo::greeter::greeter_server::GreeterServer;
/// use fulcrum_grpc::demo::DemoGreeter;
///
/// let greeter = DemoGreeter::new("127.0.0.1:50051").delay(Duration::from_millis(5));
/// let calls = greeter.calls();
/// let service = GreeterServer::new(greeter); // serve it with tonic's `Server`
/// # drop((service, calls));
/// ```
#[derive(Clone, Debug)]
pub struct DemoGreeter {
    server: String,
    delay: Duration,
    calls: Arc<AtomicU64>,
}

impl DemoGreeter {
    /// A server that calls itself `server` in its replies and answers at
    /// once.
    pub fn new(server: impl Into<String>) -> Self {
        DemoGreeter {
            server: server.into(),
            delay: Duration::ZERO,
            calls: Arc::default(),
        }
    }

    /// Answers each call (and each streamed reply) after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The number of calls served so far, shared with every clone.
    pub fn calls(&self) -> Arc<AtomicU64> {
        self.calls.clone()
    }

    fn reply(&self, name: &str) -> HelloReply {
        HelloReply {
            message: format!("Hello, {name}!"),
            server: self.server.clone(),
        }
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

#[tonic::async_trait]
impl Greeter for DemoGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(Response::new(self.reply(&request.get_ref().name)))
    }

    type SayHelloStreamStream = ReplyStream;

    async fn say_hello_stream(
        &self,
        request: Request<HelloStreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let HelloStreamRequest {
            name,
            count,
            interval_ms,
        } = request.into_inner();
        if count > MAX_STREAM {
            return Err(Status::invalid_argument(format!(
                "count {count} is more than {MAX_STREAM} replies; ask for fewer"
            )));
        }
        let reply = self.reply(&name);
        let interval = Duration::from_millis(u64::from(interval_ms));
        let stream = futures_util::stream::unfold(0, move |sent| {
            let reply = reply.clone();
            async move {
                if sent == count {
                    return None;
                }
                if !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                Some((Ok(reply), sent + 1))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
