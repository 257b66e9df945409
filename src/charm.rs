//! Hook orchestration: gather facts from Juju, plan from data, then apply.
//!
//! [`gather`] is the only step that reads from Juju, [`plan`] is pure, and [`apply`] is the
//! only step that writes. A blocked configuration yields a plan with a blocked status and no
//! work, so nothing is written and no service is touched; the hook still exits 0 so Juju does not
//! retry a hook that cannot succeed until the operator changes the config.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::actions;
use crate::config::{Config, ConfigProblems};
use crate::event::{Endpoint, Event};
use crate::fernet_keys::RotationRequest;
use crate::host;
use crate::juju::{HookTools, Juju, JujuContext, JujuLogSink, LogLevel, Status, StatusScope};
use crate::logging::{self, LogHandle};
use crate::relations::cluster::{self, KeyStore, KeySync, SyncInputs};
use crate::status::{self, StatusInputs};

/// How the charm treats an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Read the config and the model, then set the status (most hooks, as the Python charm's
    /// `assess_status` after every hook).
    Assess,
    /// `stop` and `remove`: the unit is going away; nothing to check or report.
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

/// Required relations: the endpoint and the name operators know it by in status messages.
const REQUIRED_RELATIONS: [(Endpoint, &str); 1] = [(Endpoint::SharedDb, "database")];

/// What the hook learned from Juju.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub event: Event,
    pub config: Result<Config, ConfigProblems>,
    pub leader: bool,
    /// Required relations (by status name) that have no relation id. Not gathered when the
    /// config is invalid (the status is blocked on config anyway).
    pub missing_relations: Vec<String>,
    /// The fernet key synchronisation's outcome (None before the peer relation exists, or when
    /// the config is invalid).
    pub keys: Option<KeySync>,
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
    let mut missing_relations = Vec::new();
    if config.is_ok() {
        for (endpoint, name) in REQUIRED_RELATIONS {
            let ids = juju
                .relation_ids(endpoint.name())
                .with_context(|| format!("cannot list the {endpoint} relations"))?;
            if ids.is_empty() {
                missing_relations.push(name.to_owned());
            }
        }
    }
    Ok(Facts {
        event: event.clone(),
        config,
        leader,
        missing_relations,
        keys: None,
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
            inputs.missing_relations = facts.missing_relations.clone();
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

/// What a hook needs from outside Juju: the key repositories, the clock, Juju's features.
#[derive(Debug, Clone)]
pub struct Machine {
    pub keys: KeyStore,
    /// Unix seconds.
    pub now: u64,
    /// Juju ≥ 3.1: keys travel in a Juju secret.
    pub secrets: bool,
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
        }
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
fn install_packages(juju: &Juju, config: &Config) -> anyhow::Result<()> {
    let packages = host::packages::keystone_packages(config.enable_cache);
    let missing = host::packages::missing(&packages)?;
    if missing.is_empty() {
        return Ok(());
    }
    juju.status_set(
        StatusScope::Unit,
        &Status::maintenance("Installing packages"),
    )
    .context("cannot set the unit status")?;
    host::packages::install(&missing)
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
            tracing::debug!("{event}: nothing to do");
            Ok(())
        }
        Route::Action => {
            let Event::Action(name) = event else {
                return Ok(());
            };
            actions::run(juju, machine, name)
        }
        Route::Assess => {
            let mut facts = gather(juju, event, log)?;
            if let Ok(config) = &facts.config
                && matches!(event, Event::Install | Event::UpgradeCharm)
            {
                install_packages(juju, config)?;
            }
            if let Ok(config) = &facts.config {
                let inputs = machine.sync_inputs(config, RotationRequest::Scheduled);
                facts.keys = cluster::sync(juju, &inputs)?;
            }
            let plan = plan(&facts);
            apply(juju, &plan)
        }
    }
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
    use crate::juju::{AppName, MemoryHookTools, MemoryState, UnitName};
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
        Machine {
            keys: KeyStore::in_dir(&dir),
            now: 1_800_000_000,
            secrets: true,
        }
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

    #[test]
    fn update_status_on_a_ready_leader_sets_both_statuses_in_few_calls() {
        let (out, result) = run_event(related_leader(), Event::UpdateStatus);
        result.unwrap();
        assert_eq!(out.unit_status, Some(Status::active("Unit is ready")));
        assert_eq!(out.app_status, Some(Status::active("Unit is ready")));
        assert_eq!(
            out.tools_called(),
            [
                "config-get",
                "is-leader",
                "relation-ids",
                "relation-ids",
                "status-set",
                "status-set"
            ]
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
            missing_relations: vec![],
            keys: None,
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
