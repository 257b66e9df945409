//! The charm binary deployed into the Juju model simulator: the demo's HA bundle, on machines
//! running real Keystone, Apache and MariaDB, settles with every unit ready, and steady-state
//! hooks stay within their hook-tool budgets whatever the number of related applications.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use juju_sim::Model;
use juju_sim::state::HookEvent;
use juju_sim_fixtures::demo::{self, Bundle, DEFAULT_BUNDLE, Services};
use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
use support::TempDir;

/// The demo's bundle but its LDAP domain, with a database of this test's own, on machines with
/// real services.
fn deploy_default_bundle(charm: &Path) -> (Model, demo::Deployed) {
    juju_sim_fixtures::scripted::ensure_mariadb().expect("MariaDB (scripts/install-real-stack)");
    let mut model = Model::new().expect("simulator (cargo build -p juju-sim builds its tools)");
    let mut bundle = Bundle::parse(DEFAULT_BUNDLE).unwrap();
    // The LDAP domain's restarts add a minute to the suite; tests/external_identity_real.rs has it.
    bundle.applications.remove("corp");
    bundle
        .relations
        .retain(|pair| pair.iter().all(|e| !e.starts_with("corp:")));
    let name = format!("ks_bundle_{}", std::process::id());
    let options = &mut bundle.applications.get_mut("keystone").unwrap().options;
    options.insert("database".into(), name.clone().into());
    options.insert("database-user".into(), name.into());
    let charms = BTreeMap::from([("keystone".to_owned(), charm.to_path_buf())]);
    let deployed = demo::deploy_bundle(&mut model, &bundle, &charms, Services::Real).unwrap();
    support::settle(&mut model);
    (model, deployed)
}

/// Tool calls of the last run of `hook` on `unit`.
fn last_calls(model: &Model, unit: &str, hook: &str) -> Vec<String> {
    model
        .hook_log()
        .into_iter()
        .rev()
        .find(|r| r.unit == unit && r.hook == hook)
        .map(|r| r.tool_calls)
        .unwrap_or_default()
}

fn steady_state(model: &mut Model, unit: &str) -> (Vec<String>, Vec<String>) {
    model.update_status();
    model.settle().unwrap();
    model
        .world()
        .queue(unit, HookEvent::simple("config-changed"));
    model.settle().unwrap();
    (
        last_calls(model, unit, "update-status"),
        last_calls(model, unit, "config-changed"),
    )
}

#[test]
fn the_ha_bundle_settles_on_real_services_with_every_unit_ready_within_hook_budgets() {
    let out = TempDir::new("sim-deploy");
    let charm = support::pack_charm(&out);
    let (mut model, _directory) = deploy_default_bundle(&charm);
    assert_eq!(model.units("keystone").len(), 3);
    for unit in model.units("keystone") {
        assert_eq!(
            model.unit_status(&unit),
            Some(("active".to_owned(), "Unit is ready".to_owned())),
            "{unit}"
        );
    }
    assert_eq!(
        model.app_status("keystone"),
        Some(("active".to_owned(), "Unit is ready".to_owned()))
    );

    // nova and glance got working credentials: a token scoped to their project, from every
    // unit, and the catalog lists their endpoints.
    for (consumer, service_type) in [("nova", "compute"), ("glance", "image")] {
        let id = model
            .relation_id(consumer, "identity-service")
            .expect(consumer);
        let replies: Vec<_> = model
            .units("keystone")
            .iter()
            .map(|unit| model.relation_data(id, unit))
            .collect();
        let reply = &replies[0];
        for other in &replies[1..] {
            assert_eq!(
                other.get("service_password"),
                reply.get("service_password"),
                "{consumer}: every unit publishes the same reply"
            );
        }
        assert_eq!(reply["service_username"], consumer);
        assert_eq!(reply["api_version"], "3");
        for unit in model.units("keystone") {
            let base = format!("http://{}:5000/v3", model.unit_address(&unit).unwrap());
            let catalog = support::catalog_of(&base, reply);
            let urls = support::endpoints(&catalog, service_type);
            let interfaces: Vec<&str> = urls
                .keys()
                .filter(|(region, _)| region == "RegionOne")
                .map(|(_, interface)| interface.as_str())
                .collect();
            assert_eq!(interfaces.len(), 3, "{consumer}: {urls:?}");
        }
    }

    // tempest (identity-credentials) and placement (Sunbeam-style: the reply in keystone's
    // application bag, the credentials in a secret granted to it) get project-scoped tokens too.
    let tempest = model
        .relation_id("tempest", "identity-credentials")
        .unwrap();
    let reply = model.relation_data(tempest, "keystone/0");
    let user = serde_json::json!({
        "name": reply["credentials_username"],
        "domain": {"id": reply["credentials_user_domain_id"]},
        "password": reply["credentials_password"]});
    let scope = serde_json::json!({"project": {"id": reply["credentials_project_id"]}});
    let placement = model.relation_id("placement", "identity-service").unwrap();
    let app_reply = model.relation_data(placement, "keystone");
    let secret = {
        let world = model.world();
        let id = app_reply["service-credentials"].trim_start_matches("secret:");
        world.secrets[id].revisions.last().cloned().unwrap()
    };
    let sunbeam_user = serde_json::json!({
        "name": secret["username"],
        "domain": {"id": app_reply["service-domain-id"]},
        "password": secret["password"]});
    let sunbeam_scope = serde_json::json!({"project": {"id": app_reply["service-project-id"]}});
    for unit in model.units("keystone") {
        let base = format!("http://{}:5000/v3", model.unit_address(&unit).unwrap());
        for (who, user, scope) in [
            ("tempest", &user, &scope),
            ("placement", &sunbeam_user, &sunbeam_scope),
        ] {
            let answer = demo::request_token(&base, user, scope, &[]).unwrap();
            assert_eq!(answer.status, 201, "{who} on {unit}: {}", answer.body);
        }
    }

    // exporter (identity-admin) gets the cloud admin's credentials; the dashboard's role exists.
    let exporter = model.relation_id("exporter", "identity-admin").unwrap();
    let admin = model.relation_data(exporter, "keystone/0");
    let admin_user = serde_json::json!({
        "name": admin["service_username"],
        "domain": {"name": admin["service_user_domain_name"]},
        "password": admin["service_password"]});
    let admin_scope = serde_json::json!({"project": {
        "name": admin["service_project_name"],
        "domain": {"name": admin["service_project_domain_name"]}}});
    let base = format!(
        "http://{}:5000/v3",
        model.unit_address("keystone/0").unwrap()
    );
    let answer = demo::request_token(&base, &admin_user, &admin_scope, &[]).unwrap();
    assert_eq!(answer.status, 201, "exporter: {}", answer.body);
    let token = answer.subject_token.unwrap();
    let horizon = model.relation_id("horizon", "identity-service").unwrap();
    assert_eq!(
        model.relation_data(horizon, "keystone/0")["created_roles"],
        "member"
    );
    assert!(support::role_exists(&base, &token, "member"));

    // Steady state, with Keystone serving: within the hook-tool budgets on the leader and on
    // another unit.
    let (leader, other) = support::leader_and_other(&model, "keystone");
    for unit in [leader, other] {
        let (update_status, config_changed) = steady_state(&mut model, &unit);
        assert!(
            !update_status.is_empty() && update_status.len() < 10,
            "{unit}: {update_status:#?}"
        );
        assert!(
            !config_changed.is_empty() && config_changed.len() < 25,
            "{unit}: {config_changed:#?}"
        );
    }
}

#[test]
fn a_hooks_cost_does_not_grow_with_relations_it_does_not_touch() {
    let out = TempDir::new("sim-scale");
    let charm = support::pack_charm(&out);
    let mut costs = Vec::new();
    let host_conf = std::fs::read("/etc/keystone/keystone.conf").ok();
    for consumers in [1, 30] {
        let mut model = Model::new().unwrap();
        // The unit writes its files on a machine of its own, never on the test host.
        model.isolate_paths(&[
            "/etc/keystone",
            "/var/lib/keystone",
            "/var/lib/keystone-charm",
            "/run",
        ]);
        model
            .deploy("keystone", &charm, 1, Default::default())
            .unwrap();
        for i in 0..consumers {
            let name = format!("svc{i}");
            model
                .deploy_scripted(
                    &name,
                    Box::new(IdentityConsumer::new(&name, IdentityInterface::Service)),
                    1,
                )
                .unwrap();
            model.relate("keystone:identity-service", &name).unwrap();
        }
        model.settle().unwrap();
        let (update_status, config_changed) = steady_state(&mut model, "keystone/0");
        costs.push((update_status.len(), config_changed.len()));
    }
    assert_eq!(
        costs[0], costs[1],
        "tool calls with 1 and with 30 consumers"
    );
    // Regression: this test once let the unit write the test host's keystone.conf.
    assert_eq!(std::fs::read("/etc/keystone/keystone.conf").ok(), host_conf);
}
