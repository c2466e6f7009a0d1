//! HTTPS over real sockets: `fulcrum::http::Client` with TLS (rustls)
//! against hyper servers behind rustls on loopback, with a certificate
//! generated here for a name that is not the address dialled.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fulcrum::http::{tls, Client, Protocol};
use fulcrum::Endpoint;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{CertifiedKey, KeyPair};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// A certificate for `orders.test`, signed by itself.
fn certificate() -> CertifiedKey<KeyPair> {
    rcgen::generate_simple_self_signed(vec!["orders.test".to_owned()]).unwrap()
}

/// What a TLS server saw of its last connection and request.
#[derive(Default)]
struct Seen {
    sni: Option<String>,
    alpn: Option<String>,
    host: Option<String>,
}

/// An HTTPS server (HTTP/1.1 and HTTP/2 by ALPN) on 127.0.0.1 presenting
/// `cert`; it answers 200 with the host the request named.
async fn server(cert: &CertifiedKey<KeyPair>) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let chain = vec![cert.cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                // A client that rejects the certificate ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                {
                    let (_, connection) = tls.get_ref();
                    let mut seen = record.lock().unwrap();
                    seen.sni = connection.server_name().map(str::to_owned);
                    seen.alpn = connection
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned());
                }
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    let host = req
                        .headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                        .or_else(|| req.uri().authority().map(|a| a.to_string()))
                        .unwrap_or_default();
                    record.lock().unwrap().host = Some(host.clone());
                    async move {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            host,
                        ))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn trusting(cert: &CertifiedKey<KeyPair>) -> Arc<rustls::ClientConfig> {
    let root: CertificateDer<'static> = cert.cert.der().clone();
    tls::client_config([root]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_verifies_and_names_the_logical_host_not_the_address() {
    let cert = certificate();
    let servers = [server(&cert).await, server(&cert).await];
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let endpoints = servers.iter().map(|(addr, _)| {
            Endpoint::new(*addr).with_authority(format!("orders.test:{}", addr.port()))
        });
        let client: Client = Client::builder()
            .endpoints(endpoints)
            .policy("round-robin")
            .unwrap()
            .protocol(protocol)
            .tls(trusting(&cert))
            .build();
        for _ in 0..10 {
            let response = client.get("/orders/42").await.unwrap();
            assert_eq!(response.status(), 200);
            let host = response.into_body().text().await.unwrap();
            assert!(host.starts_with("orders.test:"), "{protocol:?}: {host}");
        }
        let alpn = match protocol {
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 => "h2",
        };
        for (addr, seen) in &servers {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.sni.as_deref(), Some("orders.test"), "{protocol:?}");
            assert_eq!(seen.alpn.as_deref(), Some(alpn));
            assert_eq!(
                seen.host.as_deref(),
                Some(format!("orders.test:{}", addr.port()).as_str())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_for_the_host_or_not_trusted_fails_the_connect_and_says_why() {
    let cert = certificate();
    let (addr, seen) = server(&cert).await;
    let stranger = certificate();
    for (name, roots, why) in [
        ("billing.test", trusting(&cert), "not valid for name"),
        (
            "orders.test",
            trusting(&stranger),
            "invalid peer certificate",
        ),
    ] {
        let client: Client = Client::builder()
            .endpoints([Endpoint::new(addr).with_authority(name)])
            .tls(roots)
            // A debug-build handshake on a loaded machine can take more
            // than a short deadline's share: the default (3 s) it is.
            .build();
        let error = client.get("/").await.unwrap_err();
        let mut chain = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        assert!(chain.contains("TLS handshake failed"), "{chain}");
        assert!(chain.to_lowercase().contains(why), "{name}: {chain}");
    }
    assert!(
        seen.lock().unwrap().host.is_none(),
        "no request got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_probe_checks_over_tls_and_https_needs_tls() {
    let cert = certificate();
    let (addr, _) = server(&cert).await;
    let named = || Endpoint::new(addr).with_authority(format!("orders.test:{}", addr.port()));
    let probe = fulcrum::http::HttpProbe::get("/health").tls(trusting(&cert));
    let checks = fulcrum::health::HealthChecks::new(probe)
        .interval(Duration::from_millis(100))
        .unhealthy_until_probed(true);
    let client: Client = Client::builder()
        .endpoints([named()])
        .tls(trusting(&cert))
        .health_checks(checks)
        .unwrap()
        .build();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = client.stats();
        if stats
            .endpoint(addr)
            .is_some_and(|e| e.probe_healthy == Some(true))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.get("/").await.unwrap().status(), 200);

    // An https URI through a client without TLS is refused, not sent in
    // plain text.
    let plain: Client = Client::builder().endpoints([named()]).build();
    let error = plain.get("https://orders.test/").await.unwrap_err();
    let chain = format!("{error}: {:?}", std::error::Error::source(&error));
    assert!(chain.contains("no TLS configured"), "{chain}");
}
