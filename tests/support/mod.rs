//! What the integration tests and the benchmark share: the built charm packed as `make charm`
//! packs it, deployed in the simulator (juju-sim: the one Juju fake), and temporary directories.

#![allow(dead_code)]

pub mod secrets;
pub mod validator;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Map, Value};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The paths the charm writes on its machine: each unit gets its own (empty) copies, so no test
/// writes this machine's Keystone or Apache files.
pub const MACHINE_PATHS: [&str; 5] = [
    "/etc/keystone",
    "/etc/apache2",
    "/var/lib/keystone",
    "/var/lib/keystone-charm",
    "/run",
];

/// The packed charm deployed as `keystone` in a simulated model of Juju `version`.
pub struct Keystone {
    pub model: juju_sim::Model,
    pub charm_dir: PathBuf,
    _out: TempDir,
}

impl Keystone {
    /// `units` units with `config`; nothing has run yet.
    pub fn deploy(version: &str, units: usize, config: Map<String, Value>) -> Keystone {
        let out = TempDir::new("keystone-model");
        let charm_dir = pack_charm(&out);
        let mut model = juju_sim::Model::with_juju_version(version).expect("a model");
        model.isolate_paths(&MACHINE_PATHS);
        model
            .deploy("keystone", &charm_dir, units, config)
            .expect("deploy keystone");
        Keystone {
            model,
            charm_dir,
            _out: out,
        }
    }

    /// Relates a database that records requests and never answers, and settles.
    pub fn with_silent_database(mut self) -> Keystone {
        let mut mysql = juju_sim_fixtures::scripted::MySql::new("unused");
        mysql.offline = true;
        self.model
            .deploy_scripted("mysql", Box::new(mysql), 1)
            .expect("deploy mysql");
        self.model
            .relate("keystone:shared-db", "mysql:shared-db")
            .expect("relate");
        self.model.settle().expect("the model settles");
        self
    }

    /// Runs `hook` on `unit` now; its run (exit code, tool calls, output).
    pub fn run(&mut self, unit: &str, hook: &str) -> juju_sim::state::HookRun {
        self.model.queue_hook(unit, hook);
        let _ = self.model.settle_unit(unit);
        self.last_run(unit)
    }

    /// The last hook `unit` ran.
    pub fn last_run(&self, unit: &str) -> juju_sim::state::HookRun {
        self.model
            .hook_log()
            .into_iter()
            .rev()
            .find(|run| run.unit == unit)
            .expect("a hook ran")
    }
}

/// `options` with the fewest WSGI daemons the charm renders (worker-multiplier 0.5: one
/// process for the admin API and, on up to 2 CPUs, one for the public API), for real-stack
/// tests that are not about Keystone's process layout. Each daemon loads Keystone as it starts,
/// so the default four per unit made every deploy and restart cost the suite seconds of CPU;
/// the soak, the demo, the load bench, the certificate renewal and one deployment test keep
/// the default.
pub fn lean(mut options: Map<String, Value>) -> Map<String, Value> {
    options
        .entry("worker-multiplier")
        .or_insert_with(|| Value::from(0.5));
    options
}

/// config.yaml's defaults as config-get prints them: options whose default is null left out.
pub fn config_defaults() -> Map<String, Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let text = fs::read_to_string(&path).expect("read config.yaml");
    keystone_charm::config::defaults_from_config_yaml(&text).expect("config.yaml is valid")
}

/// Packs the built binary into a charm directory under `out`, as `make charm` does, and returns
/// the unpacked charm (what the simulator deploys; the zip is left out, it is slow to make).
pub fn pack_charm(out: &TempDir) -> PathBuf {
    let status = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-charm"))
        .arg(env!("CARGO_BIN_EXE_keystone-charm"))
        .arg(out.path())
        .arg("--unpacked")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run scripts/build-charm");
    assert!(status.success(), "scripts/build-charm failed");
    out.path().join("charm")
}

/// Settles a simulated model, failing with every failed hook's output if any hook failed, or
/// when a secret of the model is shown where it should not be ([`secrets::assert_no_leaks`]).
pub fn settle(model: &mut juju_sim::Model) {
    let result = model.settle();
    let failed: Vec<String> = model
        .hook_log()
        .into_iter()
        .filter(|r| r.exit_code != 0)
        .map(|r| format!("{} {}: {}", r.unit, r.hook, r.stderr))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    result.expect("the model settles");
    secrets::assert_no_leaks(model);
}

/// The application's leader and one other unit.
pub fn leader_and_other(model: &juju_sim::Model, app: &str) -> (String, String) {
    let leader = model.leader(app).expect("a leader");
    let other = model
        .units(app)
        .into_iter()
        .find(|u| *u != leader)
        .expect("a second unit");
    (leader, other)
}

/// A project-scoped token for the user a classic identity-service reply names, and its catalog.
pub fn catalog_of(base: &str, reply: &juju_sim::state::Bag) -> Value {
    let user = serde_json::json!({
        "name": reply["service_username"],
        "domain": {"id": reply["service_domain_id"]},
        "password": reply["service_password"]});
    let scope = serde_json::json!({"project": {"id": reply["service_tenant_id"]}});
    let answer = juju_sim_fixtures::demo::request_token(base, &user, &scope, &[]).unwrap();
    assert_eq!(
        answer.status, 201,
        "{}: {}",
        reply["service_username"], answer.body
    );
    let token = answer.subject_token.expect("a token");
    let catalog = juju_sim_fixtures::demo::http(&[
        "-H",
        &format!("X-Auth-Token: {token}"),
        &format!("{base}/auth/catalog"),
    ])
    .unwrap();
    assert_eq!(catalog.status, 200, "{}", catalog.body);
    serde_json::from_str(&catalog.body).unwrap()
}

/// Of one service type in a catalog: (region, interface) → URL.
pub fn endpoints(
    catalog: &Value,
    service_type: &str,
) -> std::collections::BTreeMap<(String, String), String> {
    let entry = catalog["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == service_type)
        .unwrap_or_else(|| panic!("no {service_type} in {catalog}"));
    entry["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
            ((text("region_id"), text("interface")), text("url"))
        })
        .collect()
}

/// Whether Keystone at `base` has a role called `name` (asked with `token`).
pub fn role_exists(base: &str, token: &str, name: &str) -> bool {
    let roles = juju_sim_fixtures::demo::http(&[
        "-H",
        &format!("X-Auth-Token: {token}"),
        &format!("{base}/roles?name={name}"),
    ])
    .expect("GET /v3/roles");
    roles.body.contains(&format!("\"name\": \"{name}\""))
}

/// Three keystone units, each on a machine of its own, behind a VIP of the test's own (outside
/// every network of the host, which reaches it through a route to whichever machine holds it;
/// `last_octet` keeps tests apart), with a scripted mysql backed by this host's MariaDB and the
/// simulator's hacluster; `options` are added to the database's. Settled; the VIP is returned.
pub fn deploy_behind_vip(
    charm: &Path,
    test: &str,
    last_octet: u8,
    options: Map<String, Value>,
) -> (juju_sim::Model, std::net::Ipv4Addr) {
    let layout = juju_sim_fixtures::demo::keystone_machine();
    deploy_behind_vip_on(charm, test, last_octet, options, layout, |_, _| {})
}

/// [`deploy_behind_vip`] on machines of `layout`, each made ready by `provision` (the model
/// and the unit) before its first hook runs, as cloud-init would.
pub fn deploy_behind_vip_on(
    charm: &Path,
    test: &str,
    last_octet: u8,
    options: Map<String, Value>,
    layout: juju_sim::machine::MachineLayout,
    provision: impl Fn(&juju_sim::Model, &str),
) -> (juju_sim::Model, std::net::Ipv4Addr) {
    use juju_sim_fixtures::scripted::{HaCluster, MySql, ensure_mariadb, mariadb_provisioner};
    ensure_mariadb().expect("MariaDB (scripts/install-real-stack)");
    let mut model = juju_sim::Model::new().expect("a model");
    model
        .use_machines(layout)
        .expect("machines (root, iproute2)");
    let vip = std::net::Ipv4Addr::new(172, 31, (std::process::id() % 250) as u8, last_octet);
    let mut mysql = MySql::new("Db-pass-4711");
    mysql.db_host = model.host_address();
    mysql.provisioner = Some(mariadb_provisioner());
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    let name = format!("ks_{test}_{}", std::process::id());
    let mut all =
        serde_json::json!({"database": name, "database-user": name, "vip": vip.to_string()})
            .as_object()
            .cloned()
            .unwrap_or_default();
    all.extend(options);
    model.deploy("keystone", charm, 3, all).unwrap();
    for unit in model.units("keystone") {
        provision(&model, &unit);
    }
    model
        .deploy_scripted("hacluster", Box::new(HaCluster::default()), 3)
        .unwrap();
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .unwrap();
    model.relate("keystone:ha", "hacluster:ha").unwrap();
    settle(&mut model);
    (model, vip)
}

/// Every keystone unit's status is active with nothing to note.
pub fn assert_ready(model: &juju_sim::Model) {
    for unit in model.units("keystone") {
        assert_eq!(
            model.unit_status(&unit),
            Some(("active".to_owned(), "Unit is ready".to_owned())),
            "{unit}"
        );
    }
}

/// `POST <base>/auth/tokens` with `body` (Keystone's `{"auth": ...}`): the reply.
pub fn post_auth(base: &str, body: &Value) -> juju_sim_fixtures::demo::HttpReply {
    juju_sim_fixtures::demo::http(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body.to_string(),
        &format!("{base}/auth/tokens"),
    ])
    .expect("curl")
}

/// The status of asking `base` (`…/v3`) for an unscoped token as a service user of
/// `service_domain` (201 when the credentials work).
pub fn service_token_status(base: &str, user: &str, password: &str) -> u16 {
    let body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": "service_domain"}, "password": password}}}}});
    post_auth(base, &body).status
}

/// keystone (`units` units, each on a machine of its own, `options` added to a database of
/// `test`'s own) related to a scripted mysql backed by this host's MariaDB; not settled.
pub fn keystone_on_mariadb(
    charm: &Path,
    test: &str,
    units: usize,
    options: Map<String, Value>,
) -> juju_sim::Model {
    use juju_sim_fixtures::scripted::{MySql, ensure_mariadb, mariadb_provisioner};
    ensure_mariadb().expect("MariaDB (scripts/install-real-stack)");
    let mut model = juju_sim::Model::new().expect("a model");
    model
        .use_machines(juju_sim_fixtures::demo::keystone_machine())
        .expect("machines (root, iproute2)");
    let mut mysql = MySql::new("Db-pass-4711");
    mysql.db_host = model.host_address();
    mysql.provisioner = Some(mariadb_provisioner());
    model
        .deploy_scripted("mysql", Box::new(mysql), 1)
        .expect("mysql");
    let name = format!("ks_{test}_{}", std::process::id());
    let mut all = serde_json::json!({"database": name, "database-user": name})
        .as_object()
        .cloned()
        .unwrap_or_default();
    all.extend(options);
    model
        .deploy("keystone", charm, units, all)
        .expect("keystone");
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .expect("the database relation");
    model
}

/// `curl` as `token`, with a JSON body when given: the reply's status and body.
pub fn call(method: &str, url: &str, token: &str, body: Option<&Value>) -> (u16, String) {
    let auth = format!("X-Auth-Token: {token}");
    let mut args = vec![
        "-X",
        method,
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
    ];
    let text = body.map(Value::to_string);
    if let Some(text) = &text {
        args.extend(["-d", text.as_str()]);
    }
    args.push(url);
    let reply = juju_sim_fixtures::demo::http(&args).expect("curl");
    (reply.status, reply.body)
}

/// Every CPU kept busy (one spinning thread per CPU) until dropped: a starved machine.
pub struct BusyCpus {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyCpus {
    pub fn start() -> BusyCpus {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cpus)
            .map(|_| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        BusyCpus { stop, threads }
    }
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
