//! OpenStack's own identity API tests (Tempest's `tempest.api.identity`) against Keystone as this
//! charm deploys and configures it on real services: three units behind a VIP. The
//! admin is `admin`@`admin_domain` on project `admin`; Tempest's users and projects live in
//! admin_domain (`default_domain_id`), as in the OpenStack charms' own Tempest runs, and its
//! admins are scoped to it, which the charm's policy makes cloud admins. Feature flags and the
//! password rules come from the unit's keystone.conf; every other service is off. The tests the
//! policy excludes are in `tests/tempest/exclude.txt`, each with its reason.
//!
//! Each run prints `tempest identity: <P> passed, <F> failed, <S> skipped (<N> units)` and fails
//! on any failure, and when nothing passed. The deployment then sets
//! `password-security-compliance` and runs the tests that need it, which otherwise skip.
//!
//! Needs root, scripts/install-real-stack and Tempest in `.venv-tempest` (`make tempest-venv`;
//! TEMPEST_VENV names another).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};
use support::TempDir;

/// Tempest's tests of the identity API.
const IDENTITY: &str = "^tempest\\.api\\.identity";
/// The tests that run only with `[security_compliance]` set.
const COMPLIANCE: &str = "^tempest\\.api\\.identity\\..*(password|lockout)";

fn tempest() -> PathBuf {
    let venv = std::env::var_os("TEMPEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-tempest"));
    let tempest = venv.join("bin/tempest");
    assert!(
        tempest.exists(),
        "{} is missing: run `make tempest-venv`",
        tempest.display()
    );
    tempest
}

fn exclude_list() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tempest/exclude.txt")
}

/// What a run counted.
struct Totals {
    passed: u32,
    failed: u32,
    skipped: u32,
}

/// `Passed: N` and the like from the totals `tempest run` prints.
fn totals(output: &str) -> Totals {
    let count = |label: &str| {
        output
            .lines()
            .rev()
            .find_map(|line| line.trim().strip_prefix(label)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Totals {
        passed: count("- Passed:"),
        failed: count("- Failed:"),
        skipped: count("- Skipped:"),
    }
}

/// `key = value` lines of `[section]` in the unit's keystone.conf.
fn conf_section(model: &juju_sim::Model, unit: &str, section: &str) -> Option<Map<String, Value>> {
    let conf = std::fs::read_to_string(model.unit_path(unit, "/etc/keystone/keystone.conf"))
        .expect("keystone.conf");
    let header = format!("[{section}]");
    let mut lines = conf.lines().skip_while(|line| line.trim() != header);
    lines.next()?;
    Some(
        lines
            .take_while(|line| !line.starts_with('['))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.trim().to_owned(), Value::from(value.trim())))
            .collect(),
    )
}

/// An id from `GET <base>/<kind>?name=<name>` as the admin.
fn id_of(base: &str, token: &str, kind: &str, name: &str) -> String {
    let reply = juju_sim_fixtures::demo::http(&[
        "-H",
        &format!("X-Auth-Token: {token}"),
        &format!("{base}/{kind}?name={name}"),
    ])
    .expect("curl");
    let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    body[kind][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{kind} {name}: {}", reply.body))
        .to_owned()
}

/// tempest.conf's `[identity]` password rules (lines to add) and `[identity-feature-enabled]
/// security_compliance`, from keystone.conf's `[security_compliance]`.
fn compliance_conf(rules: Option<&Map<String, Value>>) -> (String, bool) {
    let Some(rules) = rules else {
        return (String::new(), false);
    };
    let rule = |key: &str| rules.get(key).and_then(Value::as_str).unwrap_or("0");
    let lines = format!(
        "user_lockout_failure_attempts = {}\nuser_lockout_duration = {}\n\
         user_unique_last_password_count = {}\nuser_minimum_password_age = {}\n",
        rule("lockout_failure_attempts"),
        rule("lockout_duration"),
        rule("unique_last_password_count"),
        rule("minimum_password_age"),
    );
    (lines, true)
}

/// Runs Tempest's tests matching `regex` against Keystone at `base` (`http://host:5000/v3`);
/// prints and returns the totals.
fn run(model: &juju_sim::Model, password: &str, base: &str, regex: &str, dir: &Path) -> Totals {
    let units = model.units("keystone").len();
    let token = support::validator::issue(base, password, &[]).expect("an admin token");
    let admin_domain = id_of(base, &token, "domains", "admin_domain");
    let unit = model.units("keystone").remove(0);
    let compliance = conf_section(model, &unit, "security_compliance");
    let workspace = dir.join("tempest");
    if !workspace.exists() {
        let init = Command::new(tempest())
            .arg("init")
            // Registered in a file of the test's own, not in ~/.tempest.
            .arg("--workspace-path")
            .arg(dir.join("workspace.yaml"))
            .arg(&workspace)
            .output()
            .expect("tempest init");
        assert!(
            init.status.success(),
            "tempest init: {}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
    }
    let (password_rules, security_compliance) = compliance_conf(compliance.as_ref());
    let conf = format!(
        "[DEFAULT]\nlog_dir = {logs}\nuse_stderr = false\n\n\
         [auth]\nadmin_username = admin\nadmin_password = {password}\nadmin_project_name = admin\n\
         admin_domain_name = admin_domain\nuse_dynamic_credentials = true\n\n\
         [identity]\nuri_v3 = {base}\nauth_version = v3\nregion = RegionOne\n\
         v3_endpoint_type = public\ndefault_domain_id = {admin_domain}\nadmin_domain_scope = true\n\
         {password_rules}\n\
         [identity-feature-enabled]\ntrust = true\naccess_rules = true\n\
         application_credentials = true\nproject_tags = true\n\
         security_compliance = {security_compliance}\n\n\
         [service_available]\ncinder = false\nglance = false\nneutron = false\nnova = false\n\
         swift = false\n",
        logs = workspace.join("logs").display(),
    );
    std::fs::write(workspace.join("etc/tempest.conf"), conf).expect("tempest.conf");
    let output = Command::new(tempest())
        .current_dir(&workspace)
        .args(["run", "--concurrency", "2", "--regex", regex])
        .arg("--exclude-list")
        .arg(exclude_list())
        .output()
        .expect("tempest run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let t = totals(&text);
    println!(
        "tempest identity: {} passed, {} failed, {} skipped ({units} unit{})",
        t.passed,
        t.failed,
        t.skipped,
        if units == 1 { "" } else { "s" }
    );
    if t.failed > 0 || t.passed == 0 || !output.status.success() {
        let failed: Vec<&str> = text.lines().filter(|l| l.contains("... FAILED")).collect();
        let details: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("Details:") || l.contains("exceptions.") || l.contains("Error:")
            })
            .collect();
        panic!(
            "tempest {regex} on {units} unit(s): {} passed, {} failed\n{}\n{}\n{}",
            t.passed,
            t.failed,
            failed.join("\n"),
            details.join("\n"),
            if failed.is_empty() { text.as_str() } else { "" }
        );
    }
    t
}

/// The admin password, as `juju run keystone/leader get-admin-password` gives it.
fn admin_password(model: &mut juju_sim::Model) -> String {
    let leader = model.leader("keystone").expect("a leader");
    model
        .run_action(&leader, "get-admin-password", Map::new())
        .expect("get-admin-password")
        .results["admin-password"]
        .as_str()
        .expect("the admin password")
        .to_owned()
}

/// One deployment serves both runs: Tempest's identity tests through the VIP of three units,
/// then, with password-security-compliance set, the compliance tests they skipped (lockout and
/// password history, kept in the database every unit reads).
#[test]
fn tempest_identity_passes_on_three_units_behind_a_vip_and_with_password_security_compliance() {
    let out = TempDir::new("tempest-3");
    let charm = support::pack_charm(&out);
    let (mut model, vip) =
        support::deploy_behind_vip(&charm, "tempest3", 14, support::lean(Map::new()));
    let password = admin_password(&mut model);
    let base = format!("http://{vip}:5000/v3");
    let first = run(&model, &password, &base, IDENTITY, out.path());
    assert!(first.skipped > 0, "without compliance its tests skip");

    let rules = json!({"password-security-compliance":
        "{lockout_failure_attempts: 3, lockout_duration: 5, unique_last_password_count: 2, \
          minimum_password_age: 0, change_password_upon_first_use: false}"});
    model
        .set_config("keystone", rules.as_object().cloned().unwrap_or_default())
        .unwrap();
    support::settle(&mut model);
    let compliance = run(&model, &password, &base, COMPLIANCE, out.path());
    assert!(compliance.passed >= first.skipped, "the skipped tests ran");
}
