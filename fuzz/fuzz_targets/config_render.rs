//! Config options, then every file rendered from them: an option given any value (or a whole
//! JSON object of options over the defaults) either is refused with a problem naming it, or the
//! files render with one line per template line (the same lines as with benign text) and no
//! control character, or rendering refuses it by name.

#![no_main]

#[path = "../../tests/support/benign_config.rs"]
mod benign_config;

use std::sync::OnceLock;

use keystone_charm::config::{Config, KNOWN_OPTIONS, defaults_from_config_yaml};
use keystone_charm::relations::cluster::Peer;
use keystone_charm::relations::shared_db::{Database, DatabaseRequest};
use keystone_charm::render::Templates;
use keystone_charm::secret::Sensitive;
use keystone_charm::steps::haproxy;
use keystone_charm::steps::workload::{self, WorkloadFacts};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

struct Baseline {
    templates: Templates,
    defaults: Map<String, Value>,
}

fn baseline() -> &'static Baseline {
    static BASELINE: OnceLock<Baseline> = OnceLock::new();
    BASELINE.get_or_init(|| Baseline {
        templates: Templates::bundled(),
        defaults: defaults_from_config_yaml(include_str!("../../config.yaml"))
            .expect("config.yaml"),
    })
}

/// Every rendered file, as text; Err is the refusal.
fn render(templates: &Templates, config: &Config) -> Result<Vec<String>, String> {
    let request =
        DatabaseRequest::new(&config.database, &config.database_user).map_err(|e| e.to_string())?;
    let database = Database {
        host: "10.0.0.5".into(),
        port: None,
        name: request.database,
        user: request.user,
        password: Sensitive::new("pw".into()),
        tls: None,
    };
    let facts = WorkloadFacts {
        config,
        database: Some(database.connection()),
        database_files: Vec::new(),
        db_initialised: true,
        keys_ready: true,
        cpus: 2,
        server_name: config
            .os_public_hostname
            .clone()
            .unwrap_or_else(|| "keystone-0".into()),
    };
    let plan = workload::plan(templates, &facts).map_err(|e| e.to_string())?;
    let mut files: Vec<String> = plan
        .files()
        .filter(|f| f.path.extension().is_some_and(|e| e == "conf"))
        .map(|f| String::from_utf8(f.content.clone()).expect("text"))
        .collect();
    let peers = [Peer {
        unit: "keystone/1".into(),
        address: "10.0.0.11".parse().ok(),
        role_addresses: Default::default(),
        ready: Some(1),
    }];
    let servers = haproxy::servers("keystone/0", true, &peers, Some(1));
    let networks = haproxy::networks(config, "keystone/0", true, &peers, Some(1));
    let plan = haproxy::plan(config, servers, networks, Sensitive::new("stats".into()));
    files.push(templates.haproxy(&plan).map_err(|e| e.to_string())?);
    Ok(files)
}

fn check(named: Option<&str>, options: &Map<String, Value>) {
    let base = baseline();
    let config = match Config::from_options(options) {
        Err(problems) => {
            if let Some(name) = named {
                for problem in &problems.0 {
                    assert!(problem.contains(name), "{problem} does not name {name}");
                    assert!(
                        problem.len() <= 1024,
                        "a problem of {} bytes",
                        problem.len()
                    );
                }
            }
            return;
        }
        Ok(config) => config,
    };
    let files = match render(&base.templates, &config) {
        Err(refusal) => {
            if let Some(name) = named {
                assert!(refusal.contains(name), "{refusal} does not name {name}");
            }
            return;
        }
        Ok(files) => files,
    };
    let twin = render(&base.templates, &benign_config::benign_twin(&config))
        .expect("the benign twin renders");
    assert_eq!(files.len(), twin.len());
    for (file, twin) in files.iter().zip(&twin) {
        let lines: Vec<&str> = file.split('\n').collect();
        assert_eq!(
            lines.len(),
            twin.split('\n').count(),
            "a value added lines:\n{file}"
        );
        for line in lines {
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
                "{line:?}"
            );
            // oslo.config expands `$name`: keystone.conf's values have every `$` doubled (and
            // no other file has one).
            assert!(!line.replace("$$", "").contains('$'), "{line:?}");
        }
    }
}

/// `text` inside what a valid value of the option looks like, so that it reaches the renderer.
fn shaped(name: &str, pick: u8, text: &str) -> String {
    let pick = usize::from(pick);
    match name {
        "password-security-compliance" => {
            const KEYS: [&str; 3] = [
                "password_regex",
                "password_regex_description",
                "lockout_failure_attempts",
            ];
            // A JSON string is a YAML double-quoted scalar: any text gets through the parser.
            let value = serde_json::to_string(text).unwrap_or_default();
            format!("{}: {value}", KEYS[pick % KEYS.len()])
        }
        "service-path-prefix" => format!("/{text}"),
        "vip" => format!("10.0.0.100 {text}"),
        _ if name.ends_with("-hostname") => format!("ks{text}.example.com."),
        _ if name.ends_with("-network") => format!("10.0.0.0/{text}"),
        _ => text.to_owned(),
    }
}

fuzz_target!(|input: (u8, u8, String)| {
    let (option, kind, text) = input;
    let base = baseline();
    let mut options = base.defaults.clone();
    let name = KNOWN_OPTIONS[usize::from(option) % KNOWN_OPTIONS.len()];
    let value = match kind % 5 {
        0 => Value::String(text),
        4 => Value::String(shaped(name, kind / 5, &text)),
        1 => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        2 => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text)),
        _ => {
            // A whole object of options over the defaults (unknown keys included).
            if let Ok(Value::Object(given)) = serde_json::from_str::<Value>(&text) {
                options.extend(given);
                check(None, &options);
            }
            return;
        }
    };
    options.insert(name.to_owned(), value);
    check(Some(name), &options);
});
