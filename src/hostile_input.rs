//! Hostile input that reaches the charm only through its hooks, as properties under the
//! simulator: a peer's cluster data, hacluster's reply and action parameters. Each case runs the
//! charm's hook on that data: it never panics, and a hook that refuses the data says which key
//! (tests/hostile_input.rs has the properties of the pure parsers and of every config option).

use std::path::Path;

use juju_sim::state::HookEvent;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use crate::host::fs::Entry;
use crate::host::net::Interface;
use crate::paths;
use crate::testing::Sim;

/// Cases per property: each runs a hook under the simulator.
const CASES: u32 = 64;

fn runner() -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases: CASES,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

/// Text that means something to a format the charm reads or writes, or nothing at all; now and
/// then long.
fn hostile_text() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "\n",
            "\r",
            "\n[DEFAULT]\n",
            "%(x)s",
            "$x",
            "\\$",
            "\"",
            "'",
            "{{ x }}",
            "{% x %}",
            "\0",
            "\u{1b}",
            "\u{2028}",
            "é",
            "🔑",
            " ",
            "None",
            "true",
            "-1",
            "0",
            "1",
            "18446744073709551616",
            "10.0.0.1",
            "::1",
            "[::1]",
            "keystone/1",
            "secret:abc",
            "{\"0\": \"x\"}",
            "[]",
            "null",
            "\u{feff}",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9.:/-]{1,10}",
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        30 => prop::collection::vec(piece.clone(), 0..6).prop_map(|p| p.concat()),
        1 => piece.prop_map(|p| p.repeat((1 << 16) / p.len().max(1))),
    ]
    .boxed()
}

/// Runs `hook` on `unit` as a change of `remote`'s data on relation `relation`.
fn relation_changed(sim: &mut Sim, unit: &str, hook: &str, relation: u32, remote: &str) -> bool {
    let mut event = HookEvent::simple(hook);
    event.relation = Some(relation);
    event.remote_unit = Some(remote.to_owned());
    event.remote_app = remote.split('/').next().map(str::to_owned);
    sim.model.world().queue(unit, event);
    sim.model.settle_unit(unit).is_ok()
}

fn unit_bag(sim: &Sim, relation: u32, unit: &str) -> crate::juju::Databag {
    sim.model.world().relations[&relation].unit_data[unit].clone()
}

fn set_unit_bag(sim: &Sim, relation: u32, unit: &str, bag: crate::juju::Databag) {
    let mut world = sim.model.world();
    let relation = world.relations.get_mut(&relation).expect("the relation");
    relation.unit_data.insert(unit.to_owned(), bag);
}

/// A hook that failed says which key in its ERROR log; one that succeeded left the unit out of
/// error and its haproxy.cfg one line per line.
fn check_outcome(sim: &Sim, unit: &str, ok: bool, key: &str) -> Result<(), TestCaseError> {
    if !ok {
        let errors = sim.logs(unit, "ERROR");
        prop_assert!(
            errors.iter().any(|line| line.contains(key)),
            "the hook failed without naming {key}: {errors:?}"
        );
        return Ok(());
    }
    let status = sim.status(unit);
    prop_assert!(!status.starts_with("error"), "{status}");
    if let Some(Entry::File { content, .. }) = sim
        .machine(unit)
        .1
        .files
        .entry(Path::new(paths::HAPROXY_CFG))
    {
        let text = String::from_utf8(content).expect("haproxy.cfg is text");
        prop_assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "haproxy.cfg: {text}"
        );
    }
    Ok(())
}

/// What a peer writes in its own bag, and the leader reads.
const PEER_UNIT_KEYS: [&str; 6] = [
    "fernet-generation",
    "fernet-fingerprint",
    "keystone-ready",
    "ingress-address",
    "private-address",
    "x-unknown",
];

#[test]
fn a_peers_hostile_cluster_data_never_panics_the_leader_and_is_refused_by_key() {
    let sim = Sim::ready(2);
    let relation = sim.model.relation_id("keystone", "cluster").unwrap();
    let good = unit_bag(&sim, relation, "keystone/1");
    let sim = std::cell::RefCell::new(sim);
    let strategy = (
        prop::sample::select(PEER_UNIT_KEYS.to_vec()),
        hostile_text(),
    );
    let result = runner().run(&strategy, |(key, value)| {
        let mut sim = sim.borrow_mut();
        let mut bag = good.clone();
        bag.insert(key.to_owned(), value);
        set_unit_bag(&sim, relation, "keystone/1", bag);
        let ok = relation_changed(
            &mut sim,
            "keystone/0",
            "cluster-relation-changed",
            relation,
            "keystone/1",
        );
        let outcome = check_outcome(&sim, "keystone/0", ok, key);
        set_unit_bag(&sim, relation, "keystone/1", good.clone());
        outcome
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// What the leader writes in the application bag, and every other unit reads.
const PEER_APP_KEYS: [&str; 11] = [
    "fernet-generation",
    "fernet-fingerprint",
    "fernet-last-rotation",
    "fernet-secret-id",
    "db-initialised",
    "keystone-bootstrapped",
    "units-ready",
    "leader-ready",
    "admin-generation",
    "admin-secret-id",
    "x-unknown",
];

#[test]
fn a_hostile_peer_application_bag_never_panics_a_unit_and_is_refused_by_key() {
    let sim = Sim::ready(2);
    let relation = sim.model.relation_id("keystone", "cluster").unwrap();
    let good = sim.peer_app_bag();
    let sim = std::cell::RefCell::new(sim);
    let strategy = (prop::sample::select(PEER_APP_KEYS.to_vec()), hostile_text());
    let result = runner().run(&strategy, |(key, value)| {
        let mut sim = sim.borrow_mut();
        let set_app_bag = |sim: &Sim, bag: crate::juju::Databag| {
            let mut world = sim.model.world();
            let relation = world.relations.get_mut(&relation).expect("the relation");
            relation.app_data.insert("keystone".to_owned(), bag);
        };
        let mut bag = good.clone();
        bag.insert(key.to_owned(), value);
        set_app_bag(&sim, bag);
        let ok = relation_changed(
            &mut sim,
            "keystone/1",
            "cluster-relation-changed",
            relation,
            "keystone/0",
        );
        let outcome = check_outcome(&sim, "keystone/1", ok, key);
        set_app_bag(&sim, good.clone());
        outcome
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn hostile_hacluster_replies_never_panic_or_block_the_unit() {
    let mut sim = Sim::with_database(1, json!({"vip": "10.0.0.100"}));
    sim.machine("keystone/0").1.interfaces.set(vec![
        Interface::parse("lo", &["127.0.0.1/8"]),
        Interface::parse("eth0", &["10.0.0.10/24"]),
    ]);
    sim.model
        .deploy_scripted(
            "hacluster",
            Box::new(juju_sim::scripted::HaCluster::default()),
            1,
        )
        .unwrap();
    sim.model.relate("keystone:ha", "hacluster:ha").unwrap();
    sim.settle();
    assert_eq!(sim.status("keystone/0"), "active: Unit is ready");
    let relation = sim.model.relation_id("keystone", "ha").unwrap();
    let good = unit_bag(&sim, relation, "hacluster/0");
    let sim = std::cell::RefCell::new(sim);
    let keys = prop::sample::select(vec!["clustered", "json_resources", "x-unknown"]);
    let result = runner().run(&(keys, hostile_text()), |(key, value)| {
        let mut sim = sim.borrow_mut();
        let mut bag = good.clone();
        bag.insert(key.to_owned(), value);
        set_unit_bag(&sim, relation, "hacluster/0", bag);
        let ok = relation_changed(
            &mut sim,
            "keystone/0",
            "ha-relation-changed",
            relation,
            "hacluster/0",
        );
        check_outcome(&sim, "keystone/0", ok, key)?;
        let status = sim.status("keystone/0");
        prop_assert!(ok && !status.starts_with("blocked"), "{status}");
        set_unit_bag(&sim, relation, "hacluster/0", good.clone());
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// The declared parameters of every action, from actions.yaml: (action, parameter, type).
fn declared_parameters() -> Vec<(String, Option<(String, String)>)> {
    let text = include_str!("../actions.yaml");
    let actions: Map<String, Value> = serde_norway::from_str(text).expect("actions.yaml");
    let mut declared = Vec::new();
    for (name, action) in actions {
        let params = action.get("params").and_then(Value::as_object);
        match params {
            None => declared.push((name, None)),
            Some(params) => {
                for (param, schema) in params {
                    let kind = schema["type"].as_str().unwrap_or("string").to_owned();
                    declared.push((name.clone(), Some((param.clone(), kind))));
                }
            }
        }
    }
    declared
}

/// A value of the declared type (Juju refuses any other before the charm runs).
fn param_value(kind: &str) -> BoxedStrategy<Value> {
    match kind {
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        _ => prop_oneof![
            hostile_text().prop_map(Value::String),
            Just(Value::String("nova".into())),
        ]
        .boxed(),
    }
}

#[test]
fn every_actions_parameters_are_taken_or_refused_by_name() {
    use juju_sim::scripted::{IdentityConsumer, IdentityInterface};
    let mut sim = Sim::ready(2);
    let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
    sim.model
        .deploy_scripted("nova", Box::new(nova), 1)
        .unwrap();
    sim.model.relate("keystone", "nova").unwrap();
    sim.settle();
    let task = sim.action("keystone/0", "list-service-usernames", json!({}));
    assert_eq!(
        task.results["usernames"], "nova",
        "a service user to rotate"
    );
    let sim = std::cell::RefCell::new(sim);
    let declared = declared_parameters();
    assert_eq!(
        declared
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        crate::actions::ACTIONS.into_iter().collect(),
        "actions.yaml and the charm declare the same actions"
    );
    for (action, param) in declared {
        let Some((param, kind)) = param else {
            continue;
        };
        let result = runner().run(&param_value(&kind), |value| {
            let mut sim = sim.borrow_mut();
            let task = sim.action("keystone/0", &action, json!({ param.clone(): value }));
            match task.status.as_str() {
                "completed" => {}
                "failed" => {
                    let message = task.message.clone().unwrap_or_default();
                    prop_assert!(
                        message.contains(&param),
                        "{action}: the refusal of {value:?} does not name {param}: {message:.300}"
                    );
                    prop_assert!(
                        message.len() <= crate::juju::process::MAX_MESSAGE + 64,
                        "{action}: a refusal of {} bytes",
                        message.len()
                    );
                }
                other => prop_assert!(false, "{action}: {other}: {task:?}"),
            }
            Ok(())
        });
        if let Err(failure) = result {
            panic!("action {action}, parameter {param}: {failure}");
        }
    }
    // Another type, or an undeclared parameter: Juju refuses the action before the charm runs
    // (the simulator as Juju does), so the charm never sees one.
    let mut sim = sim.borrow_mut();
    for params in [
        json!({"force": "yes"}),
        json!({"service-user": 5}),
        json!({"x-unknown": "\n"}),
    ] {
        let action = match params.as_object().unwrap().keys().next().unwrap().as_str() {
            "force" => "rotate-fernet",
            _ => "rotate-service-user-password",
        };
        let refused =
            sim.model
                .run_action_now("keystone/0", action, params.as_object().cloned().unwrap());
        assert!(refused.is_err(), "{params}");
    }
}
