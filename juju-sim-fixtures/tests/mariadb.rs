//! The scripted mysql backed by a real MariaDB: a shared-db request creates the database and the
//! user, who can then connect with the password sent back on the relation.

use std::process::Command;

use juju_sim::Model;
use juju_sim::scripted::{ScriptedCharm, ScriptedHook};
use juju_sim_fixtures::scripted::{MySql, mariadb_provisioner};

/// A service asking for a database, as keystone's shared-db-relation-joined does.
struct Requester {
    database: String,
}

impl ScriptedCharm for Requester {
    fn metadata(&self) -> &str {
        "name: requester\nrequires:\n  shared-db:\n    interface: mysql-shared\n"
    }
    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> anyhow::Result<()> {
        if hook.hook_name() == "shared-db-relation-joined" {
            let relation = hook.relation().expect("a relation hook");
            let database = self.database.clone();
            hook.relation_set(
                &relation,
                false,
                &[
                    ("database", &database),
                    ("username", &database),
                    ("hostname", "127.0.0.1"),
                ],
            )?;
        }
        Ok(())
    }
}

fn mysql(args: &[&str]) -> (bool, String) {
    let output = Command::new("mysql")
        .args(args)
        .output()
        .expect("the mysql client is needed: apt-get install mariadb-server");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Starts MariaDB if it is not running (no systemd here: the SysV script).
fn ensure_mariadb() {
    if mysql(&["-uroot", "-e", "SELECT 1"]).0 {
        return;
    }
    let started = Command::new("service")
        .args(["mariadb", "start"])
        .status()
        .expect("service is needed");
    assert!(
        started.success(),
        "cannot start MariaDB (apt-get install mariadb-server)"
    );
    assert!(
        mysql(&["-uroot", "-e", "SELECT 1"]).0,
        "MariaDB does not answer"
    );
}

#[test]
fn a_shared_db_request_creates_the_database_and_user_in_mariadb() {
    ensure_mariadb();
    let database = format!("simtest{}", std::process::id());
    let mut mysql_charm = MySql::new("Sim-pass-1234");
    mysql_charm.db_host = Some("127.0.0.1".to_owned());
    mysql_charm.provisioner = Some(mariadb_provisioner());
    let mut model = Model::new().unwrap();
    model
        .deploy_scripted("mysql", Box::new(mysql_charm), 1)
        .unwrap();
    model
        .deploy_scripted(
            "requester",
            Box::new(Requester {
                database: database.clone(),
            }),
            1,
        )
        .unwrap();
    let id = model.relate("requester", "mysql").unwrap();
    model.settle().unwrap();

    let reply = model.relation_data(id, "mysql/0");
    assert_eq!(reply.get("db_host").map(String::as_str), Some("127.0.0.1"));
    assert_eq!(
        reply.get("allowed_units").map(String::as_str),
        Some("requester/0")
    );
    let password = reply.get("password").cloned().unwrap_or_default();
    let (ok, out) = mysql(&[
        &format!("-u{database}"),
        &format!("-p{password}"),
        "-h127.0.0.1",
        &database,
        "-N",
        "-e",
        "SELECT DATABASE()",
    ]);
    assert!(ok, "the new user cannot connect");
    assert_eq!(out.trim(), database);
    mysql(&[
        "-uroot",
        "-e",
        &format!("DROP DATABASE `{database}`; DROP USER '{database}'@'127.0.0.1';"),
    ]);
}
