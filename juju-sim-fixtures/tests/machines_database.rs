//! Units as machines with the Keystone layout, and the scripted mysql backed by this host's
//! MariaDB: a unit reaches the database created for its address, and a removed machine leaves
//! no connection behind. Needs root, iproute2, util-linux and MariaDB.

use std::path::Path;
use std::process::Command;

use juju_sim::Model;
use juju_sim_fixtures::demo::keystone_machine;
use juju_sim_fixtures::scripted::{MySql, ensure_mariadb, mariadb_provisioner};

/// The simulator's machine probe charm (juju-sim/tests/charms): asks for a database on shared-db.
fn machine_probe() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../juju-sim/tests/charms/machine-probe")
}

#[test]
fn a_unit_reaches_the_database_the_scripted_mysql_created_for_its_address() {
    ensure_mariadb().unwrap();
    let mut model = Model::new().unwrap();
    model.use_machines(keystone_machine()).unwrap();
    let host = model.host_address().unwrap();
    let mut mysql = MySql::new("Machine-pass-1234");
    mysql.db_host = Some(host.clone());
    mysql.provisioner = Some(mariadb_provisioner());
    let requests = mysql.requests.clone();
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    model
        .deploy("probe", &machine_probe(), 1, Default::default())
        .unwrap();
    model.relate("probe:shared-db", "mysql:shared-db").unwrap();
    model.settle().unwrap();
    let unit = &model.units("probe")[0];
    let address = model.unit_address(unit).unwrap();
    let seen = requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].hostname, address);
    let out = model
        .exec_on_unit(
            unit,
            &[
                "mysql",
                "-h",
                &host,
                "-uprobe",
                "-pMachine-pass-1234",
                "probe",
                "-e",
                "SELECT CURRENT_USER()",
            ],
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("probe@{address}")));
}

/// MariaDB connections from `address`, as the server counts them.
fn connections_from(address: &str) -> usize {
    let out = Command::new("mysql")
        .args([
            "-uroot",
            "-N",
            "-e",
            &format!(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE host LIKE '{address}:%'"
            ),
        ])
        .output()
        .expect("the mysql client (apt-get install mariadb-server)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Regression: a removed machine's database connections stayed open in MariaDB (its network
/// vanished, so the server never saw them close) until new clients were refused with "too many
/// connections" and Keystone answered 500.
#[test]
fn a_removed_machine_leaves_no_database_connection_behind() {
    ensure_mariadb().unwrap();
    let mut model = Model::new().unwrap();
    model.use_machines(keystone_machine()).unwrap();
    let host = model.host_address().unwrap();
    let mut mysql = MySql::new("Machine-pass-1234");
    mysql.db_host = Some(host.clone());
    mysql.provisioner = Some(mariadb_provisioner());
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    model
        .deploy("probe", &machine_probe(), 1, Default::default())
        .unwrap();
    model.relate("probe:shared-db", "mysql:shared-db").unwrap();
    model.settle().unwrap();
    let unit = model.units("probe")[0].clone();
    let address = model.unit_address(&unit).unwrap();
    // A client on the machine holding a connection open, as Keystone's pool does.
    let client = format!(
        "mysql -h{host} -uprobe -pMachine-pass-1234 probe -e 'SELECT SLEEP(600)' >/dev/null 2>&1 &"
    );
    let out = model.exec_on_unit(&unit, &["sh", "-c", &client]).unwrap();
    assert!(out.status.success());
    let mut seen = 0;
    for _ in 0..50 {
        seen = connections_from(&address);
        if seen > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(seen > 0, "the machine's client never connected");
    model.remove_unit(&unit).unwrap();
    model.settle().unwrap();
    assert_eq!(connections_from(&address), 0);
}
