//! Hooks killed with SIGKILL in the middle of their work, on real Keystone, Apache and MariaDB:
//! the leader's identity-service hook dies just before it sets relation data or stores a
//! password (after it created the service user in Keystone). Juju discards what the killed hook
//! set and retries it; the retry converges: the consumer gets one complete reply whose
//! credentials work, and the unit is ready. Needs root and scripts/install-real-stack.

mod support;

use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
use serde_json::Map;

#[test]
fn a_hook_killed_before_it_sets_relation_data_or_stores_a_password_converges_on_retry() {
    let out = support::TempDir::new("killed");
    let charm = support::pack_charm(&out);
    let mut model = support::keystone_on_mariadb(&charm, "killed", 1, support::lean(Map::new()));
    support::settle(&mut model);
    let unit = "keystone/0";
    let base = format!("http://{}:5000/v3", model.unit_address(unit).unwrap());

    for (service, tool) in [("nova", "relation-set"), ("glance", "secret-set")] {
        let consumer = IdentityConsumer::new(service, IdentityInterface::Service);
        model
            .deploy_scripted(service, Box::new(consumer), 1)
            .unwrap();
        let hooks_before = model.hook_log().len();
        model.kill_at_tool(unit, tool);
        let relation = model.relate("keystone", service).unwrap();
        model.settle().expect("the killed hook converges on retry");
        let runs: Vec<_> = model.hook_log()[hooks_before..]
            .iter()
            .filter(|run| run.unit == unit)
            .cloned()
            .collect();
        let killed: Vec<_> = runs.iter().filter(|run| run.exit_code != 0).collect();
        assert_eq!(killed.len(), 1, "{service}: one hook was killed: {runs:?}");
        assert!(
            killed[0]
                .tool_calls
                .last()
                .is_some_and(|c| c.starts_with(tool)),
            "{service}: killed at its {tool}: {:?}",
            killed[0].tool_calls
        );
        assert_eq!(runs.last().map(|r| r.exit_code), Some(0), "{service}");
        let reply = model.relation_data(relation, unit);
        let user = reply.get("service_username").expect("a service user");
        let password = reply.get("service_password").expect("its password");
        assert_eq!(
            support::service_token_status(&base, user, password),
            201,
            "{service}: the credentials the retried hook sent work"
        );
        assert_eq!(
            model.unit_status(unit),
            Some(("active".to_owned(), "Unit is ready".to_owned()))
        );
    }
    support::secrets::assert_no_leaks(&model);
}
