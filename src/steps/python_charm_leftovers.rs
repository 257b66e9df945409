//! What the Python keystone charm leaves on a unit it hands over (`juju refresh --switch`):
//! upgrade-charm removes what this charm does not use and would otherwise go on running or
//! misleading. This charm adopts the rest: its fernet and credential keys, the admin and
//! service passwords (the cluster relation), and the files it renders again in the same places
//! (`/etc/memcached.conf`, where the Python charm's memcached listened on ::1 while
//! keystone.conf named 127.0.0.1; `/etc/haproxy/haproxy.cfg`; keystone.conf). Its vhost, a
//! file of its own in sites-enabled, gives way to this charm's link when the apache step
//! enables the site (`host::services`).
//!
//! Removed, when there:
//! - its cron jobs (`keystone-fernet-rotate-sync` called a script that no longer exists; this
//!   charm rotates in its hooks);
//! - its TLS frontend site (`openstack_https_frontend`), which would hold Keystone's ports;
//! - its `policy.json` (this charm's policy file is `policy.yaml`);
//! - its Nagios checks, which this charm's `check_keystone_*` replace;
//! - and the copies of the certificate, key and CA that this charm's earlier versions gave
//!   Apache, before haproxy served TLS (`steps::haproxy`), so no stale key stays behind.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::event::Event;
use crate::facts::FactName;
use crate::peer_keys;
use crate::render::fragments::Fragments;
use crate::step::{Condition, Hook, Step};

/// The python-charm-leftovers step: [`run`].
pub const STEP: Step = Step::new("python-charm-leftovers", run).writes(&[FactName::Fragments]);

/// The Python charm's TLS frontend site.
const HTTPS_FRONTEND: &str = "openstack_https_frontend";

/// The files the Python charm (or this charm, before haproxy served TLS) writes that this charm
/// does not.
pub const LEFTOVERS: [&str; 13] = [
    "/etc/cron.d/keystone-fernet-rotate-sync",
    "/etc/cron.d/keystone-token-flush",
    "/etc/keystone/policy.json",
    "/etc/apache2/sites-available/openstack_https_frontend.conf",
    "/etc/apache2/sites-available/openstack_https_frontend",
    "/etc/nagios/nrpe.d/check_apache2.cfg",
    "/etc/nagios/nrpe.d/check_haproxy.cfg",
    "/etc/nagios/nrpe.d/check_memcached.cfg",
    "/etc/nagios/nrpe.d/check_haproxy_servers.cfg",
    "/etc/nagios/nrpe.d/check_haproxy_queue.cfg",
    "/etc/apache2/ssl/keystone/cert.pem",
    "/etc/apache2/ssl/keystone/key.pem",
    "/etc/apache2/ssl/keystone/ca.pem",
];

/// Step: on upgrade-charm, the Python charm's TLS frontend is disabled and its leftovers go;
/// Apache restarts when its site went.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if *hook.event != Event::UpgradeCharm {
        return Ok(Vec::new());
    }
    let machine = hook.machine;
    let frontend = machine
        .services
        .disable_site(HTTPS_FRONTEND)
        .with_context(|| format!("cannot disable the Python charm's {HTTPS_FRONTEND} site"))?;
    let mut removed = Vec::new();
    for path in LEFTOVERS {
        if machine
            .files
            .remove(Path::new(path))
            .with_context(|| format!("cannot remove {path}"))?
        {
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        tracing::info!(
            "removed what an earlier charm left and this charm does not use: {}",
            removed.join(", ")
        );
    }
    adopt_default_domain_id(hook)?;
    if frontend {
        hook.facts.add_fragments(Fragments {
            restart: vec![format!(
                "the Python charm's {HTTPS_FRONTEND} site was disabled"
            )],
            ..Fragments::default()
        });
    }
    Ok(Vec::new())
}

/// The Python charm's leader setting: the default domain's id, which keystone.conf must keep
/// naming (a database older than `keystone-manage bootstrap` gave it an id other than
/// `default`). The leader keeps it in the cluster relation for every unit.
const PYTHON_CHARM_DEFAULT_DOMAIN_ID: &str = "default_domain_id";

fn adopt_default_domain_id(hook: &Hook<'_>) -> Result<()> {
    let Some(peers) = hook.peers.as_ref().filter(|_| hook.leader) else {
        return Ok(());
    };
    if peers.get(peer_keys::DEFAULT_DOMAIN_ID).is_some() {
        return Ok(());
    }
    let settings = hook
        .juju
        .leader_get()
        .context("cannot read the leader settings")?;
    if let Some(id) = settings
        .get(PYTHON_CHARM_DEFAULT_DOMAIN_ID)
        .map(|id| id.trim())
        .filter(|id| !id.is_empty() && *id != "default")
    {
        tracing::info!("adopted the Python charm's default domain id {id}");
        peers.set_shared(&[(peer_keys::DEFAULT_DOMAIN_ID, Some(id.to_owned()))])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fs::{Files as _, Owner};
    use crate::testing::Sim;

    #[test]
    fn upgrade_charm_removes_the_python_charms_leftovers_and_nothing_else() {
        let mut sim = Sim::ready(1);
        let unit = "keystone/0";
        let files = sim.machine(unit).1.files.clone();
        for path in LEFTOVERS {
            files
                .write(Path::new(path), b"left\n", &Owner::root(), 0o644)
                .unwrap();
        }
        // Another charm's check, in the same directory: stays.
        let ours = "/etc/nagios/nrpe.d/check_ntp.cfg";
        files
            .write(Path::new(ours), b"ours\n", &Owner::root(), 0o644)
            .unwrap();
        // Not in other hooks.
        assert!(sim.run(unit, "config-changed"));
        assert!(
            LEFTOVERS
                .iter()
                .all(|p| files.read(Path::new(p)).unwrap().is_some())
        );
        assert!(sim.run(unit, "upgrade-charm"));
        for path in LEFTOVERS {
            assert_eq!(files.read(Path::new(path)).unwrap(), None, "{path}");
        }
        assert!(files.read(Path::new(ours)).unwrap().is_some());
        assert_eq!(sim.status(unit), "active: Unit is ready");
    }

    #[test]
    fn the_python_charms_default_domain_id_stays_in_every_units_keystone_conf() {
        let mut sim = Sim::ready(2);
        let domain = |sim: &Sim, unit: &str| {
            sim.file(unit, crate::paths::KEYSTONE_CONF)
                .lines()
                .find(|line| line.starts_with("default_domain_id"))
                .map(str::to_owned)
        };
        assert_eq!(domain(&sim, "keystone/1"), None, "Keystone's own default");
        // A database older than bootstrap: the Python charm found its default domain by name.
        let id = "4f0e9f8d1c2b4a3e8d7c6b5a49382716";
        sim.model
            .set_leader_setting("keystone", PYTHON_CHARM_DEFAULT_DOMAIN_ID, id)
            .unwrap();
        sim.model.upgrade_charm("keystone").unwrap();
        sim.settle();
        for unit in ["keystone/0", "keystone/1"] {
            assert_eq!(
                domain(&sim, unit),
                Some(format!("default_domain_id = {id}")),
                "{unit}"
            );
            assert_eq!(sim.status(unit), "active: Unit is ready");
        }
    }
}
