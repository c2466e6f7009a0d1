//! A demo gRPC service (feature `demo`): the `greeter.Greeter` service
//! of `proto/greeter.proto`, its tonic-generated client and server, and
//! [`DemoGreeter`], a server implementation that says which server
//! answered, after a configurable delay.
//!
//! fulcrum's own examples and tests balance across servers of it; it is public so that you can try a policy against a
//! service you control before pointing fulcrum at your own.
//!
//! ```no_run
//! use fulcrum_grpc::demo::greeter::greeter_client::GreeterClient;
//! use fulcrum_grpc::demo::greeter::HelloRequest;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = fulcrum_grpc::Channel::from_target("127.0.0.1:50051,127.0.0.1:50052")?;
//! let mut client = GreeterClient::new(channel);
//! let reply = client.say_hello(HelloRequest { name: "fulcrum".into() }).await?;
//! println!("{} (from {})", reply.get_ref().message, reply.get_ref().server);
//! # Ok(())
//! # }
//! ```

#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
#[rustfmt::skip]
pub mod greeter;
mod server;

pub use server::DemoGreeter;
