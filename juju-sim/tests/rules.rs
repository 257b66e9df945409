//! Juju's rules, one test per rule, against a probe charm whose hooks are shell scripts the test
//! writes (tests/charms/probe). The hook tools are the simulator's real multi-call executable.

mod common;

use std::fs;
use std::path::PathBuf;

use common::TempDir;

use juju_sim::Model;
use serde_json::{Map, json};

/// A model with two probe applications, `a` and `b`, related a:db — b:backend.
struct Probe {
    model: Model,
    records: TempDir,
    relation: u32,
}

fn charm_dir() -> PathBuf {
    common::probe_charm()
}

impl Probe {
    fn new(a_units: usize, b_units: usize) -> Probe {
        Probe::with_version("3.6.1", a_units, b_units)
    }

    fn with_version(version: &str, a_units: usize, b_units: usize) -> Probe {
        let records = TempDir::new("probe");
        let mut model = Model::with_juju_version(version).expect("model");
        model.set_hook_env("PROBE_DIR", records.path().to_str().unwrap());
        model
            .deploy("a", &charm_dir(), a_units, Map::new())
            .unwrap();
        model
            .deploy("b", &charm_dir(), b_units, Map::new())
            .unwrap();
        model.settle().unwrap();
        let relation = model.relate("a:db", "b:backend").unwrap();
        model.settle().unwrap();
        Probe {
            model,
            records,
            relation,
        }
    }

    fn unit_dir(&self, unit: &str) -> PathBuf {
        self.records.path().join(unit.replace('/', "-"))
    }

    /// Runs `script` as `hook` on `unit` once (the model settles).
    fn run(&mut self, unit: &str, hook: &str, script: &str) {
        let dir = self.unit_dir(unit);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(hook), script).unwrap();
        self.model
            .world()
            .queue(unit, juju_sim::state::HookEvent::simple(hook));
        let _ = self.model.settle();
        fs::remove_file(dir.join(hook)).unwrap();
    }

    /// A file the hook script wrote into its unit dir.
    fn out(&self, unit: &str, name: &str) -> String {
        fs::read_to_string(self.unit_dir(unit).join(name)).unwrap_or_default()
    }

    fn rel(&self, endpoint: &str) -> String {
        format!("{endpoint}:{}", self.relation)
    }

    fn hooks(&self, unit: &str) -> Vec<String> {
        fs::read_to_string(format!("{}.hooks", self.unit_dir(unit).display()))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn clear_hooks(&self, unit: &str) {
        let _ = fs::remove_file(format!("{}.hooks", self.unit_dir(unit).display()));
    }
}

/// Runs one tool call inside a hook and returns (exit code, stdout, stderr).
fn call(p: &mut Probe, unit: &str, command: &str) -> (i32, String, String) {
    let script = format!(
        "set +e\n{command} > \"$PROBE_DIR/{u}/stdout\" 2> \"$PROBE_DIR/{u}/stderr\"\necho $? > \"$PROBE_DIR/{u}/code\"\n",
        u = unit.replace('/', "-")
    );
    p.run(unit, "update-status", &script);
    (
        p.out(unit, "code").trim().parse().unwrap_or(-1),
        p.out(unit, "stdout"),
        p.out(unit, "stderr"),
    )
}

#[test]
fn a_unit_writes_only_its_own_unit_bag() {
    let mut p = Probe::new(2, 1);
    let rel = p.rel("db");
    let (code, _, _) = call(&mut p, "a/0", &format!("relation-set -r {rel} colour=blue"));
    assert_eq!(code, 0);
    assert_eq!(
        p.model
            .relation_data(p.relation, "a/0")
            .get("colour")
            .map(String::as_str),
        Some("blue")
    );
    for other in ["a/1", "b/0", "a", "b"] {
        assert!(
            !p.model
                .relation_data(p.relation, other)
                .contains_key("colour"),
            "{other}"
        );
    }
}

#[test]
fn only_the_leader_writes_its_application_bag() {
    let mut p = Probe::new(2, 1);
    let rel = p.rel("db");
    let (code, _, err) = call(&mut p, "a/1", &format!("relation-set -r {rel} --app k=v"));
    assert_eq!(
        (code, err.as_str()),
        (1, "ERROR cannot write relation settings\n")
    );
    assert!(p.model.relation_data(p.relation, "a").is_empty());
    let (code, _, _) = call(&mut p, "a/0", &format!("relation-set -r {rel} --app k=v"));
    assert_eq!(code, 0);
    assert_eq!(
        p.model
            .relation_data(p.relation, "a")
            .get("k")
            .map(String::as_str),
        Some("v")
    );
}

#[test]
fn peer_application_data_is_readable_by_every_unit() {
    let mut p = Probe::new(2, 0);
    let peer = format!("peers:{}", p.model.relation_id("a", "peers").unwrap());
    call(
        &mut p,
        "a/0",
        &format!("relation-set -r {peer} --app shared=yes"),
    );
    let (code, out, _) = call(
        &mut p,
        "a/1",
        &format!("relation-get --format=json -r {peer} --app shared a"),
    );
    assert_eq!((code, out.as_str()), (0, "\"yes\"\n"));
}

#[test]
fn a_non_leader_cannot_read_its_own_app_bag_in_a_regular_relation() {
    let mut p = Probe::new(2, 1);
    let rel = p.rel("db");
    let (code, _, err) = call(&mut p, "a/1", &format!("relation-get -r {rel} --app - a"));
    assert_eq!((code, err.as_str()), (1, "ERROR permission denied\n"));
    let (code, _, _) = call(&mut p, "a/0", &format!("relation-get -r {rel} --app - a"));
    assert_eq!(code, 0);
}

#[test]
fn a_remote_application_bag_is_read_only() {
    let mut p = Probe::new(1, 1);
    let rel_b = p.rel("backend");
    call(
        &mut p,
        "b/0",
        &format!("relation-set -r {rel_b} --app owner=b"),
    );
    // relation-set has no way to name a remote bag: --app always means the writer's own app.
    let rel_a = p.rel("db");
    call(
        &mut p,
        "a/0",
        &format!("relation-set -r {rel_a} --app owner=a"),
    );
    assert_eq!(
        p.model
            .relation_data(p.relation, "b")
            .get("owner")
            .map(String::as_str),
        Some("b")
    );
    let (code, out, _) = call(
        &mut p,
        "a/0",
        &format!("relation-get --format=json -r {rel_a} --app owner b"),
    );
    assert_eq!((code, out.as_str()), (0, "\"b\"\n"));
}

#[test]
fn writes_are_visible_to_the_writer_at_once_and_to_others_after_exit_0() {
    let mut p = Probe::new(1, 1);
    let rel = p.rel("db");
    p.run(
        "a/0",
        "update-status",
        &format!(
            "relation-set -r {rel} seen=now\nrelation-get --format=json -r {rel} seen a/0 > \"$PROBE_DIR/a-0/own\"\n"
        ),
    );
    assert_eq!(p.out("a/0", "own"), "\"now\"\n");
    let backend = p.rel("backend");
    let (_, out, _) = call(
        &mut p,
        "b/0",
        &format!("relation-get --format=json -r {backend} seen a/0"),
    );
    assert_eq!(out, "\"now\"\n");
}

#[test]
fn a_failed_hook_discards_relation_secret_and_port_changes_but_keeps_status_leader_settings_and_logs()
 {
    let mut p = Probe::new(1, 1);
    let rel = p.rel("db");
    p.run(
        "a/0",
        "update-status",
        &format!(
            "relation-set -r {rel} lost=1\nopen-port 8080\nsecret-add --owner unit token=abc >/dev/null\n\
             status-set blocked -- kept\nleader-set kept=1\napplication-version-set 9.9\njuju-log -l WARNING kept-log\nexit 3\n"
        ),
    );
    let world = p.model.world();
    assert!(!world.bag(p.relation, "a/0").contains_key("lost"));
    assert!(world.units["a/0"].ports.is_empty());
    assert!(world.secrets.is_empty());
    assert_eq!(world.units["a/0"].status.message, "kept");
    assert_eq!(
        world.apps["a"]
            .leader_settings
            .get("kept")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(world.apps["a"].version, "9.9");
    assert!(
        world
            .logs
            .iter()
            .any(|l| l.message == "kept-log" && l.level == "WARNING")
    );
    // The failed hook was retried, as Juju does.
    let runs = world
        .hook_log
        .iter()
        .filter(|r| r.unit == "a/0" && r.exit_code == 3)
        .count();
    assert!(runs > 1, "retried: {runs}");
}

#[test]
fn relation_changed_fires_for_remote_changes_never_for_own_writes() {
    let mut p = Probe::new(1, 1);
    p.clear_hooks("a/0");
    p.clear_hooks("b/0");
    let db = p.rel("db");
    call(&mut p, "a/0", &format!("relation-set -r {db} x=1"));
    let own: Vec<String> = p
        .hooks("a/0")
        .into_iter()
        .filter(|h| h.starts_with("db-relation-changed"))
        .collect();
    assert!(own.is_empty(), "{own:?}");
    let remote: Vec<String> = p
        .hooks("b/0")
        .into_iter()
        .filter(|h| h.starts_with("backend-relation-changed"))
        .collect();
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert!(remote[0].contains("remote_unit=a/0"), "{remote:?}");
    // Setting the same value again changes nothing, so nothing fires.
    p.clear_hooks("b/0");
    call(&mut p, "a/0", &format!("relation-set -r {db} x=1"));
    assert!(
        p.hooks("b/0")
            .iter()
            .all(|h| !h.starts_with("backend-relation-changed"))
    );
}

#[test]
fn hook_tools_exit_2_for_usage_errors_and_1_for_runtime_errors() {
    let mut p = Probe::new(2, 1);
    assert_eq!(
        call(&mut p, "a/0", "relation-get -x"),
        (
            2,
            String::new(),
            "ERROR flag provided but not defined: -x\n".to_owned()
        )
    );
    assert_eq!(
        call(&mut p, "a/0", "relation-get"),
        (
            2,
            String::new(),
            "ERROR no relation id specified\n".to_owned()
        )
    );
    assert_eq!(
        call(&mut p, "a/0", "relation-get -r db:99 - a/1"),
        (
            2,
            String::new(),
            "ERROR invalid value \"db:99\" for flag -r: relation not found\n".to_owned()
        )
    );
    assert_eq!(
        call(&mut p, "a/0", "status-set error"),
        (2, String::new(), "ERROR invalid status \"error\", expected one of [maintenance blocked waiting active]\n".to_owned())
    );
    assert_eq!(
        call(&mut p, "a/1", "status-set --application active"),
        (
            1,
            String::new(),
            "ERROR this unit is not the leader\n".to_owned()
        )
    );
    assert_eq!(
        call(&mut p, "a/1", "leader-set a=b"),
        (
            1,
            String::new(),
            "ERROR cannot write leadership settings: cannot write settings: not the leader\n"
                .to_owned()
        )
    );
    assert_eq!(
        call(&mut p, "a/0", "action-get"),
        (1, String::new(), "ERROR not running an action\n".to_owned())
    );
    let db = p.rel("db");
    assert_eq!(
        call(&mut p, "a/0", &format!("relation-set -r {db} novalue")),
        (
            2,
            String::new(),
            "ERROR expected \"key=value\", got \"novalue\"\n".to_owned()
        )
    );
    assert_eq!(
        call(&mut p, "a/0", "secret-add 1=x"),
        (2, String::new(), "ERROR key \"1\" not valid\n".to_owned())
    );
}

#[test]
fn output_formats_and_quirks() {
    let mut p = Probe::new(1, 1);
    let rel = p.rel("db");
    // A missing key exits 0: null in JSON, nothing in smart format.
    assert_eq!(
        call(
            &mut p,
            "a/0",
            &format!("relation-get --format=json -r {rel} nope b/0")
        )
        .1,
        "null\n"
    );
    assert_eq!(
        call(&mut p, "a/0", &format!("relation-get -r {rel} nope b/0")),
        (0, String::new(), String::new())
    );
    assert_eq!(
        call(&mut p, "a/0", "config-get --format=json nope").1,
        "null\n"
    );
    assert_eq!(
        call(&mut p, "a/0", "config-get --format=json").1,
        "{\"count\":3,\"enabled\":true,\"name\":\"probe\"}\n"
    );
    assert_eq!(call(&mut p, "a/0", "is-leader").1, "True\n");
    assert_eq!(call(&mut p, "a/0", "is-leader --format=json").1, "true\n");
    // secret-ids prints null when there are none.
    assert_eq!(call(&mut p, "a/0", "secret-ids --format=json").1, "null\n");
    // An empty value deletes the key.
    call(&mut p, "a/0", &format!("relation-set -r {rel} gone=here"));
    call(&mut p, "a/0", &format!("relation-set -r {rel} gone="));
    assert!(
        !p.model
            .relation_data(p.relation, "a/0")
            .contains_key("gone")
    );
    // Unit bags carry the addresses Juju adds.
    let bag = p.model.relation_data(p.relation, "a/0");
    for key in ["private-address", "ingress-address", "egress-subnets"] {
        assert!(bag.contains_key(key), "{key}");
    }
    // --file - takes a JSON object on stdin, as ops sends it.
    call(
        &mut p,
        "a/0",
        &format!("echo '{{\"from\": \"stdin\"}}' | relation-set -r {rel} --file -"),
    );
    assert_eq!(
        p.model
            .relation_data(p.relation, "a/0")
            .get("from")
            .map(String::as_str),
        Some("stdin")
    );
}

#[test]
fn relation_ids_sort_as_strings() {
    let mut p = Probe::new(1, 1);
    for _ in 0..10 {
        p.model.relate("a:db", "b:backend").unwrap();
    }
    p.model.settle().unwrap();
    let (_, out, _) = call(&mut p, "a/0", "relation-ids --format=json db");
    let ids: Vec<String> = serde_json::from_str(&out).unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(ids.iter().position(|i| i == "db:10") < ids.iter().position(|i| i == "db:2"));
}

#[test]
fn config_is_typed_as_config_yaml_says() {
    let mut p = Probe::new(1, 0);
    let err = p
        .model
        .set_config("a", json!({"count": "three"}).as_object().unwrap().clone());
    assert!(err.is_err());
    p.model
        .set_config("a", json!({"count": 5}).as_object().unwrap().clone())
        .unwrap();
    p.model.settle().unwrap();
    assert_eq!(
        call(&mut p, "a/0", "config-get --format=json count").1,
        "5\n"
    );
}

#[test]
fn secrets_track_revisions_and_notify_consumers() {
    let mut p = Probe::new(1, 1);
    let rel = p.rel("db");
    p.run(
        "a/0",
        "update-status",
        &format!("secret-add --label creds password=one > \"$PROBE_DIR/a-0/uri\"\nsecret-grant \"$(cat \"$PROBE_DIR/a-0/uri\")\" -r {rel}\n"),
    );
    let uri = p.out("a/0", "uri").trim().to_owned();
    assert!(uri.starts_with("secret:"), "{uri}");
    let (code, out, _) = call(&mut p, "b/0", &format!("secret-get --format=json {uri}"));
    assert_eq!((code, out.as_str()), (0, "{\"password\":\"one\"}\n"));
    p.clear_hooks("b/0");
    call(&mut p, "a/0", &format!("secret-set {uri} password=two"));
    assert!(
        p.hooks("b/0")
            .iter()
            .any(|h| h.starts_with("secret-changed")),
        "{:?}",
        p.hooks("b/0")
    );
    // The consumer still sees its tracked revision until it refreshes; peek shows the latest.
    assert_eq!(
        call(
            &mut p,
            "b/0",
            &format!("secret-get --format=json {uri} password")
        )
        .1,
        "\"one\"\n"
    );
    assert_eq!(
        call(
            &mut p,
            "b/0",
            &format!("secret-get --format=json --peek {uri} password")
        )
        .1,
        "\"two\"\n"
    );
    assert_eq!(
        call(
            &mut p,
            "b/0",
            &format!("secret-get --format=json --refresh {uri} password")
        )
        .1,
        "\"two\"\n"
    );
    // Not granted: a third app cannot read it.
    assert_eq!(
        call(&mut p, "a/0", "secret-ids --format=json").1,
        format!("[\"{uri}\"]\n")
    );
}

#[test]
fn network_and_unit_addresses_come_from_the_units_own_address() {
    let mut p = Probe::new(1, 1);
    let address = p.model.world().units["a/0"].address.clone();
    let (code, out, _) = call(&mut p, "a/0", "network-get --format=json db");
    assert_eq!(code, 0);
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["ingress-addresses"], json!([address]));
    assert_eq!(info["egress-subnets"], json!([format!("{address}/32")]));
    assert_eq!(
        info["bind-addresses"][0]["addresses"][0]["value"],
        json!(address)
    );
    assert_eq!(
        call(
            &mut p,
            "a/0",
            "network-get --format=json --ingress-address db"
        )
        .1,
        format!("\"{address}\"\n")
    );
    assert_eq!(
        call(&mut p, "a/0", "unit-get private-address").1,
        format!("{address}\n")
    );
    assert_eq!(
        call(&mut p, "a/0", "network-get nope"),
        (
            1,
            String::new(),
            "ERROR no network config found for binding \"nope\"\n".to_owned()
        )
    );
    assert_eq!(
        call(&mut p, "a/0", "unit-get colour"),
        (
            2,
            String::new(),
            "ERROR unknown setting \"colour\"\n".to_owned()
        )
    );
}

#[test]
fn goal_state_lists_the_units_and_related_applications() {
    let mut p = Probe::new(2, 1);
    let (code, out, _) = call(&mut p, "a/0", "goal-state --format=json");
    assert_eq!(code, 0);
    let goal: serde_json::Value = serde_json::from_str(&out).unwrap();
    let units: Vec<&String> = goal["units"].as_object().unwrap().keys().collect();
    assert_eq!(units, ["a/0", "a/1"]);
    assert_eq!(goal["relations"]["db"]["b"]["status"], json!("joined"));
    assert_eq!(goal["relations"]["db"]["b/0"]["status"], json!("joined"));
}

#[test]
fn secret_info_is_for_the_owner_only() {
    let mut p = Probe::new(1, 1);
    let rel = p.rel("db");
    p.run(
        "a/0",
        "update-status",
        &format!("secret-add --label creds --description demo password=one > \"$PROBE_DIR/a-0/uri\"\nsecret-grant \"$(cat \"$PROBE_DIR/a-0/uri\")\" -r {rel}\n"),
    );
    let uri = p.out("a/0", "uri").trim().to_owned();
    let id = uri.trim_start_matches("secret:").to_owned();
    let (code, out, _) = call(&mut p, "a/0", "secret-info-get --format=json --label creds");
    assert_eq!(code, 0);
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        info[&id],
        json!({"revision": 1, "label": "creds", "owner": "application", "description": "demo"})
    );
    // A consumer may read the content it was granted, not the owner's metadata.
    let (code, _, err) = call(&mut p, "b/0", &format!("secret-info-get {uri}"));
    assert_eq!((code, err.starts_with("ERROR secret")), (1, true), "{err}");
    assert_eq!(
        call(
            &mut p,
            "a/0",
            &format!("secret-info-get {uri} --label creds")
        )
        .0,
        2,
        "a URI and a label together are a usage error"
    );
}

#[test]
fn a_tool_call_from_outside_the_running_hook_is_refused() {
    let mut p = Probe::new(1, 0);
    // The hook's own context works; a stale or forged context id does not.
    let (code, _, err) = call(&mut p, "a/0", "JUJU_CONTEXT_ID=forged is-leader");
    assert_eq!((code, err.as_str()), (1, "ERROR wrong context ID\n"));
    assert_eq!(call(&mut p, "a/0", "is-leader").0, 0);
}

#[test]
fn resource_get_gives_the_attached_file_and_attaching_runs_upgrade_charm() {
    let mut p = Probe::new(2, 1);
    // Declared but never attached: it cannot be downloaded.
    let (code, _, stderr) = call(&mut p, "a/0", "resource-get bundle");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("resource#a/bundle not found"), "{stderr}");
    let (code, _, _) = call(&mut p, "a/0", "resource-get nothing");
    assert_eq!(code, 1);
    let (code, _, _) = call(&mut p, "a/0", "resource-get");
    assert_eq!(code, 2);
    assert!(p.model.attach_resource("a", "nothing", b"x").is_err());

    p.clear_hooks("a/0");
    p.clear_hooks("a/1");
    p.model.attach_resource("a", "bundle", b"first").unwrap();
    p.model.settle().unwrap();
    let upgraded = |p: &Probe, unit: &str| {
        p.hooks(unit)
            .iter()
            .any(|h| h.starts_with("upgrade-charm "))
    };
    for unit in ["a/0", "a/1"] {
        assert!(upgraded(&p, unit), "{unit}: {:?}", p.hooks(unit));
    }
    assert!(!upgraded(&p, "b/0"));
    let (code, stdout, _) = call(&mut p, "a/1", "resource-get bundle");
    assert_eq!(code, 0);
    let path = PathBuf::from(stdout.trim());
    assert_eq!(path.file_name().unwrap(), "bundle.zip");
    assert_eq!(fs::read(&path).unwrap(), b"first");
    // Each unit has a copy of its own, as up to date as the last attach.
    p.model.attach_resource("a", "bundle", b"second").unwrap();
    p.model.settle().unwrap();
    let (_, stdout, _) = call(&mut p, "a/0", "resource-get bundle");
    assert_ne!(PathBuf::from(stdout.trim()), path);
    assert_eq!(fs::read(stdout.trim()).unwrap(), b"second");
}
