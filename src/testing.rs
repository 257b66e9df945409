//! The test kit: the charm's own code under juju-sim, in-process. Juju's side is the simulator's
//! model and rules (the one Juju fake), each unit's machine is [`Machine::twin`]. State in (build
//! the model), event (a hook, an action, `settle`), state out (read the model and the twins).
//!
//! Built for the lib's unit tests (`crate::testing`) and with the `testkit` feature, which the
//! integration tests and benches get from the crate's dev-dependency on itself
//! (`keystone_charm::testing`). The shipped binary is built without it. Test code: it panics
//! (`expect`) when the simulator refuses what a test set up.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use juju_sim::{Model, ToolChannel};
use serde_json::{Map, Value};

use crate::event::Event;
use crate::hook;
use crate::juju::process::{ToolReply, ToolTransport};
use crate::juju::{Juju, JujuContext, ProcessHookTools, ToolResult};
use crate::keystone_api::KeystoneApi as _;
use crate::logging;
use crate::machine::{Machine, Twins};

/// Tool calls through the simulator's unit agent, in-process: same argv, same output.
pub struct SimTools(pub ToolChannel);

impl ToolTransport for SimTools {
    fn call(
        &self,
        tool: &'static str,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> ToolResult<ToolReply> {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let out = self.0.call(tool, &args, stdin.unwrap_or_default());
        Ok(ToolReply {
            code: out.code,
            stdout: out.stdout.into_bytes(),
            stderr: out.stderr,
        })
    }
}

/// The charm admin's password in [`Sim::with_database`] models.
pub const CHARM_PASSWORD: &str = "charm-admin-pw";

/// A unit's twin machine.
pub type UnitMachine = Rc<(Machine, Twins)>;

/// Test code to run as a unit's next hook instead of the charm; whether it succeeded.
type HookBody = Box<dyn FnOnce(&Juju, &Machine, &ProcessHookTools) -> bool>;

/// The Keystone every unit's twin talks to (the units share one database).
pub type SharedKeystone = Rc<std::sync::Mutex<crate::keystone_api::memory::MemoryKeystone>>;

/// A model with keystone deployed in-process (and whatever the test adds).
pub struct Sim {
    pub model: Model,
    pub keystone: SharedKeystone,
    machines: Rc<RefCell<BTreeMap<String, UnitMachine>>>,
    instead: Rc<RefCell<Option<(String, HookBody)>>>,
}

/// The charm's own hook handling as juju-sim's in-process charm: each unit gets its twin machine
/// from `machines` (made on first use, sharing `keystone`), and runs test code instead when
/// `instead` names it.
fn in_process_charm(
    machines: &Rc<RefCell<BTreeMap<String, UnitMachine>>>,
    keystone: &SharedKeystone,
    instead: &Rc<RefCell<Option<(String, HookBody)>>>,
) -> Box<dyn juju_sim::InProcessCharm> {
    let machines = Rc::clone(machines);
    let keystone = Rc::clone(keystone);
    let instead = Rc::clone(instead);
    Box::new(
        move |env: &BTreeMap<String, String>, channel: &ToolChannel| {
            let Ok(Some(ctx)) = JujuContext::from_env(|name| env.get(name).cloned()) else {
                return 2;
            };
            let machine = Rc::clone(
                machines
                    .borrow_mut()
                    .entry(ctx.unit.to_string())
                    .or_insert_with(|| Rc::new(Machine::twin_sharing(Rc::clone(&keystone)))),
            );
            let tools = Arc::new(ProcessHookTools::over(SimTools(channel.clone())));
            let juju = Juju::new(tools.clone(), ctx.unit.clone()).in_context(&ctx);
            let (subscriber, log) = logging::hook_subscriber(Some(juju.log_sink()), false);
            let event = Event::from_dispatch_path(&ctx.dispatch_path);
            let waiting = instead.borrow_mut().take();
            let body = match waiting {
                Some((unit, body)) if unit == ctx.unit.to_string() => Some(body),
                other => {
                    *instead.borrow_mut() = other;
                    None
                }
            };
            let ok = tracing::subscriber::with_default(subscriber, || match body {
                Some(body) => body(&juju, &machine.0, &tools) && juju.commit().is_ok(),
                None => hook::handle_and_log(&juju, &machine.0, &event, &log),
            });
            if ok { 0 } else { 1 }
        },
    )
}

fn charm_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl Sim {
    /// `units` keystone units on Juju 3.6.1 (secrets), config as given; nothing has run yet.
    pub fn keystone(units: usize, config: Value) -> Sim {
        Sim::keystone_on("3.6.1", units, config)
    }

    pub fn keystone_on(version: &str, units: usize, config: Value) -> Sim {
        let machines: Rc<RefCell<BTreeMap<String, UnitMachine>>> = Rc::default();
        let instead: Rc<RefCell<Option<(String, HookBody)>>> = Rc::default();
        let keystone: SharedKeystone = Rc::new(std::sync::Mutex::new(
            crate::keystone_api::memory::MemoryKeystone::bootstrapped(),
        ));
        let charm = in_process_charm(&machines, &keystone, &instead);
        let mut model = Model::with_juju_version(version).expect("a model");
        let config: Map<String, Value> = config.as_object().cloned().unwrap_or_default();
        model
            .deploy_in_process("keystone", charm_dir(), units, config, charm)
            .expect("deploy keystone");
        Sim {
            model,
            keystone,
            machines,
            instead,
        }
    }

    /// Runs `body` as `unit`'s `hook`, with the hook's Juju (and the tools under it) and the
    /// unit's machine, instead of the charm (for tests of the pieces a hook is made of); whether
    /// it succeeded.
    pub fn with_hook(
        &mut self,
        unit: &str,
        hook: &str,
        body: impl FnOnce(&Juju, &Machine, &ProcessHookTools) -> bool + 'static,
    ) -> bool {
        *self.instead.borrow_mut() = Some((unit.to_owned(), Box::new(body)));
        self.run(unit, hook)
    }

    /// `units` keystone units related to a database that lets them in. The Python charm's leader
    /// setting provides the charm admin's password, which the twin Keystone knows (as
    /// `keystone-manage bootstrap` would have made it in the shared database). Nothing has run.
    pub fn with_database(units: usize, config: Value) -> Sim {
        Sim::with_database_on("3.6.1", units, config)
    }

    /// [`Sim::with_database`] on another Juju version.
    pub fn with_database_on(version: &str, units: usize, config: Value) -> Sim {
        let mut sim = Sim::keystone_on(version, units, config);
        create_charm_admin(&sim.keystone);
        admin_password_and_mysql(&mut sim.model);
        sim.model
            .relate("keystone:shared-db", "mysql:shared-db")
            .expect("relate the database");
        sim
    }

    /// [`Sim::with_database`], settled: every unit is active.
    pub fn ready(units: usize) -> Sim {
        let mut sim = Sim::with_database(units, Value::Object(Map::new()));
        sim.settle();
        for n in 0..units {
            let unit = format!("keystone/{n}");
            assert_eq!(sim.status(&unit), "active: Unit is ready", "{unit}");
        }
        sim
    }

    /// Two keystone units (keystone/0 leads) related to a nova that asks for its catalog entry,
    /// settled: every hook from here is the test's. The identity-service relation's id too.
    pub fn keystone_and_nova() -> (Sim, crate::juju::RelationId) {
        use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
        let mut sim = Sim::keystone(2, Value::Object(Map::new()));
        let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
        sim.model
            .deploy_scripted("nova", Box::new(nova), 1)
            .expect("deploy nova");
        let id = sim.model.relate("keystone", "nova").expect("relate");
        sim.settle();
        let relation = crate::juju::RelationId::parse(&format!("identity-service:{id}"));
        (sim, relation.expect("a relation id"))
    }

    /// A file on the unit's machine, as text ("" when there is none).
    pub fn file(&self, unit: &str, path: &str) -> String {
        use crate::host::fs::Files as _;
        let bytes = self
            .machine(unit)
            .1
            .files
            .read(std::path::Path::new(path))
            .ok()
            .flatten()
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The unit's machine (made on first use, so a test can prepare it before any hook).
    pub fn machine(&self, unit: &str) -> UnitMachine {
        Rc::clone(
            self.machines
                .borrow_mut()
                .entry(unit.to_owned())
                .or_insert_with(|| Rc::new(Machine::twin_sharing(Rc::clone(&self.keystone)))),
        )
    }

    /// Runs every pending hook; panics with the failing hook's story if one fails for good.
    pub fn settle(&mut self) {
        if let Err(err) = self.model.settle() {
            panic!("the model did not settle: {err:#}");
        }
    }

    /// Runs one hook on `unit` now; whether it succeeded.
    pub fn run(&mut self, unit: &str, hook: &str) -> bool {
        self.model.queue_hook(unit, hook);
        self.model.settle_unit(unit).is_ok()
    }

    /// Runs an action on `unit` now and returns its task.
    pub fn action(&mut self, unit: &str, name: &str, params: Value) -> juju_sim::state::ActionTask {
        let params = params.as_object().cloned().unwrap_or_default();
        self.model
            .run_action_now(unit, name, params)
            .expect("the action ran")
    }

    /// The tools the last hook on `unit` called, by name.
    pub fn tools_called(&self, unit: &str) -> Vec<String> {
        tools_called(&self.model, unit)
    }

    /// The unit's status as `kind: message`.
    pub fn status(&self, unit: &str) -> String {
        let (kind, message) = self.model.unit_status(unit).unwrap_or_default();
        format!("{kind}: {message}")
    }

    pub fn app_status(&self) -> String {
        let (kind, message) = self.model.app_status("keystone").unwrap_or_default();
        format!("{kind}: {message}")
    }

    /// The keystone application's bag in the peer relation.
    pub fn peer_app_bag(&self) -> BTreeMap<String, String> {
        let id = self
            .model
            .relation_id("keystone", "cluster")
            .expect("the peer relation");
        self.model.relation_data(id, "keystone")
    }

    /// juju-log lines of `unit` at `level` (e.g. `WARNING`).
    pub fn logs(&self, unit: &str, level: &str) -> Vec<String> {
        self.model
            .logs()
            .into_iter()
            .filter(|line| line.unit == unit && line.level == level)
            .map(|line| line.message)
            .collect()
    }
}

/// The charm's admin user in the twin Keystone, as bootstrap leaves it.
fn create_charm_admin(keystone: &SharedKeystone) {
    keystone
        .lock()
        .expect("the twin Keystone")
        .create_user(
            crate::keystone_api::DEFAULT_DOMAIN_ID,
            crate::identity::CHARM_ADMIN_USER,
            &crate::secret::Sensitive::new(CHARM_PASSWORD.to_owned()),
            &[],
        )
        .expect("the charm's admin user");
}

/// The charm's admin password where the leader keeps it (matching [`create_charm_admin`]'s
/// user), and a twin mysql (db_host 10.0.0.5) deployed beside keystone, not yet related.
fn admin_password_and_mysql(model: &mut Model) {
    model
        .set_leader_setting("keystone", "_charm-keystone-admin_passwd", CHARM_PASSWORD)
        .expect("keystone");
    let mut mysql = juju_sim_fixtures::scripted::MySql::new("db-pw");
    mysql.db_host = Some("10.0.0.5".into());
    model
        .deploy_scripted("mysql", Box::new(mysql), 1)
        .expect("deploy mysql");
}

/// The tools the last hook on `unit` of `model` called, by name.
fn tools_called(model: &Model, unit: &str) -> Vec<String> {
    model
        .hook_log()
        .iter()
        .rev()
        .find(|run| run.unit == unit)
        .map(|run| {
            run.tool_calls
                .iter()
                .map(|call| call.split(' ').next().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A self-signed certificate for `names` and its key, both PEM.
pub fn tls_pair(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let issued = rcgen::generate_simple_self_signed(names).expect("a certificate");
    (issued.cert.pem(), issued.signing_key.serialize_pem())
}

/// `text` in base64, as the ssl_* options and the relations carry PEM.
pub fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A validated config: config.yaml's defaults with `options` over them.
pub fn config(options: Value) -> crate::config::Config {
    let mut all = crate::config::defaults_from_config_yaml(include_str!("../config.yaml"))
        .expect("config.yaml is valid");
    all.extend(options.as_object().cloned().unwrap_or_else(Map::new));
    crate::config::Config::from_options(&all).expect("a valid config")
}

/// The hook-tool calls of an update-status in which nothing changed, on a unit with its
/// database: the config, leadership, the peer application bag, the database's bag, the status.
pub const STEADY_UPDATE_STATUS: [&str; 9] = [
    "config-get",
    "is-leader",
    "relation-ids",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-get",
    "status-set",
    "status-set",
];

/// Keystone in several models of one controller, each deployed in-process as [`Sim`] deploys
/// it: every model has `keystone` units (their twin machines per model) and a database relation;
/// the sites share one Keystone, as they share one replicated database.
pub struct Sites {
    pub controller: juju_sim::Controller,
    pub keystone: SharedKeystone,
    machines: BTreeMap<String, Rc<RefCell<BTreeMap<String, UnitMachine>>>>,
}

impl Sites {
    /// `sites`: each model's name and keystone units, on Juju `version`; settled, every unit
    /// ready on its own keys.
    pub fn new(version: &str, sites: &[(&str, usize)]) -> Sites {
        let mut all = Sites::unsettled(version, sites);
        for (name, _) in sites {
            all.relate_database(name);
        }
        all.settle();
        all
    }

    /// Relates `site`'s keystone to its database (its end of the replicated one).
    pub fn relate_database(&mut self, site: &str) {
        self.controller
            .relate(site, "keystone:shared-db", "mysql:shared-db")
            .expect("relate the database");
    }

    /// [`Sites::new`] before anything ran and without the database relations: each site's
    /// `region` is its model's name.
    pub fn unsettled(version: &str, sites: &[(&str, usize)]) -> Sites {
        let keystone: SharedKeystone = Rc::new(std::sync::Mutex::new(
            crate::keystone_api::memory::MemoryKeystone::bootstrapped(),
        ));
        create_charm_admin(&keystone);
        let mut controller = juju_sim::Controller::with_juju_version(version);
        let mut machines = BTreeMap::new();
        for (name, units) in sites {
            let site: Rc<RefCell<BTreeMap<String, UnitMachine>>> = Rc::default();
            let charm = in_process_charm(&site, &keystone, &Rc::default());
            let model = controller.add_model(name).expect("a model");
            let config = serde_json::json!({"region": name});
            let config = config.as_object().cloned().unwrap_or_default();
            model
                .deploy_in_process("keystone", charm_dir(), *units, config, charm)
                .expect("deploy keystone");
            admin_password_and_mysql(model);
            machines.insert((*name).to_owned(), site);
        }
        Sites {
            controller,
            keystone,
            machines,
        }
    }

    /// Offers `source`'s keystone:fernet-keys, consumes it in `site` as `<source>-keystone` and
    /// relates it; the relation's id in `site`. Not settled.
    pub fn relate(&mut self, source: &str, site: &str) -> u32 {
        let name = format!("{source}-keystone");
        if !self.controller.offers().iter().any(|o| o.model == source) {
            self.controller
                .offer(source, "keystone:fernet-keys", None)
                .expect("offer");
        }
        let consumed = self
            .controller
            .model(site)
            .expect("the site")
            .world()
            .apps
            .contains_key(&name);
        if !consumed {
            self.controller
                .consume(site, &format!("{source}.keystone"), Some(&name))
                .expect("consume");
        }
        self.controller
            .relate(site, "keystone:fernet-keys-source", &name)
            .expect("relate")
    }

    pub fn settle(&mut self) {
        if let Err(err) = self.controller.settle() {
            panic!("the controller did not settle: {err:#}");
        }
    }

    pub fn model(&self, site: &str) -> &Model {
        self.controller.model(site).expect("the site")
    }

    /// The unit's status as `kind: message`.
    pub fn status(&self, site: &str, unit: &str) -> String {
        let (kind, message) = self.model(site).unit_status(unit).unwrap_or_default();
        format!("{kind}: {message}")
    }

    /// The unit's twin machine.
    pub fn machine(&self, site: &str, unit: &str) -> UnitMachine {
        Rc::clone(
            self.machines[site]
                .borrow_mut()
                .entry(unit.to_owned())
                .or_insert_with(|| Rc::new(Machine::twin_sharing(Rc::clone(&self.keystone)))),
        )
    }

    /// The keys on the unit's disk.
    pub fn keys(&self, site: &str, unit: &str) -> crate::key_sets::KeyMaterial {
        self.machine(site, unit)
            .0
            .keys
            .read()
            .expect("the key repositories")
            .expect("keys")
    }

    /// keystone's application bag in the peer relation of `site`.
    pub fn peer_app_bag(&self, site: &str) -> BTreeMap<String, String> {
        let model = self.model(site);
        let id = model
            .relation_id("keystone", "cluster")
            .expect("the peer relation");
        model.relation_data(id, "keystone")
    }

    /// Makes `site`'s next scheduled rotation due (its last one long ago).
    pub fn make_rotation_due(&mut self, site: &str) {
        let model = self.model(site);
        let id = model
            .relation_id("keystone", "cluster")
            .expect("the peer relation");
        let mut world = model.world();
        let bag = world
            .relations
            .get_mut(&id)
            .expect("the peer relation")
            .app_data
            .entry("keystone".into())
            .or_default();
        bag.insert("fernet-last-rotation".into(), "1000".into());
        // Every key held became primary long ago too, and every unit that held it then did.
        for key in ["fernet-primary-since", "fernet-primary-everywhere"] {
            if let Some(times) = bag.get_mut(key) {
                let aged: std::collections::BTreeMap<String, u64> =
                    serde_json::from_str::<std::collections::BTreeMap<String, u64>>(times)
                        .unwrap_or_default()
                        .into_keys()
                        .map(|index| (index, 1000))
                        .collect();
                *times = serde_json::to_string(&aged).unwrap_or_default();
            }
        }
    }

    /// Runs `hook` on `unit` of `site`, then settles everything.
    pub fn run(&mut self, site: &str, unit: &str, hook: &str) {
        self.controller
            .model_mut(site)
            .expect("the site")
            .queue_hook(unit, hook);
        self.settle();
    }

    pub fn action(
        &mut self,
        site: &str,
        unit: &str,
        name: &str,
        params: Value,
    ) -> juju_sim::state::ActionTask {
        self.controller
            .run_action(
                site,
                unit,
                name,
                params.as_object().cloned().unwrap_or_default(),
            )
            .expect("the action ran")
    }

    /// The tools the last hook on `unit` of `site` called, by name.
    pub fn tools_called(&self, site: &str, unit: &str) -> Vec<String> {
        tools_called(self.model(site), unit)
    }

    /// juju-log lines of `unit` of `site` at `level`.
    pub fn logs(&self, site: &str, unit: &str, level: &str) -> Vec<String> {
        self.model(site)
            .logs()
            .into_iter()
            .filter(|line| line.unit == unit && line.level == level)
            .map(|line| line.message)
            .collect()
    }
}
