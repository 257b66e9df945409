//! The built binary, packed as `make charm` packs it, run as Juju runs it by the simulator (cwd =
//! charm dir, Juju's environment, no arguments, hook tools on PATH talking to the unit agent).
//! Asserts the exact tool calls where a hook makes few.

mod support;

use keystone_charm::config::Config;
use serde_json::{Map, Value, json};
use support::Keystone;

const LEADER: &str = "keystone/0";

fn options(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// The upstream version of the keystone package installed here (`2:25.0.0-0ubuntu1` → `25.0.0`).
fn keystone_version() -> String {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "keystone"])
        .output()
        .expect("dpkg-query");
    let version = String::from_utf8(out.stdout).expect("UTF-8");
    let version = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
    version
        .rsplit_once('-')
        .map_or(version, |(v, _)| v)
        .to_owned()
}

#[test]
fn install_on_a_fresh_leader_sets_the_version_writes_keystone_conf_and_reports_the_missing_database()
 {
    let mut keystone = Keystone::deploy("3.6.1", 1, Map::new());
    keystone.model.settle().unwrap();
    let run = keystone
        .model
        .hook_log()
        .into_iter()
        .find(|r| r.hook == "install")
        .expect("install ran");
    assert_eq!(run.exit_code, 0, "{}", run.stderr);
    let calls = &run.tool_calls;
    // The hook's context (config, leadership, the peer relation: none yet), then the version.
    // (Logs between them: on this Debian machine, that the default origin means Debian's own
    // archive here.)
    let not_logs: Vec<String> = calls
        .iter()
        .filter(|call| !call.starts_with("juju-log"))
        .cloned()
        .collect();
    assert_eq!(
        not_logs[..4],
        [
            "config-get --format=json".to_owned(),
            "is-leader --format=json".to_owned(),
            "relation-ids --format=json cluster".to_owned(),
            format!("application-version-set -- {}", keystone_version()),
        ]
    );
    for wrote in ["/etc/keystone/keystone.conf", "/etc/keystone/logging.conf"] {
        assert!(
            calls.contains(&format!("juju-log --log-level INFO -- wrote {wrote}")),
            "{calls:#?}"
        );
    }
    assert_eq!(
        calls[calls.len() - 2..],
        [
            "status-set blocked -- Missing relations: database",
            "status-set --application blocked -- Missing relations: database",
        ]
    );
    assert_eq!(
        keystone.model.world().apps["keystone"].version,
        keystone_version()
    );
}

#[test]
fn a_database_that_has_not_answered_leaves_a_non_leader_waiting_and_the_app_status_to_the_leader() {
    let mut keystone = Keystone::deploy("3.6.1", 2, Map::new()).with_silent_database();
    let run = keystone.run("keystone/1", "config-changed");
    assert_eq!(run.exit_code, 0, "{}", run.stderr);
    let statuses: Vec<&String> = run
        .tool_calls
        .iter()
        .filter(|c| c.starts_with("status-set"))
        .collect();
    assert_eq!(
        statuses,
        ["status-set waiting -- Incomplete relations: database"]
    );
}

#[test]
fn relation_hooks_read_the_relation_environment() {
    let keystone = Keystone::deploy("3.6.1", 1, Map::new()).with_silent_database();
    let run = keystone
        .model
        .hook_log()
        .into_iter()
        .rfind(|r| r.unit == LEADER && r.hook == "shared-db-relation-joined")
        .expect("shared-db-relation-joined ran");
    // joined sends the request on the relation Juju named in JUJU_RELATION_ID, once its work is
    // done (the status set, as Juju publishes relation data only when the hook ends).
    let id = keystone.model.relation_id("keystone", "shared-db").unwrap();
    assert_eq!(
        run.tool_calls.last().unwrap(),
        &format!("relation-set -r shared-db:{id} --file -"),
        "{:#?}",
        run.tool_calls
    );
    assert!(
        run.tool_calls.contains(
            &"status-set --application waiting -- Incomplete relations: database".to_owned()
        ),
        "{:#?}",
        run.tool_calls
    );
}

#[test]
fn config_changed_with_invalid_config_blocks_writes_nothing_and_exits_zero() {
    let bad = options(json!({
        "vip": "10.0.0.100",
        "dns-ha": true,
        "os-public-hostname": "keystone.example.com",
    }));
    let mut full = support::config_defaults();
    full.extend(bad.clone());
    let message = Config::from_options(&full)
        .expect_err("vip together with dns-ha must be rejected")
        .to_string();
    assert!(message.starts_with("config: "), "{message}");

    let mut keystone = Keystone::deploy("3.6.1", 1, bad);
    let before = listing(&keystone.charm_dir);
    keystone.model.settle().unwrap();
    let run = keystone.run(LEADER, "config-changed");
    assert_eq!(run.exit_code, 0, "{}", run.stderr);
    let warning = format!("configuration is invalid; nothing was changed: {message}");
    assert_eq!(
        run.tool_calls,
        [
            "config-get --format=json".to_owned(),
            "is-leader --format=json".to_owned(),
            format!("juju-log --log-level WARNING -- {warning}"),
            format!("status-set blocked -- {message}"),
            format!("status-set --application blocked -- {message}"),
        ]
    );
    // stderr reaches the unit log too.
    assert!(run.stderr.contains(&format!("WARNING {warning}")));
    assert_eq!(listing(&keystone.charm_dir), before);
    // Nothing was written on the unit's machine either.
    let etc = keystone.model.unit_path(LEADER, "/etc/keystone");
    assert!(!etc.join("keystone.conf").exists());
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn juju_before_dispatch_runs_hooks_by_name_and_reaches_the_same_handler() {
    // Juju 2.7 runs hooks/<hook> (a link to dispatch) with no JUJU_DISPATCH_PATH.
    let mut keystone = Keystone::deploy("2.7.8", 1, Map::new());
    keystone.model.settle().unwrap();
    let run = keystone.run(LEADER, "update-status");
    assert_eq!(run.exit_code, 0, "{}", run.stderr);
    assert_eq!(run.tool_calls[0], "config-get --format=json");
    assert_eq!(
        run.tool_calls.last().unwrap(),
        "status-set --application blocked -- Missing relations: database"
    );
}

#[test]
fn unknown_hooks_are_logged_and_succeed() {
    let mut keystone = Keystone::deploy("3.6.1", 1, Map::new());
    let run = keystone.run(LEADER, "fernet-keys-storage-attached");
    assert_eq!(run.exit_code, 0, "{}", run.stderr);
    assert_eq!(
        run.tool_calls,
        [
            "juju-log --log-level INFO -- fernet-keys-storage-attached is not handled by this charm; nothing to do"
        ]
    );
}

#[test]
fn a_failing_tool_fails_the_hook_with_its_error_in_juju_log() {
    let mut keystone = Keystone::deploy("3.6.1", 1, Map::new());
    keystone.model.settle().unwrap();
    keystone.model.fail_tool(
        LEADER,
        "is-leader",
        1,
        "leadership status unknown: agent restarting",
    );
    let run = keystone.run(LEADER, "update-status");
    assert_eq!(run.exit_code, 1);
    assert_eq!(
        run.tool_calls,
        [
            "config-get --format=json",
            "is-leader --format=json",
            "juju-log --log-level ERROR -- update-status failed: cannot tell whether this unit is the leader: \
             is-leader failed (exit 1): ERROR leadership status unknown: agent restarting",
        ]
    );
}

#[test]
fn a_broken_environment_fails_loudly() {
    let keystone = Keystone::deploy("3.6.1", 1, Map::new());
    let output = std::process::Command::new(keystone.charm_dir.join("dispatch"))
        .current_dir(&keystone.charm_dir)
        .env_clear()
        .envs([
            ("PATH", "/usr/bin:/bin"),
            ("JUJU_DISPATCH_PATH", "hooks/install"),
            ("JUJU_UNIT_NAME", "keystone"),
            ("JUJU_VERSION", "3.6.1"),
            ("JUJU_CHARM_DIR", keystone.charm_dir.to_str().unwrap()),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("JUJU_UNIT_NAME=\"keystone\" is not valid")
    );
}

#[test]
fn run_by_hand_it_is_a_cli() {
    let binary = env!("CARGO_BIN_EXE_keystone-charm");
    let help = std::process::Command::new(binary)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: keystone-charm"), "{text}");
    assert!(text.contains("hooks"), "{text}");

    let hooks = std::process::Command::new(binary)
        .arg("hooks")
        .env_clear()
        .output()
        .unwrap();
    assert!(hooks.status.success());
    assert!(
        String::from_utf8_lossy(&hooks.stdout)
            .lines()
            .any(|l| l == "identity-service-relation-joined")
    );
}
