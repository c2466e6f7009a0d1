//! The demo's DNS server: hickory-server in this process, authoritative
//! for `demo.fulcrum.`, answering SRV and A queries on a loopback port.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::rr::rdata::{A, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

/// The zone the demo serves.
pub(crate) const ZONE: &str = "demo.fulcrum.";
/// The SRV name clients resolve: `_http._tcp.api.demo.fulcrum`.
pub(crate) const SERVICE: &str = "_http._tcp.api.demo.fulcrum";
/// Record TTL: clients re-resolve every few seconds, as a real service's would.
const TTL: u32 = 5;

/// A running server; it stops when dropped.
pub(crate) struct DemoDns {
    pub(crate) addr: SocketAddr,
    _server: Server<Catalog>,
}

impl std::fmt::Debug for DemoDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoDns").field("addr", &self.addr).finish()
    }
}

fn name(relative: &str) -> Result<Name, String> {
    Name::from_ascii(format!("{relative}.{ZONE}")).map_err(|e| e.to_string())
}

impl DemoDns {
    /// Serves one SRV record per backend (`b1`…`bN`, port from its
    /// address, equal priority and weight) and an A record for each
    /// backend's host name.
    pub(crate) async fn start(backends: &[SocketAddr]) -> Result<DemoDns, String> {
        let origin = Name::from_ascii(ZONE).map_err(|e| e.to_string())?;
        let mut zone: InMemoryZoneHandler =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(name("ns")?, name("admin")?, 1, 60, 60, 600, 1);
        zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        let service = Name::from_ascii(format!("{SERVICE}.")).map_err(|e| e.to_string())?;
        for (i, addr) in backends.iter().enumerate() {
            let host = name(&format!("b{}", i + 1))?;
            let ip = match addr.ip() {
                std::net::IpAddr::V4(v4) => v4,
                std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
            };
            zone.upsert_mut(Record::from_rdata(host.clone(), TTL, RData::A(A(ip))), 1);
            let srv = SRV::new(0, 10, addr.port(), host);
            zone.upsert_mut(Record::from_rdata(service.clone(), TTL, RData::SRV(srv)), 1);
        }
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::from(origin),
            vec![Arc::new(zone) as Arc<dyn ZoneHandler>],
        );
        // UDP and TCP on one port, as resolvers expect.
        for _ in 0..50 {
            let udp = UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("cannot open a UDP socket on 127.0.0.1: {e}"))?;
            let addr = udp.local_addr().map_err(|e| e.to_string())?;
            let Ok(tcp) = TcpListener::bind(addr).await else {
                continue;
            };
            let mut server = Server::new(catalog);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 64);
            return Ok(DemoDns {
                addr,
                _server: server,
            });
        }
        Err("no loopback port free for both UDP and TCP".into())
    }
}
