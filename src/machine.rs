//! The composition root: everything a hook reaches outside Juju, in one object with a twin for
//! tests (`Machine::twin`, in the test kit: unit tests and the `testkit` feature). Files, the key
//! repositories, programs (keystone-manage, the package tools), services, Keystone's API, the
//! clock, and what the machine is (its hostname, CPU count and network interfaces).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context as _, Result};

use crate::host::fs::{Files, HostFiles};
use crate::host::keys::{DiskKeys, KeyStore};
use crate::host::net::{HostInterfaces, Interfaces};
use crate::host::process::{Runner, SystemRunner};
use crate::host::services::{HostServices, Services};
use crate::keystone_api::KeystoneConnector;
use crate::keystone_api::http::HttpConnector;
use crate::paths;
use crate::render::Templates;

pub struct Machine {
    pub keys: Rc<dyn KeyStore>,
    /// Unix seconds, read once per hook.
    pub now: u64,
    /// Where Juju unpacked the charm (templates/ is there).
    pub charm_dir: PathBuf,
    pub files: Rc<dyn Files>,
    pub services: Rc<dyn Services>,
    /// keystone-manage and the package tools.
    pub runner: &'static dyn Runner,
    pub keystone: Rc<dyn KeystoneConnector>,
    /// For the mod_wsgi worker counts.
    pub cpus: u32,
    /// The vhost's ServerName unless os-public-hostname is set.
    pub hostname: String,
    /// The network interfaces and their addresses (where a virtual IP belongs), read when asked.
    pub interfaces: Rc<dyn Interfaces>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("now", &self.now)
            .field("charm_dir", &self.charm_dir)
            .field("cpus", &self.cpus)
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

static SYSTEM_RUNNER: SystemRunner = SystemRunner;

impl Machine {
    /// This machine, as Juju runs the charm on it.
    pub fn system(charm_dir: &Path) -> Machine {
        let files = Rc::new(HostFiles);
        let hostname = files
            .read(Path::new(paths::HOSTNAME))
            .ok()
            .flatten()
            .map(|h| String::from_utf8_lossy(&h).trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        Machine {
            keys: Rc::new(DiskKeys::system()),
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            charm_dir: charm_dir.to_path_buf(),
            files,
            services: Rc::new(HostServices::new(&SYSTEM_RUNNER)),
            runner: &SYSTEM_RUNNER,
            keystone: Rc::new(HttpConnector::default()),
            cpus: std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            hostname,
            interfaces: Rc::new(HostInterfaces),
        }
    }

    /// The charm's templates, read from the charm directory.
    pub fn templates(&self) -> Result<Templates> {
        let dir = self.charm_dir.join(paths::TEMPLATES_DIR);
        Templates::parse(|name| {
            let path = dir.join(name);
            match self.files.read(&path) {
                Ok(Some(bytes)) => String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned()),
                Ok(None) => Err(format!("{} does not exist", path.display())),
                Err(err) => Err(err.to_string()),
            }
        })
        .context("cannot load the charm's templates")
    }

    /// Whether the unit waits for its operating system's upgrade (pre-series-upgrade ran).
    pub fn is_upgrading_series(&self) -> Result<bool> {
        Ok(self
            .files
            .read(Path::new(paths::SERIES_UPGRADE_MARKER))
            .context("cannot read the series upgrade marker")?
            .is_some())
    }

    /// Whether the operator paused this unit.
    pub fn is_paused(&self) -> Result<bool> {
        Ok(self
            .files
            .read(Path::new(paths::PAUSED_MARKER))
            .context("cannot read the pause marker")?
            .is_some())
    }
}

/// The twins behind [`Machine::twin`], for tests to inspect and steer.
#[cfg(any(test, feature = "testkit"))]
pub struct Twins {
    pub files: Rc<crate::host::fs::MemoryFiles>,
    pub keys: Rc<crate::host::keys::MemoryKeys>,
    pub services: Rc<crate::host::services::RecordingServices>,
    pub runner: &'static crate::host::process::ScriptedRunner,
    pub keystone: Rc<std::sync::Mutex<crate::keystone_api::memory::MemoryKeystone>>,
    /// `lo` and `eth0` (10.0.0.10/24) until a test sets others.
    pub interfaces: Rc<crate::host::net::MemoryInterfaces>,
}

#[cfg(any(test, feature = "testkit"))]
impl Machine {
    /// The test twin: files (holding this crate's templates), keys, services, programs,
    /// Keystone and network interfaces in memory.
    pub fn twin() -> (Machine, Twins) {
        Machine::twin_sharing(Rc::new(std::sync::Mutex::new(
            crate::keystone_api::memory::MemoryKeystone::bootstrapped(),
        )))
    }

    /// A twin whose Keystone is `keystone` (units of one application share one database, so
    /// their Keystones hold the same objects).
    pub fn twin_sharing(
        keystone: Rc<std::sync::Mutex<crate::keystone_api::memory::MemoryKeystone>>,
    ) -> (Machine, Twins) {
        use crate::host::fs::Owner;
        let twins = Twins {
            files: Rc::new(crate::host::fs::MemoryFiles::new()),
            keys: Rc::new(crate::host::keys::MemoryKeys::new()),
            services: Rc::new(crate::host::services::RecordingServices::new()),
            runner: Box::leak(Box::new(crate::host::process::ScriptedRunner::new())),
            keystone,
            interfaces: Rc::new(crate::host::net::MemoryInterfaces::default()),
        };
        let charm_dir = PathBuf::from("/var/lib/juju/agents/unit-keystone-0/charm");
        for (name, text) in crate::render::BUNDLED {
            let path = charm_dir.join(paths::TEMPLATES_DIR).join(name);
            let written = twins
                .files
                .write(&path, text.as_bytes(), &Owner::root(), 0o644);
            assert!(written.is_ok(), "{written:?}");
        }
        // An Ubuntu machine of the first series the charm runs on.
        let os_release = twins.files.write(
            Path::new(paths::OS_RELEASE),
            b"NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nVERSION_CODENAME=jammy\n",
            &Owner::root(),
            0o644,
        );
        assert!(os_release.is_ok(), "{os_release:?}");
        // The charm's binary, as Juju unpacks it (the nrpe relation copies it).
        let binary = twins.files.write(
            &charm_dir.join("bin/keystone-charm"),
            b"the charm's binary",
            &Owner::root(),
            0o755,
        );
        assert!(binary.is_ok(), "{binary:?}");
        twins.files.forget_writes();
        let machine = Machine {
            keys: twins.keys.clone(),
            now: 1_800_000_000,
            charm_dir,
            files: twins.files.clone(),
            services: twins.services.clone(),
            runner: twins.runner,
            keystone: twins.keystone.clone(),
            cpus: 2,
            hostname: "juju-machine-0".to_owned(),
            interfaces: twins.interfaces.clone(),
        };
        (machine, twins)
    }
}
