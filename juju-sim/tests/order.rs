//! Juju's hook order (reference §4), observed through the probe charm's hook record.

mod common;

use std::fs;
use std::path::PathBuf;

use common::TempDir;
use juju_sim::Model;
use serde_json::{Map, json};

struct Probe {
    model: Model,
    records: TempDir,
}

fn probe() -> Probe {
    let records = TempDir::new("order");
    let mut model = Model::new().unwrap();
    model.set_hook_env("PROBE_DIR", records.path().to_str().unwrap());
    Probe { model, records }
}

fn charm() -> PathBuf {
    common::probe_charm()
}

impl Probe {
    /// Hooks a unit ran, with the relation environment, in order; the record is then cleared.
    fn take(&self, unit: &str) -> Vec<String> {
        let path = self
            .records
            .path()
            .join(format!("{}.hooks", unit.replace('/', "-")));
        let text = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        text.lines()
            .map(|l| {
                // Keep the hook name and the non-empty relation variables.
                l.split(' ')
                    .filter(|p| !p.ends_with('=') && !p.starts_with("relation="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    fn script(&self, unit: &str, hook: &str, body: &str) {
        let dir = self.records.path().join(unit.replace('/', "-"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(hook), body).unwrap();
    }
}

#[test]
fn deploy_runs_install_peer_created_leadership_config_start_then_peer_joins() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 2, Map::new()).unwrap();
    p.model.settle().unwrap();
    assert_eq!(
        p.take("a/0"),
        [
            "install",
            "peers-relation-created remote_app=a",
            "leader-elected",
            "config-changed",
            "start",
            "peers-relation-joined remote_unit=a/1 remote_app=a",
            "peers-relation-changed remote_unit=a/1 remote_app=a",
        ]
    );
    assert_eq!(
        p.take("a/1"),
        [
            "install",
            "peers-relation-created remote_app=a",
            "leader-settings-changed",
            "config-changed",
            "start",
            "peers-relation-joined remote_unit=a/0 remote_app=a",
            "peers-relation-changed remote_unit=a/0 remote_app=a",
        ]
    );
}

#[test]
fn relate_runs_created_then_joined_followed_by_changed_for_each_remote_unit() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 1, Map::new()).unwrap();
    p.model.deploy("b", &charm(), 2, Map::new()).unwrap();
    p.model.settle().unwrap();
    p.take("a/0");
    p.model.relate("a:db", "b").unwrap();
    p.model.settle().unwrap();
    assert_eq!(
        p.take("a/0"),
        [
            "db-relation-created remote_app=b",
            "db-relation-joined remote_unit=b/0 remote_app=b",
            "db-relation-changed remote_unit=b/0 remote_app=b",
            "db-relation-joined remote_unit=b/1 remote_app=b",
            "db-relation-changed remote_unit=b/1 remote_app=b",
        ]
    );
}

#[test]
fn add_unit_installs_the_new_unit_and_joins_it_with_peers_and_related_units() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 1, Map::new()).unwrap();
    p.model.deploy("b", &charm(), 1, Map::new()).unwrap();
    p.model.relate("a:db", "b:backend").unwrap();
    p.model.settle().unwrap();
    p.take("a/0");
    p.take("b/0");
    p.model.add_unit("a").unwrap();
    p.model.settle().unwrap();
    assert_eq!(
        p.take("a/1"),
        [
            "install",
            "peers-relation-created remote_app=a",
            "leader-settings-changed",
            "config-changed",
            "start",
            "peers-relation-joined remote_unit=a/0 remote_app=a",
            "peers-relation-changed remote_unit=a/0 remote_app=a",
            "db-relation-created remote_app=b",
            "db-relation-joined remote_unit=b/0 remote_app=b",
            "db-relation-changed remote_unit=b/0 remote_app=b",
        ]
    );
    assert_eq!(
        p.take("a/0"),
        [
            "peers-relation-joined remote_unit=a/1 remote_app=a",
            "peers-relation-changed remote_unit=a/1 remote_app=a",
        ]
    );
    assert_eq!(
        p.take("b/0"),
        [
            "backend-relation-joined remote_unit=a/1 remote_app=a",
            "backend-relation-changed remote_unit=a/1 remote_app=a",
        ]
    );
}

#[test]
fn remove_unit_departs_on_both_sides_then_breaks_stops_and_removes() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 2, Map::new()).unwrap();
    p.model.deploy("b", &charm(), 1, Map::new()).unwrap();
    p.model.relate("a:db", "b:backend").unwrap();
    p.model.settle().unwrap();
    for u in ["a/0", "a/1", "b/0"] {
        p.take(u);
    }
    p.model.remove_unit("a/0").unwrap();
    p.model.settle().unwrap();
    assert_eq!(
        p.take("a/0"),
        [
            "peers-relation-departed remote_unit=a/1 remote_app=a departing=a/0",
            "db-relation-departed remote_unit=b/0 remote_app=b departing=a/0",
            "db-relation-broken remote_app=b",
            "stop",
            "remove",
        ]
    );
    // a/1 loses its peer and, as the new leader, is elected.
    assert_eq!(
        p.take("a/1"),
        [
            "peers-relation-departed remote_unit=a/0 remote_app=a departing=a/0",
            "leader-elected",
        ]
    );
    assert_eq!(
        p.take("b/0"),
        ["backend-relation-departed remote_unit=a/0 remote_app=a departing=a/0"]
    );
    assert_eq!(p.model.leader("a").as_deref(), Some("a/1"));
    assert_eq!(p.model.units("a"), ["a/1"]);
}

#[test]
fn remove_relation_departs_every_remote_unit_then_breaks() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 1, Map::new()).unwrap();
    p.model.deploy("b", &charm(), 2, Map::new()).unwrap();
    let id = p.model.relate("a:db", "b:backend").unwrap();
    p.model.settle().unwrap();
    p.take("a/0");
    p.model.unrelate(id).unwrap();
    p.model.settle().unwrap();
    assert_eq!(
        p.take("a/0"),
        [
            "db-relation-departed remote_unit=b/0 remote_app=b departing=b/0",
            "db-relation-departed remote_unit=b/1 remote_app=b departing=b/1",
            "db-relation-broken remote_app=b",
        ]
    );
}

#[test]
fn leader_change_elects_the_new_leader_and_tells_the_others() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 3, Map::new()).unwrap();
    p.model.settle().unwrap();
    for u in ["a/0", "a/1", "a/2"] {
        p.take(u);
    }
    p.model.set_leader("a/2").unwrap();
    p.model.settle().unwrap();
    assert_eq!(p.take("a/2"), ["leader-elected"]);
    assert_eq!(p.take("a/0"), ["leader-settings-changed"]);
    assert_eq!(p.take("a/1"), ["leader-settings-changed"]);
}

#[test]
fn config_change_and_upgrade_run_their_hooks() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 2, Map::new()).unwrap();
    p.model.settle().unwrap();
    p.take("a/0");
    p.take("a/1");
    p.model
        .set_config("a", json!({"name": "x"}).as_object().unwrap().clone())
        .unwrap();
    p.model.settle().unwrap();
    assert_eq!(p.take("a/1"), ["config-changed"]);
    // Setting the same value again is no change.
    p.model
        .set_config("a", json!({"name": "x"}).as_object().unwrap().clone())
        .unwrap();
    p.model.settle().unwrap();
    assert!(p.take("a/1").is_empty());
    p.take("a/0");
    p.model.upgrade_charm("a").unwrap();
    p.model.settle().unwrap();
    assert_eq!(p.take("a/0"), ["upgrade-charm", "config-changed", "start"]);
    assert_eq!(
        p.take("a/1"),
        [
            "upgrade-charm",
            "config-changed",
            "leader-settings-changed",
            "start"
        ]
    );
    p.model.update_status();
    p.model.settle().unwrap();
    assert_eq!(p.take("a/0"), ["update-status"]);
}

#[test]
fn actions_complete_with_results_or_fail_with_a_message_and_never_retry() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 1, Map::new()).unwrap();
    p.model.settle().unwrap();
    p.script(
        "a/0",
        "greet",
        "action-set greeting=\"hello $(action-get who)\" nested.key=1\naction-log working\n",
    );
    let task = p.model.run_action("a/0", "greet", Map::new()).unwrap();
    assert_eq!(task.status, "completed");
    assert_eq!(task.failure(), None);
    assert_eq!(
        task.params,
        *json!({"who": "world"}).as_object().unwrap(),
        "defaults filled in"
    );
    assert_eq!(
        serde_json::Value::Object(task.results),
        json!({"greeting": "hello world", "nested": {"key": "1"}})
    );
    assert_eq!(task.logs, ["working"]);

    p.script("a/0", "explode", "action-fail \"no luck\"\n");
    let task = p.model.run_action("a/0", "explode", Map::new()).unwrap();
    assert_eq!(
        (task.status.as_str(), task.message.as_deref()),
        ("failed", Some("no luck"))
    );
    // As `juju run` prints it.
    assert_eq!(
        task.failure(),
        Some(format!("Action id {} failed: no luck", task.id))
    );
    p.script("a/0", "explode", "exit 4\n");
    p.take("a/0");
    let task = p.model.run_action("a/0", "explode", Map::new()).unwrap();
    assert_eq!(
        (task.status.as_str(), task.message.as_deref()),
        ("failed", Some("exit status 4"))
    );
    assert_eq!(p.take("a/0"), ["explode"], "not retried");

    let bad = p.model.run_action(
        "a/0",
        "greet",
        json!({"who": 3}).as_object().unwrap().clone(),
    );
    assert!(bad.is_err(), "a param of the wrong type is refused");
    assert!(p.model.run_action("a/0", "nope", Map::new()).is_err());
}

#[test]
fn a_failed_hook_blocks_the_units_queue_until_its_retry_succeeds() {
    let mut p = probe();
    p.model.deploy("a", &charm(), 1, Map::new()).unwrap();
    p.model.settle().unwrap();
    p.take("a/0");
    // Fails once, then succeeds: the flag file records the first attempt.
    p.script(
        "a/0",
        "config-changed",
        "if [ ! -f \"$PROBE_DIR/failed-once\" ]; then touch \"$PROBE_DIR/failed-once\"; exit 1; fi\n",
    );
    p.model
        .set_config("a", json!({"count": 9}).as_object().unwrap().clone())
        .unwrap();
    p.model.update_status();
    p.model.settle().unwrap();
    assert_eq!(
        p.take("a/0"),
        ["config-changed", "config-changed", "update-status"]
    );
    let runs: Vec<i32> = p
        .model
        .hook_log()
        .iter()
        .filter(|r| r.hook == "config-changed" && r.unit == "a/0")
        .map(|r| r.exit_code)
        .collect();
    assert_eq!(runs[runs.len() - 2..], [1, 0]);
}
