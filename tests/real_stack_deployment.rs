//! The charm deployed by the simulator onto machines of their own, with real Keystone, Apache
//! and MariaDB: Keystone answers behind the charm's vhost, the admin password from
//! get-admin-password issues a token, tokens validate across units through a rotation, a new
//! database is initialised again, a config-changed that changes nothing restarts nothing and
//! asks Keystone nothing, not even whether it answers, and HTTPS from an operator's certificate
//! or from the certificates relation, renewed without a failed request; a token revoked on one
//! unit is refused on every unit at once. Needs root and
//! scripts/install-real-stack.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use juju_sim::Model;
use juju_sim_fixtures::demo;
use juju_sim_fixtures::scripted::{
    CertificateAuthority, CertificateProtocol, MySql, ensure_mariadb, mariadb_provisioner,
};
use serde_json::{Map, Value, json};
use support::TempDir;
use support::validator::Validator;

const DB_PASSWORD: &str = "Db-pass-4711";

/// A database and user of this test's own, so tests can run side by side.
fn database_options(test: &str) -> Map<String, Value> {
    let name = format!("ks_{test}_{}", std::process::id());
    json!({"database": name, "database-user": name})
        .as_object()
        .cloned()
        .unwrap()
}

/// keystone (`units` units, each on its own machine) related to a scripted mysql backed by
/// this host's MariaDB, settled.
fn deploy(charm: &Path, units: usize, options: Map<String, Value>) -> Model {
    ensure_mariadb().expect("MariaDB (scripts/install-real-stack)");
    let mut model = Model::new().unwrap();
    model
        .use_machines(juju_sim_fixtures::demo::keystone_machine())
        .unwrap();
    let mut mysql = MySql::new(DB_PASSWORD);
    mysql.db_host = model.host_address();
    mysql.provisioner = Some(mariadb_provisioner());
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    model.deploy("keystone", charm, units, options).unwrap();
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .unwrap();
    settle(&mut model);
    model
}

use support::settle;

fn curl(args: &[&str]) -> demo::HttpReply {
    demo::http(args).unwrap()
}

fn admin_password(model: &mut Model, unit: &str) -> String {
    let task = model
        .run_action(unit, "get-admin-password", Map::new())
        .unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    task.results["admin-password"]
        .as_str()
        .expect("admin-password in the results")
        .to_owned()
}

fn issue_token(base: &str, password: &str, extra: &[&str]) -> String {
    demo::issue_admin_token(base, password, extra).unwrap()
}

fn validate(base: &str, admin_token: &str, token: &str) -> u16 {
    demo::token_status(base, admin_token, token).unwrap()
}

fn apache_pid(model: &Model, unit: &str) -> String {
    std::fs::read_to_string(model.unit_path(unit, "/run/apache2/apache2.pid"))
        .expect("Apache's pid file on the unit")
        .trim()
        .to_owned()
}

/// Requests for /v3/auth/tokens in the unit's Keystone access log.
fn token_requests(model: &Model, unit: &str) -> usize {
    let log = model.unit_path(unit, "/var/log/apache2/keystone_access.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/v3/auth/tokens"))
        .count()
}

/// How often the unit's Apache started, restarted or reloaded: it says it resumes normal
/// operations each time.
fn apache_starts(model: &Model, unit: &str) -> usize {
    let log = model.unit_path(unit, "/var/log/apache2/error.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("resuming normal operations")
        .count()
}

/// The charm's own requests (its client says `keystone-charm`) in the unit's Keystone access
/// log, the readiness check (GET …/v3) included; haproxy's health checks are not the charm's.
fn charm_requests(model: &Model, unit: &str) -> Vec<String> {
    let log = model.unit_path(unit, "/var/log/apache2/keystone_access.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with("\"keystone-charm\""))
        .map(str::to_owned)
        .collect()
}

fn charm() -> (TempDir, PathBuf) {
    let out = TempDir::new("real-stack");
    let charm = support::pack_charm(&out);
    (out, charm)
}

#[test]
fn one_unit_serves_keystone_issues_admin_tokens_and_a_no_op_config_changed_touches_nothing() {
    let (_out, charm) = charm();
    let mut model = deploy(&charm, 1, database_options("one"));
    support::assert_ready(&model);
    let unit = "keystone/0";
    let address = model.unit_address(unit).unwrap();
    let base = format!("http://{address}:5000/v3");
    assert_eq!(curl(&[&base]).status, 200);
    let password = admin_password(&mut model, unit);
    let token = issue_token(&base, &password, &[]);
    assert_eq!(validate(&base, &token, &token), 200);

    // A config-changed that changes nothing: same Apache process, not one Keystone request.
    let pid = apache_pid(&model, unit);
    let requests = charm_requests(&model, unit).len();
    assert!(requests > 0, "the charm set Keystone up through its API");
    model.queue_hook(unit, "config-changed");
    settle(&mut model);
    assert_eq!(apache_pid(&model, unit), pid, "Apache was restarted");
    let after = charm_requests(&model, unit);
    assert_eq!(after.len(), requests, "{:#?}", &after[requests..]);
    support::assert_ready(&model);

    // A hostile region is refused as a whole: blocked, keystone.conf unchanged.
    let conf = model.unit_path(unit, "/etc/keystone/keystone.conf");
    let before = std::fs::read(&conf).unwrap();
    let mut hostile = Map::new();
    hostile.insert(
        "region".into(),
        json!("RegionOne\n[database]\nconnection = x"),
    );
    model.set_config("keystone", hostile).unwrap();
    settle(&mut model);
    let (status, message) = model.unit_status(unit).unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(message.contains("region"), "{message}");
    assert_eq!(std::fs::read(&conf).unwrap(), before);
    // So is an ssl_ca that carries more than PEM: the vhost and its CA file stay as they were.
    let vhost = model.unit_path(unit, "/etc/apache2/sites-available/wsgi-openstack-api.conf");
    let vhost_before = std::fs::read(&vhost).unwrap();
    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n[database]\nInclude /etc/passwd\n";
    let mut hostile = Map::new();
    hostile.insert(
        "ssl_ca".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(ca)),
    );
    model.set_config("keystone", hostile).unwrap();
    settle(&mut model);
    let (status, message) = model.unit_status(unit).unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(
        message.contains("ssl_ca must be base64-encoded PEM"),
        "{message}"
    );
    assert_eq!(std::fs::read(&vhost).unwrap(), vhost_before);
    assert!(
        !model
            .unit_path(unit, "/etc/haproxy/keystone-tls-ca.pem")
            .exists()
    );
    assert_eq!(std::fs::read(&conf).unwrap(), before);

    // Remove the database and add it back: the leader initialises it again.
    let mut fixed = Map::new();
    fixed.insert("region".into(), json!("RegionOne"));
    fixed.insert("ssl_ca".into(), json!(""));
    model.set_config("keystone", fixed).unwrap();
    settle(&mut model);
    support::assert_ready(&model);
    let id = model.relation_id("keystone", "shared-db").unwrap();
    let syncs = |model: &Model| {
        model
            .logs()
            .iter()
            .filter(|l| l.message.ends_with("running keystone-manage db_sync"))
            .count()
    };
    assert_eq!(syncs(&model), 1);
    model.unrelate(id).unwrap();
    settle(&mut model);
    assert_eq!(
        model.unit_status(unit),
        Some((
            "blocked".to_owned(),
            "Missing relations: database".to_owned()
        ))
    );
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .unwrap();
    settle(&mut model);
    assert_eq!(syncs(&model), 2, "db_sync ran again for the new database");
    support::assert_ready(&model);
    let token = issue_token(&base, &password, &[]);
    assert_eq!(validate(&base, &token, &token), 200);

    // pause stops Apache (nothing answers) until resume.
    let task = model.run_action(unit, "pause", Map::new()).unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    assert_eq!(
        model.unit_status(unit),
        Some(("maintenance".to_owned(), "Paused".to_owned()))
    );
    let refused = Command::new("curl")
        .args(["-sS", "--max-time", "5", &base])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "Apache still answers while paused"
    );
    let task = model.run_action(unit, "resume", Map::new()).unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    support::assert_ready(&model);
    assert_eq!(curl(&[&base]).status, 200);

    // rotate-admin-password: the new password works, the old one no longer does.
    let task = model
        .run_action(unit, "rotate-admin-password", Map::new())
        .unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    let rotated = admin_password(&mut model, unit);
    assert_ne!(rotated, password);
    issue_token(&base, &rotated, &[]);
    let old = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "admin_domain"}, "password": password}}}}})
    .to_string();
    let url = format!("{base}/auth/tokens");
    let reply = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &old,
        &url,
    ]);
    assert_eq!(reply.status, 401);
}

/// A CA and a server certificate it signed for the hostname `name` only (no address: the charm's
/// own client asks for the name and connects to loopback).
fn test_pki(dir: &Path, name: &str) -> (String, String, String) {
    let openssl = |args: &str| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args.split_whitespace())
            .output()
            .expect("openssl (scripts/install-real-stack)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt",
    );
    openssl("req -newkey rsa:2048 -nodes -subj /CN=keystone -keyout server.key -out server.csr");
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName = DNS:{name}\nbasicConstraints = CA:FALSE\n\
             extendedKeyUsage = serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.crt",
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    (read("ca.crt"), read("server.crt"), read("server.key"))
}

#[test]
fn the_api_is_served_under_service_path_prefix_and_over_tls() {
    let (out, charm) = charm();
    let mut options = database_options("prefix");
    options.insert("service-path-prefix".into(), json!("/api/idm"));
    let mut model = deploy(&charm, 1, support::lean(options));
    support::assert_ready(&model);
    let unit = "keystone/0";
    let address = model.unit_address(unit).unwrap();
    // The load balancer's health check, and Keystone's own links, carry the prefix.
    let reply = curl(&[&format!("http://{address}:5000/api/idm/v3")]);
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .contains(&format!("http://{address}:5000/api/idm/v3")),
        "{}",
        reply.body
    );
    // Whatever host a client asked for, Keystone names itself by the unit's public endpoint
    // (keystone.conf's public_endpoint, as the Python charm renders it).
    let elsewhere = curl(&[
        "-H",
        "Host: elsewhere.example",
        &format!("http://{address}:5000/api/idm/v3"),
    ]);
    assert!(
        elsewhere
            .body
            .contains(&format!("http://{address}:5000/api/idm/v3"))
            && !elsewhere.body.contains("elsewhere.example"),
        "{}",
        elsewhere.body
    );

    // TLS from ssl_cert / ssl_key / ssl_ca (base64, as the Python charm takes them), with a
    // certificate issued for a hostname only: the unit's readiness check must still pass.
    let name = "keystone.example.com";
    let (ca, cert, key) = test_pki(out.path(), name);
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let mut tls = Map::new();
    tls.insert("ssl_cert".into(), json!(b64(&cert)));
    tls.insert("ssl_key".into(), json!(b64(&key)));
    tls.insert("ssl_ca".into(), json!(b64(&ca)));
    model.set_config("keystone", tls).unwrap();
    settle(&mut model);
    support::assert_ready(&model);
    let ca_file = out.path().join("ca.crt");
    let ca_file = ca_file.display().to_string();
    let resolve = format!("{name}:5000:{address}");
    let base = format!("https://{name}:5000/api/idm/v3");
    let over_tls = curl(&["--cacert", &ca_file, "--resolve", &resolve, &base]);
    assert_eq!(over_tls.status, 200);
    // haproxy serves TLS; Keystone, behind it in plain HTTP on loopback, still links to https.
    assert!(
        over_tls
            .body
            .contains(&format!("https://{address}:5000/api/idm/v3")),
        "{}",
        over_tls.body
    );
    let password = admin_password(&mut model, unit);
    let token = issue_token(
        &base,
        &password,
        &["--cacert", &ca_file, "--resolve", &resolve],
    );
    assert!(!token.is_empty());
    // The key is readable by root only.
    let key_mode = std::fs::metadata(model.unit_path(unit, "/etc/haproxy/keystone-tls.pem"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(key_mode, 0o600);
    // ssl_ca is in the unit's system CA store: curl on the unit trusts Keystone without --cacert.
    let inside = model
        .exec_on_unit(
            unit,
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--resolve",
                &format!("{name}:5000:127.0.0.1"),
                &format!("https://{name}:5000/api/idm/v3"),
            ],
        )
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inside.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    let check = model.exec_on_unit(unit, &["apache2ctl", "-t"]).unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn a_token_issued_on_one_unit_validates_on_the_other_through_a_rotation() {
    let (_out, charm) = charm();
    let mut model = deploy(&charm, 2, support::lean(database_options("two")));
    support::assert_ready(&model);
    let units = model.units("keystone");
    let base: Vec<String> = units
        .iter()
        .map(|u| format!("http://{}:5000/v3", model.unit_address(u).unwrap()))
        .collect();
    let password = admin_password(&mut model, &units[1]);
    let token = issue_token(&base[0], &password, &[]);
    assert_eq!(validate(&base[1], &token, &token), 200);

    let leader = model.leader("keystone").unwrap();
    // Forced: keys were created a moment ago, sooner than the rotation period.
    let force = json!({"force": true}).as_object().cloned().unwrap();
    let task = model.run_action(&leader, "rotate-fernet", force).unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    settle(&mut model);
    // The old token still validates everywhere, and new ones from either unit do too.
    assert_eq!(validate(&base[1], &token, &token), 200);
    assert_eq!(validate(&base[0], &token, &token), 200);
    let fresh = issue_token(&base[1], &password, &[]);
    assert_eq!(validate(&base[0], &fresh, &fresh), 200);

    // A revocation on one unit is honoured on the other at once, though that unit validated the
    // token (and may have cached the validation and the revocation list) a moment before.
    let revoked = issue_token(&base[0], &password, &[]);
    for base in &base {
        assert_eq!(validate(base, &fresh, &revoked), 200);
    }
    let auth = format!("X-Auth-Token: {fresh}");
    let subject = format!("X-Subject-Token: {revoked}");
    let url = format!("{}/auth/tokens", base[0]);
    let reply = curl(&["-X", "DELETE", "-H", &auth, "-H", &subject, &url]);
    assert_eq!(reply.status, 204, "{reply:?}");
    for base in &base {
        assert_eq!(
            validate(base, &fresh, &revoked),
            404,
            "{base}: a revoked token"
        );
    }
    assert_eq!(validate(&base[1], &fresh, &fresh), 200);
    support::assert_ready(&model);
}

/// The certificate a TLS server at `address:5000` presents for `name`, as PEM.
fn presented_certificate(address: &str, name: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{address}:5000"),
            "-servername",
            name,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl (scripts/install-real-stack)");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let end = text.find("-----END CERTIFICATE-----").expect("its end");
    text[begin..end + "-----END CERTIFICATE-----".len()].to_owned()
}

#[test]
fn the_certificates_relation_serves_https_and_a_renewal_fails_no_token() {
    let (out, charm) = charm();
    // Two units with the default configuration (wsgi-socket-rotation on): haproxy serves TLS,
    // and each unit reaches the other's Apache through the other's haproxy, over TLS.
    let mut model = deploy(&charm, 2, support::lean(database_options("certificates")));
    let authority = CertificateAuthority::new("ca", CertificateProtocol::Current).unwrap();
    let renewals = std::sync::Arc::clone(&authority.renewals);
    let ca_file = out.path().join("relation-ca.pem");
    std::fs::write(&ca_file, authority.ca_pem()).unwrap();
    model.deploy_scripted("ca", Box::new(authority), 1).unwrap();
    model
        .relate("keystone:certificates", "ca:certificates")
        .unwrap();
    settle(&mut model);
    support::assert_ready(&model);
    let unit = "keystone/0";
    let address = model.unit_address(unit).unwrap();
    let served = |model: &Model, unit: &str| {
        std::fs::read_to_string(model.unit_path(unit, "/etc/haproxy/keystone-tls.pem")).unwrap()
    };
    let issued = served(&model, unit);
    // Issued for the machine's hostname and its address.
    let names = keystone_charm::certificate::names(&issued).unwrap();
    assert!(
        names.ip_addresses.contains(&address.parse().unwrap()),
        "{names:?}"
    );
    // Apache has no TLS of its own and listens on loopback only.
    let vhost = std::fs::read_to_string(
        model.unit_path(unit, "/etc/apache2/sites-available/wsgi-openstack-api.conf"),
    )
    .unwrap();
    assert!(vhost.contains("\nListen 127.0.0.1:4990\n"), "{vhost}");
    assert!(!vhost.contains("SSLEngine"), "{vhost}");
    let name = names.dns_names.first().expect("a hostname").clone();
    let resolve = format!("{name}:5000:{address}");
    let ca = ca_file.display().to_string();
    let base = format!("https://{name}:5000/v3");
    let password = admin_password(&mut model, unit);
    let tls = ["--cacert", ca.as_str(), "--resolve", resolve.as_str()];
    assert!(!issue_token(&base, &password, &tls).is_empty());

    // The authority renews every unit's certificate, twice, while a client validates tokens
    // through keystone/0 all the while and every CPU is kept busy.
    let before = token_requests(&model, "keystone/1");
    let services = |model: &Model| -> Vec<(String, usize, String)> {
        model
            .units("keystone")
            .into_iter()
            .map(|unit| {
                let haproxy = std::fs::read_to_string(model.unit_path(&unit, "/run/haproxy.pid"))
                    .expect("haproxy's pid file");
                (unit.clone(), apache_starts(model, &unit), haproxy)
            })
            .collect()
    };
    let started = services(&model);
    let patient: Vec<&str> = tls.iter().copied().chain(["--max-time", "60"]).collect();
    let validator = Validator::start(&base, &password, &patient);
    let busy = support::BusyCpus::start();
    let mut previous = issued.clone();
    for round in 1..=2 {
        std::thread::sleep(std::time::Duration::from_secs(3));
        *renewals.lock().unwrap() += 1;
        model.queue_hook("ca/0", "update-status");
        settle(&mut model);
        let renewed = served(&model, unit);
        assert_ne!(renewed, previous, "renewal {round} is installed");
        previous = renewed;
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    drop(busy);
    let figures = validator.stop();
    println!(
        "certificate renewal: 2 renewals of 2 units, CPUs busy: {} tokens issued, {} \
         validations, {} failed, {} unavailable, longest wait {} ms",
        figures.issued,
        figures.validations,
        figures.failed,
        figures.unavailable,
        figures.longest_wait.as_millis()
    );
    // haproxy presents the renewed certificate, which comes first in its file.
    let end = "-----END CERTIFICATE-----";
    let first = &previous[..previous.find(end).unwrap() + end.len()];
    assert_eq!(
        presented_certificate(&address, &name),
        first,
        "haproxy presents the renewed certificate"
    );
    assert_eq!(figures.failed, 0, "{:#?}", figures.failures);
    assert_eq!(figures.unavailable, 0, "{figures:?}");
    assert!(figures.validations >= 20, "{figures:?}");
    // keystone/0's haproxy sent part of them to keystone/1, through keystone/1's haproxy.
    assert!(
        token_requests(&model, "keystone/1") > before,
        "keystone/1 served none of keystone/0's requests"
    );
    // Neither Apache nor haproxy was restarted or reloaded: haproxy took each renewed
    // certificate in its running process.
    assert_eq!(services(&model), started);
    support::assert_ready(&model);
}
