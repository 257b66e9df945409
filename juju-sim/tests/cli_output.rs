//! `juju show-unit` and `juju show-secret --reveal` as the simulator prints them: the YAML
//! parses, and holds what Juju's would for the model's state. One rule per test.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::TempDir;
use juju_sim::Model;
use juju_sim::scripted::Inert;
use serde_json::Map;
use serde_norway::Value;

/// Probe applications `a` and `b` (tests/charms/probe), related a:db — b:backend, whose hooks
/// run scripts the test writes.
struct Probe {
    model: Model,
    records: TempDir,
    relation: u32,
}

impl Probe {
    fn new(version: &str, a_units: usize, b_units: usize) -> Probe {
        let records = TempDir::new("cli-output");
        let mut model = Model::with_juju_version(version).expect("model");
        let dir = records.path().to_str().expect("utf-8 path").to_owned();
        model.set_hook_env("PROBE_DIR", &dir);
        let charm = common::probe_charm();
        model.deploy("a", &charm, a_units, Map::new()).expect("a");
        model.deploy("b", &charm, b_units, Map::new()).expect("b");
        let relation = model.relate("a:db", "b:backend").expect("relate");
        model.settle().expect("settle");
        Probe {
            model,
            records,
            relation,
        }
    }

    /// Runs `script` (sh) as an update-status hook on `unit`; the model settles.
    fn run(&mut self, unit: &str, script: &str) {
        let dir = self.records.path().join(unit.replace('/', "-"));
        fs::create_dir_all(&dir).expect("unit dir");
        fs::write(dir.join("update-status"), script).expect("script");
        self.model.queue_hook(unit, "update-status");
        self.model.settle().expect("settle");
        fs::remove_file(dir.join("update-status")).expect("remove script");
    }

    fn peers(&self, app: &str) -> u32 {
        self.model.relation_id(app, "peers").expect("peer relation")
    }

    /// `show-unit` parsed: the unit's own mapping.
    fn unit(&self, unit: &str) -> Value {
        let text = self.model.show_unit(unit);
        let parsed: Value = serde_norway::from_str(&text).expect("show-unit is YAML");
        parsed[unit].clone()
    }

    /// The unit's relation-info entry for `relation`.
    fn relation_info(&self, unit: &str, relation: u32) -> Value {
        let info = self.unit(unit)["relation-info"].clone();
        info.as_sequence()
            .into_iter()
            .flatten()
            .find(|r| r["relation-id"].as_u64() == Some(u64::from(relation)))
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn secrets(&self) -> Value {
        serde_norway::from_str(&self.model.show_secret_reveal()).expect("show-secret is YAML")
    }
}

fn strings(value: &Value) -> BTreeMap<String, String> {
    serde_norway::from_value(value.clone()).unwrap_or_default()
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn addresses(address: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("egress-subnets".to_owned(), format!("{address}/32")),
        ("ingress-address".to_owned(), address.to_owned()),
        ("private-address".to_owned(), address.to_owned()),
    ])
}

#[test]
fn show_unit_prints_what_juju_prints_for_a_lone_unit() {
    let probe = Probe::new("3.6.1", 1, 0);
    assert_eq!(
        probe.model.show_unit("a/0"),
        "a/0:
  machine: \"0\"
  opened-ports: []
  public-address: 127.0.1.1
  charm: local:probe-0
  leader: true
  life: alive
  relation-info:
  - relation-id: 0
    endpoint: peers
    related-endpoint: peers
    application-data: {}
    local-unit:
      in-scope: true
      data:
        egress-subnets: 127.0.1.1/32
        ingress-address: 127.0.1.1
        private-address: 127.0.1.1
"
    );
}

#[test]
fn show_unit_is_keyed_by_the_unit_name_alone() {
    let probe = Probe::new("3.6.1", 2, 1);
    let parsed: Value = serde_norway::from_str(&probe.model.show_unit("a/1")).expect("YAML");
    assert_eq!(keys(&parsed), ["a/1"]);
}

#[test]
fn application_data_is_the_remote_applications_bag() {
    let mut probe = Probe::new("3.6.1", 1, 1);
    let r = probe.relation;
    probe.run("a/0", &format!("relation-set -r db:{r} --app mine=a\n"));
    probe.run(
        "b/0",
        &format!("relation-set -r backend:{r} --app theirs=b\n"),
    );
    let info = probe.relation_info("a/0", r);
    assert_eq!(
        strings(&info["application-data"]),
        BTreeMap::from([("theirs".to_owned(), "b".to_owned())])
    );
}

#[test]
fn related_units_are_every_remote_unit_in_scope_with_its_bag() {
    let mut probe = Probe::new("3.6.1", 1, 2);
    let r = probe.relation;
    probe.run("b/1", &format!("relation-set -r backend:{r} port=3306\n"));
    let info = probe.relation_info("a/0", r);
    let mut expected = addresses("127.0.1.3");
    expected.insert("port".to_owned(), "3306".to_owned());
    assert_eq!(
        (
            keys(&info["related-units"]),
            info["related-units"]["b/1"]["in-scope"].as_bool(),
            strings(&info["related-units"]["b/1"]["data"]),
        ),
        (
            vec!["b/0".to_owned(), "b/1".to_owned()],
            Some(true),
            expected
        )
    );
}

#[test]
fn endpoints_are_the_units_own_then_the_remote_one() {
    let probe = Probe::new("3.6.1", 1, 1);
    let info = probe.relation_info("b/0", probe.relation);
    assert_eq!(
        (info["endpoint"].as_str(), info["related-endpoint"].as_str()),
        (Some("backend"), Some("db"))
    );
}

#[test]
fn a_non_peer_relation_has_no_local_unit() {
    let probe = Probe::new("3.6.1", 1, 1);
    let info = probe.relation_info("a/0", probe.relation);
    assert!(info.get("local-unit").is_none(), "{info:?}");
}

#[test]
fn a_peer_relation_shows_the_other_peers_and_the_unit_itself_as_local_unit() {
    let mut probe = Probe::new("3.6.1", 3, 0);
    let p = probe.peers("a");
    probe.run("a/1", &format!("relation-set -r peers:{p} role=second\n"));
    let info = probe.relation_info("a/1", p);
    let mut own = addresses("127.0.1.2");
    own.insert("role".to_owned(), "second".to_owned());
    assert_eq!(
        (
            keys(&info["related-units"]),
            info["local-unit"]["in-scope"].as_bool(),
            strings(&info["local-unit"]["data"]),
        ),
        (vec!["a/0".to_owned(), "a/2".to_owned()], Some(true), own)
    );
}

#[test]
fn a_relation_without_any_data_is_left_out() {
    // b has no units: the relation holds no bag a/0 could be shown.
    let probe = Probe::new("3.6.1", 1, 0);
    assert!(probe.relation_info("a/0", probe.relation).is_null());
}

#[test]
fn leader_is_true_for_the_leader_only() {
    let probe = Probe::new("3.6.1", 2, 0);
    assert_eq!(
        (
            probe.unit("a/0")["leader"].as_bool(),
            probe.unit("a/1")["leader"].as_bool()
        ),
        (Some(true), Some(false))
    );
}

#[test]
fn a_unit_being_removed_is_dying() {
    let mut probe = Probe::new("3.6.1", 2, 0);
    probe.model.remove_unit("a/1").expect("remove-unit");
    assert_eq!(probe.unit("a/1")["life"].as_str(), Some("dying"));
}

#[test]
fn a_removed_unit_prints_nothing() {
    let mut probe = Probe::new("3.6.1", 2, 0);
    probe.model.remove_unit("a/1").expect("remove-unit");
    probe.model.settle().expect("settle");
    assert_eq!(probe.model.show_unit("a/1"), "");
}

#[test]
fn opened_ports_are_listed_by_protocol_then_port() {
    let mut probe = Probe::new("3.6.1", 1, 0);
    probe.run(
        "a/0",
        "open-port 8080\nopen-port 53/udp\nopen-port 443/tcp\n",
    );
    let ports: Vec<String> =
        serde_norway::from_value(probe.unit("a/0")["opened-ports"].clone()).unwrap_or_default();
    assert_eq!(ports, ["443/tcp", "8080/tcp", "53/udp"]);
}

#[test]
fn workload_version_is_what_the_charm_set() {
    let mut probe = Probe::new("3.6.1", 1, 0);
    probe.run("a/0", "application-version-set 17.0\n");
    assert_eq!(
        probe.model.show_unit("a/0").lines().nth(1),
        Some("  workload-version: \"17.0\"")
    );
}

#[test]
fn values_that_need_quoting_read_back_unchanged() {
    let mut probe = Probe::new("3.6.1", 1, 0);
    let p = probe.peers("a");
    probe.run(
        "a/0",
        &format!(
            "relation-set -r peers:{p} number=12345 flag=yes colon='a: b' \
             'text=two\nlines' date=2024-01-31 'hash=a #b'\n"
        ),
    );
    let data = strings(&probe.relation_info("a/0", p)["local-unit"]["data"]);
    let mut expected = addresses("127.0.1.1");
    for (k, v) in [
        ("number", "12345"),
        ("flag", "yes"),
        ("colon", "a: b"),
        ("text", "two\nlines"),
        ("date", "2024-01-31"),
        ("hash", "a #b"),
    ] {
        expected.insert(k.to_owned(), v.to_owned());
    }
    assert_eq!(data, expected);
}

#[test]
fn an_unknown_unit_prints_nothing() {
    let probe = Probe::new("3.6.1", 1, 0);
    assert_eq!(probe.model.show_unit("c/0"), "");
}

#[test]
fn a_scripted_charms_url_is_its_metadata_name() {
    let mut model = Model::new().expect("model");
    let charm = Inert("name: nova\n".to_owned());
    model
        .deploy_scripted("compute", Box::new(charm), 1)
        .expect("deploy");
    model.settle().expect("settle");
    let parsed: Value = serde_norway::from_str(&model.show_unit("compute/0")).expect("YAML");
    assert_eq!(parsed["compute/0"]["charm"].as_str(), Some("local:nova-0"));
}

// ---------------------------------------------------------------------------------------------
// juju show-secret --reveal

/// a/0 (the leader) adds an application secret and grants it to b over the relation.
fn with_secret(version: &str) -> (Probe, String) {
    let mut probe = Probe::new(version, 1, 1);
    let r = probe.relation;
    probe.run(
        "a/0",
        &format!(
            "uri=$(secret-add --label creds --description demo password=one)\n\
             secret-grant \"$uri\" -r db:{r}\n\
             echo \"$uri\" > \"$PROBE_DIR/uri\"\n"
        ),
    );
    let uri = fs::read_to_string(probe.records.path().join("uri")).expect("uri");
    let id = uri.trim().trim_start_matches("secret:").to_owned();
    (probe, id)
}

#[test]
fn show_secret_prints_what_juju_prints() {
    let (probe, id) = with_secret("3.6.1");
    // Juju's checksum: SHA-256 of {"password":"<base64 of one>"}.
    let checksum: String = {
        use sha2::Digest;
        sha2::Sha256::digest(br#"{"password":"b25l"}"#)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(
        probe.model.show_secret_reveal(),
        format!(
            "{id}:
  revision: 1
  checksum: {checksum}
  owner: a
  description: demo
  label: creds
  created: 2025-01-01T00:00:00Z
  updated: 2025-01-01T00:00:00Z
  content:
    password: one
  access:
  - target: application-b
    scope: relation-b.backend#a.db
    role: view
"
        )
    );
}

#[test]
fn a_new_revision_shows_its_content() {
    let (mut probe, id) = with_secret("3.6.1");
    probe.run("a/0", &format!("secret-set secret:{id} password=two\n"));
    let secret = probe.secrets()[id.as_str()].clone();
    assert_eq!(
        (
            secret["revision"].as_u64(),
            secret["content"]["password"].as_str()
        ),
        (Some(2), Some("two"))
    );
}

#[test]
fn juju_before_3_6_prints_no_checksum() {
    let (probe, id) = with_secret("3.5.4");
    assert!(probe.secrets()[id.as_str()].get("checksum").is_none());
}

#[test]
fn a_unit_owned_secret_names_the_unit_and_its_rotation() {
    let mut probe = Probe::new("3.6.1", 2, 0);
    probe.run(
        "a/1",
        "secret-add --owner unit --rotate daily 'cert=-----BEGIN-----\nabc\n' >/dev/null\n",
    );
    let secrets = probe.secrets();
    let Some((_, secret)) = secrets.as_mapping().and_then(|m| m.iter().next()) else {
        panic!("no secret in {secrets:?}");
    };
    assert_eq!(
        (
            secret["owner"].as_str(),
            secret["rotation"].as_str(),
            secret["rotates"].as_str(),
            secret["content"]["cert"].as_str(),
        ),
        (
            Some("a/1"),
            Some("daily"),
            Some("2025-01-02T00:00:00Z"),
            Some("-----BEGIN-----\nabc\n")
        )
    );
}

#[test]
fn a_secret_put_in_the_world_directly_is_shown() {
    let probe = Probe::new("3.6.1", 1, 0);
    probe.model.world().secrets.insert(
        "cv1234".to_owned(),
        juju_sim::state::Secret {
            id: "cv1234".to_owned(),
            owner: "application:a".to_owned(),
            label: None,
            description: None,
            rotate: None,
            revisions: vec![BTreeMap::from([("key".to_owned(), "12345".to_owned())])],
            grants: BTreeMap::new(),
            tracked: BTreeMap::new(),
            consumer_labels: BTreeMap::new(),
            source_model: None,
        },
    );
    assert_eq!(
        probe.secrets()["cv1234"]["content"]["key"].as_str(),
        Some("12345")
    );
}

#[test]
fn a_model_without_secrets_prints_an_empty_mapping() {
    let probe = Probe::new("3.6.1", 1, 0);
    assert_eq!(probe.model.show_secret_reveal(), "{}\n");
}

#[test]
fn write_cli_output_writes_show_unit_per_unit_and_every_secret() {
    let mut probe = Probe::new("3.6.1", 2, 1);
    probe.run("a/0", "secret-add password=one >/dev/null\n");
    let out = TempDir::new("cli-output-files");
    let written = probe.model.write_cli_output(out.path()).expect("write");
    let read = |name: &str| fs::read_to_string(out.path().join(name)).unwrap_or_default();
    assert_eq!(
        (
            written,
            read("show-unit/a-1.yaml"),
            read("show-unit/b-0.yaml"),
            read("secrets.yaml")
        ),
        (
            3,
            probe.model.show_unit("a/1"),
            probe.model.show_unit("b/0"),
            probe.model.show_secret_reveal()
        )
    );
}
