//! Fernet keys across a 3-unit deployment in the simulator, each unit with its own /etc/keystone:
//! one key set everywhere after deploy, rotate-fernet converging with one peer hook per unit, the
//! over-rotation guard, leader loss mid-rotation, scale-out, scheduled rotation; on Juju 2.9 (keys
//! in the peer application bag) and 3.6 (keys in a Juju secret). No key ever shows up in a log, a
//! status or an action result, nor in relation data where secrets exist.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use juju_sim::Model;
use keystone_charm::host::keys::Repository;
use keystone_charm::key_sets::KeyMaterial;
use serde_json::{Map, Value, json};
use support::TempDir;

const VERSIONS: [&str; 2] = ["2.9.49", "3.6.1"];

fn assert_keystone_user() {
    assert!(
        nix::unistd::User::from_name("keystone")
            .ok()
            .flatten()
            .is_some(),
        "the keystone user is missing: install the keystone package (scripts/install-deps)"
    );
}

/// Three keystone units, each with its own /etc/keystone. No database: the keys travel over
/// the peer relation whatever the database does (the real-stack tests relate one).
fn deployment(version: &str, charm: &Path, config: Value) -> Model {
    assert_keystone_user();
    let mut model = Model::with_juju_version(version).unwrap();
    model.isolate_paths(&[
        "/etc/keystone",
        "/var/lib/keystone",
        "/var/lib/keystone-charm",
        "/run",
    ]);
    model
        .deploy(
            "keystone",
            charm,
            3,
            config.as_object().cloned().unwrap_or_default(),
        )
        .unwrap();
    model.settle().unwrap();
    model
}

/// Without a database every unit asks for one, and says nothing about keys it lacks.
fn waiting_only_for_a_database() -> Option<(String, String)> {
    Some((
        "blocked".to_owned(),
        "Missing relations: database".to_owned(),
    ))
}

/// The key material a unit holds on its own disk.
fn held(model: &Model, unit: &str) -> Option<KeyMaterial> {
    let etc = model.unit_path(unit, "/etc/keystone");
    let fernet = Repository::new(etc.join("fernet-keys"), None)
        .read()
        .unwrap()?;
    let credential = Repository::new(etc.join("credential-keys"), None)
        .read()
        .unwrap()?;
    Some(KeyMaterial { fernet, credential })
}

fn fingerprints(model: &Model) -> BTreeSet<Option<String>> {
    model
        .units("keystone")
        .iter()
        .map(|u| held(model, u).map(|m| m.fingerprint()))
        .collect()
}

fn published_generation(model: &Model) -> u64 {
    let id = model.relation_id("keystone", "cluster").unwrap();
    model.relation_data(id, "keystone")["fernet-generation"]
        .parse()
        .unwrap()
}

fn no_params() -> Map<String, Value> {
    Map::new()
}

fn force() -> Map<String, Value> {
    json!({"force": true}).as_object().cloned().unwrap()
}

/// Every key text any unit holds now.
fn key_texts(model: &Model) -> Vec<String> {
    let mut keys = Vec::new();
    for unit in model.units("keystone") {
        if let Some(m) = held(model, &unit) {
            for set in [&m.fernet, &m.credential] {
                keys.extend(set.keys().values().map(|k| k.expose().to_owned()));
            }
        }
    }
    keys
}

/// No key in juju-log, statuses or action results; nor in relation data where secrets exist.
fn assert_no_key_material(model: &Model, keys: &[String], secrets: bool) {
    let world = model.world();
    let mut exposed: Vec<String> = world
        .logs
        .iter()
        .map(|l| l.message.clone())
        .chain(world.units.values().map(|u| u.status.message.clone()))
        .chain(world.apps.values().map(|a| a.status.message.clone()))
        .chain(world.actions.values().map(|t| {
            format!(
                "{} {:?} {}",
                Value::Object(t.results.clone()),
                t.message,
                t.stdout
            )
        }))
        .chain(
            world
                .hook_log
                .iter()
                .map(|r| format!("{} {}", r.stdout, r.stderr)),
        )
        .collect();
    if secrets {
        for rel in world.relations.values() {
            for bag in rel.unit_data.values().chain(rel.app_data.values()) {
                exposed.extend(bag.values().cloned());
            }
        }
    }
    for key in keys {
        let short = &key[..20];
        assert!(
            exposed.iter().all(|text| !text.contains(short)),
            "key material leaked into logs, statuses, action results or relation data"
        );
    }
}

#[test]
fn after_deploy_every_unit_holds_the_same_keys_and_acknowledges_them() {
    let out = TempDir::new("fernet-deploy");
    let charm = support::pack_charm(&out);
    for version in VERSIONS {
        let model = deployment(version, &charm, json!({}));
        let prints = fingerprints(&model);
        assert_eq!(prints.len(), 1, "{version}: {prints:?}");
        assert!(prints.iter().all(Option::is_some), "{version}");
        assert_eq!(published_generation(&model), 1);
        let id = model.relation_id("keystone", "cluster").unwrap();
        let leader = model.leader("keystone").unwrap();
        for unit in model.units("keystone") {
            // The others acknowledge; the leader's state is what it published.
            let ack = model
                .relation_data(id, &unit)
                .get("fernet-generation")
                .cloned();
            let expected = (unit != leader).then(|| "1".to_owned());
            assert_eq!(ack, expected, "{version} {unit}");
            assert_eq!(
                model.unit_status(&unit),
                waiting_only_for_a_database(),
                "{version} {unit}"
            );
        }
        let keys = key_texts(&model);
        assert_no_key_material(&model, &keys, version.starts_with('3'));
    }
}

#[test]
fn rotate_fernet_converges_with_one_peer_hook_per_unit_and_guards_over_rotation() {
    let out = TempDir::new("fernet-rotate");
    let charm = support::pack_charm(&out);
    for version in VERSIONS {
        // Tokens valid for 6 s: a retired key is safe 6 s after it stopped being primary, and
        // the leader rotates on schedule every 6 s (the actions below reset that schedule).
        let mut model = deployment(version, &charm, json!({"token-expiration": 6}));
        let mut keys = key_texts(&model);
        let a_period = || std::thread::sleep(std::time::Duration::from_millis(6100));
        // A deploy slower than one period (a loaded machine) ends with a scheduled rotation:
        // the generations below count from where it ended, once the key it retired is safe.
        let deployed = published_generation(&model);
        if deployed > 1 {
            a_period();
        }
        let generation = |n: u64| (deployed + n).to_string();
        let leader = model.leader("keystone").unwrap();
        let others: Vec<String> = model
            .units("keystone")
            .into_iter()
            .filter(|u| *u != leader)
            .collect();

        // Not on a non-leader.
        let refused = model
            .run_action(&others[0], "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(refused.status, "failed");
        assert_eq!(
            refused.message.as_deref(),
            Some("run this on the leader: juju run keystone/leader rotate-fernet")
        );

        // One rotation right after deploy (it retires no key that signed a valid token): the
        // new generation reaches every unit with one peer hook each.
        let hooks_before = model.hook_log().len();
        let task = model
            .run_action(&leader, "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(task.status, "completed", "{version}: {task:?}");
        assert_eq!(task.results["generation"], json!(generation(1)));
        assert_eq!(task.results["primary-key-index"], json!(generation(1)));
        assert_eq!(task.results["units-to-update"], json!(others.join(",")));
        assert_eq!(fingerprints(&model).len(), 1, "{version}: converged");
        // Each other unit converged in one peer hook: the first cluster-relation-changed after
        // the action applied the new set, and it was applied exactly once. (Later peer hooks come
        // from the other units' acknowledgements and change nothing.)
        let runs = &model.hook_log()[hooks_before..];
        for unit in &others {
            let first = runs
                .iter()
                .find(|r| r.unit == *unit && r.hook == "cluster-relation-changed")
                .unwrap_or_else(|| panic!("{version} {unit}: no peer hook"));
            assert!(
                first.tool_calls.iter().any(|c| c.starts_with("juju-log")
                    && c.contains(&format!("applied generation {}", generation(1)))),
                "{version} {unit}: {:#?}",
                first.tool_calls
            );
            let applied = model
                .logs()
                .iter()
                .filter(|l| {
                    l.unit == *unit
                        && l.message
                            .contains(&format!("applied generation {}", generation(1)))
                })
                .count();
            assert_eq!(applied, 1, "{version} {unit}");
        }
        keys.extend(key_texts(&model));

        // A second rotation before the units acknowledged is refused, naming them; force wins.
        a_period();
        let first = model
            .run_action_now(&leader, "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(first.status, "completed");
        a_period();
        let second = model
            .run_action_now(&leader, "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(second.status, "failed", "{version}");
        let message = second.message.clone().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "not rotating: {} have not acknowledged fernet keys generation {}",
                others.join(", "),
                generation(2)
            )),
            "{message}"
        );
        let forced = model
            .run_action_now(&leader, "rotate-fernet", force())
            .unwrap();
        assert_eq!(forced.status, "completed");
        assert_eq!(forced.results["generation"], json!(generation(3)));
        // It says whom it left behind and what that risks.
        assert_eq!(forced.results["forced-past"], json!(others.join(", ")));
        let risk = forced.results["risk"].as_str().unwrap_or_default();
        assert!(
            risk.starts_with(&format!(
                "{} did not hold generation {}",
                others.join(", "),
                generation(2)
            )),
            "{risk}"
        );
        // At once, with 3 keys and every unit in step, it is refused: it would retire key 3,
        // primary until the forced rotation, whose tokens are still valid; it says when it may.
        model.settle().unwrap();
        let early = model
            .run_action(&leader, "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(early.status, "failed", "{version}");
        let message = early.message.clone().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "not rotating: fernet key {} was the primary key until ",
                generation(2)
            )) && message.contains("token-expiration (6 s)")
                && message.contains("It is safe in "),
            "{message}"
        );
        model.settle().unwrap();
        assert_eq!(
            fingerprints(&model).len(),
            1,
            "{version}: converged after force"
        );
        keys.extend(key_texts(&model));

        // fernet-status on a non-leader: in sync, short fingerprints only.
        let status = model
            .run_action(&others[1], "fernet-status", no_params())
            .unwrap();
        assert_eq!(status.status, "completed");
        assert_eq!(status.results["in-sync"], json!("true"));
        assert_eq!(status.results["generation"], json!(generation(3)));
        assert_eq!(status.results["leader-generation"], json!(generation(3)));
        let listed = status.results["keys"].as_object().unwrap();
        assert_eq!(listed.len(), 3, "max 3 active keys: {listed:?}");
        assert!(listed.values().all(|v| v.as_str().unwrap().len() == 8));
        assert_no_key_material(&model, &keys, version.starts_with('3'));
    }
}

#[test]
fn with_five_keys_three_quick_rotations_retire_none_and_a_fourth_waits_for_the_first_key() {
    let out = TempDir::new("fernet-five");
    let charm = support::pack_charm(&out);
    let mut model = deployment(
        "3.6.1",
        &charm,
        json!({"token-expiration": 3600, "fernet-max-active-keys": 5}),
    );
    let leader = model.leader("keystone").unwrap();
    for generation in 2..=4 {
        let task = model
            .run_action(&leader, "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(task.status, "completed", "{task:?}");
        assert_eq!(task.results["generation"], json!(generation.to_string()));
    }
    assert_eq!(fingerprints(&model).len(), 1, "converged");
    let fourth = model
        .run_action(&leader, "rotate-fernet", no_params())
        .unwrap();
    assert_eq!(fourth.status, "failed");
    let message = fourth.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("not rotating: fernet key 1 was the primary key until ")
            && message.contains("token-expiration (3600 s)"),
        "{message}"
    );
    let wait: u64 = message
        .split("It is safe in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!((3500..=3600).contains(&wait), "{message}");
}

#[test]
fn a_new_leader_carries_on_from_the_published_set_and_new_units_catch_up() {
    let out = TempDir::new("fernet-leader");
    let charm = support::pack_charm(&out);
    for version in VERSIONS {
        let mut model = deployment(version, &charm, json!({"token-expiration": 6}));
        let leader = model.leader("keystone").unwrap();
        let a_period = || std::thread::sleep(std::time::Duration::from_millis(6100));
        // Rotate, then lose the leader before anyone acknowledged.
        a_period();
        let task = model
            .run_action_now(&leader, "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(task.status, "completed");
        let published = published_generation(&model);
        model.remove_unit(&leader).unwrap();
        model.settle().unwrap();
        let new_leader = model.leader("keystone").unwrap();
        assert_ne!(new_leader, leader);
        assert_eq!(
            published_generation(&model),
            published,
            "{version}: not re-initialised"
        );
        assert_eq!(fingerprints(&model).len(), 1, "{version}");
        assert_eq!(model.units("keystone").len(), 2);

        // A new unit receives the keys and acknowledges before it reports ready.
        let added = model.add_unit("keystone").unwrap();
        model.settle().unwrap();
        assert_eq!(fingerprints(&model).len(), 1, "{version}");
        let id = model.relation_id("keystone", "cluster").unwrap();
        assert_eq!(
            model.relation_data(id, &added)["fernet-generation"],
            published.to_string()
        );
        assert_eq!(model.unit_status(&added), waiting_only_for_a_database());
        // The departed unit is not waited for: the new leader can rotate.
        a_period();
        let task = model
            .run_action(&new_leader, "rotate-fernet", no_params())
            .unwrap();
        assert_eq!(task.status, "completed", "{version}: {task:?}");
        assert_eq!(fingerprints(&model).len(), 1);
    }
}

#[test]
fn due_rotations_happen_in_update_status_and_wait_for_lagging_units() {
    let out = TempDir::new("fernet-schedule");
    let charm = support::pack_charm(&out);
    // A 1-second rotation period: token-expiration 1 s, 3 keys.
    let mut model = deployment("3.6.1", &charm, json!({"token-expiration": 1}));
    let leader = model.leader("keystone").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    model.update_status();
    model.settle().unwrap();
    assert!(
        published_generation(&model) >= 2,
        "a due rotation ran in update-status"
    );
    assert_eq!(fingerprints(&model).len(), 1);

    // A rotation the others have not seen yet, then a due one on the leader alone: it waits.
    let before = published_generation(&model);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    model
        .run_action_now(&leader, "rotate-fernet", no_params())
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    model.queue_hook(&leader, "update-status");
    model.settle_unit(&leader).unwrap();
    assert_eq!(
        published_generation(&model),
        before + 1,
        "no second rotation"
    );
    let others: Vec<String> = model
        .units("keystone")
        .into_iter()
        .filter(|u| *u != leader)
        .collect();
    let waiting = format!("fernet rotation due, waiting for {}", others.join(", "));
    assert!(
        model
            .logs()
            .iter()
            .any(|l| l.unit == leader && l.message.contains(&waiting)),
        "{waiting}"
    );
    model.settle().unwrap();
    assert_eq!(fingerprints(&model).len(), 1);
}

#[test]
fn keys_that_exist_already_are_adopted_not_replaced() {
    use keystone_charm::key_sets::{Key, KeySet};
    let out = TempDir::new("fernet-adopt");
    let charm = support::pack_charm(&out);
    let material = || KeyMaterial {
        fernet: KeySet::setup(Key::generate().unwrap(), Key::generate().unwrap())
            .rotate(Key::generate().unwrap(), 3),
        credential: KeySet::setup(Key::generate().unwrap(), Key::generate().unwrap()),
    };

    // The Python charm left its keys in the leader settings: every unit ends up with them.
    let python = material();
    let setting = json!({
        "/etc/keystone/fernet-keys/": python.fernet.keys().iter()
            .map(|(i, k)| (i.to_string(), json!(k.expose()))).collect::<Map<String, Value>>(),
        "/etc/keystone/credential-keys/": python.credential.keys().iter()
            .map(|(i, k)| (i.to_string(), json!(k.expose()))).collect::<Map<String, Value>>(),
    });
    let mut model = Model::with_juju_version("3.6.1").unwrap();
    model.isolate_paths(&[
        "/etc/keystone",
        "/var/lib/keystone",
        "/var/lib/keystone-charm",
        "/run",
    ]);
    model.deploy("keystone", &charm, 2, Map::new()).unwrap();
    model
        .set_leader_setting("keystone", "key_repository", &setting.to_string())
        .unwrap();
    model.settle().unwrap();
    for unit in model.units("keystone") {
        assert_eq!(held(&model, &unit), Some(python.clone()), "{unit}");
    }

    // Keys already on the leader's disk (keystone-manage's) are kept too.
    let on_disk = material();
    let mut model = Model::with_juju_version("2.9.49").unwrap();
    model.isolate_paths(&[
        "/etc/keystone",
        "/var/lib/keystone",
        "/var/lib/keystone-charm",
        "/run",
    ]);
    model.deploy("keystone", &charm, 2, Map::new()).unwrap();
    let etc = model.unit_path("keystone/0", "/etc/keystone");
    std::fs::create_dir_all(&etc).unwrap();
    Repository::new(etc.join("fernet-keys"), None)
        .apply(&on_disk.fernet)
        .unwrap();
    Repository::new(etc.join("credential-keys"), None)
        .apply(&on_disk.credential)
        .unwrap();
    model.settle().unwrap();
    for unit in model.units("keystone") {
        assert_eq!(held(&model, &unit), Some(on_disk.clone()), "{unit}");
    }
}

/// The built charm in two models of one controller: central (2 units) offers fernet-keys, the
/// edge (1 unit) consumes it. The edge's units hold central's set (its staged key and primary),
/// acknowledge it back across the models, and follow a rotation; no key shows anywhere but in
/// the secret, in either model.
#[test]
fn an_edge_in_another_model_holds_the_sources_keys_across_a_rotation() {
    assert_keystone_user();
    let out = TempDir::new("fernet-sites");
    let charm = support::pack_charm(&out);
    let mut c = juju_sim::Controller::new();
    for (name, units) in [("central", 2), ("edge", 1)] {
        let model = c.add_model(name).unwrap();
        model.isolate_paths(&[
            "/etc/keystone",
            "/var/lib/keystone",
            "/var/lib/keystone-charm",
            "/run",
        ]);
        model.deploy("keystone", &charm, units, Map::new()).unwrap();
    }
    c.settle().unwrap();
    c.offer("central", "keystone:fernet-keys", None).unwrap();
    c.consume("edge", "central.keystone", Some("central-keystone"))
        .unwrap();
    let edge = c
        .relate("edge", "keystone:fernet-keys-source", "central-keystone")
        .unwrap();
    c.settle().unwrap();
    let holds_central = |c: &juju_sim::Controller| {
        let central = held(c.model("central").unwrap(), "keystone/0").unwrap();
        let site = held(c.model("edge").unwrap(), "keystone/0").unwrap();
        [
            (&site.fernet, &central.fernet),
            (&site.credential, &central.credential),
        ]
        .into_iter()
        .all(|(s, k)| {
            s.keys()[&0] == k.keys()[&0]
                && s.keys()[&s.primary_index()] == k.keys()[&k.primary_index()]
        })
    };
    assert!(holds_central(&c));
    let answer =
        |c: &juju_sim::Controller| c.model("edge").unwrap().relation_data(edge, "keystone");
    assert_eq!(answer(&c)["site"], "edge.keystone");
    assert_eq!(answer(&c)["acknowledged-generation"], "1");
    let task = c
        .run_action("central", "keystone/0", "rotate-fernet", force())
        .unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    c.settle().unwrap();
    assert_eq!(published_generation(c.model("central").unwrap()), 2);
    assert!(holds_central(&c));
    assert_eq!(answer(&c)["acknowledged-generation"], "2");
    for name in ["central", "edge"] {
        let model = c.model(name).unwrap();
        let keys = key_texts(model);
        assert_no_key_material(model, &keys, true);
    }
}
