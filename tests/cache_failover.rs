//! The cache section of the haproxy.cfg the charm renders, run by a real haproxy in front of two
//! real memcached, in a network namespace of the test's own, with Keystone's memcache client
//! (python-memcached, flushing the server it reaches on reconnecting, as keystone.conf asks):
//! the first memcached's machine vanishes (the process killed, its address cut off) while eight
//! clients set and get. Not one operation fails. Regression test: when haproxy shut a server's
//! sessions down as its checks took the server out, it closed a reconnection still trying the
//! vanished machine, in the middle of the flush; the client then went on with no socket and
//! raised, which Keystone answers with 500 (8 failed operations in each of 4 runs). Needs root.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keystone_charm::cache::{PeerAddresses, SharedCache};
use keystone_charm::config::HaproxyTimeouts;
use keystone_charm::render::{Haproxy, Templates};
use keystone_charm::secret::Sensitive;
use support::TempDir;

/// The two units' memcached, on the namespace's loopback interface (documentation addresses:
/// a unit's cache address is never loopback).
const FIRST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const STANDBY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

/// Run by Keystone's Python (its memcache module): sets and gets through haproxy's cache port
/// from 8 threads for `argv[1]` seconds, each client made as oslo.cache's memcache_pool makes
/// it; prints `<operations> <failures>`, then each distinct failure.
const CLIENT: &str = r#"
import collections, sys, threading, time
import memcache
failures = collections.Counter()
operations = [0]
stop = time.time() + float(sys.argv[1])
def work(n):
    client = memcache.Client([sys.argv[2]], socket_timeout=3, dead_retry=300,
                             flush_on_reconnect=True)
    while time.time() < stop:
        try:
            client.set('key%d' % n, 'value')
            client.get('key%d' % n)
            operations[0] += 1
        except Exception as e:
            failures['%s: %s' % (type(e).__name__, e)] += 1
        # oslo.cache's pool forgets at once that its only server is dead.
        for server in client.servers:
            server.deaduntil = 0
        time.sleep(0.002)
threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(operations[0], sum(failures.values()))
for failure in failures:
    print(failure)
"#;

/// A network namespace of the test's own, removed with everything in it when dropped.
struct Namespace {
    name: String,
    children: Vec<Child>,
}

impl Namespace {
    fn new() -> Namespace {
        let name = format!("ks-cache-{}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Namespace {
            name,
            children: Vec::new(),
        };
        ns.run("ip", &["link", "set", "lo", "up"]);
        for address in [FIRST, STANDBY] {
            ns.run(
                "ip",
                &["addr", "add", &format!("{address}/32"), "dev", "lo"],
            );
        }
        ns
    }

    fn command<S: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[S]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name, program])
            .args(args);
        command
    }

    fn run<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(&self, program: &str, args: &[S]) {
        let status = self.command(program, args).status().unwrap();
        assert!(status.success(), "{program} {args:?} in {}", self.name);
    }

    fn spawn<S: AsRef<std::ffi::OsStr>>(&mut self, program: &str, args: &[S]) -> usize {
        let child = self
            .command(program, args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    fn kill(&mut self, child: usize) {
        let child = &mut self.children[child];
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}");
}

/// haproxy.cfg as the charm renders it for the second of two units whose memcached listen on
/// FIRST and STANDBY, without the admin sockets (paths on this host's filesystem).
fn cache_haproxy_cfg() -> String {
    let peer = PeerAddresses {
        unit: "keystone/0".to_owned(),
        cluster: Some(IpAddr::V4(FIRST)),
        roles: Vec::new(),
    };
    let haproxy = Haproxy {
        ipv6: false,
        apis: Vec::new(),
        servers: Vec::new(),
        networks: Vec::new(),
        check_path: "/v3".to_owned(),
        tls: None,
        timeouts: HaproxyTimeouts {
            server: 90_000,
            client: 90_000,
            queue: 9_000,
            connect: 9_000,
            check: 9_000,
        },
        stats_port: 8888,
        stats_password: Sensitive::new("secret".to_owned()),
        cache: Some(SharedCache::of(
            "keystone/1",
            Some(IpAddr::V4(STANDBY)),
            &[peer],
        )),
    };
    let cfg = Templates::bundled().haproxy(&haproxy).unwrap();
    assert!(cfg.contains("listen keystone-cache"), "{cfg}");
    cfg.lines()
        .filter(|line| !line.trim_start().starts_with("stats socket"))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn cache_port(cfg: &str) -> String {
    let section = &cfg[cfg.find("listen keystone-cache").unwrap()..];
    let bind = section
        .lines()
        .find_map(|line| line.trim().strip_prefix("bind "))
        .unwrap();
    bind.to_owned()
}

#[test]
fn a_vanished_cache_machine_fails_no_operation_of_keystones_memcache_client() {
    let dir = TempDir::new("cache-failover");
    let cfg = cache_haproxy_cfg();
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let address = cache_port(&cfg);

    let mut ns = Namespace::new();
    let memcached = |address: Ipv4Addr| {
        let address = address.to_string();
        ["-u", "nobody", "-U", "0", "-p", "11211", "-l"]
            .map(str::to_owned)
            .into_iter()
            .chain([address])
            .collect::<Vec<String>>()
    };
    let first = ns.spawn("memcached", &memcached(FIRST));
    ns.spawn("memcached", &memcached(STANDBY));
    ns.spawn("haproxy", &["-db", "-f", path_str(&cfg_path)]);
    // haproxy's checks find both memcached up (two checks 0.3 s apart).
    std::thread::sleep(Duration::from_millis(1500));

    let client = ns
        .command("/usr/bin/python3", &["-c", CLIENT, "6", &address])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // The first unit's machine vanishes: its memcached dies, its address answers nothing.
    ns.kill(first);
    ns.run(
        "nft",
        &[&format!(
            "add table inet vanished; \
             add chain inet vanished out {{ type filter hook output priority 0; }}; \
             add rule inet vanished out ip daddr {FIRST} drop"
        )],
    );
    let out = client.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    println!("{out}");
    let mut lines = out.lines();
    let figures: Vec<u64> = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .filter_map(|n| n.parse().ok())
        .collect();
    let [operations, failures] = figures[..] else {
        panic!("the client's figures: {out}");
    };
    println!(
        "through {address}, the first memcached's machine gone after 2 s: {operations} \
         operations in 6 s, {failures} failed"
    );
    assert_eq!(failures, 0, "{out}");
    assert!(operations > 1000, "{out}");
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
