//! The database goes away for a while, on real Keystone, Apache and a MariaDB server of the
//! test's own (stopped as `systemctl stop` would): every unit says it waits and for what; a hook
//! that needs Keystone's API fails and Juju retries it, the relation data it had set never
//! reaching the other side; once MariaDB is back the retried hook converges, the units are
//! active by themselves, and nothing is lost: a token issued before the outage still validates
//! and the consumer's credentials work. Needs root and scripts/install-real-stack.

mod support;

use juju_sim::Model;
use juju_sim_fixtures::demo;
use juju_sim_fixtures::mariadb::MariaDbServer;
use juju_sim_fixtures::scripted::{
    IdentityConsumer, IdentityInterface, MySql, mariadb_provisioner_at,
};
use serde_json::Map;
use support::TempDir;

const DB_PASSWORD: &str = "Db-pass-4711";
/// What Juju itself puts in every unit bag.
const JUJU_KEYS: [&str; 3] = ["egress-subnets", "ingress-address", "private-address"];

/// A port of this test's own: tests run side by side.
fn private_port() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn statuses(model: &Model) -> Vec<(String, String, String)> {
    model
        .units("keystone")
        .into_iter()
        .map(|unit| {
            let (kind, message) = model.unit_status(&unit).unwrap_or_default();
            (unit, kind, message)
        })
        .collect()
}

fn admin_password(model: &mut Model, unit: &str) -> String {
    let task = model
        .run_action(unit, "get-admin-password", Map::new())
        .unwrap();
    task.results["admin-password"]
        .as_str()
        .expect("admin-password")
        .to_owned()
}

#[test]
fn mariadb_stopped_for_a_while_makes_units_wait_and_they_recover_by_themselves_losing_nothing() {
    let out = TempDir::new("db-outage");
    let charm = support::pack_charm(&out);
    let mut mariadb =
        MariaDbServer::start(&out.path().join("mariadb"), private_port()).expect("a MariaDB");
    let mut model = Model::new().unwrap();
    model
        .use_machines(juju_sim_fixtures::demo::keystone_machine())
        .unwrap();
    let mut mysql = MySql::new(DB_PASSWORD);
    mysql.db_host = model.host_address();
    mysql.db_port = Some(mariadb.port());
    mysql.provisioner = Some(mariadb_provisioner_at(Some(mariadb.socket())));
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    model
        .deploy("keystone", &charm, 2, support::lean(Map::new()))
        .unwrap();
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .unwrap();
    support::settle(&mut model);
    for (unit, kind, message) in statuses(&model) {
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("active", "Unit is ready"),
            "{unit}"
        );
    }
    let leader = model.leader("keystone").unwrap();
    let base = format!("http://{}:5000/v3", model.unit_address(&leader).unwrap());
    let password = admin_password(&mut model, &leader);
    let before = demo::issue_admin_token(&base, &password, &[]).unwrap();

    // The outage. Every unit notices at its next health check and says what it waits for.
    mariadb.stop().unwrap();
    model.update_status();
    support::settle(&mut model);
    let db = format!("{}:{}", model.host_address().unwrap(), mariadb.port());
    for (unit, kind, message) in statuses(&model) {
        assert_eq!(kind, "waiting", "{unit}: {message}");
        assert!(
            message.contains(&format!("Database {db} is not answering")),
            "{unit}: {message}"
        );
    }

    // A consumer arrives meanwhile: registering it needs Keystone, which needs the database,
    // so the hook fails and is retried; what it set is never committed.
    let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
    let replies = nova.replies.clone();
    model.deploy_scripted("nova", Box::new(nova), 1).unwrap();
    let relation = model.relate("keystone", "nova").unwrap();
    let gave_up = model.settle();
    assert!(
        gave_up.is_err(),
        "a hook needing Keystone succeeded without a database"
    );
    let failed: Vec<_> = model
        .hook_log()
        .into_iter()
        .filter(|run| run.exit_code != 0)
        .collect();
    assert!(
        failed.len() > juju_sim::MAX_RETRIES as usize,
        "the failed hook was retried: {failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|run| run.unit == leader && run.hook.starts_with("identity-service-relation")),
        "only the leader's identity-service hook needs Keystone's API: {failed:?}"
    );
    let committed: Vec<String> = model
        .relation_data(relation, &leader)
        .into_keys()
        .filter(|key| !JUJU_KEYS.contains(&key.as_str()))
        .collect();
    assert!(
        committed.is_empty(),
        "a failed hook's relation data is not committed: {committed:?}"
    );

    // MariaDB is back: Juju's retry converges, and the next health check makes every unit active.
    mariadb.resume().unwrap();
    let hooks_before = model.hook_log().len();
    model.settle().expect("the retried hook succeeds");
    model.update_status();
    model.settle().expect("update-status");
    let failed_after: Vec<_> = model.hook_log()[hooks_before..]
        .iter()
        .filter(|run| run.exit_code != 0)
        .cloned()
        .collect();
    assert!(failed_after.is_empty(), "{failed_after:?}");
    for (unit, kind, message) in statuses(&model) {
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("active", "Unit is ready"),
            "{unit}"
        );
    }
    let reply = model.relation_data(relation, &leader);
    let service_password = reply
        .get("service_password")
        .expect("nova's credentials once the database is back")
        .clone();
    assert!(!replies.lock().unwrap().is_empty(), "nova saw the reply");

    // Nothing was lost: the token from before the outage validates on every unit, and nova's
    // credentials issue a token.
    for unit in model.units("keystone") {
        let base = format!("http://{}:5000/v3", model.unit_address(&unit).unwrap());
        assert_eq!(
            demo::token_status(&base, &before, &before).unwrap(),
            200,
            "{unit}"
        );
    }
    let user = reply.get("service_username").expect("service_username");
    assert_eq!(
        support::service_token_status(&base, user, &service_password),
        201,
        "nova's credentials"
    );
    // The secrets scan sees this model's secrets, and would see one shown in a log line.
    let looked_for = support::secrets::assert_no_leaks(&model);
    assert!(
        looked_for >= 5,
        "passwords and keys to look for: {looked_for}"
    );
    model.world().logs.push(juju_sim::state::LogLine {
        unit: leader.clone(),
        level: "INFO".into(),
        message: format!("connecting with {DB_PASSWORD}"),
    });
    let shown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        support::secrets::assert_no_leaks(&model)
    }));
    assert!(
        shown.is_err(),
        "the secrets scan missed a password in juju-log"
    );
}
