//! Upgrades on real services, while a client issues and validates tokens through the VIP.
//!
//! Three units behind a VIP, each on a machine whose packages are its own (`/usr`, `/var/lib` and
//! `/var/cache` over overlays of the host's, so an upgrade stays on its machine), start on
//! Debian 12's older Keystone build, 2:22.0.2-0+deb12u3:
//! 1. package-upgrade, unit by unit, brings the newer build, 2:22.0.2-0+deb12u6;
//! 2. openstack-origin then points at the "next release": Debian's u6 packages re-versioned
//!    2:23.0.0 by scripts/keystone-upgrade-repos. That stands in for a real release change;
//!    its schema steps are Zed's, which change nothing. With action-managed-upgrade true,
//!    openstack-upgrade runs on the leader, then on each other unit.
//!
//! No validation fails and none goes unanswered; the leader expands, migrates and contracts
//! once each, in that order. Needs root, the real stack and apt's access to Debian's archive
//! (scripts/install-deps builds the repositories).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Map, Value, json};
use support::TempDir;
use support::validator::Validator;

const OLDER: &str = "2:22.0.2-0+deb12u3";
const NEWER: &str = "2:22.0.2-0+deb12u6";

/// The repositories scripts/keystone-upgrade-repos builds (it does nothing when they exist).
fn repositories() -> PathBuf {
    let dir = PathBuf::from("/var/cache/keystone-charm-tests/upgrade-repos");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/keystone-upgrade-repos");
    let built = Command::new(script).arg(&dir).output().unwrap();
    assert!(
        built.status.success(),
        "scripts/keystone-upgrade-repos failed (it needs apt's access to Debian's archive): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    dir
}

fn sh(model: &juju_sim::Model, unit: &str, script: &str) -> String {
    let out = model.exec_on_unit(unit, &["sh", "-ec", script]).unwrap();
    assert!(
        out.status.success(),
        "{unit}: {script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn installed(model: &juju_sim::Model, unit: &str) -> String {
    sh(model, unit, "dpkg-query -W -f '${Version}' keystone")
}

/// A machine as a cloud image with Keystone's older build makes it: apt's sources are the
/// test's repositories only (the older and the newer build), and, as in a container image,
/// policy-rc.d keeps package scripts from starting services.
fn provision(repos: &Path) -> impl Fn(&juju_sim::Model, &str) + '_ {
    move |model, unit| {
        let repos = repos.display();
        sh(
            model,
            unit,
            &format!(
                "rm -f /etc/apt/sources.list.d/*; : > /etc/apt/sources.list
                 printf 'deb [trusted=yes] file:{repos}/older ./\\ndeb [trusted=yes] file:{repos}/newer ./\\n' \
                   > /etc/apt/sources.list.d/machine.list
                 printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
                 apt-get update -q >/dev/null
                 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades \
                   -o Dpkg::Options::=--force-confold keystone={OLDER} python3-keystone={OLDER} >/dev/null"
            ),
        );
    }
}

fn action(model: &mut juju_sim::Model, unit: &str, name: &str) -> Map<String, Value> {
    let task = model.run_action(unit, name, Map::new()).unwrap();
    assert_eq!(task.status, "completed", "{unit} {name}: {task:?}");
    support::settle(model);
    task.results.clone()
}

/// The leader's db_sync phases, in order, from its log.
fn schema_phases(model: &juju_sim::Model, leader: &str) -> Vec<String> {
    model
        .logs()
        .into_iter()
        .filter(|line| line.unit == leader)
        .filter_map(|line| {
            let rest = line
                .message
                .split("running keystone-manage db_sync ")
                .nth(1)?;
            Some(rest.split_whitespace().next()?.to_owned())
        })
        .collect()
}

#[test]
fn package_and_release_upgrades_unit_by_unit_fail_no_validation() {
    let repos = repositories();
    let out = TempDir::new("upgrades");
    let charm = support::pack_charm(&out);
    let mut layout = juju_sim_fixtures::demo::keystone_machine();
    layout.overlaid = ["/usr", "/var/lib", "/var/cache"]
        .map(str::to_owned)
        .to_vec();
    let options = support::lean(
        json!({"action-managed-upgrade": true})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let started = Instant::now();
    let (mut model, vip) =
        support::deploy_behind_vip_on(&charm, "upgrades", 30, options, layout, provision(&repos));
    support::assert_ready(&model);
    let units = model.units("keystone");
    for unit in &units {
        assert_eq!(installed(&model, unit), OLDER, "{unit}");
    }
    assert_eq!(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Version}", "keystone"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap(),
        NEWER,
        "the host's own Keystone is not the machines'"
    );
    let leader = model.leader("keystone").unwrap();
    let password = action(&mut model, &leader, "get-admin-password")["admin-password"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("http://{vip}:5000/v3");
    let validator = Validator::start(&base, &password, &[]);

    // 1. package-upgrade, unit by unit: the newer build of the same release.
    for unit in &units {
        let results = action(&mut model, unit, "package-upgrade");
        let upgraded = results["upgraded"].as_str().unwrap_or_default();
        assert!(
            upgraded.contains(&format!("keystone {OLDER} -> {NEWER}")),
            "{unit}: {results:?}"
        );
        assert_eq!(installed(&model, unit), NEWER, "{unit}");
    }
    support::assert_ready(&model);
    let after_packages = validator.figures();
    println!(
        "package-upgrade: {} validations, {} failed, {} unanswered",
        after_packages.validations, after_packages.failed, after_packages.unavailable
    );

    // 2. The next release, with action-managed-upgrade: nothing moves until the action runs.
    let next = format!("deb [trusted=yes] file:{}/next-release ./", repos.display());
    model
        .set_config(
            "keystone",
            json!({"openstack-origin": next})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
    support::settle(&mut model);
    for unit in &units {
        assert_eq!(
            installed(&model, unit),
            NEWER,
            "{unit} waits for the action"
        );
    }
    let others: Vec<&String> = units.iter().filter(|u| **u != leader).collect();
    let refused = model
        .run_action(others[0], "openstack-upgrade", Map::new())
        .unwrap();
    assert_eq!(refused.status, "failed", "{refused:?}");
    let mut upgraded_units = 0;
    for unit in std::iter::once(&leader).chain(others) {
        let results = action(&mut model, unit, "openstack-upgrade");
        assert_eq!(results["outcome"], "success, upgrade completed", "{unit}");
        assert!(installed(&model, unit).starts_with("2:23.0.0"), "{unit}");
        // The package's scripts enabled Debian's own Keystone service again; the charm did not
        // leave it so.
        let links = sh(&model, unit, "ls /etc/rc2.d");
        assert!(!links.contains("S01keystone"), "{unit}: {links}");
        upgraded_units += 1;
    }
    support::assert_ready(&model);
    assert_eq!(
        schema_phases(&model, &leader),
        ["Expand", "Migrate", "Contract"],
        "the leader's schema steps"
    );
    assert!(
        model
            .logs()
            .iter()
            .any(|line| line.unit == leader && line.message.contains("keystone-manage doctor")),
        "doctor is reported"
    );
    // Every unit's haproxy counted the draining unit down (its /healthcheck answered 503)
    // before it stopped: none went on after the drain's time limit.
    let drains: Vec<_> = model
        .logs()
        .into_iter()
        .filter(|line| line.message.contains("draining keystone-"))
        .collect();
    assert_eq!(drains.len(), 6, "one drain per upgrade of each unit");
    let late: Vec<_> = model
        .logs()
        .into_iter()
        .filter(|line| line.message.contains("still counted"))
        .collect();
    assert!(late.is_empty(), "{late:?}");
    // A token still issues and validates on every unit's own Keystone.
    for unit in &units {
        let address = model.unit_address(unit).unwrap();
        let own = format!("http://{address}:5000/v3");
        assert!(
            support::validator::issue(&own, &password, &[]).is_some(),
            "{unit}"
        );
    }
    let figures = validator.stop();
    println!(
        "upgrade: {} validations, {} failed, {} units upgraded, {} s",
        figures.validations,
        figures.failed,
        upgraded_units,
        started.elapsed().as_secs()
    );
    assert_eq!(figures.failed, 0, "{:#?}", figures.failures);
    assert_eq!(
        figures.unavailable, 0,
        "requests went unanswered: {:#?}",
        figures.unavailable_because
    );
    assert!(figures.validations > 100, "{figures:?}");
}
