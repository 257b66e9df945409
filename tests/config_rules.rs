//! One row per configuration rule: the exact blocked message, checked twice — by the parser
//! in memory, and through the built binary run as Juju runs config-changed, which must set that
//! status, call no tool that writes, leave the charm directory untouched and exit 0.

mod support;

use std::path::Path;

use base64::Engine as _;
use keystone_charm::config::Config;
use serde_json::{Map, Value, json};
use support::Keystone;

const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Hook tools that only read, plus the two a blocked hook may use.
const ALLOWED_TOOLS: [&str; 4] = ["config-get", "is-leader", "juju-log", "status-set"];

fn rules() -> Vec<(&'static str, Value, String)> {
    let cases: Vec<(&str, Value, String)> = vec![

            (
                "vip with dns-ha",
                json!({"vip": "10.0.0.100", "dns-ha": true, "os-public-hostname": "ks.example.com"}),
                "config: vip and dns-ha are mutually exclusive".into(),
            ),
            (
                "dns-ha without hostnames",
                json!({"dns-ha": true}),
                "config: dns-ha needs at least one of os-admin-hostname, os-internal-hostname, os-public-hostname".into(),
            ),
            (
                "vip not an address",
                json!({"vip": "10.0.0.100 vip.example.com"}),
                "config: vip entry \"vip.example.com\" is not an IP address".into(),
            ),
            (
                "vip_cidr too large for IPv4",
                json!({"vip": "10.0.0.100", "vip_cidr": 33}),
                "config: vip_cidr must be between 1 and 32 (is 33)".into(),
            ),
            (
                "vip_cidr zero",
                json!({"vip_cidr": 0}),
                "config: vip_cidr must be between 1 and 32 (is 0)".into(),
            ),
            (
                "vip_cidr too large for IPv6",
                json!({"vip": "fd00::10", "vip_cidr": 129}),
                "config: vip_cidr must be between 1 and 128 (is 129)".into(),
            ),
            (
                "too few fernet keys",
                json!({"fernet-max-active-keys": 2}),
                "config: fernet-max-active-keys must be at least 3 (is 2)".into(),
            ),
            (
                "token expiration zero",
                json!({"token-expiration": 0}),
                "config: token-expiration must be at least 1 second (is 0)".into(),
            ),
            (
                "port out of range",
                json!({"service-port": 70000}),
                "config: service-port must be between 21 and 65535 (is 70000); Apache listens 10 below it and, with TLS, haproxy takes the other units' requests 20 below it".into(),
            ),
            (
                "admin port zero",
                json!({"admin-port": 0}),
                "config: admin-port must be between 21 and 65535 (is 0); Apache listens 10 below it and, with TLS, haproxy takes the other units' requests 20 below it".into(),
            ),
            (
                "ports whose Apache or TLS ports collide",
                json!({"service-port": 5000, "admin-port": 5020}),
                "config: service-port and admin-port must not be 10 or 20 apart (they are 5000 and 5020): Apache and haproxy take the ports that far below each".into(),
            ),
            (
                "same ports",
                json!({"service-port": 5000, "admin-port": 5000}),
                "config: service-port and admin-port must differ (both are 5000)".into(),
            ),
            (
                "worker multiplier zero",
                json!({"worker-multiplier": 0.0}),
                "config: worker-multiplier must be greater than 0 (is 0)".into(),
            ),
            (
                "admin worker multiplier negative",
                json!({"admin-worker-multiplier": -1.5}),
                "config: admin-worker-multiplier must be greater than 0 (is -1.5)".into(),
            ),
            (
                "public worker multiplier zero",
                json!({"public-worker-multiplier": 0}),
                "config: public-worker-multiplier must be greater than 0 (is 0)".into(),
            ),
            (
                "log level",
                json!({"log-level": "CHATTY"}),
                "config: log-level must be one of WARNING, INFO, DEBUG, ERROR (is \"CHATTY\")".into(),
            ),
            (
                "region empty",
                json!({"region": "  "}),
                "config: region must name at least one region".into(),
            ),
            (
                "cert without key",
                json!({"ssl_cert": b64(CERT_PEM)}),
                "config: ssl_cert is set but ssl_key is not: set both or neither".into(),
            ),
            (
                "key without cert",
                json!({"ssl_key": b64(KEY_PEM)}),
                "config: ssl_key is set but ssl_cert is not: set both or neither".into(),
            ),
            (
                "cert not base64",
                json!({"ssl_cert": "not base64!", "ssl_key": b64(KEY_PEM)}),
                "config: ssl_cert must be base64-encoded PEM".into(),
            ),
            (
                "key base64 but not PEM",
                json!({"ssl_cert": b64(CERT_PEM), "ssl_key": b64("just text")}),
                "config: ssl_key must be base64-encoded PEM".into(),
            ),
            (
                "ca not PEM",
                json!({"ssl_ca": b64("nope")}),
                "config: ssl_ca must be base64-encoded PEM".into(),
            ),
            (
                "compliance not YAML",
                json!({"password-security-compliance": "{lockout: [unclosed"}),
                "config: password-security-compliance is not valid YAML".into(),
            ),
            (
                "compliance not a mapping",
                json!({"password-security-compliance": "- a\n- b"}),
                "config: password-security-compliance must be a YAML mapping such as {lockout_failure_attempts: 5}".into(),
            ),
            (
                "compliance unknown key",
                json!({"password-security-compliance": "lockout_attempts: 5"}),
                "config: password-security-compliance: unknown key \"lockout_attempts\" (known keys: lockout_failure_attempts, lockout_duration, disable_user_account_days_inactive, change_password_upon_first_use, password_expires_days, password_regex, password_regex_description, unique_last_password_count, minimum_password_age)".into(),
            ),
            (
                "compliance wrong type",
                json!({"password-security-compliance": "lockout_duration: soon"}),
                "config: password-security-compliance: lockout_duration must be a whole number".into(),
            ),
            (
                "newline in region",
                json!({"region": "RegionOne\n[database]"}),
                "config: region must not contain newlines or other control characters".into(),
            ),
            (
                "newline in admin-user",
                json!({"admin-user": "admin\nx"}),
                "config: admin-user must not contain newlines or other control characters".into(),
            ),
            (
                "newline in admin-password",
                json!({"admin-password": "pass\nword"}),
                "config: admin-password must not contain newlines or other control characters".into(),
            ),
            (
                "wrong JSON type",
                json!({"debug": "yes"}),
                "config: debug must be true or false (is \"yes\")".into(),
            ),
            (
                "string where integer wanted",
                json!({"token-expiration": "3600"}),
                "config: token-expiration must be a whole number (is \"3600\")".into(),
            ),
            (
                "path prefix without slash",
                json!({"service-path-prefix": "api/idm"}),
                "config: service-path-prefix must be empty or like /api/idm: a leading /, no trailing /, only letters, digits and - . _ ~ (is \"api/idm\")".into(),
            ),
            (
                "path prefix with space",
                json!({"service-path-prefix": "/api idm"}),
                "config: service-path-prefix must be empty or like /api/idm: a leading /, no trailing /, only letters, digits and - . _ ~ (is \"/api idm\")".into(),
            ),
            (
                "identity backend",
                json!({"identity-backend": "ldap"}),
                "config: identity-backend must be sql (is \"ldap\"); use a domain-specific backend for LDAP".into(),
            ),
            (
                "api version",
                json!({"preferred-api-version": 2}),
                "config: preferred-api-version must be 3 or unset (is 2)".into(),
            ),
            (
                "network not CIDR",
                json!({"os-public-network": "10.0.0.0"}),
                "config: os-public-network must be a network in CIDR form such as 10.0.0.0/24 (is \"10.0.0.0\")".into(),
            ),
            (
                "hostname with a space",
                json!({"os-public-hostname": "keystone example.com"}),
                "config: os-public-hostname must be a DNS name such as keystone.example.com (labels of letters, digits and inner hyphens, at most 253 characters) or an IP address (is \"keystone example.com\")".into(),
            ),
            (
                "hostname with a newline",
                json!({"os-internal-hostname": "ks.example.com\nServerAlias evil"}),
                "config: os-internal-hostname must not contain newlines or other control characters".into(),
            ),
            (
                "hostname label ending in a hyphen",
                json!({"os-admin-hostname": "admin-.example.com"}),
                "config: os-admin-hostname must be a DNS name such as keystone.example.com (labels of letters, digits and inner hyphens, at most 253 characters) or an IP address (is \"admin-.example.com\")".into(),
            ),
            (
                "empty database",
                json!({"database": ""}),
                "config: database must not be empty".into(),
            ),
        ];
    cases
}

fn with_defaults(changes: &Value) -> Map<String, Value> {
    let mut options = support::config_defaults();
    for (k, v) in changes.as_object().expect("object") {
        options.insert(k.clone(), v.clone());
    }
    options
}

#[test]
fn the_parser_gives_each_rule_its_exact_message() {
    for (name, changes, expected) in rules() {
        let message = match Config::from_options(&with_defaults(&changes)) {
            Ok(_) => "accepted".to_owned(),
            Err(problems) => problems.to_string(),
        };
        assert_eq!(message, expected, "rule: {name}");
    }
}

/// Rules for values of the wrong JSON type: `juju config` refuses them before the charm sees
/// them (the parser still checks, since config-get is outside the charm's control).
const REFUSED_BY_JUJU: [&str; 2] = ["wrong JSON type", "string where integer wanted"];

#[test]
fn config_changed_blocks_with_that_message_and_writes_nothing() {
    let mut keystone = Keystone::deploy("3.6.1", 1, Map::new());
    keystone.model.settle().expect("the model settles");
    let unit = "keystone/0";
    let conf = keystone
        .model
        .unit_path(unit, "/etc/keystone/keystone.conf");
    for (name, changes, expected) in rules() {
        let changes = changes.as_object().cloned().expect("object");
        if let Err(err) = keystone.model.set_config("keystone", changes.clone()) {
            assert!(REFUSED_BY_JUJU.contains(&name), "rule {name}: {err}");
            continue;
        }
        assert!(
            !REFUSED_BY_JUJU.contains(&name),
            "rule {name}: Juju took it"
        );
        let (charm_before, conf_before) = (listing(&keystone.charm_dir), std::fs::read(&conf).ok());
        keystone
            .model
            .settle_unit(unit)
            .expect("config-changed succeeds");
        let run = keystone.last_run(unit);
        assert_eq!(run.hook, "config-changed", "rule {name}");
        let calls = &run.tool_calls;
        assert!(
            calls.contains(&format!("status-set blocked -- {expected}")),
            "rule {name}: {calls:#?}"
        );
        for call in calls {
            let tool = call.split(' ').next().unwrap_or_default();
            assert!(
                ALLOWED_TOOLS.contains(&tool),
                "rule {name}: a blocked hook called {call}"
            );
        }
        assert_eq!(listing(&keystone.charm_dir), charm_before, "rule {name}");
        assert_eq!(
            std::fs::read(&conf).ok(),
            conf_before,
            "rule {name}: keystone.conf changed"
        );
        // `juju config --reset` for the next rule.
        let reset: Map<String, Value> = changes.keys().map(|k| (k.clone(), Value::Null)).collect();
        keystone.model.set_config("keystone", reset).unwrap();
        keystone.model.settle().expect("the model settles");
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the charm dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A value of a megabyte (found by tests/hostile_input.rs): config-changed still blocks, naming
/// the option, with a message short enough to be one argument of status-set (Linux refuses an
/// argument over 128 KiB, which failed the hook instead).
#[test]
fn regression_a_megabyte_value_blocks_with_a_message_status_set_can_take() {
    let mut keystone = Keystone::deploy("3.6.1", 1, Map::new());
    keystone.model.settle().expect("the model settles");
    let unit = "keystone/0";
    let huge = "LOUD".repeat(1 << 18);
    let changes = json!({"log-level": huge}).as_object().cloned().unwrap();
    keystone.model.set_config("keystone", changes).unwrap();
    keystone
        .model
        .settle_unit(unit)
        .expect("config-changed succeeds");
    let (kind, message) = keystone.model.unit_status(unit).expect("a status");
    assert_eq!(kind, "blocked");
    assert!(
        message.starts_with("config: log-level must be one of"),
        "{message:.200}"
    );
    assert!(message.len() < 1024, "{} bytes", message.len());
}
