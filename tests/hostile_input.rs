//! Hostile input, as properties: whatever an operator types into `juju config`, whatever a
//! related charm writes into its relation data and whatever another site offers, the charm never
//! panics, and either refuses the value with a message that names it, or uses it without it
//! changing the shape of anything it writes or reports. The one hostile-input suite, in two parts:
//!
//! 1. The pure parsers and every config option, called directly: a value is refused by name or
//!    changes no file the charm renders (no added line, section or directive); keys another site
//!    offers are refused or valid fernet keys.
//! 2. Hook-level cases under the test kit's simulator (`keystone_charm::testing`, each unit a
//!    twin machine): a peer's cluster data, hacluster's reply, action parameters, and what a
//!    fernet key source and its sites say to each other. Each case runs the charm's hook on that
//!    data: it never panics, and a hook that refuses the data says which key; from another site's
//!    data a leader takes nothing it cannot use and shows nothing of it in a status.
//!
//! Every property runs a fixed number of cases (see [`CASES`], [`cases_per_option`] and
//! [`HOOK_CASES`]), so the file runs in seconds. No root and no services: `make check` runs it.

#[path = "support/benign_config.rs"]
mod benign_config;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use juju_sim::CrossModelRelation;
use juju_sim::state::HookEvent;
use keystone_charm::addresses::Role;
use keystone_charm::cache::SharedCache;
use keystone_charm::config::{Config, defaults_from_config_yaml};
use keystone_charm::database::{Database, DatabaseState};
use keystone_charm::facts::DatabaseFlags;
use keystone_charm::host::fs::Entry;
use keystone_charm::host::net::Interface;
use keystone_charm::juju::{Databag, RelationId, UnitName};
use keystone_charm::key_sets::sites::{self, Transport};
use keystone_charm::key_sets::{
    Key, KeyError, KeyMaterial, KeySet, from_python_charm_leader_setting,
};
use keystone_charm::nagios;
use keystone_charm::paths;
use keystone_charm::relations::cluster;
use keystone_charm::relations::consumers::{AppRecord, Record, recorded_users};
use keystone_charm::relations::ha::{self, UnitNetwork, Vip};
use keystone_charm::relations::shared_db::{self, DatabaseRequest, RemoteUnit};
use keystone_charm::relations::{identity_credentials, identity_service, keystone_service};
use keystone_charm::render::{KeystoneConf, Policy, Templates};
use keystone_charm::secret::Sensitive;
use keystone_charm::steps::haproxy;
use keystone_charm::steps::workload::{self, WorkloadFacts};
use keystone_charm::testing::{Sim, Sites};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

// =============================================================================================
// Part 1: the pure parsers and the config options.

/// Cases of every property that is not per config option.
const CASES: u32 = 256;

/// Cases per config option: every option of config.yaml gets this many.
fn cases_per_option() -> u32 {
    48
}

fn runner(cases: u32) -> RunnerConfig {
    RunnerConfig {
        cases,
        // Failures are kept as named regression tests, not in a file next to this one.
        failure_persistence: None,
        ..RunnerConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Pieces that mean something to one of the formats the charm writes or reads.
fn hostile_piece() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "\n", "\r", "\r\n", "\n[database]\nconnection = sqlite://\n", "[DEFAULT]",
            "\ndebug = true", "\nInclude /etc/passwd\n", "</VirtualHost>", "<Directory />",
            "%", "%(here)s", "%%", "$", "$$", "\\$x", "${x}", "\\", "\"", "'", "`", "{{ debug }}",
            "{% if true %}x{% endif %}", "{#", "#", ";", "=", " = ", ":", "@", "/", "..", "?",
            "&", "+", ",", "\0", "\u{7}", "\u{7f}", "\u{1b}[31m", "\u{85}", "\u{2028}",
            "\u{2029}", "\u{feff}", "\u{202e}", "é", "中文", "🔑", " ", "\t", "None", "none",
            "true", "null", "-", "_", "[", "]", "{", "}", "http://", "https://x/",
            "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----",
        ])
        .prop_map(str::to_owned),
        3 => "[a-zA-Z0-9._/-]{1,12}",
        1 => any::<char>().prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
    .boxed()
}

/// A string built of hostile pieces; now and then a very long one (up to 1 MiB).
fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        40 => prop::collection::vec(hostile_piece(), 0..8).prop_map(|p| p.concat()),
        1 => (hostile_piece(), 1usize..=(1 << 20)).prop_map(|(piece, len)| {
            let piece = if piece.is_empty() { "a".to_owned() } else { piece };
            let mut long = piece.repeat(len / piece.len() + 1);
            let mut end = len.min(long.len());
            while !long.is_char_boundary(end) {
                end -= 1;
            }
            long.truncate(end);
            long
        }),
    ]
    .boxed()
}

/// Text shaped like what an option or key usually holds, with something hostile inside.
fn shaped_text() -> BoxedStrategy<String> {
    let shape = prop::sample::select(vec![
        "{}",
        "/{}",
        "/api/{}",
        "{}.example.com",
        "ks{}.example.com.",
        "10.0.0.{}",
        "10.0.0.0/{}",
        "RegionOne {}",
        "http://{}:5000/v3",
        "https://nova.example.com/{}",
        "nova,{}",
        "{}/0",
        "keystone/{}",
        "lockout_failure_attempts: {}",
        "password_regex: {}",
        "{{password_regex: \"{}\"}}",
    ]);
    (shape, hostile_text())
        .prop_map(|(shape, inner)| shape.replace("{}", &inner))
        .boxed()
}

fn any_text() -> BoxedStrategy<String> {
    prop_oneof![hostile_text(), shaped_text()].boxed()
}

/// A JSON value of any type, with hostile text where there is text.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any_text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Integers at and around every limit the charm checks.
fn edge_int() -> BoxedStrategy<i64> {
    prop_oneof![
        prop::sample::select(vec![
            i64::MIN,
            -1,
            0,
            1,
            2,
            3,
            10,
            11,
            24,
            32,
            33,
            128,
            129,
            255,
            256,
            4990,
            5000,
            35357,
            65535,
            65536,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MAX,
        ]),
        any::<i64>(),
    ]
    .boxed()
}

/// A config value of the option's declared type, hostile within that type.
fn value_of_type(kind: &str) -> BoxedStrategy<Value> {
    match kind {
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        "int" => prop_oneof![
            edge_int().prop_map(Value::from),
            Just(Value::from(u64::MAX)),
        ]
        .boxed(),
        "float" => prop_oneof![
            any::<f64>().prop_map(Value::from),
            edge_int().prop_map(Value::from),
            prop::sample::select(vec![0.0, -0.0, 1e-300, 1e300, f64::MAX, -1.0, 0.5])
                .prop_map(Value::from),
        ]
        .boxed(),
        _ => any_text().prop_map(Value::String).boxed(),
    }
}

/// A value shaped like what the option takes, with hostile text inside (a YAML mapping for
/// password-security-compliance, base64 PEM for ssl_*, a path for service-path-prefix, ...).
fn parsed_option_value(name: &str) -> Option<BoxedStrategy<Value>> {
    match name {
        "password-security-compliance" => {
            let key = prop::sample::select(vec![
                "password_regex",
                "password_regex_description",
                "lockout_failure_attempts",
                "change_password_upon_first_use",
                "x_unknown",
            ]);
            // A JSON string is a YAML double-quoted scalar: any text gets through the parser.
            let mapping = (
                key,
                any_text(),
                prop::sample::select(vec!["", "$", "\\$", "%"]),
            )
                .prop_map(|(key, text, tail)| {
                    let value = serde_json::to_string(&format!("{text}{tail}")).unwrap();
                    Value::String(format!("{key}: {value}\nlockout_duration: 5"))
                });
            Some(mapping.boxed())
        }
        "ssl_cert" | "ssl_key" | "ssl_ca" => Some(
            any_text()
                .prop_map(|t| {
                    Value::String(base64(&format!(
                        "-----BEGIN CERTIFICATE-----\n{t}\n-----END CERTIFICATE-----\n"
                    )))
                })
                .boxed(),
        ),
        "service-path-prefix" => Some(shaped(&["/{}", "/api/{}", "/{}/v3"])),
        "vip" => Some(shaped(&["10.0.0.100 {}", "{} 10.0.0.100"])),
        "region" => Some(shaped(&["RegionOne {}", "{} RegionTwo"])),
        "log-level" => Some(shaped(&["INFO{}", "{}DEBUG"])),
        "vip_iface" => Some(shaped(&["eth{}", "{}0"])),
        _ if name.ends_with("-hostname") => {
            Some(shaped(&["{}.example.com", "ks{}.example.com.", "ks.{}"]))
        }
        _ if name.ends_with("-network") => Some(shaped(&["10.0.0.0/{}", "{}/24"])),
        _ => None,
    }
}

/// Hostile text inside one of `shapes` (what a valid value of an option looks like).
fn shaped(shapes: &[&'static str]) -> BoxedStrategy<Value> {
    (prop::sample::select(shapes.to_vec()), hostile_text())
        .prop_map(|(shape, inner)| Value::String(shape.replace("{}", &inner)))
        .boxed()
}

/// A config value of the option's type, or of the wrong type (JSON where a string is expected,
/// a string where a number is).
fn option_value(name: &str, kind: &str) -> BoxedStrategy<Value> {
    let wrong = prop_oneof![
        json_value(),
        edge_int().prop_map(|n| Value::String(n.to_string())),
        edge_int().prop_map(|n| Value::String(format!("{n}\n[DEFAULT]"))),
        any_text().prop_map(|t| Value::String(json!({ "value": t }).to_string())),
    ];
    match parsed_option_value(name) {
        Some(parsed) => prop_oneof![2 => parsed, 1 => value_of_type(kind), 1 => wrong].boxed(),
        None => prop_oneof![3 => value_of_type(kind), 1 => wrong].boxed(),
    }
}

/// Hostile text for a relation value: plain, JSON where a string is expected, or a string
/// where JSON is.
fn relation_value() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any_text(),
        1 => json_value().prop_map(|v| v.to_string()),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// The config options, from config.yaml.

#[derive(serde::Deserialize)]
struct ConfigYaml {
    options: BTreeMap<String, OptionYaml>,
}

#[derive(serde::Deserialize)]
struct OptionYaml {
    #[serde(rename = "type")]
    kind: String,
}

fn config_yaml() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .expect("config.yaml")
}

/// Every option config.yaml declares, with its type.
fn declared_options() -> Vec<(String, String)> {
    let parsed: ConfigYaml = serde_norway::from_str(&config_yaml()).expect("valid config.yaml");
    parsed
        .options
        .into_iter()
        .map(|(name, option)| (name, option.kind))
        .collect()
}

/// config-get's answer for the defaults.
fn defaults() -> Map<String, Value> {
    defaults_from_config_yaml(&config_yaml()).expect("valid config.yaml")
}

// ---------------------------------------------------------------------------------------------
// What is rendered from a config, and its shape.

/// Every file and value the charm writes from a config: name → text.
#[derive(Debug)]
struct Rendered(BTreeMap<&'static str, String>);

/// Renders every file from `config` as a unit that serves does (the database's values benign);
/// Err is the refusal's message.
fn render_all(templates: &Templates, config: &Config) -> Result<Rendered, String> {
    let request =
        DatabaseRequest::new(&config.database, &config.database_user).map_err(|e| e.to_string())?;
    let database = Database {
        host: "10.0.0.5".into(),
        port: Some(3306),
        name: request.database.clone(),
        user: request.user.clone(),
        password: Sensitive::new("db-password".into()),
        tls: None,
    };
    let facts = WorkloadFacts {
        config,
        database: Some(database.connection()),
        database_files: database.files(),
        db_initialised: true,
        keys_ready: true,
        cpus: 2,
        server_name: config
            .os_public_hostname
            .clone()
            .unwrap_or_else(|| "keystone-0".to_owned()),
        cache: config
            .enable_cache
            .then(|| SharedCache::of("keystone/0", "10.0.0.10".parse().ok(), &[])),
        policy: Policy {
            admin_role: config.admin_role.clone(),
            admin_domain_id: Some("0c1d".into()),
            service_project_id: Some("5e6f".into()),
        },
        token_caching: true,
        fragments: Default::default(),
        // The host Keystone names itself by: the operator's public hostname where set.
        public_host: Some(
            Role::Public
                .hostname(config)
                .unwrap_or("10.0.0.10")
                .to_owned(),
        ),
        default_domain_id: Some("d0d0".into()),
    };
    let plan = workload::plan(templates, &facts).map_err(|e| e.to_string())?;
    let mut files = BTreeMap::new();
    for file in plan.files() {
        let name = match file.path.to_str().unwrap_or_default() {
            paths::KEYSTONE_CONF => "keystone.conf",
            paths::LOGGING_CONF => "logging.conf",
            paths::VHOST_FILE => "vhost",
            _ => continue,
        };
        let text = String::from_utf8(file.content.clone()).map_err(|e| e.to_string())?;
        files.insert(name, text);
    }
    let peers = [keystone_charm::facts::Peer {
        unit: "keystone/1".into(),
        address: Some("10.0.0.11".parse().unwrap()),
        role_addresses: ["public", "internal", "admin"]
            .into_iter()
            .map(|role| (role.to_owned(), "10.0.0.11".parse().unwrap()))
            .collect(),
        ready: Some(1),
    }];
    let servers = haproxy::servers("keystone/0", true, &peers, Some(1));
    let networks = haproxy::networks(config, "keystone/0", true, &peers, Some(1));
    let plan = haproxy::plan(config, servers, networks, Sensitive::new("stats0pw".into()));
    files.insert(
        "haproxy.cfg",
        templates.haproxy(&plan).map_err(|e| e.to_string())?,
    );
    // The Nagios checks, as nrpe-external-master writes each (`command[...]=...`).
    let checks = nagios::checks(config, "/usr/local/lib/nagios/plugins/check_keystone_charm");
    let nrpe: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "# {}\ncommand[check_{}]={}",
                c.description, c.shortname, c.command
            )
        })
        .collect();
    files.insert("nrpe checks", nrpe.join("\n"));
    Ok(Rendered(files))
}

/// What a line is, whatever its values: the INI key or section, or the directive and the
/// number of its words (Apache, haproxy), and its quotes.
fn line_head(file: &str, line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') {
        return "#".to_owned();
    }
    match file {
        "keystone.conf" | "logging.conf" => match trimmed.split_once('=') {
            Some((key, _)) => format!("{} =", key.trim()),
            None => trimmed.to_owned(),
        },
        "nrpe checks" => trimmed
            .split(['=', ']'])
            .next()
            .unwrap_or_default()
            .to_owned(),
        _ => {
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            format!(
                "{} ({} words, {} quotes)",
                words.first().copied().unwrap_or_default(),
                words.len(),
                trimmed.matches('"').count()
            )
        }
    }
}

/// Lines split on `\n` only (`str::lines` would hide a `\r`).
fn raw_lines(text: &str) -> Vec<&str> {
    text.split('\n').collect()
}

/// Checks that hold for any rendered text: each line is one line for every reader (no control
/// character, no Unicode line break), and oslo.config expands nothing in keystone.conf.
fn check_lines(rendered: &Rendered) -> Result<(), TestCaseError> {
    for (file, text) in &rendered.0 {
        for line in raw_lines(text) {
            prop_assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
                "{file}: a line holds a control character or line break: {line:?}"
            );
            if *file == "keystone.conf" {
                prop_assert!(
                    !line.replace("$$", "").contains('$'),
                    "keystone.conf: oslo.config would expand a $ in {line:?}"
                );
            }
        }
    }
    Ok(())
}

/// The two renderings have the same lines, but for the values in them.
fn check_same_shape(hostile: &Rendered, benign: &Rendered) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        hostile.0.keys().collect::<Vec<_>>(),
        benign.0.keys().collect::<Vec<_>>()
    );
    for (file, text) in &hostile.0 {
        let heads =
            |t: &str| -> Vec<String> { raw_lines(t).iter().map(|l| line_head(file, l)).collect() };
        prop_assert_eq!(
            heads(text),
            heads(&benign.0[file]),
            "{} has another shape than with a benign value",
            file
        );
    }
    Ok(())
}

/// Every text field of an accepted config that may go into a file: none may hold a control
/// character or a Unicode line break.
fn text_fields(config: &Config) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("admin-user", config.admin_user.clone()),
        ("admin-role", config.admin_role.clone()),
        ("service-tenant", config.service_tenant.clone()),
        ("database", config.database.clone()),
        ("database-user", config.database_user.clone()),
        ("region", config.regions.join(" ")),
        ("vip_iface", config.vip_iface.clone()),
        ("nagios_context", config.nagios_context.clone()),
        ("nagios_servicegroups", config.nagios_servicegroups.clone()),
        ("service-path-prefix", config.service_path_prefix.clone()),
    ];
    let optional = [
        ("service-admin-prefix", &config.service_admin_prefix),
        ("os-admin-network", &config.os_admin_network),
        ("os-internal-network", &config.os_internal_network),
        ("os-public-network", &config.os_public_network),
        ("os-admin-hostname", &config.os_admin_hostname),
        ("os-internal-hostname", &config.os_internal_hostname),
        ("os-public-hostname", &config.os_public_hostname),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            fields.push((name, value.clone()));
        }
    }
    fields
}

/// What hacluster is sent for `config`; with a VIP outside this unit's subnets when none is
/// configured, so that vip_iface and vip_cidr are used.
fn ha_settings(config: &Config) -> Result<Databag, String> {
    let mut config = config.clone();
    if config.vips.is_empty() && !config.dns_ha {
        config.vips = vec!["192.168.99.1".parse().unwrap()];
    }
    let vips: Vec<Vip> = config
        .vips
        .iter()
        .filter_map(|ip| Vip::new(&ip.to_string()))
        .collect();
    let network = UnitNetwork {
        interfaces: vec![Interface::parse("eth0", &["10.0.0.10/24", "fd00::10/64"])],
        bindings: [
            keystone_charm::addresses::Role::Public,
            keystone_charm::addresses::Role::Internal,
            keystone_charm::addresses::Role::Admin,
        ]
        .into_iter()
        .map(|role| (role, "10.0.0.10".parse::<IpAddr>().unwrap()))
        .collect(),
    };
    ha::cluster_resources(&config, &vips, &network)
        .map(|r| r.settings())
        .map_err(|e| e.to_string())
}

/// The config property for one option set to `value` (and `extra` unknown options).
/// What every case of the config property shares.
struct Baseline {
    templates: Templates,
    options: Map<String, Value>,
    config: Config,
    rendered: Rendered,
}

impl Baseline {
    fn new() -> Baseline {
        let templates = Templates::bundled();
        let options = defaults();
        let config = Config::from_options(&options).expect("the defaults are valid");
        let rendered = render_all(&templates, &config).expect("the defaults render");
        Baseline {
            templates,
            options,
            config,
            rendered,
        }
    }
}

fn check_option(
    baseline: &Baseline,
    name: &str,
    value: &Value,
    extra: &[(String, Value)],
) -> Result<(), TestCaseError> {
    let templates = &baseline.templates;
    let mut options = baseline.options.clone();
    options.insert(name.to_owned(), value.clone());
    let without_unknown = Config::from_options(&options);
    for (key, v) in extra {
        options.insert(key.clone(), v.clone());
    }
    let parsed = Config::from_options(&options);
    prop_assert_eq!(
        &parsed,
        &without_unknown,
        "unknown options must change nothing"
    );
    let config = match parsed {
        Err(problems) => {
            for problem in &problems.0 {
                prop_assert!(
                    problem.contains(name),
                    "the problem {problem:?} does not name {name} (value {value:?})"
                );
                // One short status line, whatever was typed.
                prop_assert!(
                    problem.len() <= 1024,
                    "a problem of {} bytes for {name}: {:.200}",
                    problem.len(),
                    problem
                );
            }
            prop_assert!(!problems.0.is_empty());
            return Ok(());
        }
        Ok(config) => config,
    };
    for (field, text) in text_fields(&config) {
        prop_assert!(
            !text
                .chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "{field} was accepted with a control character or line break: {text:?}"
        );
    }
    // The admin password goes only to Keystone's API and relation data (JSON), never into a
    // file: any Unicode may be in it, but no control character.
    if let Some(password) = &config.admin_password {
        prop_assert!(!password.expose().chars().any(char::is_control));
    }
    match render_all(templates, &config) {
        Err(message) => prop_assert!(
            message.contains(name),
            "rendering refused {value:?} for {name} without naming it: {message}"
        ),
        Ok(rendered) => {
            check_lines(&rendered)?;
            let twin =
                render_all(templates, &benign_config::benign_twin(&config)).map_err(|e| {
                    TestCaseError::fail(format!("the benign twin does not render: {e}"))
                })?;
            check_same_shape(&rendered, &twin)?;
            // And a benign value of an option that changes no text renders as the defaults do.
            if benign_config::benign_twin(&config) == benign_config::benign_twin(&baseline.config) {
                check_same_shape(&rendered, &baseline.rendered)?;
            }
        }
    }
    match ha_settings(&config) {
        Ok(settings) => {
            for (key, value) in settings {
                prop_assert!(
                    !value.chars().any(char::is_control),
                    "ha {key} holds a control character: {value:?}"
                );
            }
        }
        Err(message) => prop_assert!(
            message.contains(name),
            "ha refused {value:?} for {name} without naming it: {message}"
        ),
    }
    Ok(())
}

fn unknown_options() -> BoxedStrategy<Vec<(String, Value)>> {
    let known: Vec<String> = declared_options().into_iter().map(|(n, _)| n).collect();
    prop::collection::vec(
        (
            any_text().prop_filter("unknown", move |n| !known.contains(n)),
            json_value(),
        ),
        0..3,
    )
    .boxed()
}

#[test]
fn every_config_option_refuses_hostile_values_by_name_or_renders_nothing_extra() {
    let baseline = Baseline::new();
    let options = declared_options();
    assert_eq!(options.len(), keystone_charm::config::KNOWN_OPTIONS.len());
    for (name, kind) in &options {
        let mut runner = TestRunner::new(runner(cases_per_option()));
        let result = runner.run(
            &(option_value(name, kind), unknown_options()),
            |(value, extra)| check_option(&baseline, name, &value, &extra),
        );
        if let Err(failure) = result {
            panic!("config option {name} ({kind}): {failure}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Relations.

fn bag(pairs: &[(&str, &str)]) -> Databag {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Keys no relation reads, with hostile names.
fn unknown_keys(known: &'static [&'static str]) -> BoxedStrategy<Vec<(String, String)>> {
    prop::collection::vec(
        (
            any_text()
                .prop_map(|k| format!("x-{k}"))
                .prop_filter("unknown", move |k| {
                    !known.contains(&k.as_str()) && !k.ends_with("_service") && !k.contains("_url")
                }),
            relation_value(),
        ),
        0..3,
    )
    .boxed()
}

fn no_control(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

const IDENTITY_SERVICE_KEYS: &[&str] = &[
    "service",
    "region",
    "public_url",
    "admin_url",
    "internal_url",
    "nova_service",
    "nova_region",
    "nova_public_url",
    "nova_admin_url",
    "nova_internal_url",
    "ec2_service",
    "ec2_region",
    "ec2_public_url",
    "ec2_admin_url",
    "ec2_internal_url",
    "requested_roles",
    "add_role_to_admin",
    "subscribe_ep_change",
];

/// The classic request forms: single, multi-endpoint, and "None" (Horizon).
fn identity_service_base() -> BoxedStrategy<Databag> {
    let single = bag(&[
        ("service", "nova"),
        ("region", "RegionOne"),
        ("public_url", "http://10.0.0.1:8774/v2.1"),
        ("admin_url", "http://10.0.0.1:8774/v2.1"),
        ("internal_url", "http://10.0.0.1:8774/v2.1"),
    ]);
    let mut multi = Databag::new();
    for (prefix, service) in [("nova", "nova"), ("ec2", "ec2")] {
        multi.insert(format!("{prefix}_service"), service.into());
        multi.insert(format!("{prefix}_region"), "RegionOne".into());
        for url in ["public_url", "admin_url", "internal_url"] {
            multi.insert(
                format!("{prefix}_{url}"),
                "https://nova.example.com/".into(),
            );
        }
    }
    let none = bag(&[
        ("service", "None"),
        ("region", "None"),
        ("public_url", "None"),
        ("admin_url", "None"),
        ("internal_url", "None"),
        ("requested_roles", "Member"),
    ]);
    prop::sample::select(vec![single, multi, none]).boxed()
}

/// Checks a classic request: accepted values are single-line URLs and names.
fn check_identity_request(
    parsed: Result<Option<identity_service::Request>, identity_service::RequestError>,
    key: &str,
    value: &str,
) -> Result<(), TestCaseError> {
    match parsed {
        Ok(None) => {}
        Ok(Some(request)) => {
            for endpoint in &request.endpoints {
                prop_assert!(identity_service::service_info(&endpoint.service).is_some());
                for url in [
                    &endpoint.public_url,
                    &endpoint.admin_url,
                    &endpoint.internal_url,
                ] {
                    prop_assert!(
                        url.starts_with("http://") || url.starts_with("https://"),
                        "{url:?}"
                    );
                    prop_assert!(
                        no_control(url) && !url.contains(char::is_whitespace),
                        "{url:?}"
                    );
                }
            }
            let names = request
                .requested_roles
                .iter()
                .chain(&request.add_role_to_admin)
                .chain(&request.subscribe);
            for name in names {
                prop_assert!(!name.is_empty() && name.len() <= 255 && no_control(name));
            }
        }
        Err(err) => {
            let message = err.to_string();
            prop_assert!(
                message.contains(key),
                "the refusal of {value:?} in {key} does not name it: {message}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(runner(CASES))]

    #[test]
    fn identity_service_unit_bags_are_refused_by_key_or_served_plain(
        base in identity_service_base(),
        key in prop::sample::select(IDENTITY_SERVICE_KEYS),
        value in relation_value(),
        extra in unknown_keys(IDENTITY_SERVICE_KEYS),
    ) {
        let mut bag = base;
        bag.insert(key.to_owned(), value.clone());
        let with_hostile = bag.clone();
        bag.extend(extra);
        let parsed = identity_service::parse_request(&bag);
        prop_assert_eq!(&parsed, &identity_service::parse_request(&with_hostile),
            "unknown keys must change nothing");
        check_identity_request(parsed, key, &value)?;
        // Several units: the first complete request.
        let units = vec![("nova/0".to_owned(), Databag::new()), ("nova/1".to_owned(), bag)];
        check_identity_request(identity_service::request_of(&units), key, &value)?;
    }

    #[test]
    fn keystone_service_unit_bags_are_refused_by_key_or_served_plain(
        key in prop::sample::select(vec!["requested_roles", "role"]),
        value in relation_value(),
        extra in unknown_keys(&["requested_roles", "role"]),
    ) {
        let mut bag = bag(&[(key, &value)]);
        bag.extend(extra);
        match keystone_service::parse_request(&bag) {
            Ok(Some(request)) => {
                prop_assert!(request.endpoints.is_empty());
                for role in &request.requested_roles {
                    prop_assert!(!role.is_empty() && role.len() <= 255 && no_control(role));
                }
            }
            Ok(None) => {}
            // A `role` is checked as requested_roles is: either name is the key.
            Err(err) => prop_assert!(err.to_string().contains(key)
                || (key == "role" && err.to_string().contains("requested_roles")),
                "{}", err),
        }
    }
}

/// A Sunbeam `service-endpoints` entry with one field hostile or of the wrong type.
fn sunbeam_endpoints() -> BoxedStrategy<(String, String)> {
    let field = prop::sample::select(vec![
        "service_name",
        "type",
        "description",
        "public_url",
        "admin_url",
        "internal_url",
    ]);
    prop_oneof![
        (field, json_value()).prop_map(|(field, value)| {
            let mut entry = json!({
                "service_name": "glance", "type": "image", "description": "Image",
                "public_url": "http://10.0.0.2:9292", "admin_url": "http://10.0.0.2:9292",
                "internal_url": "http://10.0.0.2:9292",
            });
            entry[field] = value;
            (field.to_owned(), json!([entry]).to_string())
        }),
        relation_value().prop_map(|v| ("service-endpoints".to_owned(), v)),
    ]
    .boxed()
}

const SUNBEAM_KEYS: &[&str] = &["service-endpoints", "region", "extra-roles"];

proptest! {
    #![proptest_config(runner(CASES))]

    #[test]
    fn identity_service_app_bags_are_refused_by_key_or_served_plain(
        key in prop::sample::select(SUNBEAM_KEYS),
        value in relation_value(),
        (field, endpoints) in sunbeam_endpoints(),
        extra in unknown_keys(SUNBEAM_KEYS),
    ) {
        let good = json!([{
            "service_name": "glance", "type": "image", "description": "Image",
            "public_url": "http://10.0.0.2:9292", "admin_url": "http://10.0.0.2:9292",
            "internal_url": "http://10.0.0.2:9292",
        }]).to_string();
        let mut bag = bag(&[("service-endpoints", &good), ("region", "RegionOne")]);
        // Either one hostile key, or a hostile endpoint entry.
        let (offender, hostile) = match key {
            "service-endpoints" => {
                bag.insert(key.to_owned(), endpoints.clone());
                (field, endpoints)
            }
            _ => {
                bag.insert(key.to_owned(), value.clone());
                (key.to_owned(), value)
            }
        };
        bag.extend(extra);
        match identity_service::parse_app_request(&bag) {
            Ok(None) => {}
            Ok(Some(request)) => {
                prop_assert!(!request.region.is_empty() && no_control(&request.region));
                for role in &request.extra_roles {
                    prop_assert!(!role.is_empty() && role.len() <= 255 && no_control(role));
                }
                for endpoint in &request.endpoints {
                    prop_assert!(identity_service::service_info(&endpoint.service).is_some());
                    for url in [&endpoint.public_url, &endpoint.admin_url, &endpoint.internal_url] {
                        prop_assert!(no_control(url) && !url.contains(char::is_whitespace));
                    }
                }
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(
                    message.contains(key),
                    "the refusal of {hostile:?} ({offender}) does not name {key}: {message}"
                );
            }
        }
    }
}

const CREDENTIALS_KEYS: &[&str] = &[
    "username",
    "project",
    "domain",
    "requested_roles",
    "requested_grants",
];

proptest! {
    #![proptest_config(runner(CASES))]

    #[test]
    fn identity_credentials_unit_bags_are_refused_by_key_or_served_plain(
        key in prop::sample::select(CREDENTIALS_KEYS),
        value in relation_value(),
        extra in unknown_keys(CREDENTIALS_KEYS),
    ) {
        let config = Config::from_options(&defaults()).unwrap();
        let mut bag = bag(&[("username", "ceilometer"), ("project", "services")]);
        bag.insert(key.to_owned(), value.clone());
        bag.extend(extra);
        match identity_credentials::parse_request(&bag, &config) {
            Ok(None) => prop_assert_eq!(key, "username"),
            Ok(Some(request)) => {
                let names = [&request.username, &request.project, &request.domain]
                    .into_iter()
                    .chain(&request.roles)
                    .chain(&request.grants);
                for name in names {
                    prop_assert!(!name.is_empty() && name.len() <= 255 && no_control(name),
                        "{name:?}");
                }
            }
            Err(err) => prop_assert!(err.to_string().contains(key),
                "the refusal of {value:?} does not name {key}: {err}"),
        }
    }
}

const SHARED_DB_KEYS: &[&str] = &[
    "db_host",
    "password",
    "db_port",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "allowed_units",
    "access-network",
];

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A shared-db value: hostile, or base64 of hostile PEM-like text (the ssl_* keys).
fn shared_db_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => relation_value(),
        1 => any_text().prop_map(|t| base64(&format!(
            "-----BEGIN CERTIFICATE-----\n{t}\n-----END CERTIFICATE-----\n"
        ))),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(runner(CASES))]

    #[test]
    fn shared_db_replies_are_refused_by_key_or_render_nothing_extra(
        key in prop::sample::select(SHARED_DB_KEYS),
        value in shared_db_value(),
        extra in unknown_keys(SHARED_DB_KEYS),
    ) {
        let this_unit = UnitName::parse("keystone/0").unwrap();
        let request = DatabaseRequest::new("keystone", "keystone").unwrap();
        let cert = base64("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let mut bag = bag(&[
            ("db_host", "10.0.0.5"),
            ("password", "db-password"),
            ("allowed_units", "keystone/0 keystone/1"),
        ]);
        if key.starts_with("ssl_") {
            for ssl in ["ssl_ca", "ssl_cert", "ssl_key"] {
                bag.insert(ssl.into(), cert.clone());
            }
        }
        bag.insert(key.to_owned(), value.clone());
        bag.extend(extra);
        let remote = [RemoteUnit { unit: UnitName::parse("mysql/0").unwrap(), bag }];
        let _ = shared_db::access_network(&remote);
        let state = shared_db::database_state(Some(&remote), &this_unit, &request);
        let database = match state {
            Err(err) => {
                let message = err.to_string();
                prop_assert!(message.contains(key),
                    "the refusal of {value:?} does not name {key}: {message}");
                return Ok(());
            }
            Ok(DatabaseState::Ready(database)) => database,
            Ok(_) => return Ok(()),
        };
        prop_assert!(no_control(&database.host) && !database.host.is_empty());
        let templates = Templates::bundled();
        let config = Config::from_options(&defaults()).unwrap();
        let render = |db: &Database| {
            templates.keystone_conf(&KeystoneConf::from_config(&config, Some(db.connection())))
        };
        match render(&database) {
            Err(err) => {
                let message = err.to_string();
                prop_assert!(message.contains(key),
                    "rendering refused {value:?} without naming {key}: {message}");
            }
            Ok(text) => {
                let rendered = Rendered(BTreeMap::from([("keystone.conf", text)]));
                check_lines(&rendered)?;
                let twin = Database {
                    host: "10.0.0.5".into(),
                    password: Sensitive::new("benign".into()),
                    ..database.clone()
                };
                let benign = Rendered(BTreeMap::from([("keystone.conf", render(&twin).unwrap())]));
                check_same_shape(&rendered, &benign)?;
                let connection: Vec<&str> = rendered.0["keystone.conf"]
                    .lines()
                    .filter(|l| l.starts_with("connection = "))
                    .collect();
                prop_assert_eq!(connection.len(), 1);
                // The URL keeps its parts: one @ before the host, the host as sent.
                let url = connection[0];
                prop_assert_eq!(url.matches('@').count(), 1, "{}", url);
                let host = url.rsplit_once('@').unwrap().1;
                // (A fully qualified name's trailing dot is dropped: render's host_value.)
                prop_assert!(host.starts_with(database.host.trim_start_matches('[')
                    .split(']').next().unwrap_or_default().trim_end_matches('.')), "{host}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster relation's data, as this unit reads it (the hooks that read it are in part 2).

const PEER_APP_KEYS: &[&str] = &[
    "fernet-generation",
    "fernet-fingerprint",
    "fernet-last-rotation",
    "fernet-keys",
    "db-initialised",
    "keystone-bootstrapped",
    "units-ready",
    "identity-service:identity-service:7",
    "identity-credentials:identity-credentials:8",
];

proptest! {
    #![proptest_config(runner(CASES))]

    #[test]
    fn the_peer_application_bag_is_read_without_panic_and_hostile_keys_are_refused(
        key in prop::sample::select(PEER_APP_KEYS),
        value in relation_value(),
        generation in any::<u64>(),
    ) {
        let material = KeyMaterial::generate().unwrap();
        let mut bag = bag(&[
            ("fernet-generation", "3"),
            ("fernet-fingerprint", &material.fingerprint()),
            ("fernet-last-rotation", "1700000000"),
            ("fernet-keys", material.to_bag_value(3).expose()),
            ("db-initialised", "True"),
            ("units-ready", "3"),
        ]);
        bag.insert(key.to_owned(), value.clone());
        if let Some(published) = cluster::published(&bag) {
            prop_assert_eq!(Some(&published.fingerprint), bag.get("fernet-fingerprint"));
        }
        if let Ok((keys, _)) = KeyMaterial::from_bag_value(&bag["fernet-keys"]) {
            prop_assert!(!keys.fingerprint().is_empty());
        }
        let _ = from_python_charm_leader_setting(&value);
        let content: BTreeMap<String, Sensitive<String>> =
            [("fernet-0", &value), ("generation", &value)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Sensitive::new(v.clone())))
                .collect();
        let _ = KeyMaterial::from_secret_content(&content);
        let _ = DatabaseFlags::from_peer_bag(&bag);
        let _ = cluster::readiness::every_unit_ready(&bag, generation);
        for (prefix, relation) in [
            ("identity-service:", "identity-service:7"),
            ("identity-credentials:", "identity-credentials:8"),
        ] {
            let relation = RelationId::parse(relation).unwrap();
            match Record::read(prefix, &relation, &bag) {
                Ok(_) => {}
                Err(err) => prop_assert!(format!("{err:#}").contains(relation.as_str()),
                    "{err:#}"),
            }
            let _ = AppRecord::read(prefix, &relation, &bag);
        }
        let records = [keystone_charm::peer_keys::IDENTITY_SERVICE_RECORDS, keystone_charm::peer_keys::IDENTITY_CREDENTIALS_RECORDS];
        let app_records = [keystone_charm::peer_keys::IDENTITY_SERVICE_APP_RECORDS, keystone_charm::peer_keys::IDENTITY_CREDENTIALS_APP_RECORDS];
        for user in recorded_users(&bag, &records, &app_records) {
            prop_assert!(no_control(&user), "{user:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fernet-keys between sites (interface keystone-fernet-keys): a source's offer and its keys as a
// consuming site reads them (what reaches the hooks of either side is in part 2).

/// The keys of a source's application bag.
const FERNET_OFFER_KEYS: &[&str] = &[
    "generation",
    "fingerprint",
    "source",
    "db-initialised",
    "secret-id",
    "keys",
];

fn url_safe(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// What keystone-manage accepts as a key file: 32 bytes, url-safe base64 with its padding.
fn is_fernet_key(text: &str) -> bool {
    use base64::Engine as _;
    text.len() == 44
        && base64::engine::general_purpose::URL_SAFE
            .decode(text)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// A key's text: valid, or nearly (another length, another alphabet, no padding, something
/// around it), or anything.
fn fernet_key_text() -> BoxedStrategy<String> {
    use base64::Engine as _;
    let key = prop::array::uniform32(any::<u8>());
    prop_oneof![
        6 => key.prop_map(|b| url_safe(&b)),
        1 => prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| url_safe(&b)),
        1 => key.prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        1 => key.prop_map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)),
        1 => (key, hostile_piece(), any::<bool>()).prop_map(|(b, piece, before)| match before {
            true => format!("{piece}{}", url_safe(&b)),
            false => format!("{}{piece}", url_safe(&b)),
        }),
        1 => any_text(),
    ]
    .boxed()
}

/// A key file's name: a small index, one at the top of u32, or no index at all.
fn key_index() -> BoxedStrategy<String> {
    prop_oneof![
        6 => (0u32..6).prop_map(|i| i.to_string()),
        3 => prop::sample::select(vec![
            "4294967295", "4294967294", "4294967296", "18446744073709551616", "-1", "+1", "01",
            "1.0", " 1", "1\n", "", "x", "0x1", "1e3",
        ])
        .prop_map(str::to_owned),
        1 => any::<u32>().prop_map(|i| i.to_string()),
        1 => hostile_text(),
    ]
    .boxed()
}

/// A key set as JSON: index → key, valid (a staged key 0 and others, at any index), with
/// something hostile in it, keys of another type, a list, or any JSON.
fn key_set_json() -> BoxedStrategy<Value> {
    let object = |m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect());
    let valid_key = prop::array::uniform32(any::<u8>()).prop_map(|b| Value::String(url_safe(&b)));
    let index = prop_oneof![
        6 => 1u32..8,
        1 => prop::sample::select(vec![u32::MAX, u32::MAX - 1]),
        1 => any::<u32>(),
    ];
    let valid = (
        valid_key.clone(),
        prop::collection::btree_map(index.prop_map(|i| i.to_string()), valid_key, 1..4),
    )
        .prop_map(|(staged, mut keys)| {
            keys.insert("0".to_owned(), staged);
            keys
        });
    prop_oneof![
        4 => valid.clone().prop_map(object),
        4 => (valid, prop::collection::btree_map(key_index(), fernet_key_text(), 1..3))
            .prop_map(move |(mut keys, hostile)| {
                keys.extend(hostile.into_iter().map(|(i, k)| (i, Value::String(k))));
                object(keys)
            }),
        1 => prop::collection::btree_map(key_index(), json_value(), 0..4).prop_map(object),
        1 => prop::collection::vec(fernet_key_text().prop_map(Value::String), 0..4)
            .prop_map(Value::Array),
        1 => json_value(),
    ]
    .boxed()
}

/// A generation as text: a number, or negative, huge, fractional, signed, quoted, or not one.
fn generation_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<u64>().prop_map(|g| g.to_string()),
        2 => (1u64..5).prop_map(|g| g.to_string()),
        3 => prop::sample::select(vec![
            "-1", "0", "18446744073709551615", "18446744073709551616", "1.0", "1e3", "+3", "03",
            " 3", "3 ", "3\n", "3\n[DEFAULT]", "\"3\"", "[3]", "{\"generation\": 3}", "null",
            "true", "3%", "",
        ])
        .prop_map(str::to_owned),
        1 => edge_int().prop_map(|g| g.to_string()),
        1 => relation_value(),
    ]
    .boxed()
}

/// A key set's transport in either form: the generation's text, each set's (index, key) pairs,
/// and both forms' text.
#[derive(Debug, Clone)]
struct Transported {
    generation: String,
    /// The application bag form (JSON), whole or not.
    bag: String,
    /// The secret form: `fernet-<n>`, `credential-<n>`, `generation`, and what else is there.
    secret: BTreeMap<String, String>,
}

/// Both sets of a key repository's JSON, with their fields (and others) there or not.
fn transported_keys() -> BoxedStrategy<Transported> {
    let field =
        |value: BoxedStrategy<String>| prop_oneof![12 => value.prop_map(Some), 1 => Just(None)];
    let set_text = key_set_json().prop_map(|v| v.to_string()).boxed();
    let structured = (
        field(generation_text()),
        field(set_text.clone()),
        field(set_text),
        prop::collection::vec((any_text(), json_value()), 0..2),
    )
        .prop_map(|(generation, fernet, credential, extra)| {
            let mut fields = Vec::new();
            let mut secret = BTreeMap::new();
            if let Some(g) = &generation {
                fields.push(format!("\"generation\": {g}"));
                // The secret has it as text, as Juju keeps any secret value.
                secret.insert("generation".to_owned(), g.clone());
            }
            for (name, set) in [("fernet", &fernet), ("credential", &credential)] {
                let Some(set) = set else { continue };
                fields.push(format!("\"{name}\": {set}"));
                if let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(set) {
                    for (index, key) in keys {
                        let text = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
                        secret.insert(format!("{name}-{index}"), text);
                    }
                }
            }
            for (name, value) in extra {
                let name = format!("x-{name}");
                fields.push(format!("{}: {value}", Value::String(name.clone())));
                secret.insert(name, value.to_string());
            }
            Transported {
                generation: generation.unwrap_or_default(),
                bag: format!("{{{}}}", fields.join(", ")),
                secret,
            }
        });
    prop_oneof![
        6 => structured,
        1 => relation_value().prop_map(|text| Transported {
            generation: String::new(),
            secret: BTreeMap::from([("fernet-0".to_owned(), text.clone())]),
            bag: text,
        }),
    ]
    .boxed()
}

/// Whether `text` is a decimal numeral of `n` (a `+` or leading zeros spell the same number).
fn numeral_of(text: &str, n: u64) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.trim_start_matches('0') == n.to_string().trim_start_matches('0')
}

/// Keys read from a source are valid fernet keys in sets keystone-manage takes, and the
/// charm's own rotation goes on from them (a site that leaves its source rotates them).
/// `generation_text`: what the generation was sent as, when known (JSON may have white space
/// around it).
fn check_adopted(
    read: Result<(KeyMaterial, u64), KeyError>,
    generation_text: Option<&str>,
) -> Result<(), TestCaseError> {
    let Ok((material, generation)) = read else {
        return Ok(());
    };
    if let Some(text) = generation_text {
        prop_assert!(
            numeral_of(text.trim(), generation),
            "generation {generation} from {text:?}"
        );
    }
    let staged = Key::parse(0, &url_safe(&[7; 32])).unwrap();
    for set in [&material.fernet, &material.credential] {
        prop_assert!(
            set.keys().contains_key(&0) && set.keys().len() >= 2,
            "{set:?}"
        );
        for (index, key) in set.keys() {
            prop_assert!(is_fernet_key(key.expose()), "key {index} is no fernet key");
        }
        let mut current = set.clone();
        for _ in 0..3 {
            let rotated = current.rotate(staged.clone(), 5);
            prop_assert_eq!(
                &rotated.keys()[&rotated.primary_index()],
                &current.keys()[&0],
                "the staged key becomes the primary"
            );
            current = rotated;
        }
    }
    // What a consuming site publishes to its own units reads back the same.
    prop_assert_eq!(
        KeyMaterial::from_bag_value(material.to_bag_value(generation).expose()),
        Ok((material.clone(), generation))
    );
    Ok(())
}

/// A source's key set, generation 1.
fn genuine_offer() -> KeyMaterial {
    let key = |n: u8| Key::parse(0, &url_safe(&[n; 32])).unwrap();
    KeyMaterial {
        fernet: KeySet::setup(key(1), key(2)).rotate(key(3), 3),
        credential: KeySet::setup(key(4), key(5)),
    }
}

/// A source's bag, each key hostile or of its usual shape.
fn fernet_offer_value(key: &str, genuine: &str) -> BoxedStrategy<String> {
    let variants: Vec<String> = match key {
        "fingerprint" => vec![
            genuine.to_uppercase(),
            genuine[..63].to_owned(),
            format!("{genuine}0"),
            format!("{genuine}\n"),
            format!(" {}", &genuine[1..]),
            format!("g{}", &genuine[1..]),
            "é".repeat(32),
            "\0".repeat(64),
            Value::String(genuine.to_owned()).to_string(),
        ],
        "secret-id" => [
            "secret:",
            "secret:x\n[DEFAULT]",
            "secret://x/y",
            "secret:%s",
            "-x",
        ]
        .map(str::to_owned)
        .to_vec(),
        "db-initialised" => ["true", "True", "true\n", "1", "\"true\""]
            .map(str::to_owned)
            .to_vec(),
        _ => vec![genuine.to_owned()],
    };
    match key {
        "generation" => generation_text(),
        "keys" => prop_oneof![
            3 => transported_keys().prop_map(|t| t.bag),
            1 => relation_value(),
        ]
        .boxed(),
        _ => prop_oneof![
            1 => prop::sample::select(variants),
            2 => relation_value(),
        ]
        .boxed(),
    }
}

proptest! {
    #![proptest_config(runner(CASES))]

    #[test]
    fn a_sources_keys_are_refused_or_valid_fernet_keys_in_either_transport(
        keys in transported_keys(),
    ) {
        check_adopted(KeyMaterial::from_bag_value(&keys.bag), Some(&keys.generation))?;
        let content: BTreeMap<String, Sensitive<String>> = keys
            .secret
            .iter()
            .map(|(k, v)| (k.clone(), Sensitive::new(v.clone())))
            .collect();
        let generation = keys.secret.get("generation").map(String::as_str).unwrap_or_default();
        check_adopted(KeyMaterial::from_secret_content(&content), Some(generation))?;
    }

    #[test]
    fn a_sources_offer_is_read_whole_or_not_at_all(
        (key, value) in prop::sample::select(FERNET_OFFER_KEYS).prop_flat_map(|key| {
            let genuine = match key {
                "fingerprint" => genuine_offer().fingerprint(),
                "source" => "central.keystone".to_owned(),
                "secret-id" => "secret:d0ffiqnmp25c77gjq3p0".to_owned(),
                _ => String::new(),
            };
            (Just(key), fernet_offer_value(key, &genuine))
        }),
        in_bag in any::<bool>(),
        removed in prop::option::weighted(0.2, prop::sample::select(FERNET_OFFER_KEYS)),
        extra in unknown_keys(FERNET_OFFER_KEYS),
    ) {
        let keys = genuine_offer().to_bag_value(1).expose().clone();
        let fingerprint = genuine_offer().fingerprint();
        let mut bag = bag(&[
            ("generation", "1"),
            ("fingerprint", &fingerprint),
            ("source", "central.keystone"),
            ("db-initialised", "true"),
        ]);
        match in_bag {
            true => bag.insert("keys".into(), keys),
            false => bag.insert("secret-id".into(), "secret:d0ffiqnmp25c77gjq3p0".into()),
        };
        bag.insert(key.to_owned(), value.clone());
        if let Some(removed) = removed {
            bag.remove(removed);
        }
        let offer = sites::offered(&bag);
        let mut with_extra = bag.clone();
        with_extra.extend(extra);
        prop_assert_eq!(&sites::offered(&with_extra), &offer, "unknown keys must change nothing");
        let whole = bag.get("generation").is_some_and(|g| g.parse::<u64>().is_ok())
            && bag.get("fingerprint").is_some_and(|f| {
                f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit())
            })
            && (bag.contains_key("secret-id") || bag.contains_key("keys"));
        let Some(offer) = offer else {
            prop_assert!(!whole, "a whole offer was not read: {bag:?}");
            return Ok(());
        };
        prop_assert!(numeral_of(&bag["generation"], offer.generation), "{:?}", bag["generation"]);
        prop_assert_eq!(&offer.fingerprint, &bag["fingerprint"]);
        prop_assert!(offer.fingerprint.len() == 64
            && offer.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
        prop_assert_eq!(offer.db_initialised, bag.get("db-initialised").is_some_and(|v| v == "true"));
        match &offer.transport {
            // The secret's id as sent: the hook asks Juju for it, and Juju refuses what is none.
            Transport::Secret(id) => prop_assert_eq!(Some(id), bag.get("secret-id")),
            Transport::Bag(text) => {
                prop_assert!(!bag.contains_key("secret-id"));
                prop_assert_eq!(Some(text), bag.get("keys"));
                check_adopted(KeyMaterial::from_bag_value(text), None)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regression tests: inputs the properties found, one per bug.

/// database-user `!` passed the config and was sent to the database, and only rendering
/// keystone.conf refused it, as "the database user", without naming the option.
#[test]
fn regression_a_database_user_the_url_cannot_carry_is_refused_by_option_name() {
    let mut options = defaults();
    options.insert("database-user".into(), json!("!"));
    let config = Config::from_options(&options).expect("the config itself takes it");
    let refusal = render_all(&Templates::bundled(), &config).unwrap_err();
    assert!(refusal.contains("database-user"), "{refusal}");
}

/// A database password holding `\$` was refused as "the database connection", which does not
/// say the password is what the database charm must change.
#[test]
fn regression_a_database_password_with_backslash_dollar_is_refused_naming_the_password() {
    let remote = [RemoteUnit {
        unit: UnitName::parse("mysql/0").unwrap(),
        bag: bag(&[
            ("db_host", "10.0.0.5"),
            ("password", "\\$x"),
            ("allowed_units", "keystone/0"),
        ]),
    }];
    let request = DatabaseRequest::new("keystone", "keystone").unwrap();
    let unit = UnitName::parse("keystone/0").unwrap();
    let Ok(DatabaseState::Ready(database)) =
        shared_db::database_state(Some(&remote), &unit, &request)
    else {
        panic!("the reply is read");
    };
    let config = Config::from_options(&defaults()).unwrap();
    let refusal = Templates::bundled()
        .keystone_conf(&KeystoneConf::from_config(
            &config,
            Some(database.connection()),
        ))
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("password"), "{refusal}");
}

/// An unknown service in a multi-endpoint request (`nova_service`) was refused without naming
/// the key that holds it.
#[test]
fn regression_an_unknown_service_names_its_key() {
    let mut bag = bag(&[("nova_service", "")]);
    for url in [
        "nova_region",
        "nova_public_url",
        "nova_admin_url",
        "nova_internal_url",
    ] {
        bag.insert(url.into(), "http://10.0.0.1:8774/".into());
    }
    let refusal = identity_service::parse_request(&bag)
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("nova_service"), "{refusal}");
}

/// A Sunbeam request's bad endpoint entry was refused as `public_url`, a key that is not in the
/// application bag, instead of naming `service-endpoints`.
#[test]
fn regression_a_sunbeam_endpoint_refusal_names_service_endpoints() {
    let endpoints = json!([{
        "service_name": "glance", "public_url": "http://x\n[database]",
        "admin_url": "http://x", "internal_url": "http://x",
    }])
    .to_string();
    let bag = bag(&[("service-endpoints", &endpoints), ("region", "RegionOne")]);
    let refusal = identity_service::parse_app_request(&bag)
        .unwrap_err()
        .to_string();
    assert!(
        refusal.contains("service-endpoints[0].public_url"),
        "{refusal}"
    );
}

/// nagios_context with a Unicode line separator passed the config (which refused only control
/// characters) and went into the Nagios check files, where every rendered file refuses one.
#[test]
fn regression_a_unicode_line_separator_in_nagios_context_is_refused() {
    let mut options = defaults();
    options.insert(
        "nagios_context".into(),
        json!("juju\u{2028}command[x]=/bin/sh"),
    );
    let problems = Config::from_options(&options).unwrap_err();
    assert!(
        problems.to_string().contains("nagios_context"),
        "{problems}"
    );
}

/// os-public-hostname `EUuuuu.` (found by `make fuzz`): the config takes a fully qualified name
/// with its trailing dot, and the vhost refused it as "the server name", blocking the unit
/// without naming the option.
#[test]
fn regression_a_hostname_with_a_trailing_dot_renders_the_vhost() {
    let mut options = defaults();
    options.insert("os-public-hostname".into(), json!("EUuuuu."));
    let config = Config::from_options(&options).expect("a fully qualified name");
    let rendered = render_all(&Templates::bundled(), &config).expect("the files render");
    assert!(
        rendered.0["vhost"].contains("    ServerName EUuuuu\n"),
        "{}",
        rendered.0["vhost"]
    );
}

/// A source's keys with the primary at index 4294967295 were taken, and the first rotation of
/// the site that took them (once it leaves its source) overflowed the index: a panic under the
/// tests, and in the release build a "rotation" that dropped the staged key and kept the old
/// primary for ever.
#[test]
fn regression_keys_at_the_top_of_u32_rotate_by_renumbering() {
    let key = |n: u8| url_safe(&[n; 32]);
    let text = json!({
        "generation": 1,
        "fernet": {"0": key(0), "4294967294": key(1), "4294967295": key(2)},
        "credential": {"0": key(3), "1": key(4)},
    })
    .to_string();
    let (material, _) = KeyMaterial::from_bag_value(&text).expect("a valid set");
    let staged = Key::parse(0, &key(5)).unwrap();
    let rotated = material.fernet.rotate(staged.clone(), 5);
    let indices: Vec<u32> = rotated.keys().keys().copied().collect();
    assert_eq!(indices, [0, 1, 2, 3]);
    assert_eq!(rotated.keys()[&0], staged);
    let key_at = |i: u32| rotated.keys()[&i].expose().to_owned();
    assert_eq!(key_at(3), key(0), "the staged key became the primary");
    assert_eq!([key_at(1), key_at(2)], [key(1), key(2)], "in their order");
}

// =============================================================================================
// Part 2: hook-level cases under the simulator (keystone_charm::testing): each case runs a hook
// of the charm's own code on the data, on an in-memory machine.

/// Cases per hook-level property: each case runs a hook under the simulator.
const HOOK_CASES: u32 = 64;

fn hook_runner() -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases: HOOK_CASES,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

/// Text that means something to a format the charm reads or writes, or nothing at all; now and
/// then long (64 KiB, where part 1's [`hostile_text`] goes to 1 MiB: here each case runs a hook).
fn hook_text() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "\n",
            "\r",
            "\n[DEFAULT]\n",
            "%(x)s",
            "$x",
            "\\$",
            "\"",
            "'",
            "{{ x }}",
            "{% x %}",
            "\0",
            "\u{1b}",
            "\u{2028}",
            "é",
            "🔑",
            " ",
            "None",
            "true",
            "-1",
            "0",
            "1",
            "18446744073709551616",
            "10.0.0.1",
            "::1",
            "[::1]",
            "keystone/1",
            "secret:abc",
            "{\"0\": \"x\"}",
            "[]",
            "null",
            "\u{feff}",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9.:/-]{1,10}",
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        30 => prop::collection::vec(piece.clone(), 0..6).prop_map(|p| p.concat()),
        1 => piece.prop_map(|p| p.repeat((1 << 16) / p.len().max(1))),
    ]
    .boxed()
}

/// Runs `hook` on `unit` as a change of `remote`'s data on relation `relation`.
fn relation_changed(sim: &mut Sim, unit: &str, hook: &str, relation: u32, remote: &str) -> bool {
    let mut event = HookEvent::simple(hook);
    event.relation = Some(relation);
    event.remote_unit = Some(remote.to_owned());
    event.remote_app = remote.split('/').next().map(str::to_owned);
    sim.model.world().queue(unit, event);
    sim.model.settle_unit(unit).is_ok()
}

fn unit_bag(sim: &Sim, relation: u32, unit: &str) -> keystone_charm::juju::Databag {
    sim.model.world().relations[&relation].unit_data[unit].clone()
}

fn set_unit_bag(sim: &Sim, relation: u32, unit: &str, bag: keystone_charm::juju::Databag) {
    let mut world = sim.model.world();
    let relation = world.relations.get_mut(&relation).expect("the relation");
    relation.unit_data.insert(unit.to_owned(), bag);
}

/// A hook that failed says which key in its ERROR log; one that succeeded left the unit out of
/// error and its haproxy.cfg one line per line.
fn check_outcome(sim: &Sim, unit: &str, ok: bool, key: &str) -> Result<(), TestCaseError> {
    if !ok {
        let errors = sim.logs(unit, "ERROR");
        prop_assert!(
            errors.iter().any(|line| line.contains(key)),
            "the hook failed without naming {key}: {errors:?}"
        );
        return Ok(());
    }
    let status = sim.status(unit);
    prop_assert!(!status.starts_with("error"), "{status}");
    if let Some(Entry::File { content, .. }) = sim
        .machine(unit)
        .1
        .files
        .entry(Path::new(paths::HAPROXY_CFG))
    {
        let text = String::from_utf8(content).expect("haproxy.cfg is text");
        prop_assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "haproxy.cfg: {text}"
        );
    }
    Ok(())
}

/// What a peer writes in its own bag, and the leader reads.
const PEER_UNIT_KEYS: [&str; 6] = [
    "fernet-generation",
    "fernet-fingerprint",
    "keystone-ready",
    "ingress-address",
    "private-address",
    "x-unknown",
];

#[test]
fn a_peers_hostile_cluster_data_never_panics_the_leader_and_is_refused_by_key() {
    let sim = Sim::ready(2);
    let relation = sim.model.relation_id("keystone", "cluster").unwrap();
    let good = unit_bag(&sim, relation, "keystone/1");
    let sim = std::cell::RefCell::new(sim);
    let strategy = (prop::sample::select(PEER_UNIT_KEYS.to_vec()), hook_text());
    let result = hook_runner().run(&strategy, |(key, value)| {
        let mut sim = sim.borrow_mut();
        let mut bag = good.clone();
        bag.insert(key.to_owned(), value);
        set_unit_bag(&sim, relation, "keystone/1", bag);
        let ok = relation_changed(
            &mut sim,
            "keystone/0",
            "cluster-relation-changed",
            relation,
            "keystone/1",
        );
        let outcome = check_outcome(&sim, "keystone/0", ok, key);
        set_unit_bag(&sim, relation, "keystone/1", good.clone());
        outcome
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// What the leader writes in the application bag, and every other unit reads.
const LEADER_APP_KEYS: [&str; 11] = [
    "fernet-generation",
    "fernet-fingerprint",
    "fernet-last-rotation",
    "fernet-secret-id",
    "db-initialised",
    "keystone-bootstrapped",
    "units-ready",
    "leader-ready",
    "admin-generation",
    "admin-secret-id",
    "x-unknown",
];

#[test]
fn a_hostile_peer_application_bag_never_panics_a_unit_and_is_refused_by_key() {
    let sim = Sim::ready(2);
    let relation = sim.model.relation_id("keystone", "cluster").unwrap();
    let good = sim.peer_app_bag();
    let sim = std::cell::RefCell::new(sim);
    let strategy = (prop::sample::select(LEADER_APP_KEYS.to_vec()), hook_text());
    let result = hook_runner().run(&strategy, |(key, value)| {
        let mut sim = sim.borrow_mut();
        let set_app_bag = |sim: &Sim, bag: keystone_charm::juju::Databag| {
            let mut world = sim.model.world();
            let relation = world.relations.get_mut(&relation).expect("the relation");
            relation.app_data.insert("keystone".to_owned(), bag);
        };
        let mut bag = good.clone();
        bag.insert(key.to_owned(), value);
        set_app_bag(&sim, bag);
        let ok = relation_changed(
            &mut sim,
            "keystone/1",
            "cluster-relation-changed",
            relation,
            "keystone/0",
        );
        let outcome = check_outcome(&sim, "keystone/1", ok, key);
        set_app_bag(&sim, good.clone());
        outcome
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn hostile_hacluster_replies_never_panic_or_block_the_unit() {
    let mut sim = Sim::with_database(1, json!({"vip": "10.0.0.100"}));
    sim.machine("keystone/0").1.interfaces.set(vec![
        Interface::parse("lo", &["127.0.0.1/8"]),
        Interface::parse("eth0", &["10.0.0.10/24"]),
    ]);
    sim.model
        .deploy_scripted(
            "hacluster",
            Box::new(juju_sim_fixtures::scripted::HaCluster::default()),
            1,
        )
        .unwrap();
    sim.model.relate("keystone:ha", "hacluster:ha").unwrap();
    sim.settle();
    assert_eq!(sim.status("keystone/0"), "active: Unit is ready");
    let relation = sim.model.relation_id("keystone", "ha").unwrap();
    let good = unit_bag(&sim, relation, "hacluster/0");
    let sim = std::cell::RefCell::new(sim);
    let keys = prop::sample::select(vec!["clustered", "json_resources", "x-unknown"]);
    let result = hook_runner().run(&(keys, hook_text()), |(key, value)| {
        let mut sim = sim.borrow_mut();
        let mut bag = good.clone();
        bag.insert(key.to_owned(), value);
        set_unit_bag(&sim, relation, "hacluster/0", bag);
        let ok = relation_changed(
            &mut sim,
            "keystone/0",
            "ha-relation-changed",
            relation,
            "hacluster/0",
        );
        check_outcome(&sim, "keystone/0", ok, key)?;
        let status = sim.status("keystone/0");
        prop_assert!(ok && !status.starts_with("blocked"), "{status}");
        set_unit_bag(&sim, relation, "hacluster/0", good.clone());
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// The declared parameters of every action, from actions.yaml: (action, parameter, type).
fn declared_parameters() -> Vec<(String, Option<(String, String)>)> {
    let text = include_str!("../actions.yaml");
    let actions: Map<String, Value> = serde_norway::from_str(text).expect("actions.yaml");
    let mut declared = Vec::new();
    for (name, action) in actions {
        let params = action.get("params").and_then(Value::as_object);
        match params {
            None => declared.push((name, None)),
            Some(params) => {
                for (param, schema) in params {
                    let kind = schema["type"].as_str().unwrap_or("string").to_owned();
                    declared.push((name.clone(), Some((param.clone(), kind))));
                }
            }
        }
    }
    declared
}

/// A value of the declared type (Juju refuses any other before the charm runs).
fn param_value(kind: &str) -> BoxedStrategy<Value> {
    match kind {
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        _ => prop_oneof![
            hook_text().prop_map(Value::String),
            Just(Value::String("nova".into())),
        ]
        .boxed(),
    }
}

#[test]
fn every_actions_parameters_are_taken_or_refused_by_name() {
    use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
    let mut sim = Sim::ready(2);
    let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
    sim.model
        .deploy_scripted("nova", Box::new(nova), 1)
        .unwrap();
    sim.model.relate("keystone", "nova").unwrap();
    sim.settle();
    let task = sim.action("keystone/0", "list-service-usernames", json!({}));
    assert_eq!(
        task.results["usernames"], "nova",
        "a service user to rotate"
    );
    let sim = std::cell::RefCell::new(sim);
    let declared = declared_parameters();
    assert_eq!(
        declared
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        keystone_charm::actions::ACTIONS.into_iter().collect(),
        "actions.yaml and the charm declare the same actions"
    );
    for (action, param) in declared {
        let Some((param, kind)) = param else {
            continue;
        };
        let result = hook_runner().run(&param_value(&kind), |value| {
            let mut sim = sim.borrow_mut();
            let task = sim.action("keystone/0", &action, json!({ param.clone(): value }));
            match task.status.as_str() {
                "completed" => {}
                "failed" => {
                    let message = task.message.clone().unwrap_or_default();
                    prop_assert!(
                        message.contains(&param),
                        "{action}: the refusal of {value:?} does not name {param}: {message:.300}"
                    );
                    prop_assert!(
                        message.len() <= keystone_charm::juju::process::MAX_MESSAGE + 64,
                        "{action}: a refusal of {} bytes",
                        message.len()
                    );
                }
                other => prop_assert!(false, "{action}: {other}: {task:?}"),
            }
            Ok(())
        });
        if let Err(failure) = result {
            panic!("action {action}, parameter {param}: {failure}");
        }
    }
    // Another type, or an undeclared parameter: Juju refuses the action before the charm runs
    // (the simulator as Juju does), so the charm never sees one.
    let mut sim = sim.borrow_mut();
    for params in [
        json!({"force": "yes"}),
        json!({"service-user": 5}),
        json!({"x-unknown": "\n"}),
    ] {
        let action = match params.as_object().unwrap().keys().next().unwrap().as_str() {
            "force" => "rotate-fernet",
            _ => "rotate-service-user-password",
        };
        let refused =
            sim.model
                .run_action_now("keystone/0", action, params.as_object().cloned().unwrap());
        assert!(refused.is_err(), "{params}");
    }
}

// ---------------------------------------------------------------------------------------------
// fernet-keys between sites (interface keystone-fernet-keys): a source's offer as a consuming
// site's leader takes it, and a site's answer as the source's leader takes it.

const LEADER: &str = "keystone/0";

/// `central` (1 unit) is the source of `edge` (2 units), related and settled; their link.
fn central_and_edge() -> (Sites, CrossModelRelation) {
    let mut sites = Sites::new("3.6.1", &[("central", 1), ("edge", 2)]);
    sites.relate("central", "edge");
    sites.settle();
    let link = sites.controller.cross_model_relations()[0].clone();
    (sites, link)
}

/// Hostile text, or a 1 MiB value (digits, or a name's letters).
fn hostile_or_huge() -> BoxedStrategy<String> {
    prop_oneof![
        20 => hook_text(),
        1 => prop::sample::select(vec!["1", "a"]).prop_map(|c| c.repeat(1 << 20)),
    ]
    .boxed()
}

/// A bag value from its template: `{g}` is the genuine generation, `{g+1}` and `{g-1}` its
/// neighbours, `{fp}` the genuine fingerprint, `{FP}` that in upper case and `{fp63}` that one
/// digit short; the rest is literal.
fn filled(template: &str, generation: u64, fingerprint: &str) -> String {
    template
        .replace("{g}", &generation.to_string())
        .replace("{g+1}", &generation.saturating_add(1).to_string())
        .replace("{g-1}", &generation.saturating_sub(1).to_string())
        .replace("{fp}", fingerprint)
        .replace("{FP}", &fingerprint.to_uppercase())
        .replace("{fp63}", fingerprint.get(..63).unwrap_or_default())
}

/// A generation: its own, spelled otherwise, another, or none.
fn generation_template() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "{g}", "+{g}", "0{g}", "{g} ", " {g}", "{g}\n", "{g}\n[DEFAULT]", "{g}.0", "{g}e0",
            "-{g}", "{g+1}", "{g-1}", "\"{g}\"", "[{g}]", "{\"generation\": {g}}", "{g}%",
            "{g}\0", "0x{g}", "18446744073709551615", "18446744073709551616", "-1", "",
        ])
        .prop_map(str::to_owned),
        1 => (hook_text(), any::<bool>()).prop_map(|(text, before)| match before {
            true => format!("{text}{{g}}"),
            false => format!("{{g}}{text}"),
        }),
        1 => hostile_or_huge(),
    ]
    .boxed()
}

/// A status message is one line of text.
fn plain_message(status: &str) -> bool {
    !status
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

/// What becomes of the keys' JSON when they travel in the bag: one field set to another JSON
/// value or removed, or the whole of it replaced.
#[derive(Debug, Clone)]
enum KeysJson {
    Genuine,
    Field(&'static [&'static str], Option<Value>),
    Text(String),
}

impl KeysJson {
    fn apply(&self, genuine: &str) -> String {
        let mut wire: Value = serde_json::from_str(genuine).expect("the genuine keys");
        match self {
            KeysJson::Genuine => {}
            KeysJson::Text(text) => return text.clone(),
            KeysJson::Field(path, value) => {
                let (last, parents) = path.split_last().expect("a path");
                let mut at = &mut wire;
                for name in parents {
                    at = &mut at[*name];
                }
                match (value, at.as_object_mut()) {
                    (Some(value), Some(object)) => {
                        object.insert((*last).to_owned(), value.clone());
                    }
                    (None, Some(object)) => {
                        object.remove(*last);
                    }
                    _ => {}
                }
            }
        }
        wire.to_string()
    }
}

/// The keys' JSON as a source may send it.
fn keys_json() -> BoxedStrategy<KeysJson> {
    const PATHS: &[&[&str]] = &[
        &["generation"],
        &["fernet"],
        &["credential"],
        &["fernet", "0"],
        &["fernet", "1"],
        &["credential", "4294967295"],
        &["fernet", "+1"],
        &["fernet", "x"],
        &["x-unknown"],
    ];
    let value = prop_oneof![
        2 => hook_text().prop_map(Value::String),
        2 => prop::sample::select(vec![
            json!(-1), json!(1.5), json!(1e30), json!(u64::MAX), json!("1"), json!(null),
            json!([]), json!({}), json!(["a"]), json!({"0": 1}), json!(true),
        ]),
    ];
    let valid_key = prop::array::uniform32(any::<u8>()).prop_map(|b| {
        use base64::Engine as _;
        Value::String(base64::engine::general_purpose::URL_SAFE.encode(b))
    });
    // A valid set, but not the one the offer describes.
    const KEY_PATHS: &[&[&str]] = &[
        &["fernet", "0"],
        &["fernet", "7"],
        &["credential", "1"],
        &["credential", "4294967295"],
    ];
    prop_oneof![
        2 => Just(KeysJson::Genuine),
        3 => (prop::sample::select(KEY_PATHS), valid_key)
            .prop_map(|(path, key)| KeysJson::Field(path, Some(key))),
        6 => (prop::sample::select(PATHS), prop::option::weighted(0.85, value))
            .prop_map(|(path, value)| KeysJson::Field(path, value)),
        1 => hostile_or_huge().prop_map(KeysJson::Text),
    ]
    .boxed()
}

/// A source's bag as a consuming site reads it, made hostile.
#[derive(Debug, Clone)]
struct SourceBag {
    /// The keys travel in the bag instead of the secret.
    in_bag: bool,
    keys: KeysJson,
    /// One key set to a value (see [`filled`]) or removed.
    edit: Option<(&'static str, Option<String>)>,
    extra: Vec<(String, String)>,
    /// The site holds the offered set already (else it takes it anew).
    held: bool,
}

const SOURCE_BAG_KEYS: [&str; 9] = [
    "generation",
    "fingerprint",
    "source",
    "db-initialised",
    "secret-id",
    "keys",
    "admin-digest",
    "admin-secret-id",
    "admin-credentials",
];

/// The genuine offer with one key hostile or gone, the keys perhaps in the bag and made
/// hostile there, and unknown keys.
fn source_bag() -> BoxedStrategy<SourceBag> {
    let value = |key: &'static str| -> BoxedStrategy<String> {
        match key {
            "generation" => generation_template(),
            "fingerprint" => prop_oneof![
                1 => prop::sample::select(vec![
                    "{FP}", "{fp63}", "{fp}0", "{fp}\n", " {fp63}", "\"{fp}\"", "{g}",
                ])
                .prop_map(str::to_owned),
                1 => "[0-9a-f]{64}",
                1 => hostile_or_huge(),
            ]
            .boxed(),
            "secret-id" | "admin-secret-id" => prop_oneof![
                1 => prop::sample::select(vec![
                    "secret:", "secret:x\n[DEFAULT]", "secret://x/y", "secret:%s", "-x",
                ])
                .prop_map(str::to_owned),
                2 => hostile_or_huge(),
            ]
            .boxed(),
            "admin-digest" => prop_oneof![
                1 => Just("{FP}".to_owned()),
                1 => "[0-9a-f]{64}",
                1 => hostile_or_huge(),
            ]
            .boxed(),
            // Passwords in the bag (as before Juju 3.3), of every wrong shape.
            "admin-credentials" => prop_oneof![
                1 => prop::sample::select(vec![
                    "{}", "[]", "null", "\"x\"",
                    r#"{"charm-admin-password": "x"}"#,
                    r#"{"charm-admin-password": "", "admin-password": ""}"#,
                    r#"{"charm-admin-password": 1, "admin-password": ["x"]}"#,
                    r#"{"charm-admin-password": "a\n[DEFAULT]", "admin-password": "b", "site-password-key": "k", "user-6e6f7661": "c"}"#,
                ])
                .prop_map(str::to_owned),
                2 => hostile_or_huge(),
            ]
            .boxed(),
            _ => hostile_or_huge(),
        }
    };
    let edit = prop::sample::select(SOURCE_BAG_KEYS.to_vec())
        .prop_flat_map(move |key| (Just(key), prop::option::weighted(0.9, value(key))));
    let extra = prop::collection::vec(
        (hook_text().prop_map(|k| format!("x-{k}")), hook_text()),
        0..3,
    );
    (
        any::<bool>(),
        keys_json(),
        prop::option::weighted(0.6, edit),
        extra,
        any::<bool>(),
    )
        .prop_map(|(in_bag, keys, edit, extra, held)| SourceBag {
            in_bag,
            keys,
            edit,
            extra,
            held,
        })
        .boxed()
}

fn set_app_bag(
    sites: &Sites,
    model: &str,
    relation: u32,
    app: &str,
    bag: keystone_charm::juju::Databag,
) {
    let mut world = sites.model(model).world();
    let relation = world.relations.get_mut(&relation).expect("the relation");
    relation.app_data.insert(app.to_owned(), bag);
}

/// Runs `hook` on `unit` of `model` as a change of `remote`'s data on `relation`, and then
/// whatever it queued in that model (the other models hear nothing of it).
fn site_relation_changed(
    sites: &mut Sites,
    model: &str,
    unit: &str,
    hook: &str,
    relation: u32,
    remote: &str,
) -> Result<(), String> {
    let model = sites
        .controller
        .model_mut(model)
        .map_err(|e| e.to_string())?;
    let mut event = HookEvent::simple(hook);
    event.relation = Some(relation);
    event.remote_unit = Some(format!("{remote}/0"));
    event.remote_app = Some(remote.to_owned());
    model.world().queue(unit, event);
    model.settle_unit(unit).map_err(|e| format!("{e:#}"))?;
    model.settle().map_err(|e| format!("{e:#}"))
}

/// Whether `text` is digits only: what the charm writes of a generation.
fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// What a consuming site's units show and hold after its leader read `case`: `held`, each
/// unit's key fingerprint before, and `fingerprint`, the offered set's.
fn check_site(
    sites: &Sites,
    relation: u32,
    case: &SourceBag,
    held: &[(&str, String)],
    fingerprint: &str,
    genuine_credentials: Option<&String>,
) -> Result<(), TestCaseError> {
    for (unit, before) in held {
        let status = sites.status("edge", unit);
        let note = status.strip_prefix("active: Unit is ready").unwrap_or("?");
        let from_source = note
            .strip_prefix(" (keys from central-keystone, generation ")
            .and_then(|n| n.strip_suffix(')'))
            .is_some_and(digits);
        prop_assert!(note.is_empty() || from_source, "{unit}: {status:?}");
        // The genuine set (merged with the site's own keys, as it was) is all a site may take
        // from these offers: it holds the same keys as before.
        let keys = sites.machine("edge", unit).0.keys.read();
        prop_assert!(
            matches!(&keys, Ok(Some(keys)) if keys.fingerprint() == *before),
            "{unit}: {keys:?}"
        );
    }
    let peer = sites.peer_app_bag("edge");
    // The source's credentials are taken only as the source made them.
    let credentials = peer.get(keystone_charm::peer_keys::FERNET_SOURCE_CREDENTIALS);
    prop_assert!(
        credentials.is_none_or(|d| Some(d) == genuine_credentials),
        "{credentials:?}"
    );
    let adopted = peer.get(keystone_charm::peer_keys::FERNET_SOURCE_FINGERPRINT);
    prop_assert!(adopted.is_none_or(|a| a == fingerprint), "{adopted:?}");
    // The genuine set in its genuine form is taken (the source's name is for its operator, and
    // the credentials are taken or not on their own).
    let benign = (!case.in_bag || matches!(case.keys, KeysJson::Genuine))
        && case
            .edit
            .as_ref()
            .is_none_or(|(key, _)| *key == "source" || key.starts_with("admin-"));
    prop_assert!(
        !benign || adopted.is_some(),
        "the genuine offer was not taken"
    );
    // The site answers with its own name and a generation.
    let answer = sites.model("edge").relation_data(relation, "keystone");
    prop_assert_eq!(
        answer.get("site").map(String::as_str),
        Some("edge.keystone")
    );
    let acknowledged = answer.get("acknowledged-generation");
    prop_assert!(acknowledged.is_some_and(|g| digits(g)), "{acknowledged:?}");
    Ok(())
}

#[test]
fn a_hostile_source_bag_never_panics_a_site_or_gets_adopted() {
    use keystone_charm::peer_keys::FERNET_SOURCE_FINGERPRINT;
    let (sites, link) = central_and_edge();
    let relation = link.consumer.relation;
    let source_app = link.consumer.remote_app.clone();
    let good = sites.model("edge").relation_data(relation, &source_app);
    let generation: u64 = good["generation"].parse().expect("a generation");
    let fingerprint = good["fingerprint"].clone();
    assert!(good.contains_key("admin-digest"), "{good:?}");
    let genuine_keys = sites
        .keys("central", LEADER)
        .to_bag_value(generation)
        .into_inner();
    let peer = sites
        .model("edge")
        .relation_id("keystone", "cluster")
        .expect("the peer relation");
    let set_adopted = |sites: &Sites, value: Option<&str>| {
        let mut world = sites.model("edge").world();
        let relation = world.relations.get_mut(&peer).expect("the peer relation");
        let bag = relation.app_data.entry("keystone".into()).or_default();
        match value {
            Some(v) => bag.insert(FERNET_SOURCE_FINGERPRINT.into(), v.into()),
            None => bag.remove(FERNET_SOURCE_FINGERPRINT),
        };
    };
    let sites = std::cell::RefCell::new(sites);
    let result = hook_runner().run(&source_bag(), |case| {
        let mut sites = sites.borrow_mut();
        let held: Vec<(&str, String)> = ["keystone/0", "keystone/1"]
            .into_iter()
            .map(|u| (u, sites.keys("edge", u).fingerprint()))
            .collect();
        let mut bag = good.clone();
        if case.in_bag {
            bag.remove("secret-id");
            bag.insert("keys".into(), case.keys.apply(&genuine_keys));
        }
        match &case.edit {
            Some((key, Some(value))) => {
                bag.insert((*key).to_owned(), filled(value, generation, &fingerprint));
            }
            Some((key, None)) => {
                bag.remove(*key);
            }
            None => {}
        }
        bag.extend(case.extra.iter().cloned());
        set_app_bag(&sites, "edge", relation, &source_app, bag);
        if !case.held {
            set_adopted(&sites, None);
        }
        let ran = site_relation_changed(
            &mut sites,
            "edge",
            LEADER,
            "fernet-keys-source-relation-changed",
            relation,
            &source_app,
        );
        let outcome = match ran {
            Ok(()) => check_site(
                &sites,
                relation,
                &case,
                &held,
                &fingerprint,
                good.get("admin-digest"),
            ),
            Err(err) => Err(TestCaseError::fail(err)),
        };
        // The next case (and each shrinking step) starts from the genuine offer, held.
        set_app_bag(&sites, "edge", relation, &source_app, good.clone());
        set_adopted(&sites, Some(&fingerprint));
        outcome
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// A site's answer as its source reads it, made hostile.
#[derive(Debug, Clone)]
struct SiteBag {
    site: Option<String>,
    /// The acknowledged generation (see [`filled`]), or none.
    acknowledged: Option<String>,
    extra: Vec<(String, String)>,
}

/// A site's name (its own, refused ones, acceptable ones), its acknowledgement, unknown keys.
fn site_bag() -> BoxedStrategy<SiteBag> {
    let site = prop_oneof![
        2 => prop::sample::select(vec![
            "edge.keystone", "Edge.Keystone", "edge keystone", "edge.keystone\n",
            "edge.keystone\n[DEFAULT]", "", "edge.keystone\0", "édge.keystone", "edge_keystone",
            "edge.keystone%s", "\"edge.keystone\"", "remote-0123456789abcdef0123456789abcdef",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec![119usize, 120, 121, 1 << 20]).prop_map(|n| "a".repeat(n)),
        1 => "[a-z0-9.-]{1,20}",
        2 => hostile_or_huge(),
    ];
    let extra = prop::collection::vec(
        (hook_text().prop_map(|k| format!("x-{k}")), hook_text()),
        0..3,
    );
    (
        prop::option::weighted(0.9, site),
        prop::option::weighted(0.9, generation_template()),
        extra,
    )
        .prop_map(|(site, acknowledged, extra)| SiteBag {
            site,
            acknowledged,
            extra,
        })
        .boxed()
}

/// A name a status message may carry as the site's: what `valid_site` lets through.
fn plain_site_name(name: &str) -> bool {
    (1..=120).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

#[test]
fn a_hostile_site_bag_never_panics_the_source_or_counts_as_an_acknowledgement() {
    let (sites, link) = central_and_edge();
    let relation = link.offer.relation;
    let site_app = link.offer.remote_app.clone();
    let sites = std::cell::RefCell::new(sites);
    let result = hook_runner().run(&site_bag(), |case| {
        let mut sites = sites.borrow_mut();
        let generation = |sites: &Sites| -> u64 {
            sites.peer_app_bag("central")["fernet-generation"]
                .parse()
                .expect("a generation")
        };
        let before = generation(&sites);
        let mut bag = keystone_charm::juju::Databag::new();
        if let Some(site) = &case.site {
            bag.insert("site".into(), site.clone());
        }
        let acknowledged = case.acknowledged.as_ref().map(|a| filled(a, before, ""));
        if let Some(acknowledged) = &acknowledged {
            bag.insert("acknowledged-generation".into(), acknowledged.clone());
        }
        bag.extend(case.extra.iter().cloned());
        set_app_bag(&sites, "central", relation, &site_app, bag);
        sites.make_rotation_due("central");
        // Whether every unit and site was seen holding the primary before this hook: else the
        // site's acknowledgement is news, and the key before the primary must stay a token
        // lifetime more (the site may have signed with it until now).
        let primary_everywhere = |sites: &Sites| {
            let times = |key: &str| -> std::collections::BTreeMap<u32, u64> {
                sites
                    .peer_app_bag("central")
                    .get(key)
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_default()
            };
            let primary = times("fernet-primary-since").keys().max().copied();
            primary.is_some_and(|p| times("fernet-primary-everywhere").contains_key(&p))
        };
        let held_before = primary_everywhere(&sites);
        let ran = site_relation_changed(
            &mut sites,
            "central",
            LEADER,
            "fernet-keys-relation-changed",
            relation,
            &site_app,
        );
        prop_assert!(ran.is_ok(), "{ran:?}");
        let status = sites.status("central", LEADER);
        prop_assert!(plain_message(&status), "{status:?}");
        let after = generation(&sites);
        if acknowledged
            .as_deref()
            .is_some_and(|a| numeral_of(a, before))
        {
            if held_before {
                prop_assert_eq!(
                    after,
                    before + 1,
                    "the site acknowledged, the rotation is due"
                );
            } else {
                prop_assert_eq!(after, before, "rotated as the site caught up");
                prop_assert!(
                    primary_everywhere(&sites),
                    "the acknowledgement did not count"
                );
            }
            prop_assert_eq!(status, "active: Unit is ready");
        } else {
            prop_assert_eq!(
                after,
                before,
                "rotated past a site that did not acknowledge"
            );
            let label = case
                .site
                .as_deref()
                .filter(|s| plain_site_name(s))
                .unwrap_or(&site_app);
            prop_assert_eq!(
                status,
                format!("active: Unit is ready (fernet rotation waiting for site {label})")
            );
        }
        // What the source offers stays plain, whatever the site says.
        let offered = sites.model("central").relation_data(relation, "keystone");
        for (key, value) in &offered {
            prop_assert!(plain_message(value), "{key}: {value:?}");
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
