//! Real Keystone on MariaDB behind a real Apache, all configured from the charm's templates:
//! keystone.conf and logging.conf rendered with a database password full of URL and oslo.config
//! metacharacters, `keystone-manage db_sync` and `bootstrap` run as keystone through the host
//! module, the rendered vhost served by an Apache instance of its own (its own ServerRoot files,
//! PID file and loopback ports, so nothing of the machine's Apache is touched). Keystone answers
//! `GET /v3` and `GET /api/idm/v3`, issues a token under the prefix; Apache restarts and stops
//! waiting for its old process, and, behind haproxy's TLS, tells Keystone its requests came over
//! https.
//!
//! The charm's vhost runs Debian's /usr/bin/keystone-wsgi-*, which read /etc/keystone/keystone.conf.
//! This test must not touch /etc/keystone, so its vhost points at small WSGI wrappers that name
//! the test's keystone.conf (OS_KEYSTONE_CONFIG_FILES, read when Keystone is imported).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keystone_charm::config::Config;
use keystone_charm::host::fs::{Files, HostFiles, Owner, Written};
use keystone_charm::host::keys::{Owner as KeyOwner, Repository};
use keystone_charm::host::process::{Bootstrap, KeystoneManage, SystemRunner};
use keystone_charm::host::services::{Apache, HostServices, Service, Services};
use keystone_charm::key_sets::{Key, KeySet};
use keystone_charm::render::{DatabaseConnection, KeystoneConf, LoggingConf, Templates, Vhost};
use keystone_charm::secret::Sensitive;
use serde_json::{Value, json};
use support::TempDir;

const MODULES: &str = "/usr/lib/apache2/modules";
/// What SQLAlchemy's URL syntax and oslo.config give a meaning to (but `@` and `%`, which
/// keystone-manage cannot take), and a fake section.
const DB_PASSWORD: &str = "Pa$$:w/rd?#&=+ ${debug} [database]";
const ADMIN_PASSWORD: &str = "adm1n-Secret";

fn require(path: &str, what: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: {what} is needed; run scripts/install-real-stack as root"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn mysql_root(sql: &str) {
    let output = Command::new("mysql")
        .args(["-uroot", "-e", sql])
        .output()
        .expect("the mysql client: run scripts/install-real-stack");
    assert!(
        output.status.success(),
        "MariaDB refused {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A database and user for this test, dropped at the end.
struct TestDatabase {
    name: String,
}

impl TestDatabase {
    fn create() -> TestDatabase {
        let services = HostServices::new(&SystemRunner);
        if !services.is_running(Service::Mariadb).unwrap() {
            services
                .start(Service::Mariadb)
                .expect("start MariaDB (scripts/install-real-stack installs it)");
        }
        let name = format!("kstest{}", std::process::id());
        let password = DB_PASSWORD.replace('\\', "\\\\").replace('\'', "\\'");
        mysql_root(&format!(
            "CREATE DATABASE `{name}`; CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}'; \
             GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'127.0.0.1';"
        ));
        TestDatabase { name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("mysql")
            .args([
                "-uroot",
                "-e",
                &format!(
                    "DROP DATABASE IF EXISTS `{0}`; DROP USER IF EXISTS '{0}'@'127.0.0.1';",
                    self.name
                ),
            ])
            .output();
    }
}

/// Stops the test's Apache however the test ends.
struct ApacheGuard(Apache);

impl Drop for ApacheGuard {
    fn drop(&mut self) {
        let runner = SystemRunner;
        let _ = HostServices::new(&runner)
            .with_apache(self.0.clone())
            .stop(Service::Apache2);
    }
}

fn config(changes: Value) -> Config {
    let mut options = support::config_defaults();
    for (k, v) in changes.as_object().unwrap() {
        options.insert(k.clone(), v.clone());
    }
    Config::from_options(&options).unwrap()
}

/// An HTTP client that ignores proxies.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        // The first request loads Keystone into a mod_wsgi daemon (about 5 s).
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get(url: &str) -> (u16, Value) {
    get_with(&agent(), url)
}

fn get_with(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn issue_token(base: &str) -> (u16, Option<String>) {
    let auth = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let response = agent()
        .post(&format!("{base}/auth/tokens"))
        .header("Content-Type", "application/json")
        .send(auth.to_string())
        .unwrap_or_else(|e| panic!("POST {base}/auth/tokens: {e}"));
    let token = response
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), token)
}

fn write(path: &Path, content: &str, owner: &Owner, mode: u32) {
    HostFiles
        .write(path, content.as_bytes(), owner, mode)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A WSGI script that loads Keystone with the test's keystone.conf.
fn wsgi_wrapper(conf: &Path, app: &str) -> String {
    format!(
        "# Test only: the charm runs /usr/bin/keystone-wsgi-{app} with /etc/keystone/keystone.conf.\n\
         import os\n\
         os.environ['OS_KEYSTONE_CONFIG_FILES'] = '{}'\n\
         from keystone.server.wsgi import initialize_{app}_application\n\
         application = initialize_{app}_application()\n",
        conf.display()
    )
}

/// A top-level Apache configuration of the test's own that includes the rendered vhost.
fn apache_conf(dir: &Path, vhost: &Path) -> String {
    format!(
        "ServerRoot /etc/apache2\n\
         DefaultRuntimeDir {d}/run\n\
         PidFile {d}/apache2.pid\n\
         ErrorLog {d}/error.log\n\
         User www-data\n\
         Group www-data\n\
         LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
         LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
         LoadModule wsgi_module {MODULES}/mod_wsgi.so\n\
         LoadModule env_module {MODULES}/mod_env.so\n\
         WSGISocketPrefix {d}/run/wsgi\n\
         LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O\" combined\n\
         Include {vhost}\n",
        d = dir.display(),
        vhost = vhost.display(),
    )
}

#[test]
fn keystone_on_mariadb_behind_the_rendered_vhost() {
    require("/usr/bin/keystone-manage", "Debian's keystone package");
    require(&format!("{MODULES}/mod_wsgi.so"), "libapache2-mod-wsgi-py3");
    require("/usr/bin/mysql", "mariadb-server");
    let db = TestDatabase::create();
    let tmp = TempDir::new("real-keystone-apache");
    let root = tmp.path();
    fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let templates = Templates::bundled();
    let files = HostFiles;
    let keystone = Owner::keystone();
    let root_keystone = Owner::new("root", "keystone");
    let dir = |name: &str, owner: &Owner, mode: u32| -> PathBuf {
        let path = root.join(name);
        files.ensure_dir(&path, owner, mode).unwrap();
        path
    };
    let etc = dir("etc", &root_keystone, 0o750);
    let log = dir("log", &keystone, 0o750);
    let wsgi = dir("wsgi", &Owner::root(), 0o755);
    let apache_dir = dir("apache", &Owner::root(), 0o755);
    dir("apache/run", &Owner::root(), 0o755);

    // Keys as the charm writes them: its repository module, owned by keystone.
    let user = nix::unistd::User::from_name("keystone").unwrap().unwrap();
    let key_owner = Some(KeyOwner {
        uid: user.uid,
        gid: user.gid,
    });
    for name in ["fernet-keys", "credential-keys"] {
        Repository::new(root.join(name), key_owner)
            .apply(&KeySet::setup(
                Key::generate().unwrap(),
                Key::generate().unwrap(),
            ))
            .unwrap();
    }

    // keystone.conf and logging.conf from the templates.
    let charm_config = config(json!({
        "service-path-prefix": "/api/idm", "enable-cache": false, "log-level": "INFO",
    }));
    let mut conf = KeystoneConf::from_config(
        &charm_config,
        Some(DatabaseConnection {
            user: db.name.clone(),
            password: Sensitive::new(DB_PASSWORD.to_owned()),
            host: "127.0.0.1".to_owned(),
            port: None,
            database: db.name.clone(),
            tls: None,
        }),
    );
    conf.log_config_file = etc.join("logging.conf").display().to_string();
    conf.fernet_key_repository = format!("{}/", root.join("fernet-keys").display());
    conf.credential_key_repository = format!("{}/", root.join("credential-keys").display());
    let keystone_conf = etc.join("keystone.conf");
    write(
        &keystone_conf,
        &templates.keystone_conf(&conf).unwrap(),
        &root_keystone,
        0o640,
    );
    let mut logging = LoggingConf::from_config(&charm_config);
    logging.log_file = log.join("keystone.log").display().to_string();
    write(
        &etc.join("logging.conf"),
        &templates.logging_conf(&logging).unwrap(),
        &root_keystone,
        0o640,
    );

    // The leader's database initialisation, as keystone.
    let runner = SystemRunner;
    let manage = KeystoneManage::new(&runner).with_config_file(&keystone_conf);
    let keystone_log = || fs::read_to_string(log.join("keystone.log")).unwrap_or_default();
    manage
        .db_sync()
        .unwrap_or_else(|e| panic!("{e}\n{}", keystone_log()));
    let service_port = free_port();
    let admin_port = std::iter::repeat_with(free_port)
        .find(|p| *p != service_port)
        .unwrap();
    let public_url = format!("http://127.0.0.1:{service_port}/api/idm/v3");
    manage
        .bootstrap(&Bootstrap {
            username: "admin".into(),
            password: Sensitive::new(ADMIN_PASSWORD.into()),
            project: "admin".into(),
            role: "admin".into(),
            service_name: "keystone".into(),
            region: "RegionOne".into(),
            admin_url: format!("http://127.0.0.1:{admin_port}/api/idm/v3"),
            internal_url: public_url.clone(),
            public_url: public_url.clone(),
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", keystone_log()));
    let log_file = fs::metadata(log.join("keystone.log"))
        .expect("keystone-manage logs through the rendered logging.conf");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&log_file),
        user.uid.as_raw(),
        "keystone-manage ran as keystone, so the WSGI daemons can write its log"
    );

    // The rendered vhost on loopback ports, run by an Apache of the test's own (Apache listens
    // 10 below service-port and admin-port, which haproxy takes on a unit).
    let mut vhost = Vhost::from_config(
        &config(json!({
            "service-path-prefix": "/api/idm", "service-port": service_port + 10,
            "admin-port": admin_port + 10,
        })),
        1,
        "localhost",
    );
    vhost.listen_address = Some("127.0.0.1".parse().unwrap());
    vhost.log_dir = apache_dir.display().to_string();
    for api in &mut vhost.apis {
        let app = api.app.as_str();
        let script = wsgi.join(format!("keystone-{app}.wsgi"));
        write(
            &script,
            &wsgi_wrapper(&keystone_conf, app),
            &Owner::root(),
            0o644,
        );
        api.script = script.display().to_string();
    }
    let vhost_file = apache_dir.join("vhost.conf");
    write(
        &vhost_file,
        &templates.vhost(&vhost).unwrap(),
        &Owner::root(),
        0o644,
    );
    let top = apache_dir.join("apache2.conf");
    write(
        &top,
        &apache_conf(&apache_dir, &vhost_file),
        &Owner::root(),
        0o644,
    );
    let apache = Apache::instance(&top, &apache_dir.join("apache2.pid"));
    let guard = ApacheGuard(apache.clone());
    let services = HostServices::new(&runner).with_apache(apache.clone());
    services.apache_config_test().unwrap();
    services
        .start(Service::Apache2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(services.is_running(Service::Apache2).unwrap());

    let base = format!("http://127.0.0.1:{service_port}");
    let (status, root_v3) = get(&format!("{base}/v3"));
    let error_log =
        || fs::read_to_string(apache_dir.join("keystone_error.log")).unwrap_or_default();
    assert_eq!(status, 200, "GET /v3: {root_v3}\n{}", error_log());
    let (status, prefixed) = get(&format!("{base}/api/idm/v3"));
    assert_eq!(status, 200, "GET /api/idm/v3: {prefixed}");
    // Keystone honours SCRIPT_NAME: its links keep the prefix.
    assert_eq!(
        prefixed["version"]["links"][0]["href"],
        format!("{base}/api/idm/v3/")
    );
    let (status, token) = issue_token(&format!("{base}/api/idm/v3"));
    assert_eq!(status, 201, "the admin token: {}", error_log());
    assert!(token.is_some_and(|t| t.starts_with("gAAAAA")));
    let (status, _) = get(&format!("http://127.0.0.1:{admin_port}/api/idm/v3"));
    assert_eq!(status, 200, "the admin port");

    // A restart returns only once the old Apache is gone, so the new one gets the ports.
    let old = apache.running().expect("Apache's PID file");
    services
        .restart(Service::Apache2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!old.is_alive(), "the old Apache outlived the restart");
    let new = apache.running().expect("Apache runs after the restart");
    assert_ne!(new, old);
    assert_eq!(get(&format!("{base}/api/idm/v3")).0, 200);

    // Behind haproxy's TLS (ssl_cert set on a unit): the vhost changes, so it is rewritten and
    // Apache restarted; Keystone, asked in plain HTTP, builds https links.
    vhost.behind_tls = true;
    let rendered = templates.vhost(&vhost).unwrap();
    let written = files
        .write(&vhost_file, rendered.as_bytes(), &Owner::root(), 0o644)
        .unwrap();
    assert_eq!(written, Written::Content);
    assert_eq!(
        files
            .write(&vhost_file, rendered.as_bytes(), &Owner::root(), 0o644)
            .unwrap(),
        Written::Unchanged,
        "the same vhost again needs no restart"
    );
    services
        .restart(Service::Apache2)
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, behind_tls) = get(&format!("{base}/api/idm/v3"));
    assert_eq!(status, 200, "GET /api/idm/v3 behind TLS: {}", error_log());
    assert_eq!(
        behind_tls["version"]["links"][0]["href"],
        format!("https://127.0.0.1:{service_port}/api/idm/v3/")
    );
    let new = apache
        .running()
        .expect("Apache runs after the second restart");

    services
        .stop(Service::Apache2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!new.is_alive(), "Apache outlived the stop");
    assert!(!services.is_running(Service::Apache2).unwrap());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", service_port)).is_err(),
        "the port still answers after the stop"
    );
    drop(guard);
}
