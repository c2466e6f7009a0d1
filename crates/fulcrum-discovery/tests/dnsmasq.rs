//! Interop with dnsmasq, a DNS server nobody here wrote. Ignored by default
//! (it needs `dnsmasq` installed: `apt-get install dnsmasq-base`); `.ci/run`
//! installs it and runs these with `--ignored`.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fulcrum_core::EndpointSet;
use fulcrum_discovery::{Discovery, DiscoveryConfig};
use futures_util::StreamExt;
use tokio::time::{timeout, Instant};

/// A dnsmasq answering for `test.internal` on 127.0.0.1, from a hosts file
/// this test writes, with SRV records from the command line.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    hosts: PathBuf,
    dir: PathBuf,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binary() -> String {
    for candidate in ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("dnsmasq is not installed: apt-get install -y dnsmasq-base");
}

impl Dnsmasq {
    async fn start(hosts: &str, srv: &[&str]) -> Dnsmasq {
        // The port is picked by binding and releasing it, so another test's
        // dnsmasq may take it first; this one then fails to start while the
        // other answers in its place (until that test ends). A name only
        // this instance knows proves the answers come from it.
        for _ in 0..5 {
            if let Some(dnsmasq) = Dnsmasq::try_start(hosts, srv).await {
                return dnsmasq;
            }
        }
        panic!("dnsmasq did not start on a free port in 5 attempts");
    }

    async fn try_start(hosts: &str, srv: &[&str]) -> Option<Dnsmasq> {
        let dir = std::env::temp_dir().join(format!(
            "fulcrum-dnsmasq-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let hosts_path = dir.join("hosts");
        let own_name = format!("probe-{}.test.internal", fastrand::u64(..));
        std::fs::write(&hosts_path, format!("{hosts}\n127.0.0.9 {own_name}\n")).unwrap();
        // dnsmasq drops privileges: its files must be readable by anyone.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&hosts_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let port = {
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut cmd = Command::new(binary());
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--local=/test.internal/",
            "--local-ttl=1",
            "--pid-file=",
            "--log-facility=-",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--addn-hosts={}", hosts_path.display()));
        for s in srv {
            cmd.arg(format!("--srv-host={s}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        let mut dnsmasq = Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            hosts: hosts_path,
            dir,
        };
        // Wait until it answers for its own name.
        let probe = Discovery::new(&format!("dns://{}/{own_name}:1", dnsmasq.addr)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = dnsmasq.child.try_wait() {
                return None;
            }
            if let Ok(set) = probe.resolve().await {
                if addrs(&set) == ["127.0.0.9:1"] {
                    return Some(dnsmasq);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn rewrite_hosts_and_reload(&self, hosts: &str) {
        let mut f = std::fs::File::create(&self.hosts).unwrap();
        f.write_all(hosts.as_bytes()).unwrap();
        f.sync_all().unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

fn addrs(set: &EndpointSet) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|e| e.addr().to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
#[ignore = "needs dnsmasq (apt-get install dnsmasq-base); .ci/run runs it"]
async fn dnsmasq_a_records() {
    let dnsmasq = Dnsmasq::start(
        "127.0.0.2 api.test.internal\n127.0.0.3 api.test.internal\n::1 api.test.internal\n",
        &[],
    )
    .await;
    let set = Discovery::new(&format!("dns://{}/api.test.internal:8080", dnsmasq.addr))
        .unwrap()
        .resolve()
        .await
        .unwrap();
    assert_eq!(
        addrs(&set),
        ["127.0.0.2:8080", "127.0.0.3:8080", "[::1]:8080"]
    );
    let err = Discovery::new(&format!("dns://{}/nowhere.test.internal:80", dnsmasq.addr))
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            fulcrum_discovery::DiscoveryError::NoRecords { nxdomain: true, .. }
        ),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs dnsmasq (apt-get install dnsmasq-base); .ci/run runs it"]
async fn dnsmasq_srv_records_with_ports_weights_and_priorities() {
    let dnsmasq = Dnsmasq::start(
        "127.0.0.2 a.test.internal\n127.0.0.3 b.test.internal\n127.0.0.4 c.test.internal\n",
        &[
            "_http._tcp.test.internal,a.test.internal,8080,1,30",
            "_http._tcp.test.internal,b.test.internal,8081,1,10",
            "_http._tcp.test.internal,c.test.internal,9090,2,0",
        ],
    )
    .await;
    let set = Discovery::new(&format!(
        "dns+srv://{}/_http._tcp.test.internal",
        dnsmasq.addr
    ))
    .unwrap()
    .resolve()
    .await
    .unwrap();
    let mut got: Vec<(String, u32, u32)> = set
        .iter()
        .map(|e| (e.addr().to_string(), e.weight(), e.priority()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("127.0.0.2:8080".to_owned(), 30, 1),
            ("127.0.0.3:8081".to_owned(), 10, 1),
            ("127.0.0.4:9090".to_owned(), 0, 2),
        ]
    );
}

#[tokio::test]
#[ignore = "needs dnsmasq (apt-get install dnsmasq-base); .ci/run runs it"]
async fn dnsmasq_reload_on_sighup_is_picked_up() {
    let dnsmasq = Dnsmasq::start("127.0.0.2 api.test.internal\n", &[]).await;
    let (mut stream, _) = Discovery::new(&format!("dns://{}/api.test.internal:80", dnsmasq.addr))
        .unwrap()
        .with_config(DiscoveryConfig {
            min_ttl: Duration::from_millis(500),
            ..DiscoveryConfig::default()
        })
        .stream();
    assert_eq!(
        addrs(&stream.next().await.unwrap().unwrap()),
        ["127.0.0.2:80"]
    );
    dnsmasq.rewrite_hosts_and_reload("127.0.0.2 api.test.internal\n127.0.0.5 api.test.internal\n");
    let set = timeout(Duration::from_secs(3), async {
        loop {
            if let Ok(set) = stream.next().await.unwrap() {
                return set;
            }
        }
    })
    .await
    .expect("the reloaded hosts file is seen within TTL (1 s) + 1 s and a margin for the reload");
    assert_eq!(addrs(&set), ["127.0.0.2:80", "127.0.0.5:80"]);
}
