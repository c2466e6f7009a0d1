//! TLS on rustls (feature `tls`): each connection's handshake, with SNI
//! and certificate verification for the logical host.

use std::io;
use std::sync::Arc;

use http::uri::Authority;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::Protocol;

/// A client configuration that trusts exactly `roots` (DER certificates:
/// your private CA, or a test's self-signed certificate), with rustls'
/// safe defaults on the `ring` provider.
///
/// For the platform's trust store or `webpki-roots`, build a
/// [`ClientConfig`] yourself with the same `rustls` (re-exported as
/// [`fulcrum_http::tls::rustls`](crate::tls::rustls)) and pass it to
/// [`ConnectionConfig::tls`](super::ConnectionConfig::tls).
pub fn client_config(
    roots: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Where one endpoint's TLS connections go: the configuration (with ALPN
/// for the protocol) and the name the certificate must carry.
#[derive(Clone)]
pub(crate) struct TlsTarget {
    connector: TlsConnector,
    /// Or why the logical host cannot be one: every connect then fails
    /// (never a fallback to plain text).
    server_name: Result<ServerName<'static>, Arc<str>>,
}

impl TlsTarget {
    /// For connections speaking `protocol` to the server named by
    /// `authority` (its host, without the port).
    pub(crate) fn new(
        config: &Arc<ClientConfig>,
        protocol: Protocol,
        authority: &Authority,
    ) -> Self {
        // ALPN is this client's protocol, whatever `config` offered: a
        // server choosing h2 for an HTTP/1 client breaks the connection.
        let alpn: &[u8] = match protocol {
            Protocol::Http1 => b"http/1.1",
            Protocol::Http2 => b"h2",
        };
        let mut config = config.clone();
        if config.alpn_protocols != [alpn] {
            Arc::make_mut(&mut config).alpn_protocols = vec![alpn.to_vec()];
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let server_name = ServerName::try_from(host.to_owned()).map_err(|e| {
            Arc::from(format!(
                "{host:?} cannot be a TLS server name ({e}); set an authority that can"
            ))
        });
        TlsTarget {
            connector: TlsConnector::from(config),
            server_name,
        }
    }

    /// The TLS handshake on an open TCP connection.
    pub(crate) async fn connect(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        match &self.server_name {
            Ok(name) => self.connector.connect(name.clone(), tcp).await,
            Err(why) => Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_string())),
        }
    }
}
