//! The `nrpe-external-master` relation (container-scoped, with the nrpe subordinate): the unit's
//! Nagios checks ([`crate::nagios::checks`]) go in /etc/nagios/nrpe.d as `check_<name>.cfg`,
//! and the relation says which ones the Nagios server should run (`monitors`, as the Python
//! charm sends it, with `primary`). Two checks are the charm's own binary, copied to
//! /usr/local/lib/nagios/plugins: haproxy's backends, and this unit's fernet keys against the
//! leader's (a check the Python charm never had).
//!
//! Asked only in the relation's own hooks and in config-changed, install and upgrade-charm (the
//! checks depend on the configuration and the binary), so other hooks cost nothing for it. When
//! the relation goes, the check files go too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::event::{Endpoint, Event, RelationHook};
use crate::host::fs::{DesiredFile, Owner, write_files};
use crate::juju::DatabagChanges;
use crate::nagios::{self, Check};
use crate::paths;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::NrpeExternalMaster;

/// Whether this hook looks at the relation.
fn asks_juju(event: &Event) -> bool {
    matches!(
        event,
        Event::ConfigChanged | Event::Install | Event::UpgradeCharm
    ) || matches!(event, Event::Relation { endpoint, .. } if *endpoint == ENDPOINT)
}

/// `check_<shortname>.cfg`.
fn check_file(check: &Check) -> String {
    format!("{}/check_{}.cfg", paths::NRPE_CHECKS_DIR, check.shortname)
}

/// The `monitors` value: which NRPE commands the Nagios server runs, as YAML.
pub fn monitors(checks: &[Check]) -> Result<String> {
    let nrpe: BTreeMap<&str, BTreeMap<&str, String>> = checks
        .iter()
        .map(|c| {
            (
                c.shortname.as_str(),
                BTreeMap::from([("command", format!("check_{}", c.shortname))]),
            )
        })
        .collect();
    let document = BTreeMap::from([(
        "monitors",
        BTreeMap::from([("remote", BTreeMap::from([("nrpe", nrpe)]))]),
    )]);
    serde_norway::to_string(&document).context("cannot write the monitors YAML")
}

/// The nrpe-external-master step: [`run`].
pub const STEP: Step = Step::new("nrpe-external-master", run);

/// Step: see the module documentation.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if !asks_juju(hook.event) {
        return Ok(Vec::new());
    }
    let relations = hook
        .juju
        .relation_ids(ENDPOINT.name())
        .context("cannot list the nrpe-external-master relations")?;
    let broken = matches!(
        hook.event,
        Event::Relation {
            hook: RelationHook::Broken,
            ..
        }
    );
    let every_config = || {
        let mut all = hook.config.clone();
        all.enable_cache = true;
        nagios::checks(&all, paths::NAGIOS_PLUGIN)
    };
    let files = hook.machine.files.as_ref();
    if relations.is_empty() || (broken && relations.len() == 1) {
        for check in every_config() {
            files
                .remove(Path::new(&check_file(&check)))
                .context("cannot remove a Nagios check")?;
        }
        return Ok(Vec::new());
    }
    let checks = nagios::checks(&hook.config, paths::NAGIOS_PLUGIN);
    let binary = files
        .read(&hook.machine.charm_dir.join("bin/keystone-charm"))
        .context("cannot read the charm's binary")?
        .context("the charm's binary is not in bin/ of the charm directory")?;
    let mut desired = vec![DesiredFile::new(
        paths::NAGIOS_PLUGIN,
        binary,
        Owner::root(),
        0o755,
    )];
    for check in &checks {
        let text = format!(
            "# Written by the keystone charm: {}\ncommand[check_{}]={}\n",
            check.description, check.shortname, check.command
        );
        desired.push(DesiredFile::new(
            &check_file(check),
            text,
            Owner::root(),
            0o644,
        ));
    }
    let directories = [
        PathBuf::from(paths::NRPE_CHECKS_DIR),
        PathBuf::from("/usr/local/lib/nagios/plugins"),
    ];
    write_files(files, &directories, &desired)?;
    // A check no longer wanted (memcached once the cache is off) goes.
    for check in every_config() {
        if !checks.iter().any(|c| c.shortname == check.shortname) {
            files
                .remove(Path::new(&check_file(&check)))
                .context("cannot remove a Nagios check")?;
        }
    }
    let changes = DatabagChanges::from([
        ("monitors".to_owned(), Some(monitors(&checks)?)),
        ("primary".to_owned(), Some("True".to_owned())),
    ]);
    for relation in &relations {
        hook.juju
            .relation_set(relation, false, &changes)
            .with_context(|| format!("cannot tell {relation} which checks to run"))?;
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fs::Files as _;
    use crate::testing::Sim;
    use serde_json::json;

    #[test]
    fn the_checks_are_written_announced_and_removed_with_the_relation() {
        let mut sim = Sim::ready(1);
        // The nrpe subordinate: relates and records nothing.
        let nrpe = juju_sim::scripted::Inert(
            "name: nrpe\nsubordinate: true\nrequires:\n  nrpe-external-master:\n    interface: nrpe-external-master\n    scope: container\n".into(),
        );
        sim.model
            .deploy_scripted("nrpe", Box::new(nrpe), 1)
            .unwrap();
        let id = sim
            .model
            .relate("keystone:nrpe-external-master", "nrpe:nrpe-external-master")
            .unwrap();
        sim.settle();
        let machine = sim.machine("keystone/0");
        let read = |path: &str| {
            machine
                .1
                .files
                .read(Path::new(path))
                .unwrap()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let fernet = read("/etc/nagios/nrpe.d/check_keystone_fernet_keys.cfg").unwrap();
        assert!(
            fernet.contains(
                "command[check_keystone_fernet_keys]=/usr/local/lib/nagios/plugins/keystone-charm check fernet"
            ),
            "{fernet}"
        );
        assert!(read(paths::NAGIOS_PLUGIN).is_some(), "the binary is copied");
        let bag = sim.model.relation_data(id, "keystone/0");
        assert_eq!(bag.get("primary").map(String::as_str), Some("True"));
        let monitors: serde_json::Value = serde_norway::from_str(&bag["monitors"]).unwrap();
        assert_eq!(
            monitors["monitors"]["remote"]["nrpe"]["keystone_api"]["command"],
            "check_keystone_api"
        );
        // The fernet summary the check reads says this unit holds the leader's keys.
        let kept: nagios::FernetKept =
            serde_json::from_str(&read(paths::FERNET_PUBLISHED).unwrap()).unwrap();
        assert_eq!(
            nagios::fernet_verdict(Some(&kept), kept.last_rotation).level,
            nagios::Level::Ok
        );

        // Other hooks do not look at it: update-status makes the calls it makes without nrpe.
        assert!(sim.run("keystone/0", "update-status"));
        assert_eq!(
            sim.tools_called("keystone/0"),
            crate::testing::STEADY_UPDATE_STATUS
        );

        // The cache goes off: its check goes; the relation goes: every check goes.
        sim.model
            .set_config(
                "keystone",
                json!({"enable-cache": false}).as_object().cloned().unwrap(),
            )
            .unwrap();
        sim.settle();
        assert!(read("/etc/nagios/nrpe.d/check_keystone_memcached.cfg").is_none());
        assert!(read("/etc/nagios/nrpe.d/check_keystone_api.cfg").is_some());
        sim.model.unrelate(id).unwrap();
        sim.settle();
        assert!(read("/etc/nagios/nrpe.d/check_keystone_api.cfg").is_none());
    }
}
