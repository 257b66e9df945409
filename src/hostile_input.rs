//! Hostile input that reaches the charm only through its hooks, as properties under the
//! simulator: a peer's cluster data, hacluster's reply, action parameters, and what a fernet key
//! source and its sites say to each other. Each case runs the charm's hook on that data: it
//! never panics, and a hook that refuses the data says which key; from another site's data a
//! leader takes nothing it cannot use and shows nothing of it in a status (tests/hostile_input.rs
//! has the properties of the pure parsers and of every config option).

use std::path::Path;

use juju_sim::CrossModelRelation;
use juju_sim::state::HookEvent;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use crate::host::fs::Entry;
use crate::host::net::Interface;
use crate::paths;
use crate::testing::{Sim, Sites};

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
            Box::new(juju_sim_fixtures::scripted::HaCluster::default()),
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
    use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
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

// ---------------------------------------------------------------------------------------------
// fernet-keys between sites (interface keystone-fernet-keys): a source's offer as a consuming
// site's leader takes it, and a site's answer as the source's leader takes it.

const LEADER: &str = "keystone/0";

/// `central` (1 unit) is the source of `edge` (2 units), related and settled; their link.
fn central_and_edge() -> (Sites, CrossModelRelation) {
    let mut sites = Sites::new("3.6.1", &[("central", 1), ("edge", 2)]);
    sites.relate("central", "edge");
    sites.settle();
    let link = sites.controller.cross_model_relations()[0].clone();
    (sites, link)
}

/// Hostile text, or a 1 MiB value (digits, or a name's letters).
fn hostile_or_huge() -> BoxedStrategy<String> {
    prop_oneof![
        20 => hostile_text(),
        1 => prop::sample::select(vec!["1", "a"]).prop_map(|c| c.repeat(1 << 20)),
    ]
    .boxed()
}

/// A bag value from its template: `{g}` is the genuine generation, `{g+1}` and `{g-1}` its
/// neighbours, `{fp}` the genuine fingerprint, `{FP}` that in upper case and `{fp63}` that one
/// digit short; the rest is literal.
fn filled(template: &str, generation: u64, fingerprint: &str) -> String {
    template
        .replace("{g}", &generation.to_string())
        .replace("{g+1}", &generation.saturating_add(1).to_string())
        .replace("{g-1}", &generation.saturating_sub(1).to_string())
        .replace("{fp}", fingerprint)
        .replace("{FP}", &fingerprint.to_uppercase())
        .replace("{fp63}", fingerprint.get(..63).unwrap_or_default())
}

/// A generation: its own, spelled otherwise, another, or none.
fn generation_template() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "{g}", "+{g}", "0{g}", "{g} ", " {g}", "{g}\n", "{g}\n[DEFAULT]", "{g}.0", "{g}e0",
            "-{g}", "{g+1}", "{g-1}", "\"{g}\"", "[{g}]", "{\"generation\": {g}}", "{g}%",
            "{g}\0", "0x{g}", "18446744073709551615", "18446744073709551616", "-1", "",
        ])
        .prop_map(str::to_owned),
        1 => (hostile_text(), any::<bool>()).prop_map(|(text, before)| match before {
            true => format!("{text}{{g}}"),
            false => format!("{{g}}{text}"),
        }),
        1 => hostile_or_huge(),
    ]
    .boxed()
}

/// Whether `text` is a decimal numeral of `n` (a `+` or leading zeros spell the same number).
fn numeral_of(text: &str, n: u64) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.trim_start_matches('0') == n.to_string().trim_start_matches('0')
}

/// A status message is one line of text.
fn plain_message(status: &str) -> bool {
    !status
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

/// What becomes of the keys' JSON when they travel in the bag: one field set to another JSON
/// value or removed, or the whole of it replaced.
#[derive(Debug, Clone)]
enum KeysJson {
    Genuine,
    Field(&'static [&'static str], Option<Value>),
    Text(String),
}

impl KeysJson {
    fn apply(&self, genuine: &str) -> String {
        let mut wire: Value = serde_json::from_str(genuine).expect("the genuine keys");
        match self {
            KeysJson::Genuine => {}
            KeysJson::Text(text) => return text.clone(),
            KeysJson::Field(path, value) => {
                let (last, parents) = path.split_last().expect("a path");
                let mut at = &mut wire;
                for name in parents {
                    at = &mut at[*name];
                }
                match (value, at.as_object_mut()) {
                    (Some(value), Some(object)) => {
                        object.insert((*last).to_owned(), value.clone());
                    }
                    (None, Some(object)) => {
                        object.remove(*last);
                    }
                    _ => {}
                }
            }
        }
        wire.to_string()
    }
}

/// The keys' JSON as a source may send it.
fn keys_json() -> BoxedStrategy<KeysJson> {
    const PATHS: &[&[&str]] = &[
        &["generation"],
        &["fernet"],
        &["credential"],
        &["fernet", "0"],
        &["fernet", "1"],
        &["credential", "4294967295"],
        &["fernet", "+1"],
        &["fernet", "x"],
        &["x-unknown"],
    ];
    let value = prop_oneof![
        2 => hostile_text().prop_map(Value::String),
        2 => prop::sample::select(vec![
            json!(-1), json!(1.5), json!(1e30), json!(u64::MAX), json!("1"), json!(null),
            json!([]), json!({}), json!(["a"]), json!({"0": 1}), json!(true),
        ]),
    ];
    let valid_key = prop::array::uniform32(any::<u8>()).prop_map(|b| {
        use base64::Engine as _;
        Value::String(base64::engine::general_purpose::URL_SAFE.encode(b))
    });
    // A valid set, but not the one the offer describes.
    const KEY_PATHS: &[&[&str]] = &[
        &["fernet", "0"],
        &["fernet", "7"],
        &["credential", "1"],
        &["credential", "4294967295"],
    ];
    prop_oneof![
        2 => Just(KeysJson::Genuine),
        3 => (prop::sample::select(KEY_PATHS), valid_key)
            .prop_map(|(path, key)| KeysJson::Field(path, Some(key))),
        6 => (prop::sample::select(PATHS), prop::option::weighted(0.85, value))
            .prop_map(|(path, value)| KeysJson::Field(path, value)),
        1 => hostile_or_huge().prop_map(KeysJson::Text),
    ]
    .boxed()
}

/// A source's bag as a consuming site reads it, made hostile.
#[derive(Debug, Clone)]
struct SourceBag {
    /// The keys travel in the bag instead of the secret.
    in_bag: bool,
    keys: KeysJson,
    /// One key set to a value (see [`filled`]) or removed.
    edit: Option<(&'static str, Option<String>)>,
    extra: Vec<(String, String)>,
    /// The site holds the offered set already (else it takes it anew).
    held: bool,
}

const SOURCE_BAG_KEYS: [&str; 9] = [
    "generation",
    "fingerprint",
    "source",
    "db-initialised",
    "secret-id",
    "keys",
    "admin-digest",
    "admin-secret-id",
    "admin-credentials",
];

/// The genuine offer with one key hostile or gone, the keys perhaps in the bag and made
/// hostile there, and unknown keys.
fn source_bag() -> BoxedStrategy<SourceBag> {
    let value = |key: &'static str| -> BoxedStrategy<String> {
        match key {
            "generation" => generation_template(),
            "fingerprint" => prop_oneof![
                1 => prop::sample::select(vec![
                    "{FP}", "{fp63}", "{fp}0", "{fp}\n", " {fp63}", "\"{fp}\"", "{g}",
                ])
                .prop_map(str::to_owned),
                1 => "[0-9a-f]{64}",
                1 => hostile_or_huge(),
            ]
            .boxed(),
            "secret-id" | "admin-secret-id" => prop_oneof![
                1 => prop::sample::select(vec![
                    "secret:", "secret:x\n[DEFAULT]", "secret://x/y", "secret:%s", "-x",
                ])
                .prop_map(str::to_owned),
                2 => hostile_or_huge(),
            ]
            .boxed(),
            "admin-digest" => prop_oneof![
                1 => Just("{FP}".to_owned()),
                1 => "[0-9a-f]{64}",
                1 => hostile_or_huge(),
            ]
            .boxed(),
            // Passwords in the bag (as before Juju 3.3), of every wrong shape.
            "admin-credentials" => prop_oneof![
                1 => prop::sample::select(vec![
                    "{}", "[]", "null", "\"x\"",
                    r#"{"charm-admin-password": "x"}"#,
                    r#"{"charm-admin-password": "", "admin-password": ""}"#,
                    r#"{"charm-admin-password": 1, "admin-password": ["x"]}"#,
                    r#"{"charm-admin-password": "a\n[DEFAULT]", "admin-password": "b", "site-password-key": "k", "user-6e6f7661": "c"}"#,
                ])
                .prop_map(str::to_owned),
                2 => hostile_or_huge(),
            ]
            .boxed(),
            _ => hostile_or_huge(),
        }
    };
    let edit = prop::sample::select(SOURCE_BAG_KEYS.to_vec())
        .prop_flat_map(move |key| (Just(key), prop::option::weighted(0.9, value(key))));
    let extra = prop::collection::vec(
        (
            hostile_text().prop_map(|k| format!("x-{k}")),
            hostile_text(),
        ),
        0..3,
    );
    (
        any::<bool>(),
        keys_json(),
        prop::option::weighted(0.6, edit),
        extra,
        any::<bool>(),
    )
        .prop_map(|(in_bag, keys, edit, extra, held)| SourceBag {
            in_bag,
            keys,
            edit,
            extra,
            held,
        })
        .boxed()
}

fn set_app_bag(sites: &Sites, model: &str, relation: u32, app: &str, bag: crate::juju::Databag) {
    let mut world = sites.model(model).world();
    let relation = world.relations.get_mut(&relation).expect("the relation");
    relation.app_data.insert(app.to_owned(), bag);
}

/// Runs `hook` on `unit` of `model` as a change of `remote`'s data on `relation`, and then
/// whatever it queued in that model (the other models hear nothing of it).
fn site_relation_changed(
    sites: &mut Sites,
    model: &str,
    unit: &str,
    hook: &str,
    relation: u32,
    remote: &str,
) -> Result<(), String> {
    let model = sites
        .controller
        .model_mut(model)
        .map_err(|e| e.to_string())?;
    let mut event = HookEvent::simple(hook);
    event.relation = Some(relation);
    event.remote_unit = Some(format!("{remote}/0"));
    event.remote_app = Some(remote.to_owned());
    model.world().queue(unit, event);
    model.settle_unit(unit).map_err(|e| format!("{e:#}"))?;
    model.settle().map_err(|e| format!("{e:#}"))
}

/// Whether `text` is digits only: what the charm writes of a generation.
fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// What a consuming site's units show and hold after its leader read `case`: `held`, each
/// unit's key fingerprint before, and `fingerprint`, the offered set's.
fn check_site(
    sites: &Sites,
    relation: u32,
    case: &SourceBag,
    held: &[(&str, String)],
    fingerprint: &str,
    genuine_credentials: Option<&String>,
) -> Result<(), TestCaseError> {
    for (unit, before) in held {
        let status = sites.status("edge", unit);
        let note = status.strip_prefix("active: Unit is ready").unwrap_or("?");
        let from_source = note
            .strip_prefix(" (keys from central-keystone, generation ")
            .and_then(|n| n.strip_suffix(')'))
            .is_some_and(digits);
        prop_assert!(note.is_empty() || from_source, "{unit}: {status:?}");
        // The genuine set (merged with the site's own keys, as it was) is all a site may take
        // from these offers: it holds the same keys as before.
        let keys = sites.machine("edge", unit).0.keys.read();
        prop_assert!(
            matches!(&keys, Ok(Some(keys)) if keys.fingerprint() == *before),
            "{unit}: {keys:?}"
        );
    }
    let peer = sites.peer_app_bag("edge");
    // The source's credentials are taken only as the source made them.
    let credentials = peer.get(crate::peer_keys::FERNET_SOURCE_CREDENTIALS);
    prop_assert!(
        credentials.is_none_or(|d| Some(d) == genuine_credentials),
        "{credentials:?}"
    );
    let adopted = peer.get(crate::peer_keys::FERNET_SOURCE_FINGERPRINT);
    prop_assert!(adopted.is_none_or(|a| a == fingerprint), "{adopted:?}");
    // The genuine set in its genuine form is taken (the source's name is for its operator, and
    // the credentials are taken or not on their own).
    let benign = (!case.in_bag || matches!(case.keys, KeysJson::Genuine))
        && case
            .edit
            .as_ref()
            .is_none_or(|(key, _)| *key == "source" || key.starts_with("admin-"));
    prop_assert!(
        !benign || adopted.is_some(),
        "the genuine offer was not taken"
    );
    // The site answers with its own name and a generation.
    let answer = sites.model("edge").relation_data(relation, "keystone");
    prop_assert_eq!(
        answer.get("site").map(String::as_str),
        Some("edge.keystone")
    );
    let acknowledged = answer.get("acknowledged-generation");
    prop_assert!(acknowledged.is_some_and(|g| digits(g)), "{acknowledged:?}");
    Ok(())
}

#[test]
fn a_hostile_source_bag_never_panics_a_site_or_gets_adopted() {
    use crate::peer_keys::FERNET_SOURCE_FINGERPRINT;
    let (sites, link) = central_and_edge();
    let relation = link.consumer.relation;
    let source_app = link.consumer.remote_app.clone();
    let good = sites.model("edge").relation_data(relation, &source_app);
    let generation: u64 = good["generation"].parse().expect("a generation");
    let fingerprint = good["fingerprint"].clone();
    assert!(good.contains_key("admin-digest"), "{good:?}");
    let genuine_keys = sites
        .keys("central", LEADER)
        .to_bag_value(generation)
        .into_inner();
    let peer = sites
        .model("edge")
        .relation_id("keystone", "cluster")
        .expect("the peer relation");
    let set_adopted = |sites: &Sites, value: Option<&str>| {
        let mut world = sites.model("edge").world();
        let relation = world.relations.get_mut(&peer).expect("the peer relation");
        let bag = relation.app_data.entry("keystone".into()).or_default();
        match value {
            Some(v) => bag.insert(FERNET_SOURCE_FINGERPRINT.into(), v.into()),
            None => bag.remove(FERNET_SOURCE_FINGERPRINT),
        };
    };
    let sites = std::cell::RefCell::new(sites);
    let result = runner().run(&source_bag(), |case| {
        let mut sites = sites.borrow_mut();
        let held: Vec<(&str, String)> = ["keystone/0", "keystone/1"]
            .into_iter()
            .map(|u| (u, sites.keys("edge", u).fingerprint()))
            .collect();
        let mut bag = good.clone();
        if case.in_bag {
            bag.remove("secret-id");
            bag.insert("keys".into(), case.keys.apply(&genuine_keys));
        }
        match &case.edit {
            Some((key, Some(value))) => {
                bag.insert((*key).to_owned(), filled(value, generation, &fingerprint));
            }
            Some((key, None)) => {
                bag.remove(*key);
            }
            None => {}
        }
        bag.extend(case.extra.iter().cloned());
        set_app_bag(&sites, "edge", relation, &source_app, bag);
        if !case.held {
            set_adopted(&sites, None);
        }
        let ran = site_relation_changed(
            &mut sites,
            "edge",
            LEADER,
            "fernet-keys-source-relation-changed",
            relation,
            &source_app,
        );
        let outcome = match ran {
            Ok(()) => check_site(
                &sites,
                relation,
                &case,
                &held,
                &fingerprint,
                good.get("admin-digest"),
            ),
            Err(err) => Err(TestCaseError::fail(err)),
        };
        // The next case (and each shrinking step) starts from the genuine offer, held.
        set_app_bag(&sites, "edge", relation, &source_app, good.clone());
        set_adopted(&sites, Some(&fingerprint));
        outcome
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// A site's answer as its source reads it, made hostile.
#[derive(Debug, Clone)]
struct SiteBag {
    site: Option<String>,
    /// The acknowledged generation (see [`filled`]), or none.
    acknowledged: Option<String>,
    extra: Vec<(String, String)>,
}

/// A site's name (its own, refused ones, acceptable ones), its acknowledgement, unknown keys.
fn site_bag() -> BoxedStrategy<SiteBag> {
    let site = prop_oneof![
        2 => prop::sample::select(vec![
            "edge.keystone", "Edge.Keystone", "edge keystone", "edge.keystone\n",
            "edge.keystone\n[DEFAULT]", "", "edge.keystone\0", "édge.keystone", "edge_keystone",
            "edge.keystone%s", "\"edge.keystone\"", "remote-0123456789abcdef0123456789abcdef",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec![119usize, 120, 121, 1 << 20]).prop_map(|n| "a".repeat(n)),
        1 => "[a-z0-9.-]{1,20}",
        2 => hostile_or_huge(),
    ];
    let extra = prop::collection::vec(
        (
            hostile_text().prop_map(|k| format!("x-{k}")),
            hostile_text(),
        ),
        0..3,
    );
    (
        prop::option::weighted(0.9, site),
        prop::option::weighted(0.9, generation_template()),
        extra,
    )
        .prop_map(|(site, acknowledged, extra)| SiteBag {
            site,
            acknowledged,
            extra,
        })
        .boxed()
}

/// A name a status message may carry as the site's: what `valid_site` lets through.
fn plain_site_name(name: &str) -> bool {
    (1..=120).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

#[test]
fn a_hostile_site_bag_never_panics_the_source_or_counts_as_an_acknowledgement() {
    let (sites, link) = central_and_edge();
    let relation = link.offer.relation;
    let site_app = link.offer.remote_app.clone();
    let sites = std::cell::RefCell::new(sites);
    let result = runner().run(&site_bag(), |case| {
        let mut sites = sites.borrow_mut();
        let generation = |sites: &Sites| -> u64 {
            sites.peer_app_bag("central")["fernet-generation"]
                .parse()
                .expect("a generation")
        };
        let before = generation(&sites);
        let mut bag = crate::juju::Databag::new();
        if let Some(site) = &case.site {
            bag.insert("site".into(), site.clone());
        }
        let acknowledged = case.acknowledged.as_ref().map(|a| filled(a, before, ""));
        if let Some(acknowledged) = &acknowledged {
            bag.insert("acknowledged-generation".into(), acknowledged.clone());
        }
        bag.extend(case.extra.iter().cloned());
        set_app_bag(&sites, "central", relation, &site_app, bag);
        sites.make_rotation_due("central");
        // Whether every unit and site was seen holding the primary before this hook: else the
        // site's acknowledgement is news, and the key before the primary must stay a token
        // lifetime more (the site may have signed with it until now).
        let primary_everywhere = |sites: &Sites| {
            let times = |key: &str| -> std::collections::BTreeMap<u32, u64> {
                sites
                    .peer_app_bag("central")
                    .get(key)
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_default()
            };
            let primary = times("fernet-primary-since").keys().max().copied();
            primary.is_some_and(|p| times("fernet-primary-everywhere").contains_key(&p))
        };
        let held_before = primary_everywhere(&sites);
        let ran = site_relation_changed(
            &mut sites,
            "central",
            LEADER,
            "fernet-keys-relation-changed",
            relation,
            &site_app,
        );
        prop_assert!(ran.is_ok(), "{ran:?}");
        let status = sites.status("central", LEADER);
        prop_assert!(plain_message(&status), "{status:?}");
        let after = generation(&sites);
        if acknowledged
            .as_deref()
            .is_some_and(|a| numeral_of(a, before))
        {
            if held_before {
                prop_assert_eq!(
                    after,
                    before + 1,
                    "the site acknowledged, the rotation is due"
                );
            } else {
                prop_assert_eq!(after, before, "rotated as the site caught up");
                prop_assert!(
                    primary_everywhere(&sites),
                    "the acknowledgement did not count"
                );
            }
            prop_assert_eq!(status, "active: Unit is ready");
        } else {
            prop_assert_eq!(
                after,
                before,
                "rotated past a site that did not acknowledge"
            );
            let label = case
                .site
                .as_deref()
                .filter(|s| plain_site_name(s))
                .unwrap_or(&site_app);
            prop_assert_eq!(
                status,
                format!("active: Unit is ready (fernet rotation waiting for site {label})")
            );
        }
        // What the source offers stays plain, whatever the site says.
        let offered = sites.model("central").relation_data(relation, "keystone");
        for (key, value) in &offered {
            prop_assert!(plain_message(value), "{key}: {value:?}");
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
