//! GeoDNS against BIND 9, a DNS server nobody here wrote. BIND's views
//! answer the same name with each region's addresses depending on which of
//! its loopback addresses was asked (`match-destinations`): a client that
//! asks 127.0.10.1 is "in Europe", one that asks 127.0.10.2 "in the US".
//! named listens only on addresses its interfaces carry, so the test adds
//! those two to the loopback interface (`ip addr add`, as root; they stay,
//! harmless). Ignored by default (it needs `named`: `apt-get install
//! bind9`, and root); `.ci/run` installs it and runs these with
//! `--ignored`.

#[path = "support/http.rs"]
mod support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fulcrum::classify::ClassifyHttp;
use fulcrum::discovery::{Discovery, DiscoveryConfig};
use fulcrum::retry::{Retry, RetryIdempotent, RetryLayer};
use fulcrum::Balancer;
use support::{hits_of, http_maker, send_ok, Backend, Behaviour};
use tokio::time::Instant;
use tower::Layer;

type Lb = Balancer<support::EndpointClient, fulcrum::key::NoKey, ClassifyHttp>;

const EU_DNS: [u8; 4] = [127, 0, 10, 1];
const US_DNS: [u8; 4] = [127, 0, 10, 2];
const EU: [[u8; 4]; 2] = [[127, 0, 1, 1], [127, 0, 1, 2]];
const US: [[u8; 4]; 2] = [[127, 0, 2, 1], [127, 0, 2, 2]];
/// The records' TTL, in seconds.
const TTL: u64 = 2;

fn named() -> &'static str {
    for candidate in ["/usr/sbin/named", "/usr/bin/named", "/sbin/named"] {
        if std::path::Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("BIND 9 is not installed: apt-get install -y bind9");
}

/// A zone for `geo.test` whose `api` has `addrs` (none: the name is gone).
fn zone(serial: u32, addrs: &[[u8; 4]]) -> String {
    let mut z = format!(
        "$TTL {TTL}\n@ IN SOA ns.geo.test. admin.geo.test. {serial} 1 1 1 {TTL}\n\
         @ IN NS ns.geo.test.\nns IN A 127.0.10.1\n"
    );
    for a in addrs {
        z.push_str(&format!("api IN A {}.{}.{}.{}\n", a[0], a[1], a[2], a[3]));
    }
    z
}

/// `named` in the foreground with two views, `eu` and `us`, each serving
/// its own `geo.test` zone to queries sent to its own address.
struct Bind {
    child: Child,
    dir: PathBuf,
    port: u16,
    serial: u32,
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Puts the views' addresses on the loopback interface, if they are not.
fn loopback_addresses() {
    for ip in ["127.0.10.1", "127.0.10.2"] {
        let shown = Command::new("ip")
            .args(["-4", "addr", "show", "dev", "lo"])
            .output()
            .expect("iproute2's `ip`: apt-get install iproute2");
        if String::from_utf8_lossy(&shown.stdout).contains(&format!("inet {ip}/")) {
            continue;
        }
        let added = Command::new("ip")
            .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&added.stderr);
        assert!(
            added.status.success()
                || err.contains("File exists")
                || err.contains("already assigned"),
            "cannot add {ip} to lo (run as root): {err}"
        );
    }
}

impl Bind {
    async fn start() -> Bind {
        loopback_addresses();
        let dir = std::env::temp_dir().join(format!(
            "fulcrum-bind-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..20 {
            let port = {
                let probe = UdpSocket::bind(SocketAddr::from((EU_DNS, 0))).unwrap();
                probe.local_addr().unwrap().port()
            };
            std::fs::write(dir.join("eu.zone"), zone(1, &EU)).unwrap();
            std::fs::write(dir.join("us.zone"), zone(1, &US)).unwrap();
            let d = dir.display();
            let conf = format!(
                r#"options {{
  directory "{d}";
  pid-file none;
  listen-on port {port} {{ 127.0.10.1; 127.0.10.2; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  allow-query {{ any; }};
}};
controls {{ }};
view "eu" {{
  match-destinations {{ 127.0.10.1; }};
  zone "geo.test" {{ type primary; file "{d}/eu.zone"; }};
}};
view "us" {{
  match-destinations {{ 127.0.10.2; }};
  zone "geo.test" {{ type primary; file "{d}/us.zone"; }};
}};
"#
            );
            std::fs::write(dir.join("named.conf"), conf).unwrap();
            let log = std::fs::File::create(dir.join("log")).unwrap();
            let child = Command::new(named())
                .args(["-g", "-u", "root", "-c"])
                .arg(dir.join("named.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("named starts");
            let mut bind = Bind {
                child,
                dir: dir.clone(),
                port,
                serial: 1,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                if log.lines().any(|l| l.ends_with(" running")) {
                    return bind;
                }
                if bind.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    // Most likely the port was taken: try another.
                    eprintln!("named did not start:\n{log}");
                    let _ = bind.child.kill();
                    let _ = bind.child.wait();
                    std::mem::forget(bind);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("named never started; see the logs above");
    }

    fn resolver(&self, view: [u8; 4]) -> SocketAddr {
        SocketAddr::from((view, self.port))
    }

    /// Rewrites the `eu` view's zone and has named reload it (SIGHUP).
    fn set_eu(&mut self, addrs: &[[u8; 4]]) {
        self.serial += 1;
        std::fs::write(self.dir.join("eu.zone"), zone(self.serial, addrs)).unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A backend at each of `ips`, all on one port (A records carry
/// addresses, not ports).
async fn backends(ips: &[[u8; 4]]) -> (u16, Vec<Backend>) {
    'port: for _ in 0..50 {
        let first = Backend::start_on(SocketAddr::from((ips[0], 0)), OK)
            .await
            .unwrap();
        let port = first.addr.port();
        let mut all = vec![first];
        for &ip in &ips[1..] {
            match Backend::start_on(SocketAddr::from((ip, port)), OK).await {
                Some(b) => all.push(b),
                None => continue 'port,
            }
        }
        return (port, all);
    }
    panic!("no port free on {ips:?}");
}

/// Europe's and the US's backends, all on one port: the port, Europe's,
/// the US's.
async fn regions() -> (u16, Vec<Backend>, Vec<Backend>) {
    let (port, mut eu) = backends(&[EU[0], EU[1], US[0], US[1]]).await;
    let us = eu.split_off(EU.len());
    (port, eu, us)
}

const OK: Behaviour = Behaviour::Delay(Duration::from_millis(1));

fn prompt() -> DiscoveryConfig {
    DiscoveryConfig {
        min_ttl: Duration::from_millis(200),
        ..DiscoveryConfig::default()
    }
}

fn balancer(target: &str) -> Lb {
    Balancer::builder()
        .policy_name("round-robin")
        .unwrap()
        .discovery(Discovery::new(target).unwrap().with_config(prompt()))
        .classify(ClassifyHttp)
        .build(http_maker())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs BIND 9 (apt-get install bind9); .ci/run runs it"]
async fn clients_in_different_places_get_their_own_regions_backends() {
    let bind = Bind::start().await;
    let (port, eu, us) = regions().await;
    let target = |view| format!("dns://{}/api.geo.test:{port}", bind.resolver(view));
    let mut in_europe = balancer(&target(EU_DNS));
    let mut in_the_us = balancer(&target(US_DNS));
    in_europe.ready_all(Duration::from_secs(5)).await.unwrap();
    in_the_us.ready_all(Duration::from_secs(5)).await.unwrap();
    let ips = |lb: &Lb| -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = lb.stats().endpoints.iter().map(|e| e.addr.ip()).collect();
        v.sort();
        v
    };
    assert_eq!(ips(&in_europe), EU.map(IpAddr::from));
    assert_eq!(ips(&in_the_us), US.map(IpAddr::from));
    send_ok(&mut in_europe, 50).await;
    send_ok(&mut in_the_us, 30).await;
    assert_eq!((hits_of(&eu), hits_of(&us)), (50, 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs BIND 9 (apt-get install bind9); .ci/run runs it"]
async fn a_composite_target_fails_over_when_a_regions_answer_empties() {
    let mut bind = Bind::start().await;
    let (port, eu, us) = regions().await;
    // Europe first, the US when Europe has nothing: one name, two views.
    let target = format!(
        "first(dns://{}/api.geo.test:{port};region=eu, dns://{}/api.geo.test:{port};region=us)",
        bind.resolver(EU_DNS),
        bind.resolver(US_DNS)
    );
    let lb = balancer(&target);
    lb.ready_all(Duration::from_secs(5)).await.unwrap();
    let mut client: Retry<Lb, RetryIdempotent> = RetryLayer::new(RetryIdempotent).layer(lb.clone());
    send_ok(&mut client, 40).await;
    assert_eq!((hits_of(&eu), hits_of(&us)), (40, 0), "Europe serves alone");

    // Europe's answer empties (the zone reloaded without `api`): requests
    // move to the US within one TTL, and none fails (`send` asserts it).
    bind.set_eu(&[]);
    let emptied = Instant::now();
    let deadline = emptied + Duration::from_secs(10);
    let mut last_eu = hits_of(&eu);
    let mut moved = None;
    while moved.is_none() {
        assert!(
            Instant::now() < deadline,
            "never failed over: {:?}",
            lb.stats().tiers
        );
        send_ok(&mut client, 5).await;
        let now = hits_of(&eu);
        if now == last_eu
            && lb
                .stats()
                .endpoints
                .iter()
                .all(|e| e.addr.ip() != IpAddr::from(EU[0]))
        {
            moved = Some(emptied.elapsed());
        }
        last_eu = now;
    }
    let took = moved.unwrap();
    eprintln!("Europe's answer emptied: all requests in the US after {took:?} (TTL {TTL} s)");
    assert!(
        // One TTL, plus the re-resolution's jitter and a noisy machine's slack.
        took <= Duration::from_secs(TTL + 1),
        "{took:?}"
    );
    let before = (hits_of(&eu), hits_of(&us));
    send_ok(&mut client, 40).await;
    assert_eq!((hits_of(&eu), hits_of(&us)), (before.0, before.1 + 40));

    // Europe's answer returns: so do the requests.
    bind.set_eu(&EU);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = hits_of(&eu);
        send_ok(&mut client, 10).await;
        if hits_of(&eu) == before + 10 {
            break;
        }
        assert!(Instant::now() < deadline, "Europe never came back");
    }
}
