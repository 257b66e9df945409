//! The `keystone-middleware` relation (requires, container-scoped): a subordinate that plugs a
//! middleware into Keystone. Each of its units sends `middleware_name` and
//! `subordinate_configuration`, the JSON charmhelpers' `SubordinateConfigContext` reads:
//! `{"keystone": {"/etc/keystone/keystone.conf": {"sections": {"<section>": [["<key>",
//! "<value>"], ...]}}}}`. Every option in it becomes a keystone.conf option, and Keystone
//! restarts when they change (keystone.conf changed). This unit sends `release`, the OpenStack
//! release of the Keystone installed (`caracal`), as the Python charm does.
//!
//! A unit whose configuration is not that JSON, or holds an option that cannot go into
//! keystone.conf on its own line, adds nothing of it: a note names the unit and the key. An
//! option the charm sets itself blocks the unit, naming the section and key.
//!
//! What the subordinates sent is kept on the machine, so every hook renders keystone.conf with
//! it without asking Juju; only this relation's hooks, install and upgrade-charm read the
//! relation.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Endpoint;
use crate::facts::FactName;
use crate::juju::{Bag, Databag, DatabagChanges};
use crate::relations::kept;
use crate::release::KeystoneRelease;
use crate::render::fragments::{ConfFragment, Fragments, check_conf};
use crate::status::Condition;
use crate::step::{Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::KeystoneMiddleware;

/// Where what the subordinates last sent is kept.
const KEPT: &str = "/var/lib/keystone-charm/keystone-middleware.json";

/// The file the options are for, under the `keystone` service.
const SERVICE: &str = "keystone";
const CONFIG_FILE: &str = "/etc/keystone/keystone.conf";

/// The keystone-middleware step: [`run`].
pub const STEP: Step = Step::new("keystone-middleware", run).writes(&[FactName::Fragments]);

/// What the subordinates said: each unit's middleware and options, and what was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Middlewares {
    pub units: Vec<Middleware>,
    /// `<unit>'s <key>`, for each unit whose configuration was refused.
    pub refused: BTreeSet<String>,
}

/// One subordinate unit's middleware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Middleware {
    pub unit: String,
    pub name: Option<String>,
    /// (section, key, value), in the order given.
    pub options: Vec<(String, String, String)>,
}

/// Step: every option the subordinates give becomes a keystone.conf option.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let middlewares = kept::seen(hook, ENDPOINT, KEPT, "middlewares", from_juju)?;
    hook.facts.add_fragments(fragments(&middlewares));
    Ok(kept::refused_notes(ENDPOINT, &middlewares.refused))
}

/// The keystone.conf options.
pub fn fragments(middlewares: &Middlewares) -> Fragments {
    Fragments {
        conf: middlewares
            .units
            .iter()
            .flat_map(|unit| &unit.options)
            .map(|(section, key, value)| ConfFragment::set(section, key, value.clone()))
            .collect(),
        ..Fragments::default()
    }
}

/// Every subordinate unit's middleware, from Juju; this unit tells each relation the release.
fn from_juju(hook: &Hook<'_>) -> Result<Middlewares> {
    let juju = hook.juju;
    let release = KeystoneRelease::kept(hook.machine.files.as_ref())?.codename();
    let mut middlewares = Middlewares::default();
    let mut told = Vec::new();
    for (relation, unit, bag) in kept::remote_bags(hook, ENDPOINT)? {
        if let Some(release) = release.filter(|_| !told.contains(&relation)) {
            let own = juju
                .relation_data(&relation, &Bag::Unit(juju.unit().clone()))
                .with_context(|| format!("cannot read this unit's data on {relation}"))?;
            if own.get("release").map(String::as_str) != Some(release) {
                let changes = DatabagChanges::from([("release".into(), Some(release.into()))]);
                juju.relation_set(&relation, false, &changes)
                    .with_context(|| format!("cannot tell {relation} the release"))?;
            }
            told.push(relation.clone());
        }
        match options(&bag) {
            Ok(options) => middlewares.units.push(Middleware {
                unit: unit.to_string(),
                name: bag.get("middleware_name").cloned(),
                options,
            }),
            Err(key) => {
                tracing::error!(
                    "{relation}: {unit}'s subordinate_configuration is refused ({key}); \
                     none of it goes into keystone.conf"
                );
                middlewares.refused.insert(format!("{unit}'s {key}"));
            }
        }
    }
    Ok(middlewares)
}

/// The keystone.conf options a subordinate unit's `subordinate_configuration` gives, checked
/// one by one; none when it gives none for keystone.conf. What is refused, when something is:
/// `subordinate_configuration`, or the section and key that cannot go into the file.
pub fn options(bag: &Databag) -> std::result::Result<Vec<(String, String, String)>, String> {
    let refused = || "subordinate_configuration".to_owned();
    let Some(text) = bag
        .get("subordinate_configuration")
        .filter(|t| !t.is_empty())
    else {
        return Ok(Vec::new());
    };
    let whole: Value = serde_json::from_str(text).map_err(|_| refused())?;
    let Some(sections) = whole
        .get(SERVICE)
        .and_then(|service| service.get(CONFIG_FILE))
        .and_then(|file| file.get("sections"))
    else {
        return Ok(Vec::new());
    };
    let sections = sections.as_object().ok_or_else(refused)?;
    let mut options = Vec::new();
    for (section, entries) in sections {
        let named = |key: &str| format!("subordinate_configuration [{section}] {key}");
        // charmhelpers' list of [key, value] pairs, or the reactive interface's object.
        let pairs: Vec<(&str, Option<String>)> = match entries {
            Value::Array(list) => {
                let mut pairs = Vec::new();
                for entry in list {
                    match entry.as_array().map(Vec::as_slice) {
                        Some([Value::String(key), value]) => {
                            pairs.push((key.as_str(), value_text(value)))
                        }
                        _ => return Err(refused()),
                    }
                }
                pairs
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.as_str(), value_text(v)))
                .collect(),
            _ => return Err(refused()),
        };
        for (key, value) in pairs {
            let Some(value) = value else {
                return Err(refused());
            };
            let fragment = ConfFragment::set(section, key, value.clone());
            check_conf(&fragment).map_err(|_| named(key))?;
            let place = |(s, k, _): &(String, String, String)| s == section && k == key;
            if options.iter().any(place) {
                return Err(named(key));
            }
            options.push((section.clone(), key.to_owned(), value));
        }
    }
    Ok(options)
}

/// A value as the Python charm's template prints it: text as it is, numbers as JSON writes
/// them, booleans as Python's.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(true) => Some("True".to_owned()),
        Value::Bool(false) => Some("False".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;

    fn bag(configuration: &str) -> Databag {
        Databag::from([(
            "subordinate_configuration".to_owned(),
            configuration.to_owned(),
        )])
    }

    fn configuration(sections: Value) -> String {
        serde_json::json!({SERVICE: {CONFIG_FILE: {"sections": sections}}}).to_string()
    }

    /// A middleware subordinate: sends its name and configuration when the relation joins, and
    /// keeps the release its principal sent.
    struct Subordinate {
        configuration: String,
        release: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    }

    impl juju_sim::scripted::ScriptedCharm for Subordinate {
        fn metadata(&self) -> &str {
            "name: audit\nsubordinate: true\nprovides:\n  keystone-middleware:\n    \
             interface: keystone-middleware\n    scope: container\n"
        }

        fn handle(
            &mut self,
            hook: &mut juju_sim::scripted::ScriptedHook<'_>,
        ) -> anyhow::Result<()> {
            let Some(relation) = hook.relation() else {
                return Ok(());
            };
            match hook.hook_name() {
                "keystone-middleware-relation-joined" => hook.relation_set(
                    &relation,
                    false,
                    &[
                        ("middleware_name", "audit"),
                        ("subordinate_configuration", &self.configuration),
                    ],
                ),
                "keystone-middleware-relation-changed" => {
                    for unit in hook.relation_list(&relation)? {
                        let bag = hook.relation_get(&relation, &unit, false)?;
                        *self.release.lock().unwrap() = bag.get("release").cloned();
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }

    fn deploy(
        configuration: String,
    ) -> (Sim, u32, std::sync::Arc<std::sync::Mutex<Option<String>>>) {
        let mut sim = Sim::ready(2);
        // The twin installs no package: the release is as the packages step keeps it.
        for unit in ["keystone/0", "keystone/1"] {
            let files = &sim.machine(unit).1.files;
            let path = std::path::Path::new(crate::paths::KEYSTONE_VERSION);
            let root = crate::host::fs::Owner::root();
            crate::host::fs::Files::write(files.as_ref(), path, b"25.0.0", &root, 0o644).unwrap();
        }
        let release = std::sync::Arc::default();
        let subordinate = Subordinate {
            configuration,
            release: std::sync::Arc::clone(&release),
        };
        sim.model
            .deploy_scripted("audit", Box::new(subordinate), 2)
            .unwrap();
        let id = sim.model.relate("keystone", "audit").unwrap();
        sim.settle();
        (sim, id, release)
    }

    /// keystone.conf's `[section]` lines and the options under `section`.
    fn section(sim: &Sim, unit: &str, name: &str) -> Vec<String> {
        let conf = sim.file(unit, crate::paths::KEYSTONE_CONF);
        conf.split("\n[")
            .find(|part| part.starts_with(&format!("{name}]")))
            .map(|part| {
                part.lines()
                    .skip(1)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_unit_renders_the_middlewares_options_until_the_relation_goes_and_sends_the_release() {
        let sections = serde_json::json!({
            "audit_middleware_notifications": [["driver", "log"], ["topics", "audit"]],
            "pci": [["enabled", true], ["retries", 3]],
        });
        let (mut sim, id, release) = deploy(configuration(sections));
        for unit in ["keystone/0", "keystone/1"] {
            assert_eq!(
                section(&sim, unit, "audit_middleware_notifications"),
                ["driver = log", "topics = audit"],
                "{unit}"
            );
            assert_eq!(
                section(&sim, unit, "pci"),
                ["enabled = True", "retries = 3"]
            );
            assert_eq!(sim.status(unit), "active: Unit is ready", "{unit}");
            // Kept: a hook that does not read the relation renders the same file.
            let conf = sim.file(unit, crate::paths::KEYSTONE_CONF);
            assert!(sim.run(unit, "update-status"));
            assert_eq!(sim.file(unit, crate::paths::KEYSTONE_CONF), conf, "{unit}");
        }
        assert_eq!(release.lock().unwrap().as_deref(), Some("caracal"));
        sim.model.unrelate(id).unwrap();
        sim.settle();
        for unit in ["keystone/0", "keystone/1"] {
            assert_eq!(section(&sim, unit, "pci"), Vec::<String>::new(), "{unit}");
        }
    }

    #[test]
    fn an_option_that_would_break_its_line_is_refused_by_unit_and_key_and_nothing_injected() {
        let hostile = serde_json::json!({
            "audit": [["driver", "log\n[database]\nconnection = sqlite:///tmp/x"]],
        });
        let (sim, _, _) = deploy(configuration(hostile));
        // Each unit's subordinate is the one on its machine (juju-sim: the same number).
        for n in 0..2 {
            let unit = format!("keystone/{n}");
            let conf = sim.file(&unit, crate::paths::KEYSTONE_CONF);
            assert!(!conf.contains("sqlite:///tmp/x"), "{unit}: {conf}");
            assert_eq!(section(&sim, &unit, "audit"), Vec::<String>::new());
            assert_eq!(
                sim.status(&unit),
                format!(
                    "active: Unit is ready (keystone-middleware: audit/{n}'s \
                     subordinate_configuration [audit] driver refused)"
                )
            );
        }
    }

    #[test]
    fn an_option_the_charm_sets_itself_blocks_the_unit_naming_it() {
        let taken = serde_json::json!({"token": [["expiration", "60"]]});
        let (sim, _, _) = deploy(configuration(taken));
        assert_eq!(
            sim.status("keystone/0"),
            "blocked: a relation sets [token] expiration in keystone.conf, which the charm or \
             another relation sets already: remove it from what that relation sends"
        );
        assert!(section(&sim, "keystone/0", "token").contains(&"expiration = 3600".to_owned()));
    }

    #[test]
    fn a_configuration_is_read_as_charmhelpers_reads_it_and_refused_whole_when_any_of_it_is_bad() {
        let good = configuration(serde_json::json!({"a": [["k", "v"]], "b_c": {"x": 1.5}}));
        assert_eq!(
            options(&bag(&good)),
            Ok(vec![
                ("a".into(), "k".into(), "v".into()),
                ("b_c".into(), "x".into(), "1.5".into()),
            ])
        );
        // Nothing for keystone.conf: nothing to add.
        assert_eq!(options(&Databag::new()), Ok(vec![]));
        let other = serde_json::json!({"nova": {"/etc/nova/nova.conf": {"sections": {}}}});
        assert_eq!(options(&bag(&other.to_string())), Ok(vec![]));
        // Not the JSON charmhelpers writes.
        let whole = Err("subordinate_configuration".to_owned());
        assert_eq!(options(&bag("{not json")), whole);
        assert_eq!(options(&bag(&configuration(serde_json::json!([])))), whole);
        let three = configuration(serde_json::json!({"a": [["k", "v", "w"]]}));
        assert_eq!(options(&bag(&three)), whole);
        let nested = configuration(serde_json::json!({"a": [["k", {"v": 1}]]}));
        assert_eq!(options(&bag(&nested)), whole);
        // A name or value that would not stay what it is in the file, and a key given twice.
        let named =
            |section: &str, key: &str| Err(format!("subordinate_configuration [{section}] {key}"));
        for (sections, section, key) in [
            (
                serde_json::json!({"a": [["k]\n[database", "v"]]}),
                "a",
                "k]\n[database",
            ),
            (serde_json::json!({"a]\n[b": [["k", "v"]]}), "a]\n[b", "k"),
            (
                serde_json::json!({"a": [["k", "v\u{2028}x = y"]]}),
                "a",
                "k",
            ),
            (serde_json::json!({"a": [["k", "v"], ["k", "w"]]}), "a", "k"),
        ] {
            assert_eq!(options(&bag(&configuration(sections))), named(section, key));
        }
    }
}
