//! Units as machines: each unit has its own network namespace and address, and its own /etc,
//! /var/log and /run, which daemons its hooks start keep after the hook exits. Needs root,
//! iproute2, util-linux, curl and apache2.

mod common;

use std::path::Path;
use std::process::Command;

use juju_sim::Model;
use juju_sim::machine::MachineLayout;

fn machine_probe() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charms/machine-probe")
}

/// The probe's machine: the host's /etc (Apache's configuration), empty log and run
/// directories for Apache, and the host's /srv over an overlay.
fn apache_machine() -> MachineLayout {
    MachineLayout {
        overlaid: vec!["/srv".to_owned()],
        seeded: vec!["/etc".to_owned()],
        not_seeded: Vec::new(),
        skeletons: vec![
            ("/var/log".to_owned(), vec!["apache2".to_owned()]),
            (
                "/run".to_owned(),
                vec!["lock".to_owned(), "apache2".to_owned()],
            ),
        ],
    }
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
    model.use_machines(apache_machine()).unwrap();
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
    // An overlaid path shows the host's files, and what a unit writes there stays its own.
    let write = model
        .exec_on_unit(
            &units[0],
            &["sh", "-c", "echo mine > /srv/jsim-overlay-probe"],
        )
        .unwrap();
    assert!(write.status.success(), "{write:?}");
    assert!(!Path::new("/srv/jsim-overlay-probe").exists());
    let other = model
        .exec_on_unit(&units[1], &["ls", "/srv/jsim-overlay-probe"])
        .unwrap();
    assert!(!other.status.success(), "the other unit sees the file");
    let mine = model
        .exec_on_unit(&units[0], &["cat", "/srv/jsim-overlay-probe"])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&mine.stdout).trim(), "mine");
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
