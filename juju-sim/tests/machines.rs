//! Units as machines: each unit has its own network namespace and address, and its own
//! /etc/apache2, /etc/keystone, /var/lib/keystone, /var/log and /run, which daemons its hooks
//! start keep after the hook exits. Needs root, iproute2, util-linux, apache2 and MariaDB.

mod common;

use std::path::Path;
use std::process::Command;

use juju_sim::Model;
use juju_sim::scripted::{MySql, ensure_mariadb, mariadb_provisioner};

fn machine_probe() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charms/machine-probe")
}

fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", url])
        .output()
        .expect("curl is needed (apt-get install curl)");
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn namespaces_and_links() -> String {
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&netns.stdout),
        String::from_utf8_lossy(&links.stdout)
    )
}

#[test]
fn two_units_run_their_own_apache_on_the_same_port_with_their_own_files() {
    let pid_tag = format!("jsim-{}", std::process::id());
    let mut model = Model::new().unwrap();
    model
        .use_machines(juju_sim::demo::keystone_machine())
        .unwrap();
    model
        .deploy("probe", &machine_probe(), 2, Default::default())
        .unwrap();
    model.settle().unwrap();
    let units = model.units("probe");
    assert_eq!(units.len(), 2);
    let addresses: Vec<String> = units
        .iter()
        .map(|u| model.unit_address(u).unwrap())
        .collect();
    assert_ne!(addresses[0], addresses[1]);
    for (unit, address) in units.iter().zip(&addresses) {
        assert!(!address.starts_with("127."), "{address}");
        // From the host, each address reaches that unit's own Apache.
        assert_eq!(curl(&format!("http://{address}/whoami")), *unit);
        // Inside the unit, loopback is the unit's own.
        let inside = model
            .exec_on_unit(unit, &["curl", "-sS", "http://127.0.0.1/whoami"])
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&inside.stdout).trim(), unit);
    }
    // A unit's files are its own: not the other unit's, not the host's.
    let whoami = model.unit_path(&units[0], "/etc/apache2/whoami");
    assert_eq!(std::fs::read_to_string(whoami).unwrap().trim(), units[0]);
    assert!(!Path::new("/etc/apache2/whoami").exists());
    let other = model
        .exec_on_unit(&units[1], &["cat", "/etc/apache2/whoami"])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&other.stdout).trim(), units[1]);
    // The addresses Juju gives the unit are its machine's.
    assert_eq!(model.unit_address(&units[0]), Some(addresses[0].clone()));

    // remove-unit: after its stop and remove hooks the unit's machine is gone, its Apache too.
    model.remove_unit(&units[1]).unwrap();
    model.settle().unwrap();
    assert!(model.units("probe").len() == 1);
    let gone = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "3",
            &format!("http://{}/whoami", addresses[1]),
        ])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the removed unit's Apache still answers"
    );
    assert!(model.exec_on_unit(&units[1], &["true"]).is_err());

    drop(model);
    // Nothing of the model remains: processes, namespaces, links.
    let left = namespaces_and_links();
    assert!(!left.contains(&pid_tag), "{left}");
    let apaches = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&apaches.stdout).contains(&pid_tag));
}

#[test]
fn a_unit_reaches_the_database_the_scripted_mysql_created_for_its_address() {
    ensure_mariadb().unwrap();
    let mut model = Model::new().unwrap();
    model
        .use_machines(juju_sim::demo::keystone_machine())
        .unwrap();
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
    model
        .use_machines(juju_sim::demo::keystone_machine())
        .unwrap();
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
