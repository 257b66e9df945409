//! Hook orchestration: gather facts from Juju, plan from data, then apply.
//!
//! [`gather`] is the only step that reads from Juju, [`plan`] is pure, and [`apply`] is the
//! only step that writes. A blocked configuration yields a plan with a blocked status and no
//! work, so nothing is written and no service is touched; the hook still exits 0 so Juju does not
//! retry a hook that cannot succeed until the operator changes the config.

use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Context as _;

use crate::actions;
use crate::config::{Config, ConfigProblems};
use crate::converge::{self, UnitReport};
use crate::event::Event;
use crate::fernet_keys::RotationRequest;
use crate::host;
use crate::host::fs::{Files, HostFiles};
use crate::host::process::{Runner, SystemRunner};
use crate::host::services::{HostServices, Services};
use crate::juju::{HookTools, Juju, JujuContext, JujuLogSink, LogLevel, Status, StatusScope};
use crate::keystone_api::KeystoneConnector;
use crate::keystone_api::http::HttpConnector;
use crate::logging::{self, LogHandle};
use crate::relations::cluster::{self, KeyStore, KeySync, SyncInputs};
use crate::relations::shared_db;
use crate::status::{self, StatusInputs};

/// How the charm treats an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Read the config and the model, then set the status (most hooks, as the Python charm's
    /// `assess_status` after every hook).
    Assess,
    /// `stop` and `remove`: the unit is going away: stop stops its services, nothing is
    /// checked or reported.
    Teardown,
    /// An action, dispatched by name.
    Action,
    /// A hook the charm does not know: logged at INFO, exit 0, as Juju treats a missing hook.
    NotHandled,
}

/// Where `event` goes.
pub fn route(event: &Event) -> Route {
    match event {
        Event::Stop | Event::Remove => Route::Teardown,
        Event::Action(_) => Route::Action,
        Event::Unknown(_) => Route::NotHandled,
        Event::Install
        | Event::Start
        | Event::ConfigChanged
        | Event::UpgradeCharm
        | Event::UpdateStatus
        | Event::LeaderElected
        | Event::LeaderSettingsChanged
        | Event::Relation { .. }
        | Event::Secret(_) => Route::Assess,
    }
}

/// What the hook learned from Juju.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub event: Event,
    pub config: Result<Config, ConfigProblems>,
    pub leader: bool,
    /// The fernet key synchronisation's outcome (None before the peer relation exists, or when
    /// the config is invalid).
    pub keys: Option<KeySync>,
    /// Keystone on this unit (None when the config is invalid: nothing was touched).
    pub unit: Option<UnitReport>,
}

/// What the hook will do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookPlan {
    /// Logged at WARNING.
    pub warnings: Vec<String>,
    pub unit_status: Option<Status>,
    /// Set by the leader only.
    pub app_status: Option<Status>,
}

/// Reads what [`plan`] needs, with as few hook-tool calls as possible.
pub fn gather(juju: &Juju, event: &Event, log: &LogHandle) -> anyhow::Result<Facts> {
    let options = juju
        .config()
        .context("cannot read the charm configuration")?;
    // Honour `debug` even when the rest of the config is invalid: that is when it helps most.
    log.set_debug(
        options
            .get("debug")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    );
    let config = Config::from_options(&options);
    let leader = juju
        .is_leader()
        .context("cannot tell whether this unit is the leader")?;
    Ok(Facts {
        event: event.clone(),
        config,
        leader,
        keys: None,
        unit: None,
    })
}

/// Decides what the hook does, from data only.
pub fn plan(facts: &Facts) -> HookPlan {
    let mut warnings = Vec::new();
    let mut inputs = StatusInputs::default();
    match &facts.config {
        Err(problems) => {
            warnings.push(format!(
                "configuration is invalid; nothing was changed: {problems}"
            ));
            inputs.config_problems = Some(problems.to_string());
        }
        Ok(config) => {
            if facts.event == Event::ConfigChanged {
                warnings.extend(unimplemented_warnings(&config.unimplemented_options_set()));
            }
            if let Some(unit) = &facts.unit {
                unit_status_inputs(unit, &mut inputs);
            }
            if let Some(keys) = &facts.keys {
                inputs.waiting.extend(keys.waiting.clone());
                inputs.active_note = keys.note.clone();
            }
        }
    }
    let unit_status = status::workload_status(&inputs);
    let app_status = facts
        .leader
        .then(|| status::application_status(&unit_status));
    HookPlan {
        warnings,
        unit_status: Some(unit_status),
        app_status,
    }
}

/// What Keystone on this unit adds to the status: the database's part, a refused value, the
/// pause, and whether Keystone answers.
fn unit_status_inputs(unit: &UnitReport, inputs: &mut StatusInputs) {
    shared_db::add_status(&unit.database, unit.db_initialised, inputs);
    if let Some(problem) = &unit.render_problem {
        inputs.blocked.push(problem.clone());
    }
    inputs.paused = unit.paused;
    if let Some(Err(reason)) = &unit.answering {
        inputs
            .waiting
            .push(format!("Keystone is not answering yet ({reason})"));
    }
}

/// One WARNING per option that is accepted for compatibility but has no effect here.
pub fn unimplemented_warnings(options: &[&str]) -> Vec<String> {
    options
        .iter()
        .map(|option| {
            format!("option {option} is set but this charm does not implement it; it has no effect")
        })
        .collect()
}

/// Carries out a plan.
pub fn apply(juju: &Juju, plan: &HookPlan) -> anyhow::Result<()> {
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(status) = &plan.unit_status {
        juju.status_set(StatusScope::Unit, status)
            .context("cannot set the unit status")?;
    }
    if let Some(status) = &plan.app_status {
        juju.status_set(StatusScope::Application, status)
            .context("cannot set the application status")?;
    }
    Ok(())
}

/// Everything a hook reaches outside Juju, in one object with a twin for tests: the key
/// repositories, the clock, Juju's features, files, services, processes and Keystone's API.
pub struct Machine {
    pub keys: KeyStore,
    /// Unix seconds.
    pub now: u64,
    /// Juju ≥ 3.1: keys travel in a Juju secret.
    pub secrets: bool,
    /// Where templates/ is.
    pub charm_dir: PathBuf,
    pub files: Rc<dyn Files>,
    pub services: Rc<dyn Services>,
    /// keystone-manage and the package tools.
    pub runner: &'static dyn Runner,
    pub keystone: Rc<dyn KeystoneConnector>,
    /// For the mod_wsgi worker counts.
    pub cpus: u32,
    /// The vhost's ServerName unless os-public-hostname is set.
    pub hostname: String,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("keys", &self.keys)
            .field("now", &self.now)
            .field("secrets", &self.secrets)
            .field("charm_dir", &self.charm_dir)
            .field("cpus", &self.cpus)
            .finish_non_exhaustive()
    }
}

static SYSTEM_RUNNER: SystemRunner = SystemRunner;

/// The twins behind [`Machine::twin`], for tests to inspect.
#[cfg(test)]
pub struct Twins {
    pub files: Rc<host::fs::MemoryFiles>,
    pub services: Rc<host::services::RecordingServices>,
    pub runner: &'static host::process::ScriptedRunner,
    pub keystone: Rc<std::sync::Mutex<crate::keystone_api::memory::MemoryKeystone>>,
}

impl Machine {
    /// This machine, as Juju runs the charm on it.
    pub fn system(ctx: &JujuContext) -> Machine {
        Machine {
            keys: KeyStore::system(),
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            secrets: ctx.version.supports_secrets(),
            charm_dir: ctx.charm_dir.clone(),
            files: Rc::new(HostFiles),
            services: Rc::new(HostServices::new(&SYSTEM_RUNNER)),
            runner: &SYSTEM_RUNNER,
            keystone: Rc::new(HttpConnector::default()),
            cpus: std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned()),
        }
    }

    /// The test twin: keys under `dir`, files, services, processes and Keystone in memory, and
    /// this crate's templates.
    #[cfg(test)]
    pub fn twin(dir: &std::path::Path) -> (Machine, Twins) {
        let twins = Twins {
            files: Rc::new(host::fs::MemoryFiles::new()),
            services: Rc::new(host::services::RecordingServices::new()),
            runner: Box::leak(Box::new(host::process::ScriptedRunner::new())),
            keystone: Rc::new(std::sync::Mutex::new(
                crate::keystone_api::memory::MemoryKeystone::bootstrapped(),
            )),
        };
        let machine = Machine {
            keys: KeyStore::in_dir(dir),
            now: 1_800_000_000,
            secrets: true,
            charm_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            files: twins.files.clone(),
            services: twins.services.clone(),
            runner: twins.runner,
            keystone: twins.keystone.clone(),
            cpus: 2,
            hostname: "juju-machine-0".to_owned(),
        };
        (machine, twins)
    }

    /// The key sync inputs for a validated config.
    pub fn sync_inputs<'a>(&'a self, config: &Config, request: RotationRequest) -> SyncInputs<'a> {
        SyncInputs {
            store: &self.keys,
            secrets: self.secrets,
            now: self.now,
            period: config.fernet_rotation_period(),
            max_active_keys: config.fernet_max_active_keys,
            request,
        }
    }
}

/// install and upgrade-charm: the distribution's packages (Keystone, Apache with mod_wsgi,
/// memcached when the cache is on). Nothing happens when they are all there already.
/// The distribution's own Keystone service is disabled so only the charm's vhost serves it.
fn install_packages(juju: &Juju, machine: &Machine, config: &Config) -> anyhow::Result<()> {
    let packages = host::packages::keystone_packages(config.enable_cache);
    let missing = host::packages::missing(&packages)?;
    if !missing.is_empty() {
        juju.status_set(
            StatusScope::Unit,
            &Status::maintenance("Installing packages"),
        )
        .context("cannot set the unit status")?;
        host::packages::install(&missing)?;
    }
    machine
        .services
        .disable_distribution_keystone()
        .context("cannot disable the distribution's own Keystone service")
}

/// Handles one event end to end.
pub fn handle(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
    log: &LogHandle,
) -> anyhow::Result<()> {
    match route(event) {
        Route::NotHandled => {
            tracing::info!("{event} is not handled by this charm; nothing to do");
            Ok(())
        }
        Route::Teardown => {
            if *event == Event::Stop {
                stop_services(machine)?;
            }
            Ok(())
        }
        Route::Action => {
            let Event::Action(name) = event else {
                return Ok(());
            };
            actions::run(juju, machine, name, log)
        }
        Route::Assess => assess(juju, machine, event, log),
    }
}

/// Reads the model, brings Keystone on this unit in line, and sets the status (every hook but
/// stop and remove, and the pause and resume actions).
pub fn assess(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
    log: &LogHandle,
) -> anyhow::Result<()> {
    let mut facts = gather(juju, event, log)?;
    if let Ok(config) = &facts.config {
        if matches!(event, Event::Install | Event::UpgradeCharm) {
            install_packages(juju, machine, config)?;
        }
        let inputs = machine.sync_inputs(config, RotationRequest::Scheduled);
        facts.keys = cluster::sync(juju, &inputs)?;
        let keys_ready = facts
            .keys
            .as_ref()
            .is_some_and(|k| k.waiting.is_none() && k.generation.is_some());
        facts.unit = Some(converge::converge(
            juju,
            machine,
            event,
            config,
            facts.leader,
            keys_ready,
        )?);
    }
    apply(juju, &plan(&facts))
}

/// `stop`: the unit is being removed, so Keystone stops serving from it (Apache waits for the
/// old process to exit).
fn stop_services(machine: &Machine) -> anyhow::Result<()> {
    use host::services::Service;
    for service in [Service::Apache2, Service::Memcached] {
        if machine.services.is_running(service)? {
            tracing::info!("stopping {}", service.name());
            machine
                .services
                .stop(service)
                .with_context(|| format!("cannot stop {}", service.name()))?;
        }
    }
    Ok(())
}

/// The panic text as juju-log gets it.
pub fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    match info.location() {
        Some(at) => format!(
            "keystone-charm panicked at {}:{}: {payload}",
            at.file(),
            at.line()
        ),
        None => format!("keystone-charm panicked: {payload}"),
    }
}

/// Sends panics to juju-log and stderr. The release build aborts on panic (exit by SIGABRT), the
/// test build unwinds (exit 101): either way the hook fails and the message is in the unit log.
pub fn install_panic_hook(sink: JujuLogSink) {
    std::panic::set_hook(Box::new(move |info| {
        let message = panic_message(info);
        eprintln!("{message}");
        let _ = sink.log(LogLevel::Error, &message);
    }));
}

/// Runs the hook or action Juju dispatched; the process's exit code.
pub fn run(ctx: &JujuContext, tools: Arc<dyn HookTools>) -> ExitCode {
    let juju = Juju::new(tools, ctx.unit.clone());
    install_panic_hook(juju.log_sink());
    let log = logging::init_hook_logging(juju.log_sink());
    let event = Event::from_dispatch_path(&ctx.dispatch_path);
    let machine = Machine::system(ctx);
    match handle(&juju, &machine, &event, &log) {
        Ok(()) => {
            tracing::debug!("{event} done with {} hook-tool calls", juju.total_calls());
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("{event} failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::{AppName, Databag, MemoryHookTools, MemoryState, UnitName};
    use crate::keystone_api::KeystoneApi as _;
    use serde_json::{Map, Value, json};

    fn unit() -> UnitName {
        UnitName::parse("keystone/0").unwrap()
    }

    /// A machine whose key repositories live in a fresh temporary directory.
    fn machine() -> Machine {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("charm-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Machine::twin(&dir).0
    }

    /// State in → event → state out.
    fn run_event(state: MemoryState, event: Event) -> (MemoryState, anyhow::Result<()>) {
        let tools = Arc::new(MemoryHookTools::from_state(state));
        let juju = Juju::new(tools.clone(), unit());
        let machine = machine();
        let (subscriber, log) = logging::hook_subscriber(Some(juju.log_sink()), false);
        let result =
            tracing::subscriber::with_default(subscriber, || handle(&juju, &machine, &event, &log));
        (tools.snapshot(), result)
    }

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn related_leader() -> MemoryState {
        let mut state = MemoryState::new(unit());
        state.leader = true;
        state.add_relation("shared-db", AppName::parse("mysql").unwrap());
        state
    }

    /// State in → event → state out, on a given machine (its files, services and Keystone
    /// carry over from one event to the next).
    fn run_on(
        machine: &Machine,
        state: MemoryState,
        event: Event,
    ) -> (MemoryState, anyhow::Result<()>) {
        let tools = Arc::new(MemoryHookTools::from_state(state));
        let juju = Juju::new(tools.clone(), unit());
        let (subscriber, log) = logging::hook_subscriber(Some(juju.log_sink()), false);
        let result =
            tracing::subscriber::with_default(subscriber, || handle(&juju, machine, &event, &log));
        (tools.snapshot(), result)
    }

    const CHARM_PASSWORD: &str = "charm-admin-pw";

    /// A leader with a database that lets it in, and the peer relation. The Python charm's
    /// leader setting provides the charm admin's password, which the twin Keystone knows (as
    /// `keystone-manage bootstrap` would have made it).
    fn ready_leader() -> (MemoryState, Machine, Twins) {
        let mut state = MemoryState::new(unit());
        state.leader = true;
        // Juju's config-get returns every option with its default.
        state.config =
            crate::config::defaults_from_config_yaml(include_str!("../config.yaml")).unwrap();
        state
            .addresses
            .insert("private-address".into(), "10.0.0.10".into());
        state
            .leader_settings
            .insert("_charm-keystone-admin_passwd".into(), CHARM_PASSWORD.into());
        let db = state.add_relation("shared-db", AppName::parse("mysql").unwrap());
        state.relation_mut(&db).unwrap().remote_units.insert(
            UnitName::parse("mysql/0").unwrap(),
            Databag::from([
                ("db_host".into(), "10.0.0.5".into()),
                ("password".into(), "db-pw".into()),
                ("allowed_units".into(), "keystone/0".into()),
            ]),
        );
        state.add_relation("cluster", AppName::parse("keystone").unwrap());
        let dir = std::env::temp_dir().join(format!(
            "charm-ready-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (machine, twins) = Machine::twin(&dir);
        twins
            .keystone
            .lock()
            .unwrap()
            .create_user(
                crate::keystone_api::DEFAULT_DOMAIN_ID,
                crate::identity::CHARM_ADMIN_USER,
                &crate::secret::Sensitive::new(CHARM_PASSWORD.to_owned()),
            )
            .unwrap();
        (state, machine, twins)
    }

    #[test]
    fn a_ready_leader_initialises_keystone_once_then_update_status_only_reads() {
        let (state, machine, twins) = ready_leader();
        let (state, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        assert_eq!(state.unit_status, Some(Status::active("Unit is ready")));
        assert_eq!(state.app_status, Some(Status::active("Unit is ready")));
        // The leader ran db_sync and bootstrap once, recorded it, and started Apache.
        assert_eq!(twins.runner.count("keystone-manage", "db_sync"), 1);
        assert_eq!(twins.runner.count("keystone-manage", "bootstrap"), 1);
        let peer = &state.relations[1].local_app_data;
        assert_eq!(peer.get("db-initialised").map(String::as_str), Some("True"));
        assert_eq!(
            peer.get("keystone-bootstrapped").map(String::as_str),
            Some("True")
        );
        assert!(peer.contains_key("identity-applied"));
        assert!(peer.contains_key("admin-secret-id"), "{peer:?}");
        let conf = twins
            .files
            .entry(std::path::Path::new(crate::render::paths::KEYSTONE_CONF))
            .unwrap();
        let host::fs::Entry::File {
            content,
            owner,
            mode,
        } = conf
        else {
            panic!("keystone.conf is not a file");
        };
        assert_eq!(
            (owner, mode),
            (host::fs::Owner::new("root", "keystone"), 0o640)
        );
        let conf_text = String::from_utf8(content).unwrap();
        assert!(
            conf_text.contains("connection = mysql+pymysql://keystone:db-pw@10.0.0.5/keystone"),
            "{conf_text}"
        );
        assert_eq!(
            twins.services.count(&host::services::ServiceAction::Start(
                host::services::Service::Apache2
            )),
            1
        );
        // The identity objects exist: the admin user logs in with the stored password.
        assert!(
            twins
                .keystone
                .lock()
                .unwrap()
                .users
                .iter()
                .any(|u| u.name == "admin")
        );

        // update-status: nothing written, nothing restarted, no keystone-manage, no API write,
        // and few hook-tool calls.
        let writes = twins.files.content_writes();
        let api_writes = twins.keystone.lock().unwrap().request_count().writes;
        let actions = twins.services.actions().len();
        let mut next = state.clone();
        next.calls.clear();
        let (out, result) = run_on(&machine, next, Event::UpdateStatus);
        result.unwrap();
        assert_eq!(out.unit_status, Some(Status::active("Unit is ready")));
        assert_eq!(twins.files.content_writes(), writes);
        assert_eq!(
            twins.keystone.lock().unwrap().request_count().writes,
            api_writes
        );
        assert_eq!(twins.runner.count("keystone-manage", "db_sync"), 1);
        assert_eq!(
            out.tools_called(),
            [
                "config-get",
                "is-leader",
                "relation-ids",
                "relation-get",
                "relation-ids",
                "relation-list",
                "relation-get",
                "status-set",
                "status-set"
            ]
        );
        // memcached and Apache were only checked, not started or restarted.
        let starts = |from: usize| {
            twins.services.actions()[from..]
                .iter()
                .filter(|a| {
                    use host::services::ServiceAction::*;
                    matches!(a, Start(_) | Stop(_) | Restart(_) | Reload(_))
                })
                .count()
        };
        assert_eq!(starts(actions), 0, "{:?}", twins.services.actions());

        // config-changed that changes nothing: no restart and no Keystone API call.
        let requests = twins.keystone.lock().unwrap().request_count().total;
        let mut next = out.clone();
        next.calls.clear();
        let (out, result) = run_on(&machine, next, Event::ConfigChanged);
        result.unwrap();
        assert_eq!(out.unit_status, Some(Status::active("Unit is ready")));
        assert_eq!(twins.files.content_writes(), writes);
        assert_eq!(starts(actions), 0, "{:?}", twins.services.actions());
        // Only the readiness check (GET /v3) reached Keystone.
        assert_eq!(
            twins.keystone.lock().unwrap().request_count().total,
            requests + 1
        );
        assert!(
            out.calls.len() < 25,
            "{:?} {:?}",
            out.tools_called(),
            out.logs
        );
    }

    #[test]
    fn the_database_leaving_clears_the_flags_so_a_new_one_is_initialised() {
        let (state, machine, twins) = ready_leader();
        let (mut state, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        // The database departs, then the relation breaks (Juju no longer lists it).
        state.relations[0].remote_units.clear();
        let (mut state, result) = run_on(
            &machine,
            state,
            Event::from_hook_name("shared-db-relation-departed"),
        );
        result.unwrap();
        let peer = &state.relations[1].local_app_data;
        assert!(!peer.contains_key("db-initialised"), "{peer:?}");
        assert!(!peer.contains_key("identity-applied"));
        assert_eq!(
            state.unit_status,
            Some(Status::waiting("Incomplete relations: database"))
        );
        state.relations.remove(0);
        let (state, result) = run_on(
            &machine,
            state,
            Event::from_hook_name("shared-db-relation-broken"),
        );
        result.unwrap();
        assert_eq!(
            state.unit_status,
            Some(Status::blocked("Missing relations: database"))
        );
        assert_eq!(twins.runner.count("keystone-manage", "db_sync"), 1);
    }

    #[test]
    fn a_non_leader_waits_for_the_database_to_be_initialised() {
        let (mut state, machine, twins) = ready_leader();
        state.leader = false;
        let (out, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        assert_eq!(twins.runner.count("keystone-manage", "db_sync"), 0);
        // It waits for the leader's keys first, then for db_sync.
        assert_eq!(
            out.unit_status.unwrap().kind,
            crate::juju::StatusKind::Waiting
        );
        assert_eq!(
            twins.services.count(&host::services::ServiceAction::Start(
                host::services::Service::Apache2
            )),
            0
        );
    }

    #[test]
    fn a_missing_database_blocks_and_non_leaders_leave_the_app_status_alone() {
        let state = MemoryState::new(unit());
        let (out, result) = run_event(state, Event::ConfigChanged);
        result.unwrap();
        assert_eq!(
            out.unit_status,
            Some(Status::blocked("Missing relations: database"))
        );
        assert_eq!(out.app_status, None);
    }

    #[test]
    fn a_blocked_config_only_sets_status_and_warns() {
        let mut state = related_leader();
        state.config = config(
            json!({"vip": "10.0.0.100", "dns-ha": true, "os-public-hostname": "ks.example.com"}),
        );
        let expected = Config::from_options(&state.config).unwrap_err().to_string();
        assert!(expected.starts_with("config: "), "{expected}");
        let (out, result) = run_event(state, Event::ConfigChanged);
        result.unwrap();
        assert_eq!(out.unit_status, Some(Status::blocked(expected.clone())));
        assert_eq!(out.app_status, Some(Status::blocked(expected.clone())));
        assert_eq!(
            out.log_lines(LogLevel::Warning),
            [format!(
                "configuration is invalid; nothing was changed: {expected}"
            )]
        );
        // Nothing but reads, the warning and the statuses: no relation data, ports or secrets.
        assert_eq!(
            out.tools_called(),
            [
                "config-get",
                "is-leader",
                "juju-log",
                "status-set",
                "status-set"
            ]
        );
    }

    #[test]
    fn the_debug_option_turns_on_debug_forwarding_even_when_config_is_invalid() {
        for options in [
            json!({"debug": true}),
            json!({"debug": true, "vip": "10.0.0.1", "dns-ha": true}),
        ] {
            let mut state = related_leader();
            state.config = config(options);
            let tools = Arc::new(MemoryHookTools::from_state(state));
            let juju = Juju::new(tools, unit());
            let log = LogHandle::default();
            gather(&juju, &Event::UpdateStatus, &log).unwrap();
            assert!(log.debug());
        }
    }

    #[test]
    fn unknown_hooks_are_logged_and_succeed() {
        let (out, result) = run_event(
            MemoryState::new(unit()),
            Event::from_hook_name("certificates-relation-joined"),
        );
        result.unwrap();
        assert_eq!(
            out.log_lines(LogLevel::Info),
            ["certificates-relation-joined is not handled by this charm; nothing to do"]
        );
        assert_eq!(out.tools_called(), ["juju-log"]);
        assert_eq!(out.unit_status, None);
    }

    #[test]
    fn an_undeclared_action_fails_the_action_not_the_unit() {
        let mut state = MemoryState::new(unit());
        state.action = Some(Default::default());
        let (out, result) = run_event(state, Event::Action("frobnicate".into()));
        result.unwrap();
        assert_eq!(
            out.action.unwrap().failure.as_deref(),
            Some("this charm has no action named \"frobnicate\"")
        );
    }

    /// Runs `action` on the output of a previous hook.
    fn run_action_on(
        machine: &Machine,
        mut state: MemoryState,
        action: &str,
    ) -> (MemoryState, crate::juju::memory::MemoryAction) {
        state.calls.clear();
        state.action = Some(Default::default());
        let (out, result) = run_on(machine, state, Event::Action(action.into()));
        result.unwrap();
        let task = out.action.clone().unwrap();
        (out, task)
    }

    fn apache_runs(twins: &Twins) -> bool {
        use host::services::Services as _;
        twins
            .services
            .is_running(host::services::Service::Apache2)
            .unwrap()
    }

    #[test]
    fn pause_stops_apache_and_keeps_it_stopped_until_resume() {
        let (state, machine, twins) = ready_leader();
        let (state, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        assert!(apache_runs(&twins));
        let (state, task) = run_action_on(&machine, state, "pause");
        assert_eq!(task.failure, None);
        assert!(!apache_runs(&twins));
        assert_eq!(state.unit_status, Some(Status::maintenance("Paused")));
        // Hooks while paused start nothing.
        let (state, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        assert!(!apache_runs(&twins));
        assert_eq!(state.unit_status, Some(Status::maintenance("Paused")));
        let (state, task) = run_action_on(&machine, state, "resume");
        assert_eq!(task.failure, None);
        assert!(apache_runs(&twins));
        assert_eq!(state.unit_status, Some(Status::active("Unit is ready")));
    }

    #[test]
    fn get_admin_password_returns_the_stored_one_on_any_unit() {
        let (state, machine, twins) = ready_leader();
        let (mut state, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        state.leader = false;
        let (_, task) = run_action_on(&machine, state, "get-admin-password");
        let password = task.results["admin-password"].clone();
        assert_eq!(password.len(), crate::identity::GENERATED_PASSWORD_LENGTH);
        // It is the admin user's password in Keystone.
        let credentials = crate::keystone_api::PasswordCredentials {
            user_name: "admin".into(),
            user_domain: crate::keystone_api::DomainRef::Name("admin_domain".into()),
            password: crate::secret::Sensitive::new(password),
        };
        twins
            .keystone
            .lock()
            .unwrap()
            .authenticate(&credentials, &crate::keystone_api::Scope::Unscoped)
            .unwrap();
    }

    #[test]
    fn rotate_admin_password_sets_a_new_one_in_keystone_then_stores_it() {
        let (state, machine, twins) = ready_leader();
        let (state, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        let (state, before) = run_action_on(&machine, state, "get-admin-password");
        let (state, task) = run_action_on(&machine, state, "rotate-admin-password");
        assert_eq!(task.failure, None, "{task:?}");
        assert!(!format!("{task:?}").contains(&before.results["admin-password"]));
        let (mut state, after) = run_action_on(&machine, state, "get-admin-password");
        let new = after.results["admin-password"].clone();
        assert_ne!(new, before.results["admin-password"]);
        let login = |password: &str| {
            twins.keystone.lock().unwrap().authenticate(
                &crate::keystone_api::PasswordCredentials {
                    user_name: "admin".into(),
                    user_domain: crate::keystone_api::DomainRef::Name("admin_domain".into()),
                    password: crate::secret::Sensitive::new(password.to_owned()),
                },
                &crate::keystone_api::Scope::Unscoped,
            )
        };
        assert!(login(&new).is_ok());
        assert!(login(&before.results["admin-password"]).is_err());

        // Refused on a non-leader, and when admin-password is set in config.
        state.leader = false;
        let (mut state, task) = run_action_on(&machine, state, "rotate-admin-password");
        assert_eq!(
            task.failure.as_deref(),
            Some("run this on the leader: juju run keystone/leader rotate-admin-password")
        );
        state.leader = true;
        state
            .config
            .insert("admin-password".into(), json!("operator-choice"));
        let (_, task) = run_action_on(&machine, state, "rotate-admin-password");
        assert!(
            task.failure
                .unwrap()
                .starts_with("admin-password is set in the config"),
        );
    }

    #[test]
    fn a_hostile_database_value_blocks_and_nothing_is_written() {
        let (mut state, machine, twins) = ready_leader();
        state.relations[0]
            .remote_units
            .values_mut()
            .for_each(|bag| {
                bag.insert(
                    "password".into(),
                    "pw\n[database]\nconnection = sqlite://".into(),
                );
            });
        let (out, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        let status = out.unit_status.unwrap();
        assert_eq!(status.kind, crate::juju::StatusKind::Blocked, "{status:?}");
        assert!(status.message.contains("mysql/0"), "{}", status.message);
        assert!(
            !status.message.contains("sqlite"),
            "the value is never echoed"
        );
        assert_eq!(twins.files.content_writes(), 0);
        assert_eq!(twins.runner.count("keystone-manage", "db_sync"), 0);
    }

    #[test]
    fn stop_stops_apache_and_memcached() {
        let (state, machine, twins) = ready_leader();
        let (state, result) = run_on(&machine, state, Event::ConfigChanged);
        result.unwrap();
        assert!(apache_runs(&twins));
        let (_, result) = run_on(&machine, state, Event::Stop);
        result.unwrap();
        assert!(!apache_runs(&twins));
        assert_eq!(
            twins.services.count(&host::services::ServiceAction::Stop(
                host::services::Service::Memcached
            )),
            1
        );
    }

    #[test]
    fn tool_failures_fail_the_hook_with_context() {
        let mut state = related_leader();
        state.leader = false;
        // A non-leader believing it leads: Juju refuses the application status.
        let tools = Arc::new(MemoryHookTools::from_state(state));
        let juju = Juju::new(tools.clone(), unit());
        let plan = HookPlan {
            warnings: vec![],
            unit_status: None,
            app_status: Some(Status::active("Unit is ready")),
        };
        let err = apply(&juju, &plan).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "cannot set the application status: status-set failed (exit 1): ERROR this unit is not the leader"
        );
    }

    #[test]
    fn unimplemented_options_are_named_one_warning_each() {
        assert_eq!(
            unimplemented_warnings(&["haproxy-server-timeout", "use-policyd-override"]),
            [
                "option haproxy-server-timeout is set but this charm does not implement it; it has no effect",
                "option use-policyd-override is set but this charm does not implement it; it has no effect",
            ]
        );
        assert!(unimplemented_warnings(&[]).is_empty());
    }

    #[test]
    fn a_valid_config_outside_config_changed_plans_only_the_status() {
        let facts = Facts {
            event: Event::UpdateStatus,
            config: Config::from_options(&Map::new()),
            leader: false,
            keys: None,
            unit: None,
        };
        let quiet = plan(&facts);
        assert!(quiet.warnings.is_empty());
        assert_eq!(quiet.unit_status, Some(Status::active("Unit is ready")));
        assert_eq!(quiet.app_status, None);
    }

    #[test]
    fn every_route() {
        assert_eq!(route(&Event::Install), Route::Assess);
        assert_eq!(route(&Event::Remove), Route::Teardown);
        assert_eq!(route(&Event::Action("pause".into())), Route::Action);
        assert_eq!(
            route(&Event::Unknown("collect-metrics".into())),
            Route::NotHandled
        );
    }
}
