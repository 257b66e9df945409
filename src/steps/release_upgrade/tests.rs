use super::*;
use crate::host::process::AptTwin;
use crate::host::services::ServiceAction;
use crate::testing::Sim;
use serde_json::json;

const ZED: &str = "2:22.0.2-0+deb12u6";
const ANTELOPE: &str = "2:23.0.0-0ubuntu1~cloud0";
const UNITS: [&str; 3] = ["keystone/0", "keystone/1", "keystone/2"];

fn standing<'a>(unit: &'a str, leader: bool) -> Standing<'a> {
    Standing {
        unit,
        leader,
        action_managed: false,
        requested: UpgradeRequest::Scheduled,
        paused: false,
        installed: "22.0.2",
        target: "23.0.0",
        expanded: None,
        synced: Some("22.0.2"),
        turn: None,
    }
}

#[test]
fn the_leader_upgrades_first_and_the_others_once_the_schema_is_expanded_in_turn() {
    assert_eq!(turn(&standing("keystone/0", true)), Turn::Upgrade);
    let other = standing("keystone/1", false);
    assert_eq!(
        turn(&other),
        Turn::Wait("Waiting for the leader to upgrade to antelope first".to_owned())
    );
    let expanded = Standing {
        expanded: Some("23.0.0"),
        ..other.clone()
    };
    assert_eq!(
        turn(&expanded),
        Turn::Wait("Waiting for its turn to upgrade to antelope".to_owned())
    );
    let its_turn = Standing {
        turn: Some("keystone/1"),
        ..expanded.clone()
    };
    assert_eq!(turn(&its_turn), Turn::Upgrade);
    // Nothing newer: nothing to do, whatever the rest says.
    let same = Standing {
        target: "22.0.3",
        ..its_turn.clone()
    };
    assert_eq!(turn(&same), Turn::Idle);
    let paused = Standing {
        paused: true,
        ..its_turn
    };
    assert!(matches!(turn(&paused), Turn::Wait(why) if why.starts_with("Paused")));
}

#[test]
fn with_action_managed_upgrades_only_the_action_upgrades_and_needs_no_turn() {
    let managed = Standing {
        action_managed: true,
        ..standing("keystone/0", true)
    };
    assert_eq!(turn(&managed), Turn::Idle);
    let asked = Standing {
        requested: UpgradeRequest::Action,
        ..managed
    };
    assert_eq!(turn(&asked), Turn::Upgrade);
    let other = Standing {
        unit: "keystone/2",
        leader: false,
        ..asked
    };
    assert!(
        matches!(turn(&other), Turn::Wait(why) if why.contains("juju run keystone/leader openstack-upgrade"))
    );
    let expanded = Standing {
        expanded: Some("23.0.0"),
        ..other
    };
    assert_eq!(turn(&expanded), Turn::Upgrade, "no turn is handed out");
}

#[test]
fn the_schema_expands_once_and_contracts_when_the_last_unit_runs_the_new_release() {
    use SchemaPhase::{Contract, Expand, Migrate};
    let zed = Some("22.0.2");
    assert_eq!(schema_phases("23.0.0", zed, None, false), [Expand, Migrate]);
    assert_eq!(schema_phases("23.0.0", zed, Some("23.0.0"), false), []);
    assert_eq!(
        schema_phases("23.0.0", zed, Some("23.0.0"), true),
        [Contract]
    );
    // One unit, or a version every unit already runs: all three at once.
    assert_eq!(
        schema_phases("23.0.0", zed, None, true),
        [Expand, Migrate, Contract]
    );
    assert_eq!(
        schema_phases("23.0.0", None, None, true),
        [Expand, Migrate, Contract]
    );
    assert_eq!(schema_phases("22.0.2", zed, None, true), []);
    // A leader still on the old release (leadership moved mid-upgrade) leaves the schema be.
    assert_eq!(schema_phases("22.0.2", Some("23.0.0"), None, true), []);
    assert_eq!(schema_phases("9.1.0", Some("10.0.0"), None, true), []);
}

fn zed_installed(sim: &Sim) {
    for unit in UNITS {
        let packages = [("keystone", ZED), ("apache2", "2.4.62-1~deb12u2")]
            .map(|(name, version)| (name.to_owned(), version.to_owned()));
        sim.machine(unit).1.runner.set_packages(AptTwin {
            installed: packages.clone().into(),
            available: packages.into(),
        });
    }
}

fn offer(sim: &Sim, version: &str) {
    for unit in UNITS {
        let runner = &sim.machine(unit).1.runner;
        let mut apt = runner.packages().unwrap();
        apt.available
            .insert("keystone".to_owned(), version.to_owned());
        runner.set_packages(apt);
    }
}

/// The sources offer Antelope: openstack-origin points at it, and the model settles.
fn offer_antelope(sim: &mut Sim) {
    offer(sim, ANTELOPE);
    sim.model
        .set_config(
            "keystone",
            json!({"openstack-origin": "cloud:jammy-antelope"})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
    sim.settle();
}

fn runs(sim: &Sim, unit: &str) -> String {
    sim.file(unit, crate::paths::KEYSTONE_VERSION)
}

/// The leader's schema phases so far, in order.
fn phases(sim: &Sim) -> Vec<String> {
    sim.machine("keystone/0")
        .1
        .runner
        .calls()
        .iter()
        .filter(|c| {
            c.program == "keystone-manage" && c.args.first().is_some_and(|a| a == "db_sync")
        })
        .filter_map(|c| c.args.get(1).cloned())
        .collect()
}

fn ready_on_zed(config: serde_json::Value) -> Sim {
    let mut sim = Sim::with_database(3, config);
    zed_installed(&sim);
    sim.settle();
    for unit in UNITS {
        assert_eq!(runs(&sim, unit), "22.0.2", "{unit}");
        assert_eq!(sim.status(unit), "active: Unit is ready", "{unit}");
    }
    sim
}

#[test]
fn a_newer_release_reaches_every_unit_one_at_a_time_and_the_schema_contracts_last() {
    let mut sim = ready_on_zed(json!({}));
    offer_antelope(&mut sim);
    for unit in UNITS {
        assert_eq!(runs(&sim, unit), "23.0.0", "{unit}");
        assert_eq!(sim.status(unit), "active: Unit is ready", "{unit}");
        let machine = sim.machine(unit);
        assert_eq!(
            machine
                .1
                .services
                .count(&ServiceAction::WaitUntilDrained(unit.replace('/', "-"))),
            1,
            "{unit} drained from haproxy before its upgrade"
        );
        assert!(sim.file(unit, crate::paths::DRAINING_MARKER).is_empty());
    }
    assert_eq!(phases(&sim), ["--expand", "--migrate", "--contract"]);
    let turns: Vec<String> = sim
        .logs("keystone/0", "INFO")
        .into_iter()
        .filter(|line| line.contains("turn to upgrade"))
        .collect();
    assert_eq!(turns.len(), 2, "{turns:?}");
    assert!(turns[0].contains("keystone/1") && turns[1].contains("keystone/2"));
    let bag = sim.peer_app_bag();
    assert_eq!(bag.get(peer_keys::DB_SYNCED_VERSION).unwrap(), "23.0.0");
    assert!(!bag.contains_key(peer_keys::SCHEMA_EXPANDED), "{bag:?}");
    assert!(!bag.contains_key(peer_keys::UPGRADE_TURN), "{bag:?}");
    // Settled: a config-changed that leaves openstack-origin as it was asks nothing of apt
    // (apt-cache takes a third of a second), and migrates nothing again.
    let apt_cache = |sim: &Sim| {
        sim.machine("keystone/0")
            .1
            .runner
            .count("apt-cache", "policy")
    };
    let asked = apt_cache(&sim);
    assert!(sim.run("keystone/0", "config-changed"));
    assert_eq!(apt_cache(&sim), asked);
    assert_eq!(phases(&sim).len(), 3);
}

#[test]
fn with_action_managed_upgrades_the_operator_upgrades_unit_by_unit_leader_first() {
    let mut sim = ready_on_zed(json!({"action-managed-upgrade": true}));
    let task = sim.action("keystone/1", "openstack-upgrade", json!({}));
    assert_eq!(
        task.results["outcome"],
        crate::actions::NO_UPGRADE_AVAILABLE
    );
    offer_antelope(&mut sim);
    for unit in UNITS {
        assert_eq!(
            runs(&sim, unit),
            "22.0.2",
            "{unit}: nothing upgrades by itself"
        );
    }
    let task = sim.action("keystone/1", "openstack-upgrade", json!({}));
    assert_eq!(task.status, "failed", "{task:?}");
    let message = task.message.clone().unwrap_or_default();
    assert!(
        message.contains("keystone/leader openstack-upgrade"),
        "{task:?}"
    );
    assert_eq!(runs(&sim, "keystone/1"), "22.0.2");

    let task = sim.action("keystone/0", "openstack-upgrade", json!({}));
    assert_eq!(task.status, "completed", "{task:?}");
    assert_eq!(task.results["outcome"], crate::actions::UPGRADE_DONE);
    assert_eq!(task.results["upgraded"], "keystone 22.0.2 -> 23.0.0");
    assert!(
        task.results["schema"]
            .as_str()
            .unwrap()
            .contains("expanded and migrated")
    );
    assert_eq!(phases(&sim), ["--expand", "--migrate"]);
    sim.settle();
    for unit in ["keystone/1", "keystone/2"] {
        let task = sim.action(unit, "openstack-upgrade", json!({}));
        assert_eq!(task.status, "completed", "{unit}: {task:?}");
        sim.settle();
        assert_eq!(runs(&sim, unit), "23.0.0");
    }
    assert_eq!(phases(&sim), ["--expand", "--migrate", "--contract"]);
    for unit in UNITS {
        assert_eq!(sim.status(unit), "active: Unit is ready", "{unit}");
    }
    let task = sim.action("keystone/2", "openstack-upgrade", json!({}));
    assert_eq!(
        task.results["outcome"],
        crate::actions::NO_UPGRADE_AVAILABLE
    );
}

#[test]
fn without_action_managed_upgrades_the_action_says_the_upgrade_runs_by_itself() {
    let mut sim = ready_on_zed(json!({}));
    let task = sim.action("keystone/0", "openstack-upgrade", json!({}));
    assert_eq!(task.status, "completed", "{task:?}");
    assert_eq!(
        task.results["outcome"],
        crate::actions::UPGRADE_NOT_ACTION_MANAGED
    );
}

#[test]
fn a_keystone_the_schema_was_not_migrated_for_is_migrated_by_the_leader_once() {
    // The database was initialised before any version was recorded (as by the Python charm,
    // or an older revision of this one): the leader migrates once for the version it has,
    // contracting once every unit says it runs it.
    let mut sim = Sim::ready(2);
    let units = ["keystone/0", "keystone/1"];
    for unit in units {
        let packages = [("keystone".to_owned(), ZED.to_owned())];
        sim.machine(unit).1.runner.set_packages(AptTwin {
            installed: packages.clone().into(),
            available: packages.into(),
        });
    }
    for _ in 0..2 {
        for unit in units {
            assert!(sim.run(unit, "upgrade-charm"));
        }
    }
    assert_eq!(phases(&sim), ["--expand", "--migrate", "--contract"]);
    assert_eq!(
        sim.machine("keystone/1")
            .1
            .runner
            .count("keystone-manage", "db_sync"),
        0,
        "only the leader migrates"
    );
    assert_eq!(
        sim.peer_app_bag()
            .get(peer_keys::DB_SYNCED_VERSION)
            .map(String::as_str),
        Some("22.0.2")
    );
}
