//! Three units behind a VIP on real Keystone, Apache, haproxy and MariaDB, the simulator's
//! hacluster playing Pacemaker (it puts the VIP on one live unit's machine and moves it when that
//! machine goes down). A client issues and validates tokens through the VIP all the while: no
//! token fails when Apache stops on the VIP's holder (haproxy there routes around it), nor when
//! the holder's machine goes down and the VIP moves. Prints its figures. Needs root and
//! scripts/install-real-stack.

mod support;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use juju_sim::Model;
use juju_sim::demo;
use juju_sim::scripted::{HaCluster, MySql, ensure_mariadb, mariadb_provisioner};
use serde_json::{Map, json};
use support::{TempDir, settle};

/// What the client saw.
#[derive(Debug, Default, Clone)]
struct Figures {
    issued: u64,
    validations: u64,
    /// Keystone answered, and said a valid token was not (the figure that must stay 0).
    failed: u64,
    /// No answer in time, or haproxy had no unit to send the request to.
    unavailable: u64,
    failures: Vec<String>,
}

/// curl with a short time limit: a request caught on a machine that goes down counts as
/// unavailable, not as a failed token.
fn http(args: &[&str]) -> Option<demo::HttpReply> {
    let mut all = vec!["--max-time", "5"];
    all.extend_from_slice(args);
    demo::http(&all)
        .ok()
        .filter(|r| r.status != 0 && r.status < 500)
}

fn issue(base: &str, password: &str) -> Option<String> {
    let user = json!({"name": "admin", "domain": {"name": "admin_domain"}, "password": password});
    let scope = json!({"project": {"name": "admin", "domain": {"name": "admin_domain"}}});
    let reply = demo::request_token(base, &user, &scope, &["--max-time", "5"]).ok()?;
    reply.subject_token.filter(|_| reply.status == 201)
}

/// Issues a token now and then and validates every live one, through `base`, until `stop`.
fn client(base: String, password: String, stop: Arc<AtomicBool>, figures: Arc<Mutex<Figures>>) {
    let mut tokens: Vec<String> = Vec::new();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if round.is_multiple_of(5) || tokens.is_empty() {
            match issue(&base, &password) {
                Some(token) => {
                    tokens.push(token);
                    if tokens.len() > 8 {
                        tokens.remove(0);
                    }
                    figures.lock().unwrap().issued += 1;
                }
                None => figures.lock().unwrap().unavailable += 1,
            }
        }
        round += 1;
        let Some(auth) = tokens.last().cloned() else {
            continue;
        };
        for token in tokens.clone() {
            let url = format!("{base}/auth/tokens");
            let reply = http(&[
                "-H",
                &format!("X-Auth-Token: {auth}"),
                "-H",
                &format!("X-Subject-Token: {token}"),
                &url,
            ]);
            let mut f = figures.lock().unwrap();
            match reply {
                Some(r) if r.status == 200 => f.validations += 1,
                Some(r) => {
                    f.validations += 1;
                    f.failed += 1;
                    f.failures.push(format!("{}: {}", r.status, r.body));
                }
                None => f.unavailable += 1,
            }
        }
    }
}

#[test]
fn tokens_keep_validating_through_the_vip_while_apache_stops_and_the_vip_holder_goes_down() {
    let out = TempDir::new("ha-failover");
    let charm = support::pack_charm(&out);
    ensure_mariadb().expect("MariaDB (scripts/install-real-stack)");
    let mut model = Model::new().unwrap();
    model.use_machines().unwrap();
    // A VIP of this test's own, outside every network of the host: the host reaches it through
    // a route to whichever machine holds it.
    let vip = Ipv4Addr::new(172, 31, (std::process::id() % 250) as u8, 10);
    let mut mysql = MySql::new("Db-pass-4711");
    mysql.db_host = model.host_address();
    mysql.provisioner = Some(mariadb_provisioner());
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    let name = format!("ks_failover_{}", std::process::id());
    let options = json!({"database": name, "database-user": name, "vip": vip.to_string()});
    model
        .deploy("keystone", &charm, 3, options.as_object().cloned().unwrap())
        .unwrap();
    model
        .deploy_scripted("hacluster", Box::new(HaCluster::default()), 3)
        .unwrap();
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .unwrap();
    model.relate("keystone:ha", "hacluster:ha").unwrap();
    settle(&mut model);
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
    assert!(issue(&base, &password).is_some(), "a token through the VIP");

    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(Mutex::new(Figures::default()));
    let running = {
        let (base, password) = (base.clone(), password.clone());
        let (stop, figures) = (Arc::clone(&stop), Arc::clone(&figures));
        std::thread::spawn(move || client(base, password, stop, figures))
    };
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
    let during_apache_stop = figures.lock().unwrap().clone();
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
    stop.store(true, Ordering::Relaxed);
    running.join().unwrap();
    let f = figures.lock().unwrap().clone();
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
