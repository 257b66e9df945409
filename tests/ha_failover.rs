//! Three units behind a VIP on real Keystone, Apache, haproxy and MariaDB, the simulator's
//! hacluster playing Pacemaker (it puts the VIP on one live unit's machine and moves it when that
//! machine goes down). A client issues and validates tokens through the VIP all the while: no
//! token fails when Apache stops on the VIP's holder (haproxy there routes around it), nor when
//! the holder's machine goes down and the VIP moves. Prints its figures. Needs root and
//! scripts/install-real-stack.

mod support;

use std::time::{Duration, Instant};

use serde_json::Map;
use support::TempDir;
use support::validator::{Validator, issue};

#[test]
fn tokens_keep_validating_through_the_vip_while_apache_stops_and_the_vip_holder_goes_down() {
    let out = TempDir::new("ha-failover");
    let charm = support::pack_charm(&out);
    let (mut model, vip) = support::deploy_behind_vip(&charm, "failover", 10, Map::new());
    for unit in model.units("keystone") {
        assert_eq!(
            model.unit_status(&unit),
            Some(("active".to_owned(), "Unit is ready".to_owned())),
            "{unit}"
        );
    }
    let holder = model.vip_holder(vip).expect("hacluster placed the VIP");
    // The Nagios plugins of nrpe-external-master, run on a unit as NRPE would.
    let plugin = charm.join("bin/keystone-charm");
    for check in ["haproxy", "fernet"] {
        let out = model.exec_on(&holder, &plugin, &["check", check]).unwrap();
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("check {check} on {holder}: {}", line.trim());
        assert_eq!(out.status.code(), Some(0), "{line}");
        assert!(line.starts_with("OK: "), "{line}");
    }
    let base = format!("http://{vip}:5000/v3");
    let password = {
        let task = model
            .run_action("keystone/0", "get-admin-password", Map::new())
            .unwrap();
        task.results["admin-password"].as_str().unwrap().to_owned()
    };
    assert!(
        issue(&base, &password, &[]).is_some(),
        "a token through the VIP"
    );

    let validator = Validator::start(&base, &password, &[]);
    let phase = |seconds: u64| std::thread::sleep(Duration::from_secs(seconds));
    let started = Instant::now();
    phase(5);

    // Apache stops on the VIP's holder: its haproxy sends everything to the other units.
    let pid_file = model.unit_path(&holder, "/run/apache2/apache2.pid");
    let pid = std::fs::read_to_string(pid_file).unwrap().trim().to_owned();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    phase(10);
    let during_apache_stop = validator.figures();
    // Its haproxy has seen its own Apache go: the Nagios check warns, naming it.
    let out = model
        .exec_on(&holder, &plugin, &["check", "haproxy"])
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "check haproxy on {holder} with its Apache stopped: {}",
        line.trim()
    );
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(line.contains(&holder.replace('/', "-")), "{line}");

    // The holder's machine goes down: Pacemaker moves the VIP to a live unit.
    model.stop_machine(&holder).unwrap();
    let new_holder = model.vip_holder(vip).unwrap();
    assert_ne!(new_holder, holder);
    phase(10);
    let f = validator.stop();
    println!(
        "failover through the VIP {vip} ({} s): {} tokens issued, {} validations, {} failed, {} \
         unavailable (Apache stopped on {holder}: {} validations and {} unavailable by then; then \
         its machine went down and the VIP moved to {new_holder})",
        started.elapsed().as_secs(),
        f.issued,
        f.validations,
        f.failed,
        f.unavailable,
        during_apache_stop.validations,
        during_apache_stop.unavailable
    );
    assert_eq!(f.failed, 0, "{:#?}", f.failures);
    assert!(f.issued >= 5, "{f:?}");
    assert!(
        f.validations > during_apache_stop.validations + 20,
        "validations went on after the VIP moved: {f:?}"
    );
}
