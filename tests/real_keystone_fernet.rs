//! Against real Keystone (Debian's keystone package): key repositories written by the charm on
//! two simulated units serve two Keystone instances sharing one database. A token issued by one
//! validates on the other, before and after `rotate-fernet`; the charm's CLI traces tokens to
//! their key; keystone-manage accepts and rotates a repository the charm wrote.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use juju_sim::Model;
use serde_json::Map;
use support::TempDir;

fn require(program: &str) {
    assert!(
        Path::new(program).exists(),
        "{program} is missing: install Debian's keystone package (scripts/install-deps)"
    );
}

/// A Keystone instance (the built-in WSGI server) reading one unit's key repositories.
struct Keystone {
    child: Child,
    url: String,
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn write_conf(dir: &Path, name: &str, db: &Path, etc: &Path) -> PathBuf {
    let unit = dir.join(name);
    std::fs::create_dir_all(&unit).unwrap();
    let receipts = unit.join("fernet-receipts");
    // Keystone wants a receipts repository too; any valid one will do.
    keystone_charm::host::keys::Repository::new(&receipts, None)
        .apply(&keystone_charm::key_sets::KeySet::setup(
            keystone_charm::key_sets::Key::generate().unwrap(),
            keystone_charm::key_sets::Key::generate().unwrap(),
        ))
        .unwrap();
    let conf = unit.join("keystone.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nlog_file = {log}\n[database]\nconnection = sqlite:///{db}\n\
             [token]\nprovider = fernet\nexpiration = 3600\n\
             [fernet_tokens]\nkey_repository = {etc}/fernet-keys\nmax_active_keys = 3\n\
             [fernet_receipts]\nkey_repository = {receipts}\n\
             [credential]\nkey_repository = {etc}/credential-keys\n",
            log = unit.join("keystone.log").display(),
            db = db.display(),
            etc = etc.display(),
            receipts = receipts.display(),
        ),
    )
    .unwrap();
    conf
}

fn keystone_manage(conf: &Path, args: &[&str]) {
    let output = Command::new("/usr/bin/keystone-manage")
        .arg("--config-file")
        .arg(conf)
        .args(args)
        .output()
        .expect("run keystone-manage");
    assert!(
        output.status.success(),
        "keystone-manage {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn start(conf: &Path) -> Keystone {
    let port = free_port();
    let child = Command::new("/usr/bin/keystone-wsgi-public")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("OS_KEYSTONE_CONFIG_FILES", conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start keystone-wsgi-public");
    let keystone = Keystone {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/v3", keystone.url),
        ])
        .trim()
            == "200"
        {
            return keystone;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "Keystone at {} did not answer GET /v3 within 60 s",
        keystone.url
    );
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-s", "--noproxy", "*", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A project-scoped admin token issued by `keystone`.
fn issue_token(keystone: &Keystone) -> String {
    let body = r#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"adminpass"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}"#;
    let headers = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        &format!("{}/v3/auth/tokens", keystone.url),
    ]);
    headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-subject-token:")
                .then(|| l.split_once(':').map(|(_, v)| v.trim().to_owned()))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no token from {}: {headers}", keystone.url))
}

/// The HTTP status of validating `token` on `keystone`.
fn validate(keystone: &Keystone, token: &str) -> String {
    let admin = issue_token(keystone);
    curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("X-Auth-Token: {admin}"),
        "-H",
        &format!("X-Subject-Token: {token}"),
        &format!("{}/v3/auth/tokens", keystone.url),
    ])
}

fn trace(repository: &Path, token: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keystone-charm"))
        .args(["fernet", "validate-token", "--key-repository"])
        .arg(repository)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn tokens_issued_on_one_unit_validate_on_another_through_a_rotation() {
    require("/usr/bin/keystone-manage");
    require("/usr/bin/keystone-wsgi-public");
    let out = TempDir::new("real-keystone");
    let charm = support::pack_charm(&out);
    let mut model = Model::new().unwrap();
    model.isolate_paths(&[
        "/etc/keystone",
        "/var/lib/keystone",
        "/var/lib/keystone-charm",
        "/run",
    ]);
    model.deploy("keystone", &charm, 2, Map::new()).unwrap();
    model.settle().unwrap();
    let etc0 = model.unit_path("keystone/0", "/etc/keystone");
    let etc1 = model.unit_path("keystone/1", "/etc/keystone");

    // One database, two Keystones, each reading its own unit's repositories.
    let db = out.path().join("keystone.db");
    let conf0 = write_conf(out.path(), "unit0", &db, &etc0);
    let conf1 = write_conf(out.path(), "unit1", &db, &etc1);
    keystone_manage(&conf0, &["db_sync"]);
    keystone_manage(
        &conf0,
        &[
            "bootstrap",
            "--bootstrap-password",
            "adminpass",
            "--bootstrap-username",
            "admin",
            "--bootstrap-project-name",
            "admin",
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-region-id",
            "RegionOne",
        ],
    );
    let unit0 = start(&conf0);
    let unit1 = start(&conf1);

    let before = issue_token(&unit0);
    assert_eq!(validate(&unit1, &before), "200", "a unit0 token on unit1");
    assert_eq!(validate(&unit0, &before), "200");
    assert!(trace(&etc0.join("fernet-keys"), &before).starts_with("decrypted by key 1 "));

    // Forced: keys were created a moment ago, sooner than the rotation period.
    let force = serde_json::json!({"force": true})
        .as_object()
        .cloned()
        .unwrap();
    let task = model
        .run_action("keystone/0", "rotate-fernet", force)
        .unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    let after = issue_token(&unit0);
    for (name, keystone) in [("unit0", &unit0), ("unit1", &unit1)] {
        assert_eq!(validate(keystone, &before), "200", "old token on {name}");
        assert_eq!(validate(keystone, &after), "200", "new token on {name}");
    }
    assert!(trace(&etc1.join("fernet-keys"), &after).starts_with("decrypted by key 2 "));
    let newer = issue_token(&unit1);
    assert_eq!(
        validate(&unit0, &newer),
        "200",
        "a unit1 token on unit0 after the sync"
    );
    drop(unit0);
    drop(unit1);

    // keystone-manage accepts a repository the charm wrote and rotates it its own way.
    let copy = out.path().join("rotate-copy");
    let status = Command::new("cp")
        .args(["-rL"])
        .arg(etc0.join("fernet-keys"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let conf = out.path().join("rotate.conf");
    std::fs::write(
        &conf,
        format!(
            "[fernet_tokens]\nkey_repository = {}\nmax_active_keys = 3\n",
            copy.display()
        ),
    )
    .unwrap();
    keystone_manage(
        &conf,
        &[
            "fernet_rotate",
            "--keystone-user",
            "root",
            "--keystone-group",
            "root",
        ],
    );
    let mut names: Vec<String> = std::fs::read_dir(&copy)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["0", "2", "3"],
        "keystone-manage rotated the charm's set"
    );
}
