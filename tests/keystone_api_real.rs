//! The Keystone client against real Keystone (Debian's keystone package, the built-in WSGI server
//! on SQLite): after `keystone-manage bootstrap`, the initial identity plan runs through the real
//! client; a second run writes nothing; the admin user gets a project-scoped token; a new admin
//! password and a moved endpoint are the only changes a later run makes. Proxies in the
//! environment are ignored (the test sets one that would fail every request).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keystone_charm::identity::{
    ADMIN_DOMAIN, ADMIN_PROJECT, CHARM_ADMIN_USER, EndpointUrls, IdentitySettings, admin_identity,
    ensure_objects, generate_password, identity_url,
};
use keystone_charm::keystone_api::http::{HttpKeystone, LocalEndpoint, Timeouts};
use keystone_charm::keystone_api::{
    Change, DomainRef, Interface, KeystoneApi, KeystoneError, PasswordCredentials, Scope,
};
use keystone_charm::secret::Sensitive;
use support::TempDir;

const KEYSTONE_MANAGE: &str = "/usr/bin/keystone-manage";
const KEYSTONE_WSGI_PUBLIC: &str = "/usr/bin/keystone-wsgi-public";
/// Installed with keystone (a dependency of Debian's package).
const SQLITE3: &str = "/usr/bin/sqlite3";

fn require(program: &str) {
    assert!(
        Path::new(program).exists(),
        "{program} is missing: install Debian's keystone package \
         (apt-get install --no-install-recommends keystone, or scripts/install-deps)"
    );
}

/// The Keystone server process; killed when the test ends, also when it fails (then the end of
/// Keystone's logs is printed, since the temporary directory holding it is removed).
struct Server {
    child: Child,
    logs: [PathBuf; 2],
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for path in &self.logs {
                let log = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(400)..].join("\n");
                eprintln!("--- end of {} ---\n{tail}", path.display());
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn write_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("keystone.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nlog_file = {dir}/keystone.log\n\
             [database]\nconnection = sqlite:///{dir}/keystone.db\n\
             [token]\nprovider = fernet\nexpiration = 3600\n\
             [fernet_tokens]\nkey_repository = {dir}/fernet-keys\nmax_active_keys = 3\n\
             [fernet_receipts]\nkey_repository = {dir}/fernet-receipts\n\
             [credential]\nkey_repository = {dir}/credential-keys\n",
            dir = dir.display(),
        ),
    )
    .expect("write keystone.conf");
    conf
}

fn keystone_manage(conf: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(KEYSTONE_MANAGE);
    command.arg("--config-file").arg(conf).args(args);
    command
}

fn run(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn charm_admin(password: &Sensitive<String>) -> PasswordCredentials {
    PasswordCredentials {
        user_name: CHARM_ADMIN_USER.to_owned(),
        user_domain: DomainRef::Id("default".to_owned()),
        password: password.clone(),
    }
}

fn admin_token(
    endpoint: &LocalEndpoint,
    password: &Sensitive<String>,
) -> Result<(), KeystoneError> {
    let mut client = HttpKeystone::new(endpoint, Timeouts::default())?;
    let credentials = PasswordCredentials {
        user_name: "admin".to_owned(),
        user_domain: DomainRef::Name(ADMIN_DOMAIN.to_owned()),
        password: password.clone(),
    };
    let scope = Scope::Project {
        name: ADMIN_PROJECT.to_owned(),
        domain: DomainRef::Name(ADMIN_DOMAIN.to_owned()),
    };
    let token = client.authenticate(&credentials, &scope)?;
    assert!(token.id.expose().len() > 100, "a fernet token");
    Ok(())
}

#[test]
fn initial_identity_objects_on_real_keystone() {
    require(KEYSTONE_MANAGE);
    require(KEYSTONE_WSGI_PUBLIC);
    require(SQLITE3);
    // SAFETY: this file holds one test, and no other thread of this process reads the
    // environment while it is changed. Every request would fail if the client used the proxy.
    unsafe {
        for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"] {
            std::env::set_var(var, "http://127.0.0.1:9");
        }
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let started = Instant::now();
    let dir = TempDir::new("keystone-api-real");
    let conf = write_conf(dir.path());
    let port = free_port();
    let bootstrap_url = format!("http://127.0.0.1:{port}/v3");
    let charm_password = generate_password().expect("random bytes");

    // The key repositories do not touch the database: set up all three at once (each
    // keystone-manage spends ~3 s importing).
    let setups: Vec<_> = [
        vec![
            "fernet_setup",
            "--keystone-user",
            "root",
            "--keystone-group",
            "root",
        ],
        vec![
            "credential_setup",
            "--keystone-user",
            "root",
            "--keystone-group",
            "root",
        ],
        vec!["db_sync"],
    ]
    .into_iter()
    .map(|args| {
        let command = keystone_manage(&conf, &args);
        std::thread::spawn(move || run(command, &format!("keystone-manage {}", args[0])))
    })
    .collect();
    for setup in setups {
        setup.join().expect("keystone-manage setup");
    }
    // Keystone (Zed) on SQLite keeps a read transaction open across requests, which blocks the
    // next write ("database is locked"); in WAL mode readers do not block writers. The mode is
    // stored in the database file. (Production uses MySQL, where this does not arise.)
    let mut wal = Command::new(SQLITE3);
    wal.arg(dir.path().join("keystone.db"))
        .arg("PRAGMA journal_mode=WAL;");
    run(wal, "sqlite3 PRAGMA journal_mode=WAL");
    run(
        keystone_manage(
            &conf,
            &[
                "bootstrap",
                "--bootstrap-password",
                charm_password.expose(),
                "--bootstrap-username",
                CHARM_ADMIN_USER,
                "--bootstrap-project-name",
                ADMIN_PROJECT,
                "--bootstrap-role-name",
                "Admin",
                "--bootstrap-service-name",
                "keystone",
                "--bootstrap-region-id",
                "RegionOne",
                "--bootstrap-admin-url",
                &bootstrap_url,
                "--bootstrap-internal-url",
                &bootstrap_url,
                "--bootstrap-public-url",
                &bootstrap_url,
            ],
        ),
        "keystone-manage bootstrap",
    );

    let _server = Server {
        child: Command::new(KEYSTONE_WSGI_PUBLIC)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("OS_KEYSTONE_CONFIG_FILES", &conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log")).expect("server.log"))
            .spawn()
            .expect("start keystone-wsgi-public"),
        logs: [
            dir.path().join("keystone.log"),
            dir.path().join("server.log"),
        ],
    };
    let endpoint = LocalEndpoint {
        port,
        path_prefix: String::new(),
    };
    let mut client = HttpKeystone::new(&endpoint, Timeouts::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.version_available() {
            Ok(true) => break,
            Ok(false) | Err(KeystoneError::Unreachable { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            other => panic!("Keystone on port {port} did not come up: {other:?}"),
        }
    }
    client
        .login(&charm_admin(&charm_password), &Scope::System)
        .expect("the bootstrap user gets a system-scoped token");

    let settings = IdentitySettings {
        admin_user: "admin".to_owned(),
        admin_role: "Admin".to_owned(),
        service_tenant: "services".to_owned(),
        regions: vec!["RegionOne".to_owned(), "RegionTwo".to_owned()],
        endpoint_urls: EndpointUrls {
            public: identity_url(false, "10.0.0.1", 5000, "/api/idm"),
            internal: identity_url(false, "10.0.0.1", 5000, "/api/idm"),
            admin: identity_url(false, "10.0.0.1", 35357, "/api/idm"),
        },
    };
    let admin_password = generate_password().expect("random bytes");
    let objects = admin_identity(&settings, &admin_password);

    let first = ensure_objects(&mut client, &objects).expect("first run");
    assert!(first.changed_anything());
    // Bootstrap's RegionOne endpoints are updated in place, RegionTwo's created.
    let endpoint_changes: Vec<Change> = first
        .outcomes
        .iter()
        .filter(|o| o.object.contains("endpoints"))
        .map(|o| o.change)
        .collect();
    assert_eq!(endpoint_changes, [Change::Updated, Change::Created]);

    let before = client.request_count();
    let second = ensure_objects(&mut client, &objects).expect("second run");
    let after = client.request_count();
    assert!(!second.changed_anything(), "{:?}", second.outcomes);
    assert_eq!(after.writes, before.writes, "the second run wrote nothing");
    assert!(after.total > before.total, "the second run did look");
    assert_eq!(first.ids, second.ids);
    // Grants are looked up in the assignments list: Keystone logs a traceback at ERROR for each
    // grant a `HEAD` does not find.
    let log = std::fs::read_to_string(dir.path().join("keystone.log")).unwrap_or_default();
    assert!(
        !log.contains("Could not find role assignment"),
        "a grant was looked up by HEAD:\n{log}"
    );

    let service_id = second
        .ids
        .service("keystone", "identity")
        .expect("keystone's service id")
        .to_owned();
    let mut endpoints: Vec<(String, Interface, String)> = client
        .list_endpoints(&service_id)
        .unwrap()
        .into_iter()
        .map(|e| (e.region_id, e.interface, e.url))
        .collect();
    endpoints.sort();
    let expected: Vec<(String, Interface, String)> = ["RegionOne", "RegionTwo"]
        .into_iter()
        .flat_map(|region| {
            [
                (Interface::Public, &settings.endpoint_urls.public),
                (Interface::Internal, &settings.endpoint_urls.internal),
                (Interface::Admin, &settings.endpoint_urls.admin),
            ]
            .map(|(i, url)| (region.to_owned(), i, url.clone()))
        })
        .collect::<Vec<_>>();
    let mut expected = expected;
    expected.sort();
    assert_eq!(endpoints, expected);

    admin_token(&endpoint, &admin_password).expect("the admin user gets a project token");
    let wrong = Sensitive::new("not-the-password".to_owned());
    let err = admin_token(&endpoint, &wrong).unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    // A new admin password: only the user changes, and the new password works.
    let new_password = generate_password().expect("random bytes");
    let third =
        ensure_objects(&mut client, &admin_identity(&settings, &new_password)).expect("third run");
    let changed: Vec<&str> = third
        .outcomes
        .iter()
        .filter(|o| o.change != Change::Unchanged)
        .map(|o| o.object.as_str())
        .collect();
    assert_eq!(changed, ["user admin in domain admin_domain"]);
    admin_token(&endpoint, &new_password).expect("the new password works");
    assert!(admin_token(&endpoint, &admin_password).is_err());

    eprintln!(
        "real Keystone: {} requests ({} writes) in {:.1} s including setup",
        client.request_count().total,
        client.request_count().writes,
        started.elapsed().as_secs_f64()
    );
}
