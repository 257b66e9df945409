//! Cross-model relations: two models of one controller, an offer in one consumed and related in
//! the other. The probe charm (real hook tools, Juju's environment) shows what each side's hooks
//! see; scripted charms show data and secrets crossing.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use common::TempDir;
use juju_sim::Controller;
use juju_sim::scripted::{ScriptedCharm, ScriptedHook};
use serde_json::Map;

/// A controller with models `central` (probe `a`, offered as `database` on its `db` endpoint)
/// and `edge` (probe `b`, related on `backend` to the offer consumed as `central-db`).
struct Sites {
    c: Controller,
    records: TempDir,
    /// The relation's id in `central` and in `edge`.
    central: u32,
    edge: u32,
    /// What `central` calls `b`: `remote-<token>`.
    stand_in: String,
}

fn sites(a_units: usize, b_units: usize) -> Sites {
    sites_on("3.6.1", a_units, b_units)
}

fn sites_on(version: &str, a_units: usize, b_units: usize) -> Sites {
    let records = TempDir::new("cmr");
    let mut c = Controller::with_juju_version(version);
    let probe = common::probe_charm();
    for name in ["central", "edge"] {
        let model = c.add_model(name).unwrap();
        model.set_hook_env("PROBE_DIR", records.path().to_str().unwrap());
    }
    let central = c.model_mut("central").unwrap();
    central.deploy("a", &probe, a_units, Map::new()).unwrap();
    // Another application first, so that the two models' relation ids differ.
    central.deploy("other", &probe, 1, Map::new()).unwrap();
    c.model_mut("edge")
        .unwrap()
        .deploy("b", &probe, b_units, Map::new())
        .unwrap();
    c.settle().unwrap();
    let url = c.offer("central", "a:db", Some("database")).unwrap();
    assert_eq!(url, "admin/central.database");
    assert_eq!(
        c.consume("edge", "central.database", Some("central-db"))
            .unwrap(),
        "central-db"
    );
    let edge = c.relate("edge", "b:backend", "central-db").unwrap();
    c.settle().unwrap();
    let link = c.cross_model_relation("edge", edge).unwrap().clone();
    Sites {
        c,
        records,
        central: link.offer.relation,
        edge,
        stand_in: link.offer.remote_app,
    }
}

impl Sites {
    fn unit_dir(&self, unit: &str) -> std::path::PathBuf {
        self.records.path().join(unit.replace('/', "-"))
    }

    /// Hooks a unit ran, with its relation environment; the record is then cleared.
    fn take(&self, unit: &str) -> Vec<String> {
        let path = format!("{}.hooks", self.unit_dir(unit).display());
        let text = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        text.lines().map(str::to_owned).collect()
    }

    /// The hooks of [`Sites::take`] that start with `prefix` (one endpoint's relation hooks).
    fn take_of(&self, unit: &str, prefix: &str) -> Vec<String> {
        let mut hooks = self.take(unit);
        hooks.retain(|h| h.starts_with(prefix));
        hooks
    }

    /// Runs `command` in an update-status hook of `unit` in `model` (the controller settles);
    /// its exit code, stdout and stderr.
    fn call(&mut self, model: &str, unit: &str, command: &str) -> (i32, String, String) {
        let dir = self.unit_dir(unit);
        fs::create_dir_all(&dir).unwrap();
        let out = |name: &str| dir.join(name).display().to_string();
        let script = format!(
            "set +e\n{{ {command}\n}} > '{}' 2> '{}'\necho $? > '{}'\n",
            out("stdout"),
            out("stderr"),
            out("code")
        );
        fs::write(dir.join("update-status"), script).unwrap();
        self.c
            .model_mut(model)
            .unwrap()
            .queue_hook(unit, "update-status");
        self.c.settle().unwrap();
        fs::remove_file(dir.join("update-status")).unwrap();
        let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
        (
            read("code").trim().parse().unwrap_or(-1),
            read("stdout"),
            read("stderr"),
        )
    }

    fn data(&self, model: &str, relation: u32, bag: &str) -> BTreeMap<String, String> {
        self.c.model(model).unwrap().relation_data(relation, bag)
    }
}

fn is_stand_in_name(name: &str) -> bool {
    name.strip_prefix("remote-").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[test]
fn each_side_sees_the_other_under_the_names_juju_gives_it() {
    let mut s = sites(2, 1);
    let (central, edge, stand_in) = (s.central, s.edge, s.stand_in.clone());
    assert!(is_stand_in_name(&stand_in), "{stand_in}");
    // Relation ids are per model.
    assert_eq!((edge, central), (1, 2));
    // The consumer's units meet the offer's units under the offer's local name.
    let b = s.take_of("b/0", "backend-");
    for n in 0..2 {
        let joined = format!(
            "backend-relation-joined remote_unit=central-db/{n} remote_app=central-db departing= relation=backend:{edge}"
        );
        assert!(b.contains(&joined), "{b:#?}");
    }
    assert_eq!(
        b[0],
        format!(
            "backend-relation-created remote_unit= remote_app=central-db departing= relation=backend:{edge}"
        )
    );
    // The offering side's units meet `remote-<token>/<n>`.
    let a = s.take_of("a/1", "db-");
    let lines: Vec<String> = [
        "created remote_unit=",
        &format!("joined remote_unit={stand_in}/0"),
        &format!("changed remote_unit={stand_in}/0"),
    ]
    .iter()
    .map(|what| {
        format!("db-relation-{what} remote_app={stand_in} departing= relation=db:{central}")
    })
    .collect();
    assert_eq!(a, lines);
    // relation-list and JUJU_MODEL_NAME as each side's hooks see them.
    let (code, out, _) = s.call(
        "central",
        "a/0",
        &format!("echo $JUJU_MODEL_NAME; relation-list -r db:{central}; relation-list --app -r db:{central}"),
    );
    assert_eq!(
        (code, out),
        (0, format!("central\n{stand_in}/0\n{stand_in}\n"))
    );
    let (code, out, _) = s.call(
        "edge",
        "b/0",
        &format!("echo $JUJU_MODEL_NAME; relation-list -r backend:{edge}; relation-list --app -r backend:{edge}"),
    );
    assert_eq!(
        (code, out),
        (
            0,
            "edge\ncentral-db/0\ncentral-db/1\ncentral-db\n".to_owned()
        )
    );
    // `juju show-unit` lists the remote units in scope, with their data.
    let shown = s.c.model("edge").unwrap().show_unit("b/0");
    assert!(
        shown.contains("    related-units:\n      central-db/0:\n        in-scope: true\n"),
        "{shown}"
    );
    let edge_model = s.c.model("edge").unwrap();
    assert_eq!(
        edge_model.units("central-db"),
        ["central-db/0", "central-db/1"]
    );
    assert!(s.c.model("central").unwrap().units("central-db").is_empty());
    assert_eq!(
        s.c.model("central").unwrap().units(&stand_in),
        [format!("{stand_in}/0")]
    );
}

#[test]
fn units_added_and_removed_in_one_model_join_and_depart_in_the_other() {
    let mut s = sites(1, 1);
    let (central, edge, stand_in) = (s.central, s.edge, s.stand_in.clone());
    s.take("a/0");
    s.take("b/0");
    s.c.model_mut("central").unwrap().add_unit("a").unwrap();
    s.c.model_mut("edge").unwrap().add_unit("b").unwrap();
    s.c.settle().unwrap();
    let b0 = s.take("b/0");
    assert!(
        b0.contains(&format!("backend-relation-joined remote_unit=central-db/1 remote_app=central-db departing= relation=backend:{edge}")),
        "{b0:#?}"
    );
    let a0 = s.take("a/0");
    assert!(
        a0.contains(&format!("db-relation-joined remote_unit={stand_in}/1 remote_app={stand_in} departing= relation=db:{central}")),
        "{a0:#?}"
    );
    let b1 = s.take("b/1");
    for n in 0..2 {
        assert!(
            b1.iter().any(|h| h.starts_with(&format!(
                "backend-relation-joined remote_unit=central-db/{n} "
            ))),
            "{b1:#?}"
        );
    }
    s.c.model_mut("central")
        .unwrap()
        .remove_unit("a/1")
        .unwrap();
    s.c.settle().unwrap();
    for unit in ["b/0", "b/1"] {
        let hooks = s.take(unit);
        assert_eq!(
            hooks,
            [format!(
                "backend-relation-departed remote_unit=central-db/1 remote_app=central-db departing=central-db/1 relation=backend:{edge}"
            )],
            "{unit}"
        );
    }
    assert_eq!(
        s.c.model("edge").unwrap().units("central-db"),
        ["central-db/0"]
    );
    let (_, out, _) = s.call("edge", "b/1", &format!("relation-list -r backend:{edge}"));
    assert_eq!(out, "central-db/0\n");
}

#[test]
fn only_the_leader_writes_its_application_bag_on_either_side() {
    let mut s = sites(2, 2);
    let (central, edge) = (s.central, s.edge);
    let refused = (1, "ERROR cannot write relation settings\n".to_owned());
    let (code, _, err) = s.call(
        "central",
        "a/1",
        &format!("relation-set -r db:{central} --app k=v"),
    );
    assert_eq!((code, err), refused);
    let (code, _, err) = s.call(
        "edge",
        "b/1",
        &format!("relation-set -r backend:{edge} --app k=v"),
    );
    assert_eq!((code, err), refused);
    assert!(s.data("edge", edge, "central-db").is_empty());
    assert!(s.data("central", central, &s.stand_in.clone()).is_empty());
    // The leaders' writes reach the other model, under the name it knows the writer by.
    let (code, _, _) = s.call(
        "central",
        "a/0",
        &format!("relation-set -r db:{central} --app k=from-central"),
    );
    assert_eq!(code, 0);
    let (code, _, _) = s.call(
        "edge",
        "b/0",
        &format!("relation-set -r backend:{edge} --app k=from-edge"),
    );
    assert_eq!(code, 0);
    let (code, out, _) = s.call(
        "edge",
        "b/1",
        &format!("relation-get -r backend:{edge} --app k central-db"),
    );
    assert_eq!((code, out), (0, "from-central\n".to_owned()));
    let stand_in = s.stand_in.clone();
    let (code, out, _) = s.call(
        "central",
        "a/1",
        &format!("relation-get -r db:{central} --app k {stand_in}"),
    );
    assert_eq!((code, out), (0, "from-edge\n".to_owned()));
    // A non-leader reads no application bag of its own, on a cross-model relation as on any.
    let (code, _, err) = s.call(
        "edge",
        "b/1",
        &format!("relation-get -r backend:{edge} --app - b"),
    );
    assert_eq!((code, err), (1, "ERROR permission denied\n".to_owned()));
}

#[test]
fn a_secret_granted_across_the_relation_is_the_consumers_to_read() {
    let mut s = sites(1, 1);
    let central = s.central;
    s.c.model_mut("edge")
        .unwrap()
        .deploy("bystander", &common::probe_charm(), 1, Map::new())
        .unwrap();
    let (code, uri, _) = s.call(
        "central",
        "a/0",
        &format!(
            "u=$(secret-add password=one) && secret-grant \"$u\" -r db:{central} && echo \"$u\""
        ),
    );
    let uri = uri.trim().to_owned();
    let central_uuid = s.c.model("central").unwrap().world().model_uuid.clone();
    assert_eq!(code, 0);
    assert!(
        uri.starts_with(&format!("secret://{central_uuid}/")),
        "{uri}"
    );
    let get = format!("secret-get --format=json {uri}");
    let (code, out, err) = s.call("edge", "b/0", &get);
    assert_eq!(
        (code, out.as_str()),
        (0, "{\"password\":\"one\"}\n"),
        "{err}"
    );
    // Only the application it was granted to.
    let (code, _, err) = s.call("edge", "bystander/0", &get);
    assert_eq!((code, err.as_str()), (1, "ERROR permission denied\n"));
    // A new revision: the consumer hears of it and reads it.
    s.take("b/0");
    let (code, _, _) = s.call("central", "a/0", &format!("secret-set {uri} password=two"));
    assert_eq!(code, 0);
    let hooks = s.take("b/0");
    assert!(
        hooks.iter().any(|h| h.starts_with("secret-changed")),
        "{hooks:#?}"
    );
    let (_, out, _) = s.call(
        "edge",
        "b/0",
        &format!("secret-get --refresh {uri} password"),
    );
    assert_eq!(out, "two\n");
    // The other model keeps it as its owner's: `juju show-secret` in edge lists none.
    assert_eq!(s.c.model("edge").unwrap().show_secret_reveal(), "{}\n");
    // Revoked: it is gone from the consumer.
    s.call(
        "central",
        "a/0",
        &format!("secret-revoke {uri} -r db:{central}"),
    );
    let (code, _, err) = s.call("edge", "b/0", &get);
    assert_eq!(
        (code, err),
        (1, format!("ERROR secret \"{uri}\" not found\n"))
    );
}

#[test]
fn before_juju_3_3_no_secret_crosses_models() {
    let mut s = sites_on("3.2.4", 1, 1);
    let central = s.central;
    let (_, uri, _) = s.call(
        "central",
        "a/0",
        &format!(
            "u=$(secret-add password=one) && secret-grant \"$u\" -r db:{central} && echo \"$u\""
        ),
    );
    let uri = uri.trim().to_owned();
    let (code, _, err) = s.call("edge", "b/0", &format!("secret-get {uri}"));
    assert_eq!(
        (code, err),
        (1, format!("ERROR secret \"{uri}\" not found\n"))
    );
}

#[test]
fn removing_the_relation_on_either_side_ends_it_on_both() {
    for side in ["edge", "central"] {
        let mut s = sites(1, 2);
        let (central, edge, stand_in) = (s.central, s.edge, s.stand_in.clone());
        for unit in ["a/0", "b/0", "b/1"] {
            s.take(unit);
        }
        let id = if side == "edge" { edge } else { central };
        s.c.remove_relation(side, id).unwrap();
        s.c.settle().unwrap();
        for unit in ["b/0", "b/1"] {
            assert_eq!(
                s.take(unit),
                [
                    format!(
                        "backend-relation-departed remote_unit=central-db/0 remote_app=central-db departing=central-db/0 relation=backend:{edge}"
                    ),
                    format!(
                        "backend-relation-broken remote_unit= remote_app=central-db departing= relation=backend:{edge}"
                    ),
                ],
                "{side} removed it; {unit}"
            );
        }
        let a = s.take("a/0");
        for n in 0..2 {
            let departed = format!(
                "db-relation-departed remote_unit={stand_in}/{n} remote_app={stand_in} departing={stand_in}/{n} relation=db:{central}"
            );
            assert!(a.contains(&departed), "{side} removed it; {a:#?}");
        }
        assert_eq!(
            a.last().unwrap(),
            &format!(
                "db-relation-broken remote_unit= remote_app={stand_in} departing= relation=db:{central}"
            )
        );
        assert!(s.c.cross_model_relations().is_empty());
        // The offering side forgets the consumer; the consuming side keeps the offer.
        let central_world = s.c.model("central").unwrap().world();
        assert!(!central_world.apps.contains_key(&stand_in));
        assert!(!central_world.relations.contains_key(&central));
        drop(central_world);
        assert!(
            s.c.model("edge")
                .unwrap()
                .world()
                .apps
                .contains_key("central-db")
        );
    }
}

#[test]
fn a_cut_off_model_hears_nothing_until_restored_then_gets_what_changed() {
    let mut s = sites(1, 1);
    let (central, edge) = (s.central, s.edge);
    let stand_in = s.stand_in.clone();
    s.c.cut("edge").unwrap();
    assert!(s.c.is_cut("edge"));
    s.take("b/0");
    s.take("a/0");
    s.call(
        "central",
        "a/0",
        &format!("relation-set -r db:{central} --app version=2"),
    );
    s.call(
        "edge",
        "b/0",
        &format!("relation-set -r backend:{edge} wants=more"),
    );
    s.c.model_mut("central").unwrap().add_unit("a").unwrap();
    s.c.settle().unwrap();
    // Each side's hooks ran, but nothing crossed.
    assert_eq!(
        s.take("b/0"),
        ["update-status remote_unit= remote_app= departing= relation="]
    );
    assert!(s.take_of("a/0", "db-").is_empty());
    let (_, out, _) = s.call(
        "edge",
        "b/0",
        &format!("relation-get -r backend:{edge} --app version central-db"),
    );
    assert_eq!(out, "");
    assert_eq!(
        s.c.model("edge").unwrap().units("central-db"),
        ["central-db/0"]
    );
    assert!(
        !s.data("central", central, &format!("{stand_in}/0"))
            .contains_key("wants")
    );
    s.take("b/0");
    s.take("a/0");
    // Restored: the changed bags arrive as relation-changed, the new unit joins.
    s.c.restore("edge").unwrap();
    s.c.settle().unwrap();
    let mut b = s.take("b/0");
    b.sort();
    assert_eq!(
        b,
        [
            format!(
                "backend-relation-changed remote_unit= remote_app=central-db departing= relation=backend:{edge}"
            ),
            format!(
                "backend-relation-changed remote_unit=central-db/1 remote_app=central-db departing= relation=backend:{edge}"
            ),
            format!(
                "backend-relation-joined remote_unit=central-db/1 remote_app=central-db departing= relation=backend:{edge}"
            ),
        ]
    );
    assert_eq!(
        s.take_of("a/0", "db-"),
        [format!(
            "db-relation-changed remote_unit={stand_in}/0 remote_app={stand_in} departing= relation=db:{central}"
        )]
    );
    let (_, out, _) = s.call(
        "edge",
        "b/0",
        &format!("relation-get -r backend:{edge} --app version central-db"),
    );
    assert_eq!(out, "2\n");
    assert_eq!(
        s.data("central", central, &format!("{stand_in}/0"))
            .get("wants")
            .map(String::as_str),
        Some("more")
    );
}

#[test]
fn a_relation_removed_while_cut_off_ends_on_the_other_side_once_restored() {
    let mut s = sites(1, 1);
    let (central, edge) = (s.central, s.edge);
    s.take("a/0");
    s.c.cut("central").unwrap();
    s.c.remove_relation("edge", edge).unwrap();
    s.c.settle().unwrap();
    assert!(s.take("a/0").is_empty());
    assert!(s.c.cross_model_relation("central", central).is_some());
    s.c.restore("central").unwrap();
    s.c.settle().unwrap();
    let a = s.take("a/0");
    assert_eq!(a.len(), 2, "{a:#?}");
    assert!(a[0].starts_with("db-relation-departed"), "{a:#?}");
    assert!(a[1].starts_with("db-relation-broken"), "{a:#?}");
    assert!(s.c.cross_model_relations().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Scripted charms: a request from each consumer unit, one answer from the provider's leader.

/// What the scripted charms saw, by unit: the data they read in their last hook about it.
type Seen = Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>;

/// Offered: answers each remote unit's `service` request in its application bag, with the
/// units it served (by the names its model gives them), and a secret granted to the relation.
struct Provider {
    seen: Seen,
    secret: Option<String>,
}

impl ScriptedCharm for Provider {
    fn metadata(&self) -> &str {
        "name: registry\nprovides:\n  registry:\n    interface: registry\n"
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        if !hook.hook_name().starts_with("registry-relation-")
            || hook.hook_name().ends_with("-broken")
            || !hook.is_leader()?
        {
            return Ok(());
        }
        let Some(relation) = hook.relation() else {
            return Ok(());
        };
        let mut served = Vec::new();
        for unit in hook.relation_list(&relation)? {
            let bag = hook.relation_get(&relation, &unit, false)?;
            if let Some(service) = bag.get("service") {
                served.push(format!("{unit}={service}"));
            }
        }
        let remote_app = hook.event.remote_app.clone().unwrap_or_default();
        let theirs = hook.relation_get(&relation, &remote_app, true)?;
        self.seen
            .lock()
            .unwrap()
            .insert(hook.unit.clone(), theirs.clone());
        if self.secret.is_none() {
            let uri = hook.tool("secret-add", &["token=t0ken"])?.trim().to_owned();
            hook.tool("secret-grant", &[&uri, "-r", &relation])?;
            self.secret = Some(uri);
        }
        let uri = self.secret.clone().unwrap_or_default();
        hook.relation_set(
            &relation,
            true,
            &[("served", &served.join(" ")), ("token-secret", &uri)],
        )
    }
}

/// Consumes the offer: each unit asks for a service; it records the provider's answer and the
/// secret's content.
struct Consumer {
    seen: Seen,
}

impl ScriptedCharm for Consumer {
    fn metadata(&self) -> &str {
        "name: app\nrequires:\n  registry:\n    interface: registry\n"
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        let Some(relation) = hook.relation() else {
            return Ok(());
        };
        let unit = hook.unit.clone();
        match hook.hook_name() {
            "registry-relation-joined" => {
                hook.relation_set(&relation, false, &[("service", &format!("svc-{unit}"))])?;
                if hook.is_leader()? {
                    hook.relation_set(&relation, true, &[("tier", "edge")])?;
                }
            }
            "registry-relation-changed" => {
                let remote_app = hook.event.remote_app.clone().unwrap_or_default();
                let mut answer = hook.relation_get(&relation, &remote_app, true)?;
                if let Some(uri) = answer.get("token-secret").cloned() {
                    let token = hook.tool("secret-get", &[&uri, "token"])?;
                    answer.insert("token".to_owned(), token.trim().to_owned());
                }
                answer.insert("remote-app".to_owned(), remote_app);
                self.seen.lock().unwrap().insert(unit, answer);
            }
            _ => {}
        }
        Ok(())
    }
}

#[test]
fn scripted_charms_exchange_data_and_a_secret_across_models() {
    let mut c = Controller::new();
    let provider_seen = Seen::default();
    let consumer_seen = Seen::default();
    c.add_model("central")
        .unwrap()
        .deploy_scripted(
            "registry",
            Box::new(Provider {
                seen: Arc::clone(&provider_seen),
                secret: None,
            }),
            2,
        )
        .unwrap();
    c.add_model("edge")
        .unwrap()
        .deploy_scripted(
            "app",
            Box::new(Consumer {
                seen: Arc::clone(&consumer_seen),
            }),
            2,
        )
        .unwrap();
    c.offer("central", "registry:registry", None).unwrap();
    c.consume("edge", "admin/central.registry", None).unwrap();
    let edge = c.relate("edge", "app", "registry").unwrap();
    c.settle().unwrap();
    let stand_in = c
        .cross_model_relation("edge", edge)
        .unwrap()
        .offer
        .remote_app
        .clone();
    // The provider read each consumer unit's request under the name its model gives it, and
    // the consumer's application bag.
    let theirs = provider_seen.lock().unwrap()["registry/0"].clone();
    assert_eq!(
        theirs,
        BTreeMap::from([("tier".to_owned(), "edge".to_owned())])
    );
    assert!(!provider_seen.lock().unwrap().contains_key("registry/1"));
    // Every consumer unit got the answer, and read the secret granted across.
    for unit in ["app/0", "app/1"] {
        let answer = consumer_seen.lock().unwrap()[unit].clone();
        assert_eq!(
            answer["served"],
            format!("{stand_in}/0=svc-app/0 {stand_in}/1=svc-app/1"),
            "{unit}"
        );
        assert_eq!(answer["token"], "t0ken", "{unit}");
        assert_eq!(answer["remote-app"], "registry", "{unit}");
    }
}

#[test]
fn a_remote_application_is_managed_from_its_own_model_only() {
    let mut s = sites(1, 1);
    let stand_in = s.stand_in.clone();
    let edge = s.c.model_mut("edge").unwrap();
    let refusals = [
        edge.add_unit("central-db").err(),
        edge.remove_unit("central-db/0").err(),
        edge.set_config("central-db", Map::new()).err(),
        edge.stop_agent("central-db/0").err(),
        edge.set_leader("central-db/0").err(),
        edge.run_action("central-db/0", "x", Map::new()).err(),
    ];
    for (n, refusal) in refusals.iter().enumerate() {
        assert!(refusal.is_some(), "operation {n} was not refused");
    }
    // The offering side cannot relate to its consumer's stand-in itself.
    let central = s.c.model_mut("central").unwrap();
    assert!(
        central
            .relate("other:db", &format!("{stand_in}:backend"))
            .is_err()
    );
    assert!(central.add_unit(&stand_in).is_err());
    // Nothing ran on the remote units.
    s.c.settle().unwrap();
    for (model, unit) in [
        ("edge", "central-db/0".to_owned()),
        ("central", format!("{stand_in}/0")),
    ] {
        let log = s.c.model(model).unwrap().hook_log();
        assert!(log.iter().all(|r| r.unit != unit), "{unit} ran hooks");
    }
}
