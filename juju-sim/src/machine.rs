//! Units as machines: each unit of a charm gets a network namespace of its own (with an address
//! on a bridge the model creates) and a persistent mount namespace in which the paths a charm's
//! workload owns are the unit's own. Hooks enter both namespaces, so a daemon a hook starts
//! (Apache, memcached, haproxy) keeps the unit's view after the hook exits, and several units can run
//! the same service on the same port on one host, each at its own address.
//!
//! Needs root, iproute2 (`ip`), util-linux (`unshare`, `nsenter`) and coreutils.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Every name this module gives starts with this, followed by the owning process's pid.
const PREFIX: &str = "jsim";

/// What a machine starts with, beyond its own network: the charm's paths, given by whoever
/// deploys it (a charm's fixtures crate holds its layout), so this crate names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineLayout {
    /// Paths seeded with a copy of the host's (what the packages installed on "every
    /// machine"), in order: a later one is mounted over an earlier one that holds it.
    pub seeded: Vec<String>,
    /// Names left out of seeded copies: state a charm makes, so units start clean.
    pub not_seeded: Vec<String>,
    /// Paths that start as a skeleton: these sub-directories, with the host's owner and mode.
    pub skeletons: Vec<(String, Vec<String>)>,
    /// Paths the machine sees as the host's until it writes there, each over an overlay of its
    /// own (what the machine changes stays in it): where a machine upgrades its own packages
    /// (`/usr`, `/var/lib`, `/var/cache`). Mounted before the seeded paths and skeletons, which
    /// may lie inside them.
    pub overlaid: Vec<String>,
}

fn run(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

fn ip(args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(args))
}

/// One unit's machine.
struct Machine {
    netns: String,
    veth: String,
    address: Ipv4Addr,
    /// A process that holds the namespaces; hooks enter them through its pid.
    holder: Child,
}

/// The machines of one model: a bridge on the host and a namespace pair per unit.
pub struct Machines {
    /// Unique among this process's models.
    tag: String,
    bridge: String,
    /// The host's address on the bridge (10.<n>.0.1): the units' gateway, where host services
    /// such as MariaDB are reached.
    host: Ipv4Addr,
    root: PathBuf,
    next_host: u8,
    units: BTreeMap<String, Machine>,
    layout: MachineLayout,
    /// Each virtual IP and the unit whose machine holds it (see [`Machines::hold_vip`]).
    vips: BTreeMap<Ipv4Addr, String>,
}

static MODELS: AtomicU32 = AtomicU32::new(0);

impl Machines {
    /// A bridge for a new model; unit directories go under `root`.
    pub fn new(root: &Path, layout: MachineLayout) -> Result<Machines> {
        sweep_stale();
        let pid = std::process::id();
        let tag = format!("{pid}m{}", MODELS.fetch_add(1, Ordering::Relaxed));
        let bridge = format!("{PREFIX}b{tag}");
        if bridge.len() > 15 {
            bail!("interface name {bridge} is too long");
        }
        // Pick a free 10.<n>.0.0/24 under a lock, so concurrent models do not collide.
        let _lock = HostLock::take()?;
        let routes = String::from_utf8_lossy(&ip(&["-4", "route", "show"])?.stdout).into_owned();
        let n = (100u8..=250)
            .find(|n| !routes.contains(&format!("10.{n}.0.")))
            .context("no free 10.<n>.0.0/24 subnet for the model's bridge")?;
        let host = Ipv4Addr::new(10, n, 0, 1);
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{host}/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        Ok(Machines {
            tag,
            bridge,
            host,
            root: root.to_path_buf(),
            next_host: 10,
            units: BTreeMap::new(),
            layout,
            vips: BTreeMap::new(),
        })
    }

    pub fn host_address(&self) -> Ipv4Addr {
        self.host
    }

    pub fn address(&self, unit: &str) -> Option<Ipv4Addr> {
        self.units.get(unit).map(|m| m.address)
    }

    /// The host directory that backs `path` inside `unit`'s machine.
    pub fn unit_path(&self, unit: &str, path: &str) -> PathBuf {
        self.root
            .join(unit.replace('/', "-"))
            .join(path.trim_start_matches('/'))
    }

    /// Creates `unit`'s machine; its address.
    pub fn add(&mut self, unit: &str) -> Result<Ipv4Addr> {
        let index = self.next_host;
        self.next_host = self
            .next_host
            .checked_add(1)
            .context("too many machines in one model")?;
        let octets = self.host.octets();
        let address = Ipv4Addr::new(octets[0], octets[1], 0, index);
        let netns = format!("{PREFIX}-{}-{index}", self.tag);
        let veth = format!("{PREFIX}v{}x{index}", self.tag);
        if veth.len() > 15 {
            bail!("interface name {veth} is too long");
        }
        ip(&["netns", "add", &netns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])?;
        ip(&["link", "set", &veth, "master", &self.bridge, "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        ip(&[
            "-n",
            &netns,
            "route",
            "add",
            "default",
            "via",
            &self.host.to_string(),
        ])?;

        let mut overlays = String::new();
        for path in &self.layout.overlaid {
            let own = self.unit_path(unit, &format!("/overlays{path}"));
            let (upper, work) = (own.join("upper"), own.join("work"));
            for dir in [&upper, &work] {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            overlays.push_str(&format!(
                "mount -t overlay overlay -o 'lowerdir={path},upperdir={},workdir={}' '{path}'\n",
                upper.display(),
                work.display()
            ));
        }
        let mut binds = Vec::new();
        for path in &self.layout.seeded {
            // The mount point must exist on the host (a directory the charm makes itself).
            std::fs::create_dir_all(path).with_context(|| format!("cannot create {path}"))?;
            let own = self.unit_path(unit, path);
            seed(Path::new(path), &own, &self.layout.not_seeded)?;
            binds.push((own, path.clone()));
        }
        for (path, subdirs) in &self.layout.skeletons {
            let own = self.unit_path(unit, path);
            skeleton(Path::new(path), &own, subdirs)?;
            binds.push((own, path.clone()));
        }
        let ready = self.root.join(format!("{}.ready", unit.replace('/', "-")));
        let _ = std::fs::remove_file(&ready);
        let mut script = String::from("set -e\n");
        script.push_str(&overlays);
        for (own, path) in &binds {
            script.push_str(&format!("mount --bind '{}' '{path}'\n", own.display()));
        }
        script.push_str(&format!(
            "touch '{}'\nexec sleep infinity\n",
            ready.display()
        ));
        let mut holder = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns,
                "unshare",
                "--mount",
                "--propagation",
            ])
            .args(["private", "--", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the machine's namespace holder (ip netns exec, unshare)")?;
        let started = Instant::now();
        while !ready.exists() {
            if let Some(status) = holder.try_wait()? {
                let mut detail = String::new();
                if let Some(mut err) = holder.stderr.take() {
                    use std::io::Read as _;
                    let _ = err.read_to_string(&mut detail);
                }
                bail!(
                    "the machine of {unit} did not start ({status}): {}",
                    detail.trim()
                );
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = holder.kill();
                bail!("the machine of {unit} did not start within 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.units.insert(
            unit.to_owned(),
            Machine {
                netns,
                veth,
                address,
                holder,
            },
        );
        Ok(address)
    }

    /// `command` wrapped to run inside `unit`'s namespaces.
    pub fn command(&self, unit: &str, program: &Path) -> Option<Command> {
        self.command_in(unit, program, None)
    }

    /// [`Machines::command`], in `dir` when given: nsenter does not keep the caller's working
    /// directory when it enters the mount namespace, and Juju runs a hook in its charm
    /// directory.
    pub fn command_in(&self, unit: &str, program: &Path, dir: Option<&Path>) -> Option<Command> {
        let machine = self.units.get(unit)?;
        let mut command = Command::new("nsenter");
        command
            .arg("--target")
            .arg(machine.holder.id().to_string())
            .args(["--mount", "--net"]);
        if let Some(dir) = dir {
            command.arg(format!("--wd={}", dir.display()));
        }
        command.arg("--").arg(program);
        Some(command)
    }

    /// The unit whose machine holds `vip`.
    pub fn vip_holder(&self, vip: Ipv4Addr) -> Option<&str> {
        self.vips.get(&vip).map(String::as_str)
    }

    /// Puts `vip` on `unit`'s machine, as Pacemaker's IPaddr2 does, taking it from the machine
    /// that held it: the address on the machine's loopback, and the host's route to it through
    /// the machine (the host is where clients of the model run).
    pub fn hold_vip(&mut self, vip: Ipv4Addr, unit: &str) -> Result<()> {
        let address = self
            .address(unit)
            .with_context(|| format!("{unit} has no machine"))?;
        if let Some(old) = self.vips.get(&vip).and_then(|u| self.units.get(u)) {
            // Its machine may be down: nothing to take back then.
            let _ = ip(&[
                "-n",
                &old.netns,
                "addr",
                "del",
                &format!("{vip}/32"),
                "dev",
                "lo",
            ]);
        }
        let machine = &self.units[unit];
        ip(&[
            "-n",
            &machine.netns,
            "addr",
            "replace",
            &format!("{vip}/32"),
            "dev",
            "lo",
        ])?;
        ip(&[
            "route",
            "replace",
            &format!("{vip}/32"),
            "via",
            &address.to_string(),
            "dev",
            &self.bridge,
        ])?;
        self.vips.insert(vip, unit.to_owned());
        Ok(())
    }

    /// Stops `unit`'s machine as a power failure would: every process on it dies and its
    /// network goes down; its directories stay.
    pub fn stop(&mut self, unit: &str) {
        if let Some(machine) = self.units.get(unit) {
            kill_all(&machine.netns, Some(machine.holder.id()));
            let _ = ip(&["-n", &machine.netns, "link", "set", "eth0", "down"]);
        }
    }

    /// Stops everything running on `unit`'s machine and removes it.
    pub fn remove(&mut self, unit: &str) {
        if let Some(mut machine) = self.units.remove(unit) {
            destroy(&machine.netns, &machine.veth);
            let _ = machine.holder.kill();
            let _ = machine.holder.wait();
            forget_database_connections(machine.address);
        }
        let _ = std::fs::remove_dir_all(self.root.join(unit.replace('/', "-")));
    }
}

impl Drop for Machines {
    fn drop(&mut self) {
        let units: Vec<String> = self.units.keys().cloned().collect();
        for unit in units {
            self.remove(&unit);
        }
        for vip in self.vips.keys() {
            let _ = ip(&["route", "del", &format!("{vip}/32"), "dev", &self.bridge]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Closes the MariaDB connections of a machine that is gone. Its network vanished with it, so
/// the server never hears them close and would keep them until wait_timeout (hours), until
/// max_connections refuses every new client; a real server notices a dead host by TCP
/// keepalive. No MariaDB on this host: nothing to do.
fn forget_database_connections(address: Ipv4Addr) {
    let query =
        format!("SELECT id FROM information_schema.processlist WHERE host LIKE '{address}:%'");
    let Ok(out) = Command::new("mysql")
        .args(["-uroot", "-N", "-e", &query])
        .output()
    else {
        return;
    };
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if id.chars().all(|c| c.is_ascii_digit()) {
            let _ = Command::new("mysql")
                .args(["-uroot", "-e", &format!("KILL {id}")])
                .output();
        }
    }
}

/// Kills every process in `netns` but `spare` (SIGKILL: nothing in a machine that is going down
/// gets a clean exit).
fn kill_all(netns: &str, spare: Option<u32>) {
    for _ in 0..50 {
        let pids = ip(&["netns", "pids", netns])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let pids: Vec<u32> = pids
            .lines()
            .filter_map(|p| p.trim().parse().ok())
            .filter(|p| Some(*p) != spare)
            .collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills every process in `netns`, then deletes it and its veth.
fn destroy(netns: &str, veth: &str) {
    kill_all(netns, None);
    let _ = ip(&["link", "del", veth]);
    let _ = ip(&["netns", "del", netns]);
}

/// Removes bridges and namespaces left by simulator processes that no longer exist.
fn sweep_stale() {
    let alive = |pid: &str| Path::new("/proc").join(pid).exists();
    let owner = |name: &str, marker: &str| -> Option<String> {
        let rest = name.strip_prefix(PREFIX)?.strip_prefix(marker)?;
        Some(rest.chars().take_while(char::is_ascii_digit).collect())
    };
    if let Ok(out) = ip(&["netns", "list"]) {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if let Some(pid) = owner(name, "-")
                && !pid.is_empty()
                && !alive(&pid)
            {
                destroy(name, "");
            }
        }
    }
    if let Ok(out) = ip(&["-o", "link", "show"]) {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(name) = line.split(':').nth(1).map(|n| n.trim()) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            for marker in ["b", "v"] {
                if let Some(pid) = owner(name, marker)
                    && !pid.is_empty()
                    && !alive(&pid)
                {
                    let _ = ip(&["link", "del", name]);
                }
            }
        }
    }
}

/// A copy of the host's `from` (when it exists) at `to`, without key repositories.
fn seed(from: &Path, to: &Path, not_seeded: &[String]) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    if from.is_dir() {
        let mut source = from.as_os_str().to_owned();
        source.push("/.");
        run(Command::new("cp").arg("-a").arg(&source).arg(to))?;
        for name in not_seeded {
            let _ = std::fs::remove_dir_all(to.join(name));
            let _ = std::fs::remove_file(to.join(name));
        }
        run(Command::new("chown").arg("--reference").arg(from).arg(to))?;
        run(Command::new("chmod").arg("--reference").arg(from).arg(to))?;
    }
    Ok(())
}

/// `to` with `subdirs` made like the host's (owner and mode), empty.
fn skeleton(from: &Path, to: &Path, subdirs: &[String]) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    run(Command::new("chmod").arg("--reference").arg(from).arg(to))?;
    for sub in subdirs {
        let own = to.join(sub);
        std::fs::create_dir_all(&own)
            .with_context(|| format!("cannot create {}", own.display()))?;
        let host = from.join(sub);
        if host.is_dir() {
            run(Command::new("chown")
                .arg("--reference")
                .arg(&host)
                .arg(&own))?;
            run(Command::new("chmod")
                .arg("--reference")
                .arg(&host)
                .arg(&own))?;
        }
    }
    Ok(())
}

/// A lock shared by every simulator process on the host (subnet choice).
struct HostLock(std::fs::File);

impl HostLock {
    fn take() -> Result<HostLock> {
        let path = std::env::temp_dir().join("juju-sim-machines.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(HostLock(file))
    }
}

impl Drop for HostLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
