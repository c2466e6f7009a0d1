//! An authoritative DNS server in the test process: hickory-server serving
//! the zone `test.internal.` on 127.0.0.1 (UDP and TCP on one random port),
//! whose records tests change while it runs, which counts the queries it
//! receives, and which can be told to answer queries of a type late.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

pub const ZONE: &str = "test.internal.";

/// How late queries of each type are answered.
type Delays = Arc<Mutex<HashMap<RecordType, Duration>>>;

struct Counting {
    inner: Catalog,
    queries: Arc<AtomicU64>,
    delays: Delays,
}

#[async_trait::async_trait]
impl RequestHandler for Counting {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let delay = request.request_info().ok().and_then(|info| {
            let delays = self.delays.lock().unwrap();
            delays.get(&info.query.query_type()).copied()
        });
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.inner
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// One SRV record: priority, weight, port, target host (relative names get
/// the zone appended; `.` is the root).
pub struct Srv<'a>(pub u16, pub u16, pub u16, pub &'a str);

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler>,
    queries: Arc<AtomicU64>,
    delays: Delays,
    server: Option<Server<Counting>>,
}

pub fn name(host: &str) -> Name {
    let fqdn = if host == "." || host.ends_with('.') {
        host.to_owned()
    } else if host.ends_with(ZONE.trim_end_matches('.')) {
        format!("{host}.")
    } else {
        format!("{host}.{ZONE}")
    };
    Name::from_ascii(fqdn).expect("a valid name")
}

fn zone() -> InMemoryZoneHandler {
    let origin = Name::from_ascii(ZONE).unwrap();
    let mut zone: InMemoryZoneHandler =
        InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(name("ns"), name("admin"), 1, 60, 60, 600, 1);
    zone.upsert_mut(Record::from_rdata(origin, 60, RData::SOA(soa)), 1);
    zone
}

impl DnsServer {
    /// A server on a fresh port.
    pub async fn start() -> DnsServer {
        for _ in 0..50 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            let delays = Delays::default();
            if let Some(server) = Self::serve(udp, port, Arc::new(zone()), delays).await {
                return server;
            }
        }
        panic!("no free port for both UDP and TCP");
    }

    async fn serve(
        udp: UdpSocket,
        port: u16,
        zone: Arc<InMemoryZoneHandler>,
        delays: Delays,
    ) -> Option<DnsServer> {
        let tcp = TcpListener::bind(("127.0.0.1", port)).await.ok()?;
        let queries = Arc::new(AtomicU64::new(0));
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::from(Name::from_ascii(ZONE).unwrap()),
            vec![zone.clone() as Arc<dyn ZoneHandler>],
        );
        let mut server = Server::new(Counting {
            inner: catalog,
            queries: queries.clone(),
            delays: delays.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Some(DnsServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            zone,
            queries,
            delays,
            server: Some(server),
        })
    }

    /// Stops serving (the records are kept for a restart).
    pub async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.shutdown_gracefully().await;
        }
    }

    /// Serves again on the same port, with the same records.
    pub async fn restart(&mut self) {
        self.stop().await;
        for _ in 0..100 {
            if let Ok(udp) = UdpSocket::bind(self.addr).await {
                let delays = self.delays.clone();
                if let Some(server) =
                    Self::serve(udp, self.addr.port(), self.zone.clone(), delays).await
                {
                    self.server = server.server;
                    self.queries = server.queries;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("could not serve on {} again", self.addr);
    }

    /// Answers queries for `rtype` records only after `by` (from now on,
    /// until changed; `Duration::ZERO` answers at once again).
    pub fn delay(&self, rtype: RecordType, by: Duration) {
        self.delays.lock().unwrap().insert(rtype, by);
    }

    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }

    async fn replace(&self, owner: Name, rtype: RecordType, records: Vec<Record>) {
        let mut all = self.zone.records_mut().await;
        let key = RrKey::new(LowerName::from(&owner), rtype);
        if records.is_empty() {
            all.remove(&key);
        } else {
            let mut set = RecordSet::new(owner, rtype, 1);
            for r in records {
                set.insert(r, 1);
            }
            all.insert(key, Arc::new(set));
        }
    }

    /// Replaces the A and AAAA records of `host`.
    pub async fn set_ips(&self, host: &str, ips: &[IpAddr], ttl: u32) {
        let owner = name(host);
        let (v4, v6): (Vec<_>, Vec<_>) = ips.iter().partition(|ip| ip.is_ipv4());
        let a = v4
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => Record::from_rdata(owner.clone(), ttl, RData::A(A(*v4))),
                IpAddr::V6(_) => unreachable!(),
            })
            .collect();
        let aaaa = v6
            .iter()
            .map(|ip| match ip {
                IpAddr::V6(v6) => Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(*v6))),
                IpAddr::V4(_) => unreachable!(),
            })
            .collect();
        self.replace(owner.clone(), RecordType::A, a).await;
        self.replace(owner, RecordType::AAAA, aaaa).await;
    }

    /// Replaces the SRV records of `service` (e.g. `_http._tcp`).
    pub async fn set_srv(&self, service: &str, records: &[Srv<'_>], ttl: u32) {
        let owner = name(service);
        let srv = records
            .iter()
            .map(|Srv(priority, weight, port, target)| {
                Record::from_rdata(
                    owner.clone(),
                    ttl,
                    RData::SRV(SRV::new(*priority, *weight, *port, name(target))),
                )
            })
            .collect();
        self.replace(owner, RecordType::SRV, srv).await;
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
