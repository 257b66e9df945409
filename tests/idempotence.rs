//! Every hook run twice in a row, on every unit of a deployment with every kind of relation:
//! the second run leaves the same files, key sets, relation data and peer data, writes nothing
//! to Keystone, and restarts or reloads no service.
//!
//! In memory, under the test kit's simulator (`keystone_charm::testing`): no root, no services.

use std::collections::BTreeMap;

use juju_sim::scripted::Inert;
use juju_sim::state::HookEvent;
use juju_sim_fixtures::scripted::{
    CertificateAuthority, CertificateProtocol, HaCluster, IdentityConsumer, IdentityInterface,
};
use serde_json::json;

use keystone_charm::host::fs::Entry;
use keystone_charm::host::keys::KeyStore as _;
use keystone_charm::host::net::Interface;
use keystone_charm::host::services::ServiceAction;
use keystone_charm::keystone_api::KeystoneApi as _;
use keystone_charm::testing::Sim;

/// What a hook can change, by what it is (`keystone/0 file /etc/...`, `relation 3 vault/0`,
/// `keystone writes`, ...): each unit's files and keys, every relation bag, Keystone's writes and
/// the services' starts, stops, restarts and reloads.
type Observed = BTreeMap<String, String>;

/// The service actions that disturb a running service (status queries, config tests and
/// a2ensite/a2enmod of what is enabled already do not).
fn disruptive(action: &ServiceAction) -> bool {
    matches!(
        action,
        ServiceAction::Start(_)
            | ServiceAction::Stop(_)
            | ServiceAction::Restart(_)
            | ServiceAction::Reload(_)
    )
}

fn observe(sim: &Sim) -> Observed {
    let mut observed = Observed::new();
    for unit in sim.model.units("keystone") {
        let machine = sim.machine(&unit);
        for (path, entry) in machine.1.files.snapshot() {
            let entry = match entry {
                Entry::File {
                    content,
                    owner,
                    mode,
                } => format!("{owner:?} {mode:o}\n{}", String::from_utf8_lossy(&content)),
                dir => format!("{dir:?}"),
            };
            observed.insert(format!("{unit} file {}", path.display()), entry);
        }
        let keys = machine.1.keys.read().ok().flatten();
        observed.insert(format!("{unit} keys"), format!("{keys:?}"));
        let actions = machine.1.services.actions();
        let disruptive: Vec<_> = actions.iter().filter(|a| disruptive(a)).collect();
        let last = disruptive
            .last()
            .map(|a| format!("{a:?}"))
            .unwrap_or_default();
        observed.insert(
            format!("{unit} service actions"),
            format!("{} (last {last})", disruptive.len()),
        );
    }
    let world = sim.model.world();
    for (id, relation) in &world.relations {
        for (owner, bag) in relation.unit_data.iter().chain(&relation.app_data) {
            observed.insert(format!("relation {id} {owner}"), format!("{bag:?}"));
        }
    }
    drop(world);
    let writes = sim.keystone.lock().map(|k| k.request_count().writes);
    observed.insert("keystone writes".into(), format!("{writes:?}"));
    observed
}

/// What differs between two observations.
fn differences(first: &Observed, second: &Observed) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = first.keys().chain(second.keys()).collect();
    keys.into_iter()
        .filter(|key| first.get(*key) != second.get(*key))
        .map(|key| {
            format!(
                "{key}:\n  before: {:?}\n  after:  {:?}",
                first.get(key),
                second.get(key)
            )
        })
        .collect()
}

/// Two keystone units behind a VIP with a database, hacluster, a certificate authority, nrpe and
/// a consumer of each identity interface; settled.
fn deployment() -> Sim {
    let mut sim = Sim::with_database(2, json!({"vip": "192.168.1.100"}));
    for (unit, address) in [
        ("keystone/0", "192.168.1.10/24"),
        ("keystone/1", "192.168.1.11/24"),
    ] {
        sim.machine(unit).1.interfaces.set(vec![
            Interface::parse("lo", &["127.0.0.1/8"]),
            Interface::parse("eth0", &[address]),
        ]);
    }
    let ca = CertificateAuthority::new("vault", CertificateProtocol::Classic).expect("a CA");
    let nrpe = Inert(
        "name: nrpe\nsubordinate: true\nrequires:\n  nrpe-external-master:\n    interface: nrpe-external-master\n    scope: container\n".into(),
    );
    let deploy: Vec<(&str, Box<dyn juju_sim::scripted::ScriptedCharm>)> = vec![
        ("hacluster", Box::new(HaCluster::default())),
        ("vault", Box::new(ca)),
        ("nrpe", Box::new(nrpe)),
        (
            "nova",
            Box::new(IdentityConsumer::new("nova", IdentityInterface::Service)),
        ),
        (
            "octavia",
            Box::new(IdentityConsumer::new(
                "octavia",
                IdentityInterface::Credentials,
            )),
        ),
        (
            "manila",
            Box::new(IdentityConsumer::new("manila", IdentityInterface::Admin)),
        ),
    ];
    for (app, charm) in deploy {
        // A subordinate has a unit beside each keystone unit.
        let units = if matches!(app, "hacluster" | "nrpe") {
            2
        } else {
            1
        };
        sim.model
            .deploy_scripted(app, charm, units)
            .expect("deploy");
    }
    for (ours, theirs) in [
        ("keystone:ha", "hacluster:ha"),
        ("keystone:certificates", "vault:certificates"),
        ("keystone:nrpe-external-master", "nrpe:nrpe-external-master"),
        ("keystone", "nova"),
        ("keystone", "octavia"),
        ("keystone", "manila"),
    ] {
        sim.model.relate(ours, theirs).expect("relate");
    }
    sim.settle();
    sim
}

/// Every hook Juju runs on a settled unit: the unit's lifecycle hooks and, for each of its
/// relations and each remote unit, joined and changed.
fn hooks_of(sim: &Sim, unit: &str) -> Vec<HookEvent> {
    let mut hooks: Vec<HookEvent> = [
        "install",
        "config-changed",
        "start",
        "upgrade-charm",
        "update-status",
        "leader-elected",
        "leader-settings-changed",
    ]
    .into_iter()
    .map(HookEvent::simple)
    .collect();
    let world = sim.model.world();
    for id in world.relations_of("keystone") {
        let Some(endpoint) = world.endpoint_of(id, "keystone") else {
            continue;
        };
        for remote in world.remote_units(id, unit) {
            for kind in ["joined", "changed"] {
                hooks.push(HookEvent {
                    relation: Some(id),
                    remote_app: Some(juju_sim::state::World::app_of(&remote).to_owned()),
                    remote_unit: Some(remote.clone()),
                    ..HookEvent::simple(&format!("{endpoint}-relation-{kind}"))
                });
            }
        }
    }
    hooks
}

#[test]
fn every_hook_run_twice_changes_nothing_the_second_time() {
    let mut sim = deployment();
    for unit in sim.model.units("keystone") {
        let hooks = hooks_of(&sim, &unit);
        let relations: std::collections::BTreeSet<u32> =
            hooks.iter().filter_map(|h| h.relation).collect();
        assert_eq!(
            relations.len(),
            8,
            "{unit}: peers, database, ha, certificates, nrpe and the three consumers: {hooks:?}"
        );
        for hook in hooks {
            sim.model.world().queue(&unit, hook.clone());
            sim.model.settle_unit(&unit).expect("the first run");
            let first = observe(&sim);
            sim.model.world().queue(&unit, hook.clone());
            sim.model.settle_unit(&unit).expect("the second run");
            let second = observe(&sim);
            let changed = differences(&first, &second);
            assert!(
                changed.is_empty(),
                "{unit} {} the second time changed:\n{}",
                hook.name,
                changed.join("\n")
            );
            assert_eq!(
                sim.status(&unit),
                "active: Unit is ready",
                "{unit} {}",
                hook.name
            );
        }
    }
}
