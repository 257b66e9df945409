//! The secrets scan every settled model of the suite goes through ([`super::settle`]): no
//! password, key or token the model holds appears in a juju-log line, a status message, a hook's
//! output, an action's result or log, or a file the charm rendered, outside the places meant to
//! hold it (a relation bag or Juju secret that carries it to its consumer, keystone.conf's
//! database connection, the key repositories, the TLS key file, get-admin-password's result).

use juju_sim::Model;

/// Shorter values could turn up by chance.
const SHORTEST: usize = 8;

/// Whether a relation bag or leader-settings key names a secret value (not its id).
fn names_a_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let secret = [
        "password",
        "passwd",
        "private_key",
        "private-key",
        "admin_token",
    ]
    .iter()
    .any(|word| key.contains(word));
    secret && !key.ends_with("-id") && !key.ends_with("_id")
}

/// Whether a Juju secret's field names who holds the secret (a user, project or domain name).
fn names_a_holder(key: &str) -> bool {
    ["user", "name", "domain", "project", "region", "host", "url"]
        .iter()
        .any(|word| key.contains(word))
}

/// Every secret value the model holds: passwords in relation bags and leader settings, every
/// Juju secret's content, and each unit's fernet, credential and TLS keys.
fn secrets_of(model: &Model) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let world = model.world();
    for relation in world.relations.values() {
        for (owner, bag) in relation.unit_data.iter().chain(&relation.app_data) {
            for (key, value) in bag {
                if names_a_secret(key) {
                    found.push((format!("{owner} {key}"), value.clone()));
                }
            }
        }
    }
    for (name, app) in &world.apps {
        for (key, value) in &app.leader_settings {
            if names_a_secret(key) {
                found.push((format!("{name} leader setting {key}"), value.clone()));
            }
        }
    }
    for secret in world.secrets.values() {
        for revision in &secret.revisions {
            // A secret's content is secret but for what names its holder.
            for (key, value) in revision.iter().filter(|(key, _)| !names_a_holder(key)) {
                found.push((format!("{} {key}", secret.uri()), value.clone()));
            }
        }
    }
    let units: Vec<String> = world.units.keys().cloned().collect();
    drop(world);
    for unit in units {
        for dir in ["/etc/keystone/fernet-keys", "/etc/keystone/credential-keys"] {
            let Ok(entries) = std::fs::read_dir(model.unit_path(&unit, dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(key) = std::fs::read_to_string(entry.path()) {
                    found.push((format!("{unit} {}", entry.path().display()), key));
                }
            }
        }
        // haproxy's file: the certificate and its chain, then the key.
        let served = model.unit_path(&unit, "/etc/haproxy/keystone-tls.pem");
        if let Ok(pem) = std::fs::read_to_string(served)
            && let Some(start) = pem.find("PRIVATE KEY-----")
        {
            // The base64 body's lines, each long enough to be unmistakable.
            for line in pem[start..].lines().filter(|l| !l.contains("-----")) {
                found.push((format!("{unit} TLS key"), line.to_owned()));
            }
        }
    }
    found
        .into_iter()
        .map(|(what, value)| (what, value.trim().to_owned()))
        .filter(|(_, value)| value.len() >= SHORTEST)
        .collect()
}

/// Every text the charm showed outside the places meant for secrets, with where it was.
fn shown(model: &Model) -> Vec<(String, String)> {
    let mut texts = Vec::new();
    let world = model.world();
    for line in &world.logs {
        texts.push((format!("{} juju-log", line.unit), line.message.clone()));
    }
    for run in &world.hook_log {
        let place = format!("{} {}", run.unit, run.hook);
        texts.push((
            format!("{place} output"),
            format!("{}{}", run.stdout, run.stderr),
        ));
        for call in &run.tool_calls {
            let shown_to_people = [
                "status-set",
                "juju-log",
                "action-log",
                "application-version-set",
            ]
            .iter()
            .any(|tool| call.starts_with(tool));
            if shown_to_people {
                texts.push((format!("{place} {call}"), call.clone()));
            }
        }
    }
    for (name, unit) in &world.units {
        texts.push((format!("{name} status"), unit.status.message.clone()));
    }
    for (name, app) in &world.apps {
        texts.push((
            format!("{name} application status"),
            app.status.message.clone(),
        ));
    }
    for task in world.actions.values() {
        let place = format!("{} action {}", task.unit, task.name);
        for (key, value) in &task.results {
            // The one place meant to return a secret.
            if task.name == "get-admin-password" && key == "admin-password" {
                continue;
            }
            texts.push((format!("{place} result {key}"), value.to_string()));
        }
        texts.push((
            format!("{place} message"),
            task.message.clone().unwrap_or_default(),
        ));
        texts.push((format!("{place} log"), task.logs.join("\n")));
        texts.push((
            format!("{place} output"),
            format!("{}{}", task.stdout, task.stderr),
        ));
    }
    let units: Vec<String> = world.units.keys().cloned().collect();
    drop(world);
    for unit in units {
        for file in [
            "/etc/keystone/keystone.conf",
            "/etc/keystone/logging.conf",
            "/etc/apache2/sites-available/wsgi-openstack-api.conf",
            "/etc/haproxy/haproxy.cfg",
            "/etc/memcached.conf",
        ] {
            let Ok(content) = std::fs::read_to_string(model.unit_path(&unit, file)) else {
                continue;
            };
            // keystone.conf's connection URL is where the database password belongs.
            let content: String = content
                .lines()
                .filter(|line| !line.starts_with("connection = "))
                .collect::<Vec<_>>()
                .join("\n");
            texts.push((format!("{unit} {file}"), content));
        }
    }
    texts
}

/// Fails, naming the secret and where it was shown, when any secret of the model is shown;
/// how many secrets it looked for.
pub fn assert_no_leaks(model: &Model) -> usize {
    let secrets = secrets_of(model);
    let mut leaks = Vec::new();
    for (place, text) in shown(model) {
        for (what, secret) in &secrets {
            if text.contains(secret.as_str()) {
                leaks.push(format!("{what} is shown in {place}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets shown:\n{}", leaks.join("\n"));
    secrets.len()
}
