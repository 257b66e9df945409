//! The scripted mysql as `juju show-unit` shows it: what it sent back to a unit asking for a
//! database is in that unit's relation-info.

use std::collections::BTreeMap;

use anyhow::Result;
use juju_sim::Model;
use juju_sim::scripted::{ScriptedCharm, ScriptedHook};
use juju_sim_fixtures::scripted::MySql;
use serde_norway::Value;

fn strings(value: &Value) -> BTreeMap<String, String> {
    serde_norway::from_value(value.clone()).unwrap_or_default()
}

/// A scripted consumer of `mysql-shared` asking for a database.
struct Wants;

impl ScriptedCharm for Wants {
    fn metadata(&self) -> &str {
        "name: wants-db\nrequires:\n  shared-db:\n    interface: mysql-shared\n"
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        if hook.hook_name() == "shared-db-relation-joined"
            && let Some(relation) = hook.relation()
        {
            let host = hook.address();
            hook.relation_set(
                &relation,
                false,
                &[
                    ("database", "app"),
                    ("username", "app"),
                    ("hostname", &host),
                ],
            )?;
        }
        Ok(())
    }
}

#[test]
fn scripted_charms_show_the_data_they_exchanged() {
    let mut model = Model::new().expect("model");
    model
        .deploy_scripted("mysql", Box::new(MySql::new("pw")), 1)
        .expect("mysql");
    model
        .deploy_scripted("app", Box::new(Wants), 1)
        .expect("app");
    model.relate("app", "mysql").expect("relate");
    model.settle().expect("settle");
    let parsed: Value = serde_norway::from_str(&model.show_unit("app/0")).expect("YAML");
    let data = strings(&parsed["app/0"]["relation-info"][0]["related-units"]["mysql/0"]["data"]);
    assert_eq!(
        (
            data.get("password").map(String::as_str),
            data.get("allowed_units").map(String::as_str)
        ),
        (Some("pw"), Some("app/0"))
    );
}
