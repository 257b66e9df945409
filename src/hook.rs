//! One hook, end to end: the event is routed, the steps run in order, and one guard turns what
//! they reported into the unit's and the application's status.
//!
//! ```text
//! dispatch ─► event ─► route ─┬─ assess:   Hook::new (config, leader, pause, peers)
//!                             │              └─► STEPS, in order ─► conditions ─► status
//!                             ├─ action:   actions::run ─► (re-assess when it asks)
//!                             ├─ teardown: stop Apache and memcached
//!                             └─ not handled: logged, exit 0
//! ```
//!
//! A step that reports [`Condition::Blocked`] stops the hook: nothing after it writes. The hook
//! still exits 0, so Juju does not retry what only the operator can fix.

use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::actions::{self, AfterAction};
use crate::event::Event;
use crate::juju::{HookTools, Juju, JujuContext, LogLevel, StatusScope};
use crate::logging::{self, LogHandle};
use crate::machine::Machine;
use crate::relations;
use crate::status::{self, Condition};
use crate::step::{Hook, Step};
use crate::steps;

/// The steps of every hook that assesses the unit, in the order they depend on each other:
/// each declares the facts it reads and writes ([`crate::facts`]), and a step reads only what a
/// step before it writes. A new relation adds its file in src/relations/ and its line here.
pub const STEPS: [Step; 33] = [
    steps::config_warnings::STEP,
    steps::packages::STEP,
    steps::release_upgrade::STEP,
    relations::fernet_keys::OBSERVE,
    relations::fernet_keys_source::STEP,
    relations::cluster::STEP,
    relations::shared_db::STEP,
    relations::certificates::STEP,
    relations::websso_trusted_dashboard::STEP,
    relations::keystone_middleware::STEP,
    relations::domain_backend::OBSERVE,
    relations::keystone_fid_service_provider::STEP,
    steps::policy_overrides::STEP,
    steps::python_charm_leftovers::STEP,
    steps::workload::KEYSTONE_FILES,
    relations::shared_db::INITIALISE,
    steps::release_upgrade::SCHEMA,
    relations::fernet_keys::PUBLISH,
    relations::fernet_keys_source::REPORT,
    steps::workload::APACHE,
    relations::ha::STEP,
    steps::readiness::STEP,
    steps::release_upgrade::REJOIN,
    steps::readiness::PUBLISH,
    steps::haproxy::STEP,
    steps::admin_identity::STEP,
    relations::identity_service::STEP,
    relations::identity_credentials::STEP,
    relations::identity_admin::STEP,
    relations::keystone_service::STEP,
    relations::identity_notifications::STEP,
    relations::nrpe_external_master::STEP,
    relations::domain_backend::CREATE,
];

/// How the charm treats an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Run the steps, then set the status (most hooks, as the Python charm's `assess_status`
    /// after every hook).
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
        | Event::PreSeriesUpgrade
        | Event::PostSeriesUpgrade
        | Event::Relation { .. }
        | Event::Secret(_) => Route::Assess,
    }
}

/// Runs the hook or action Juju dispatched: logging to juju-log, then [`handle`]. Whether it
/// succeeded: a failure is logged, and the process must exit non-zero so that Juju retries it.
pub fn run(ctx: &JujuContext, tools: Arc<dyn HookTools>, machine: &Machine) -> bool {
    let juju = Juju::new(tools, ctx.unit.clone()).in_context(ctx);
    install_panic_hook(juju.log_sink());
    let log = logging::init_hook_logging(juju.log_sink());
    let event = Event::from_dispatch_path(&ctx.dispatch_path);
    handle_and_log(&juju, machine, &event, &log)
}

/// [`handle`], with its outcome logged; whether it succeeded.
pub fn handle_and_log(juju: &Juju, machine: &Machine, event: &Event, log: &LogHandle) -> bool {
    let handled = handle(juju, machine, event, log)
        .and_then(|()| juju.commit().context("cannot set the relation data"));
    match handled {
        Ok(()) => {
            tracing::debug!("{event} done with {} hook-tool calls", juju.total_calls());
            true
        }
        Err(err) => {
            tracing::error!("{event} failed: {err:#}");
            false
        }
    }
}

/// Handles one event end to end.
pub fn handle(juju: &Juju, machine: &Machine, event: &Event, log: &LogHandle) -> Result<()> {
    match route(event) {
        Route::NotHandled => {
            tracing::info!("{event} is not handled by this charm; nothing to do");
            Ok(())
        }
        Route::Teardown => match event {
            Event::Stop => steps::workload::stop(machine),
            _ => Ok(()),
        },
        Route::Action => {
            let Event::Action(name) = event else {
                return Ok(());
            };
            match actions::run(juju, machine, event, name, &STEPS)? {
                AfterAction::Done => Ok(()),
                AfterAction::Reassess => assess(juju, machine, event, log),
            }
        }
        Route::Assess => assess(juju, machine, event, log),
    }
}

/// Runs the steps and sets the status from what they reported.
pub fn assess(juju: &Juju, machine: &Machine, event: &Event, log: &LogHandle) -> Result<()> {
    // Honour `debug` even when the rest of the config is invalid: that is when it helps most.
    let options = juju
        .config()
        .context("cannot read the charm configuration")?;
    log.set_debug(
        options
            .get("debug")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    );
    let leader = juju
        .is_leader()
        .context("cannot tell whether this unit is the leader")?;
    match event {
        Event::PreSeriesUpgrade => steps::series_upgrade::prepare(machine)?,
        Event::PostSeriesUpgrade => steps::series_upgrade::complete(machine)?,
        _ => {}
    }
    let conditions = match Hook::new(juju, machine, event)? {
        Ok(mut hook) => run_steps(&mut hook, &STEPS)?,
        Err(problems) => {
            tracing::warn!("configuration is invalid; nothing was changed: {problems}");
            vec![Condition::Blocked(problems.to_string())]
        }
    };
    set_status(juju, leader, &conditions)
}

/// Runs `steps` in order until one reports a condition that stops the hook; everything they
/// reported.
pub fn run_steps(hook: &mut Hook<'_>, steps: &[Step]) -> Result<Vec<Condition>> {
    let mut conditions = Vec::new();
    if hook.machine.is_upgrading_series()? {
        conditions.push(Condition::Blocked(
            steps::series_upgrade::READY_FOR_UPGRADE.to_owned(),
        ));
    }
    if hook.paused {
        conditions.push(Condition::Paused);
    }
    conditions.extend(hook.run_steps(steps)?);
    Ok(conditions)
}

/// The guard: the unit's status, and the application's on the leader.
fn set_status(juju: &Juju, leader: bool, conditions: &[Condition]) -> Result<()> {
    let unit = status::unit_status(conditions);
    juju.status_set(StatusScope::Unit, &unit)
        .context("cannot set the unit status")?;
    if leader {
        juju.status_set(StatusScope::Application, &status::application_status(&unit))
            .context("cannot set the application status")?;
    }
    Ok(())
}

/// Sends panics to juju-log and stderr. The release build aborts on panic (exit by SIGABRT), the
/// test build unwinds (exit 101): either way the hook fails and the message is in the unit log.
pub fn install_panic_hook(sink: crate::juju::JujuLogSink) {
    std::panic::set_hook(Box::new(move |info| {
        let message = panic_message(info);
        eprintln!("{message}");
        let _ = sink.log(LogLevel::Error, &message);
    }));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::host::services::{Service, ServiceAction, Services as _};
    use crate::keystone_api::{DomainRef, KeystoneApi as _, PasswordCredentials, Scope};
    use crate::secret::Sensitive;
    use crate::testing::Sim;
    use serde_json::json;

    const LEADER: &str = "keystone/0";

    fn with_database(units: usize, config: serde_json::Value) -> Sim {
        Sim::with_database(units, config)
    }

    fn ready(units: usize) -> Sim {
        Sim::ready(units)
    }

    fn keystone_manage(sim: &Sim, unit: &str, command: &str) -> usize {
        sim.machine(unit).1.runner.count("keystone-manage", command)
    }

    fn apache_runs(sim: &Sim, unit: &str) -> bool {
        sim.machine(unit)
            .1
            .services
            .is_running(Service::Apache2)
            .unwrap()
    }

    /// Service starts, stops, restarts and reloads so far.
    fn service_changes(sim: &Sim, unit: &str) -> usize {
        sim.machine(unit)
            .1
            .services
            .actions()
            .iter()
            .filter(|a| {
                use ServiceAction::*;
                matches!(a, Start(_) | Stop(_) | Restart(_) | Reload(_))
            })
            .count()
    }

    fn admin_login(sim: &Sim, password: &str) -> bool {
        sim.machine(LEADER)
            .1
            .keystone
            .lock()
            .unwrap()
            .authenticate(
                &PasswordCredentials {
                    user_name: "admin".into(),
                    user_domain: DomainRef::Name("admin_domain".into()),
                    password: Sensitive::new(password.to_owned()),
                },
                &Scope::Unscoped,
            )
            .is_ok()
    }

    #[test]
    fn a_ready_leader_initialises_keystone_once_then_update_status_only_reads() {
        let sim = ready(1);
        let mut sim = sim;
        assert_eq!(sim.app_status(), "active: Unit is ready");
        // The leader ran db_sync and bootstrap once, recorded it, and started Apache.
        assert_eq!(keystone_manage(&sim, LEADER, "db_sync"), 1);
        assert_eq!(keystone_manage(&sim, LEADER, "bootstrap"), 1);
        let peer = sim.peer_app_bag();
        assert_eq!(peer.get("db-initialised").map(String::as_str), Some("True"));
        assert_eq!(
            peer.get("keystone-bootstrapped").map(String::as_str),
            Some("True")
        );
        assert!(peer.contains_key("identity-applied"), "{peer:?}");
        assert!(peer.contains_key("admin-secret-id"), "{peer:?}");
        let machine = sim.machine(LEADER);
        let Some(crate::host::fs::Entry::File {
            content,
            owner,
            mode,
        }) = machine
            .1
            .files
            .entry(std::path::Path::new(crate::paths::KEYSTONE_CONF))
        else {
            panic!("keystone.conf is not a file");
        };
        assert_eq!(
            (owner, mode),
            (crate::host::fs::Owner::new("root", "keystone"), 0o640)
        );
        let conf_text = String::from_utf8(content).unwrap();
        assert!(
            conf_text.contains("connection = mysql+pymysql://keystone:db-pw@10.0.0.5/keystone"),
            "{conf_text}"
        );
        assert_eq!(
            machine
                .1
                .services
                .count(&ServiceAction::Start(Service::Apache2)),
            1
        );
        // The admin identity exists.
        assert!(
            machine
                .1
                .keystone
                .lock()
                .unwrap()
                .users
                .iter()
                .any(|u| u.name == "admin")
        );

        // update-status: nothing written, nothing restarted, no keystone-manage, no API write,
        // and few hook-tool calls.
        let writes = machine.1.files.content_writes();
        let api = || machine.1.keystone.lock().unwrap().request_count();
        let api_before = api();
        let changes = service_changes(&sim, LEADER);
        assert!(sim.run(LEADER, "update-status"));
        assert_eq!(sim.status(LEADER), "active: Unit is ready");
        assert_eq!(machine.1.files.content_writes(), writes);
        assert_eq!(api().writes, api_before.writes);
        assert_eq!(
            api().total,
            api_before.total + 1,
            "the health check, GET /v3"
        );
        assert_eq!(keystone_manage(&sim, LEADER, "db_sync"), 1);
        assert_eq!(
            sim.tools_called(LEADER),
            crate::testing::STEADY_UPDATE_STATUS
        );
        assert_eq!(service_changes(&sim, LEADER), changes);

        // config-changed that changes nothing: no restart and no Keystone request at all.
        let api_before = api();
        assert!(sim.run(LEADER, "config-changed"));
        assert_eq!(sim.status(LEADER), "active: Unit is ready");
        assert_eq!(machine.1.files.content_writes(), writes);
        assert_eq!(service_changes(&sim, LEADER), changes);
        assert_eq!(api().total, api_before.total);
        assert!(sim.tools_called(LEADER).len() < 25);
    }

    #[test]
    fn the_database_leaving_clears_the_flags_so_a_new_one_is_initialised() {
        let mut sim = ready(1);
        let relation = sim.model.relation_id("keystone", "shared-db").unwrap();
        sim.model.unrelate(relation).unwrap();
        sim.settle();
        let peer = sim.peer_app_bag();
        assert!(!peer.contains_key("db-initialised"), "{peer:?}");
        assert!(!peer.contains_key("keystone-bootstrapped"), "{peer:?}");
        assert!(!peer.contains_key("identity-applied"), "{peer:?}");
        assert_eq!(sim.status(LEADER), "blocked: Missing relations: database");
        assert_eq!(keystone_manage(&sim, LEADER, "db_sync"), 1);
        // A new database is initialised again, and the admin identity set up in it.
        sim.model
            .relate("keystone:shared-db", "mysql:shared-db")
            .unwrap();
        sim.settle();
        assert_eq!(sim.status(LEADER), "active: Unit is ready");
        assert_eq!(keystone_manage(&sim, LEADER, "db_sync"), 2);
        assert_eq!(keystone_manage(&sim, LEADER, "bootstrap"), 2);
        assert!(sim.peer_app_bag().contains_key("identity-applied"));
    }

    #[test]
    fn a_non_leader_waits_for_the_database_to_be_initialised() {
        let mut sim = with_database(2, json!({}));
        let other = "keystone/1";
        // Only the non-leader and the database run: the leader never gets to db_sync.
        sim.model.settle_unit(other).unwrap();
        sim.model.settle_unit("mysql/0").unwrap();
        sim.model.settle_unit(other).unwrap();
        assert_eq!(keystone_manage(&sim, other, "db_sync"), 0);
        assert!(
            sim.status(other).starts_with("waiting: "),
            "{}",
            sim.status(other)
        );
        assert_eq!(
            sim.machine(other)
                .1
                .services
                .count(&ServiceAction::Start(Service::Apache2)),
            0
        );
    }

    #[test]
    fn a_missing_database_blocks_and_non_leaders_leave_the_app_status_alone() {
        let mut sim = Sim::keystone(2, json!({}));
        sim.settle();
        for unit in ["keystone/0", "keystone/1"] {
            assert_eq!(sim.status(unit), "blocked: Missing relations: database");
        }
        assert_eq!(sim.app_status(), "blocked: Missing relations: database");
        assert!(sim.run("keystone/1", "config-changed"));
        let calls = sim.tools_called("keystone/1");
        assert_eq!(calls.iter().filter(|t| *t == "status-set").count(), 1);
    }

    #[test]
    fn a_blocked_config_only_sets_status_and_warns() {
        let options =
            json!({"vip": "10.0.0.100", "dns-ha": true, "os-public-hostname": "ks.example.com"});
        let mut all =
            crate::config::defaults_from_config_yaml(include_str!("../config.yaml")).unwrap();
        all.extend(options.as_object().cloned().unwrap());
        let expected = Config::from_options(&all).unwrap_err().to_string();
        assert!(expected.starts_with("config: "), "{expected}");
        let mut sim = with_database(1, options);
        sim.settle();
        assert_eq!(sim.status(LEADER), format!("blocked: {expected}"));
        assert_eq!(sim.app_status(), format!("blocked: {expected}"));
        assert!(sim.run(LEADER, "config-changed"));
        // Nothing but reads, the warning and the statuses: no relation data, ports or secrets.
        assert_eq!(
            sim.tools_called(LEADER),
            [
                "config-get",
                "is-leader",
                "juju-log",
                "status-set",
                "status-set"
            ]
        );
        assert!(sim.logs(LEADER, "WARNING").contains(&format!(
            "configuration is invalid; nothing was changed: {expected}"
        )));
        let machine = sim.machine(LEADER);
        assert_eq!(machine.1.files.content_writes(), 0);
        assert!(machine.1.runner.calls().is_empty());
    }

    #[test]
    fn the_debug_option_turns_on_debug_forwarding_even_when_config_is_invalid() {
        for options in [
            json!({"debug": true}),
            json!({"debug": true, "vip": "10.0.0.1", "dns-ha": true}),
        ] {
            let mut sim = Sim::keystone(1, options);
            sim.settle();
            assert!(!sim.logs(LEADER, "DEBUG").is_empty());
        }
        let mut quiet = Sim::keystone(1, json!({}));
        quiet.settle();
        assert!(quiet.logs(LEADER, "DEBUG").is_empty());
    }

    #[test]
    fn unknown_hooks_are_logged_and_succeed() {
        let mut sim = Sim::keystone(1, json!({}));
        sim.settle();
        let status = sim.status(LEADER);
        assert!(sim.run(LEADER, "collect-metrics"));
        assert_eq!(
            sim.logs(LEADER, "INFO").last().map(String::as_str),
            Some("collect-metrics is not handled by this charm; nothing to do")
        );
        assert_eq!(sim.tools_called(LEADER), ["juju-log"]);
        assert_eq!(sim.status(LEADER), status);
    }

    #[test]
    fn an_undeclared_action_fails_the_action_not_the_unit() {
        let mut sim = Sim::keystone(1, json!({}));
        sim.settle();
        // Juju only dispatches what actions.yaml declares: this stands for a packaging mistake.
        let task = sim
            .model
            .run_undeclared_action_now(LEADER, "frobnicate")
            .unwrap();
        assert_eq!(task.status, "failed");
        assert_eq!(
            task.message.as_deref(),
            Some("this charm has no action named \"frobnicate\"")
        );
    }

    #[test]
    fn pause_stops_apache_and_keeps_it_stopped_until_resume() {
        let mut sim = ready(1);
        assert!(apache_runs(&sim, LEADER));
        let task = sim.action(LEADER, "pause", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        assert!(!apache_runs(&sim, LEADER));
        assert_eq!(sim.status(LEADER), "maintenance: Paused");
        // Hooks while paused start nothing.
        assert!(sim.run(LEADER, "config-changed"));
        assert!(!apache_runs(&sim, LEADER));
        assert_eq!(sim.status(LEADER), "maintenance: Paused");
        let task = sim.action(LEADER, "resume", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        assert!(apache_runs(&sim, LEADER));
        assert_eq!(sim.status(LEADER), "active: Unit is ready");
    }

    #[test]
    fn package_upgrade_upgrades_within_the_release_and_stops_at_a_new_one() {
        use crate::host::process::AptTwin;
        let mut sim = ready(2);
        let machine = sim.machine(LEADER);
        let runner = &machine.1.runner;
        let packages = |keystone: &str| {
            [("keystone", keystone), ("apache2", "2.4.62-1~deb12u2")]
                .map(|(name, version)| (name.to_owned(), version.to_owned()))
                .into()
        };
        runner.set_packages(AptTwin {
            installed: packages("2:22.0.2-0+deb12u3"),
            available: packages("2:22.0.2-0+deb12u3"),
        });
        assert!(sim.run(LEADER, "upgrade-charm"));
        // Nothing newer: nothing changes, nothing restarts.
        let restarts = |sim: &Sim| {
            sim.machine(LEADER)
                .1
                .services
                .count(&ServiceAction::Restart(Service::Apache2))
        };
        let before = restarts(&sim);
        let disabled = |sim: &Sim| {
            sim.machine(LEADER)
                .1
                .services
                .count(&ServiceAction::DisableDistributionKeystone)
        };
        let disabled_before = disabled(&sim);
        let task = sim.action(LEADER, "package-upgrade", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        assert!(
            task.results["upgraded"]
                .as_str()
                .unwrap()
                .starts_with("nothing")
        );
        assert_eq!(restarts(&sim), before);

        // A newer build of the same release: the unit drains, upgrades, restarts Apache on it
        // and says what changed.
        runner.set_packages(AptTwin {
            installed: packages("2:22.0.2-0+deb12u3"),
            available: packages("2:22.0.2-0+deb12u6"),
        });
        let calls_before = runner.calls().len();
        let task = sim.action(LEADER, "package-upgrade", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        assert_eq!(task.results["outcome"], crate::actions::UPGRADE_DONE);
        assert_eq!(
            task.results["upgraded"],
            "keystone 2:22.0.2-0+deb12u3 -> 2:22.0.2-0+deb12u6"
        );
        assert_eq!(restarts(&sim), before + 1);
        let services = &machine.1.services;
        assert_eq!(
            services.count(&ServiceAction::WaitUntilDrained("keystone-0".to_owned())),
            1
        );
        assert_eq!(
            disabled(&sim),
            disabled_before + 1,
            "the package's scripts enable it again"
        );
        let calls: Vec<String> = runner.calls().iter().map(|c| c.to_string()).collect();
        assert!(
            calls
                .iter()
                .any(|c| c.ends_with("install -y --only-upgrade apache2 keystone")),
            "{calls:?}"
        );
        let updates = calls[calls_before..]
            .iter()
            .filter(|c| c.starts_with("apt-get") && c.ends_with(" update"))
            .count();
        assert_eq!(updates, 1, "apt's index is refreshed once: {calls:?}");
        assert_eq!(sim.status(LEADER), "active: Unit is ready");
        assert!(
            sim.file(LEADER, crate::paths::DRAINING_MARKER).is_empty(),
            "the unit rejoined haproxy once Keystone answered"
        );

        // The sources offer the next release: nothing is upgraded.
        runner.set_packages(AptTwin {
            installed: packages("2:22.0.2-0+deb12u6"),
            available: packages("2:23.0.0-0ubuntu1~cloud0"),
        });
        let calls_before = runner.calls().len();
        let task = sim.action(LEADER, "package-upgrade", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        assert_eq!(
            task.results["outcome"],
            crate::actions::RELEASE_UPGRADE_AVAILABLE
        );
        let new_calls: Vec<String> = runner.calls()[calls_before..]
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert!(
            !new_calls.iter().any(|c| c.contains("--only-upgrade")),
            "{new_calls:?}"
        );
    }

    #[test]
    fn get_admin_password_returns_the_stored_one_on_any_unit() {
        let mut sim = ready(2);
        let task = sim.action("keystone/1", "get-admin-password", json!({}));
        let password = task.results["admin-password"].as_str().unwrap().to_owned();
        assert_eq!(password.len(), crate::identity::GENERATED_PASSWORD_LENGTH);
        // It is the admin user's password in Keystone.
        assert!(admin_login(&sim, &password));
    }

    #[test]
    fn rotate_admin_password_sets_a_new_one_in_keystone_then_stores_it() {
        let mut sim = ready(2);
        let password = |task: &juju_sim::state::ActionTask| {
            task.results["admin-password"].as_str().unwrap().to_owned()
        };
        let before = password(&sim.action(LEADER, "get-admin-password", json!({})));
        let task = sim.action(LEADER, "rotate-admin-password", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        assert!(!format!("{task:?}").contains(&before));
        let after = password(&sim.action("keystone/1", "get-admin-password", json!({})));
        assert_ne!(after, before);
        assert!(admin_login(&sim, &after));
        assert!(!admin_login(&sim, &before));

        // Refused on a non-leader, and when admin-password is set in config.
        let task = sim.action("keystone/1", "rotate-admin-password", json!({}));
        assert_eq!(
            task.message.as_deref(),
            Some("run this on the leader: juju run keystone/leader rotate-admin-password")
        );
        sim.model
            .set_config(
                "keystone",
                json!({"admin-password": "operator-choice"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )
            .unwrap();
        sim.settle();
        let task = sim.action(LEADER, "rotate-admin-password", json!({}));
        assert!(
            task.message
                .unwrap()
                .starts_with("admin-password is set in the config")
        );
    }

    #[test]
    fn a_hostile_database_value_blocks_and_nothing_is_written() {
        let mut sim = ready(1);
        let machine = sim.machine(LEADER);
        let conf = || {
            machine
                .1
                .files
                .entry(std::path::Path::new(crate::paths::KEYSTONE_CONF))
        };
        let (writes, before) = (machine.1.files.content_writes(), conf());
        let relation = sim.model.relation_id("keystone", "shared-db").unwrap();
        sim.model
            .world()
            .relations
            .get_mut(&relation)
            .unwrap()
            .unit_data
            .entry("mysql/0".into())
            .or_default()
            .insert(
                "password".into(),
                "pw\n[database]\nconnection = sqlite://".into(),
            );
        assert!(sim.run(LEADER, "shared-db-relation-changed"));
        let status = sim.status(LEADER);
        assert!(status.starts_with("blocked: "), "{status}");
        assert!(status.contains("mysql/0"), "{status}");
        assert!(!status.contains("sqlite"), "the value is never echoed");
        assert_eq!(machine.1.files.content_writes(), writes);
        assert_eq!(conf(), before);
        assert_eq!(keystone_manage(&sim, LEADER, "db_sync"), 1);
    }

    #[test]
    fn stop_stops_apache_and_memcached() {
        let mut sim = ready(1);
        assert!(apache_runs(&sim, LEADER));
        assert!(sim.run(LEADER, "stop"));
        assert!(!apache_runs(&sim, LEADER));
        assert_eq!(
            sim.machine(LEADER)
                .1
                .services
                .count(&ServiceAction::Stop(Service::Memcached)),
            1
        );
    }

    #[test]
    fn tool_failures_fail_the_hook_with_context() {
        let mut sim = Sim::keystone(2, json!({}));
        sim.settle();
        // A non-leader believing it leads: Juju refuses the application status.
        let ok = sim.with_hook("keystone/1", "config-changed", |juju, _, _| {
            let err = set_status(juju, true, &[]).unwrap_err();
            format!("{err:#}")
                == "cannot set the application status: status-set failed (exit 1): ERROR this unit is not the leader"
        });
        assert!(ok);
    }

    #[test]
    fn unimplemented_options_are_warned_about_in_config_changed_only() {
        let mut sim = Sim::keystone(1, json!({"harden": "os"}));
        sim.settle();
        let warning = "option harden is set but this charm does not implement it; it has no effect";
        let count = |sim: &Sim| {
            sim.logs(LEADER, "WARNING")
                .iter()
                .filter(|line| *line == warning)
                .count()
        };
        let seen = count(&sim);
        assert_eq!(seen, 1, "config-changed ran once");
        assert!(sim.run(LEADER, "update-status"));
        assert_eq!(count(&sim), seen);
        assert!(sim.run(LEADER, "config-changed"));
        assert_eq!(count(&sim), seen + 1);
    }

    #[test]
    fn install_installs_what_is_missing_and_sets_the_workload_version() {
        let mut sim = Sim::keystone(1, json!({}));
        let machine = sim.machine(LEADER);
        let reply = |stdout: &str| crate::host::process::Output {
            code: Some(0),
            stdout: stdout.to_owned(),
            stderr: String::new(),
        };
        // On jammy, caracal is the Cloud Archive's: its keyring is there; apt-get update. Then
        // dpkg-query: only keystone is installed; apt-get update and install; then the version.
        machine
            .1
            .runner
            .reply(reply("ubuntu-cloud-keyring install ok installed\n"));
        machine.1.runner.reply(reply(""));
        machine
            .1
            .runner
            .reply(reply("keystone install ok installed\n"));
        machine.1.runner.reply(reply(""));
        machine.1.runner.reply(reply(""));
        machine.1.runner.reply(reply("2:25.0.0-0ubuntu1"));
        assert!(sim.run(LEADER, "install"));
        let calls: Vec<String> = machine
            .1
            .runner
            .calls()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert!(calls[0].ends_with("ubuntu-cloud-keyring"), "{calls:?}");
        assert!(
            calls[1].contains("update -o APT::Update::Error-Mode=any"),
            "{calls:?}"
        );
        let sources = crate::host::fs::Files::read(
            machine.1.files.as_ref(),
            std::path::Path::new(crate::origin::CLOUD_ARCHIVE_LIST),
        )
        .unwrap()
        .unwrap();
        assert!(
            String::from_utf8(sources)
                .unwrap()
                .contains("jammy-updates/caracal main")
        );
        assert!(calls[2].starts_with("dpkg-query -W"), "{calls:?}");
        assert!(
            calls[4].ends_with(
                "install -y --no-install-recommends python3-pymysql apache2 libapache2-mod-wsgi-py3 haproxy ca-certificates memcached nftables"
            ),
            "{calls:?}"
        );
        assert_eq!(calls[5], "dpkg-query -W -f ${Version} keystone");
        assert_eq!(sim.model.world().apps["keystone"].version, "25.0.0");
        assert!(
            machine
                .1
                .services
                .actions()
                .contains(&ServiceAction::DisableDistributionKeystone)
        );
        // The maintenance status was said while installing.
        assert!(
            sim.model
                .hook_log()
                .last()
                .unwrap()
                .tool_calls
                .iter()
                .any(|c| c == "status-set maintenance -- Installing packages"),
            "{:?}",
            sim.model.hook_log().last().unwrap().tool_calls
        );
    }

    /// A panic reaches juju-log with its message and location. That the process then exits
    /// non-zero is Rust's: 101 when unwinding, SIGABRT with the release profile's panic=abort.
    /// (The panic hook is process-wide: nextest runs each test in a process of its own.)
    #[test]
    fn panics_are_sent_to_juju_log() {
        let mut sim = Sim::keystone(1, json!({}));
        sim.settle();
        let line = line!() + 4;
        assert!(sim.with_hook(LEADER, "update-status", |juju, _, _| {
            install_panic_hook(juju.log_sink());
            let result = std::panic::catch_unwind(|| {
                panic!("fernet key repository vanished");
            });
            let _ = std::panic::take_hook();
            result.is_err()
        }));
        assert_eq!(
            sim.logs(LEADER, "ERROR"),
            [format!(
                "keystone-charm panicked at src/hook.rs:{line}: fernet key repository vanished"
            )]
        );
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
