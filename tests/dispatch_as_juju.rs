//! The built binary, run as Juju runs it (cwd = charm dir, Juju's environment, no arguments,
//! hook tools on PATH), against fake tools that print what Juju prints. Asserts the exact calls.

mod support;

use std::path::Path;
use std::process::Output;

use keystone_charm::config::Config;
use serde_json::{Map, Value, json};
use support::FakeJuju;

fn fake() -> FakeJuju {
    FakeJuju::new(Path::new(env!("CARGO_BIN_EXE_keystone-charm")))
}

fn options(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
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
fn install_on_a_fresh_leader_reports_the_missing_database() {
    let juju = fake();
    juju.set_leader(true);
    let output = juju.run_hook("install");
    assert_success(&output);
    assert_eq!(
        juju.call_lines(),
        [
            "config-get --format=json",
            "is-leader --format=json",
            // Keystone's package version, from dpkg on this machine.
            &format!("application-version-set -- {}", keystone_version()),
            "relation-ids --format=json cluster",
            "relation-ids --format=json shared-db",
            "juju-log --log-level INFO -- wrote /etc/keystone/keystone.conf",
            "juju-log --log-level INFO -- wrote /etc/keystone/logging.conf",
            "status-set blocked -- Missing relations: database",
            "status-set --application blocked -- Missing relations: database",
        ]
    );
}

#[test]
fn config_changed_with_a_database_that_has_not_answered_writes_keystone_conf_and_waits() {
    let juju = fake();
    juju.set_leader(false);
    juju.respond(
        "relation-ids",
        &["--format=json", "shared-db"],
        "[\"shared-db:3\"]\n",
    );
    let output = juju.run_hook("config-changed");
    assert_success(&output);
    // A non-leader leaves the application status to the leader.
    assert_eq!(
        juju.call_lines(),
        [
            "config-get --format=json",
            "is-leader --format=json",
            "relation-ids --format=json cluster",
            "relation-ids --format=json shared-db",
            "relation-list --format=json -r shared-db:3",
            "juju-log --log-level INFO -- wrote /etc/keystone/keystone.conf",
            "juju-log --log-level INFO -- wrote /etc/keystone/logging.conf",
            "status-set waiting -- Incomplete relations: database",
        ]
    );
}

#[test]
fn config_changed_with_invalid_config_blocks_writes_nothing_and_exits_zero() {
    let juju = fake();
    juju.set_leader(true);
    let bad = options(json!({
        "vip": "10.0.0.100",
        "dns-ha": true,
        "os-public-hostname": "keystone.example.com",
    }));
    juju.set_config(&bad);
    let mut full = support::config_defaults();
    full.extend(bad);
    let message = Config::from_options(&full)
        .expect_err("vip together with dns-ha must be rejected")
        .to_string();
    assert!(message.starts_with("config: "), "{message}");

    let output = juju.run_hook("config-changed");
    assert_success(&output);
    let warning = format!("configuration is invalid; nothing was changed: {message}");
    assert_eq!(
        juju.call_lines(),
        [
            "config-get --format=json".to_owned(),
            "is-leader --format=json".to_owned(),
            format!("juju-log --log-level WARNING -- {warning}"),
            format!("status-set blocked -- {message}"),
            format!("status-set --application blocked -- {message}"),
        ]
    );
    // stderr reaches the unit log too.
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("WARNING {warning}")));
    // Nothing was written into the charm directory.
    let mut entries: Vec<String> = std::fs::read_dir(&juju.charm_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["bin", "dispatch", "hooks", "metadata.yaml", "templates"]
    );
}

#[test]
fn legacy_hooks_without_dispatch_path_reach_the_same_handler() {
    let juju = fake();
    juju.set_leader(true);
    let output = juju.run_legacy_hook("update-status");
    assert_success(&output);
    // Reads, the two files a fresh machine lacks, and both statuses.
    assert_eq!(juju.calls().len(), 8, "{:?}", juju.call_lines());
    assert_eq!(juju.calls()[0].line(), "config-get --format=json");
}

#[test]
fn relation_hooks_read_the_relation_environment() {
    let juju = fake();
    juju.set_leader(true);
    juju.respond(
        "relation-ids",
        &["--format=json", "shared-db"],
        "[\"shared-db:3\"]\n",
    );
    let output = juju.run_hook_with(
        "shared-db-relation-changed",
        &[
            ("JUJU_RELATION", "shared-db"),
            ("JUJU_RELATION_ID", "shared-db:3"),
            ("JUJU_REMOTE_APP", "mysql"),
            ("JUJU_REMOTE_UNIT", ""),
        ],
    );
    assert_success(&output);
    assert_eq!(
        juju.calls().last().unwrap().line(),
        "status-set --application waiting -- Incomplete relations: database"
    );
}

#[test]
fn unknown_hooks_are_logged_and_succeed() {
    let juju = fake();
    let output = juju.run_hook("fernet-keys-storage-attached");
    assert_success(&output);
    assert_eq!(
        juju.call_lines(),
        [
            "juju-log --log-level INFO -- fernet-keys-storage-attached is not handled by this charm; nothing to do"
        ]
    );
}

#[test]
fn a_failing_tool_fails_the_hook_with_its_error_in_juju_log() {
    let juju = fake();
    juju.respond_error(
        "is-leader",
        &["--format=json"],
        1,
        "ERROR leadership status unknown: agent restarting\n",
    );
    let output = juju.run_hook("update-status");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        juju.call_lines(),
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
    let juju = fake();
    let mut env = juju.hook_env("install");
    env.insert("JUJU_UNIT_NAME".to_owned(), "keystone".to_owned());
    let output = std::process::Command::new(juju.charm_dir.join("dispatch"))
        .current_dir(&juju.charm_dir)
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("JUJU_UNIT_NAME=\"keystone\" is not valid")
    );
    assert!(juju.calls().is_empty());
}

#[test]
fn run_by_hand_it_is_a_cli() {
    let binary = env!("CARGO_BIN_EXE_keystone-charm");
    let help = std::process::Command::new(binary)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert_success(&help);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: keystone-charm"), "{text}");
    assert!(text.contains("hooks"), "{text}");

    let hooks = std::process::Command::new(binary)
        .arg("hooks")
        .env_clear()
        .output()
        .unwrap();
    assert_success(&hooks);
    assert!(
        String::from_utf8_lossy(&hooks.stdout)
            .lines()
            .any(|l| l == "identity-service-relation-joined")
    );
}
