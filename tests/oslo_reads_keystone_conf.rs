//! keystone.conf as Keystone itself reads it: oslo.config (with Keystone's options registered,
//! and oslo.policy's) and SQLAlchemy's URL parser, from Debian's packages. Values full of the characters they give a
//! meaning to read back exactly as configured, and the file has exactly the sections the template
//! writes.

mod support;

use std::path::Path;
use std::process::Command;

use keystone_charm::config::Config;
use keystone_charm::render::{DatabaseConnection, KeystoneConf, Templates};
use keystone_charm::secret::Sensitive;
use serde_json::{Value, json};
use support::TempDir;

const READ: &str = r#"
import json, sys
import keystone.conf
from oslo_config import cfg
from sqlalchemy.engine.url import make_url
CONF = keystone.conf.CONF
# What Keystone's own start-up registers: its options and oslo.db's.
keystone.conf.configure()
from oslo_db import options as db_options
db_options.set_defaults(CONF)
from oslo_log import log
log.register_options(CONF)
from oslo_policy import opts as policy_opts
policy_opts.set_defaults(CONF)
# What Keystone's /healthcheck (oslo.middleware) reads.
from oslo_middleware.healthcheck import opts as healthcheck_opts
CONF.register_opts(healthcheck_opts.HEALTHCHECK_OPTS, group='healthcheck')
CONF.register_opts(healthcheck_opts.DISABLE_BY_FILE_OPTS, group='healthcheck')
CONF(args=[], project='keystone', default_config_files=[sys.argv[1]])
sections = {}
cfg.ConfigParser(sys.argv[1], sections).parse()
url = make_url(CONF.database.connection)
print(json.dumps({
    "sections": sorted(sections),
    "password": url.password,
    "username": url.username,
    "host": url.host,
    "database": url.database,
    "query": dict(url.query),
    "regex": CONF.security_compliance.password_regex,
    "description": CONF.security_compliance.password_regex_description,
    "expiration": CONF.token.expiration,
    "debug": CONF.debug,
    "methods": CONF.auth.methods,
    "admin_project": [CONF.resource.admin_project_domain_name, CONF.resource.admin_project_name],
    "policy_file": CONF.oslo_policy.policy_file,
    "cache": [CONF.cache.memcache_servers, CONF.cache.memcache_socket_timeout,
              CONF.cache.memcache_pool_flush_on_reconnect],
    "healthcheck": [CONF.healthcheck.backends, CONF.healthcheck.disable_by_file_path],
    "public_endpoint": CONF.public_endpoint,
}))
"#;

/// What `script` prints (JSON) of keystone.conf `text`, read by Debian's Python with Keystone.
fn keystone_reads(script: &str, text: &str, dir: &TempDir) -> Value {
    let file = dir.path().join("keystone.conf");
    std::fs::write(&file, text).unwrap();
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("/usr/bin/python3 (Debian's keystone package depends on it)");
    assert!(
        output.status.success(),
        "oslo.config could not read keystone.conf: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn keystone_reads_back_what_the_charm_configured() {
    assert!(
        Path::new("/usr/lib/python3/dist-packages/keystone").exists(),
        "Debian's keystone package is needed: run scripts/install-real-stack as root"
    );
    let password = "Pa$$ ${debug} $debug :w/rd?#&=+ 'q' \"d\" [database] ";
    let regex = "^(?=.*\\d)[$a-z]{8,}$";
    let description = " 8 or more: $debug ";
    let mut options = support::config_defaults();
    options.insert(
        "password-security-compliance".into(),
        json!(format!(
            "password_regex: '{regex}'\npassword_regex_description: '{description}'"
        )),
    );
    options.insert("token-expiration".into(), json!(7200));
    let config = Config::from_options(&options).unwrap();
    let mut conf = KeystoneConf::from_config(
        &config,
        Some(DatabaseConnection {
            user: "keystone".to_owned(),
            password: Sensitive::new(password.to_owned()),
            host: "fd00::5".to_owned(),
            port: Some(3306),
            database: "keystone".to_owned(),
            tls: Some(keystone_charm::render::DatabaseTls {
                ca_file: "/etc/keystone/db-client.ca".to_owned(),
                cert_file: None,
                key_file: None,
            }),
        }),
    );
    conf.default_domain_id = Some("default".to_owned());
    conf.public_endpoint = Some("https://keystone.example.com:5000/identity".to_owned());
    let templates = Templates::bundled();
    let dir = TempDir::new("oslo-reads");
    let read = keystone_reads(READ, &templates.keystone_conf(&conf).unwrap(), &dir);
    assert_eq!(read["password"], password);
    assert_eq!(read["username"], "keystone");
    assert_eq!(read["host"], "fd00::5");
    assert_eq!(read["database"], "keystone");
    assert_eq!(
        read["query"],
        json!({"ssl_ca": "/etc/keystone/db-client.ca"})
    );
    assert_eq!(read["regex"], regex);
    assert_eq!(read["description"], description);
    assert_eq!(read["expiration"], 7200);
    assert_eq!(read["debug"], false);
    assert_eq!(
        read["methods"],
        json!([
            "external",
            "password",
            "token",
            "oauth1",
            "openid",
            "totp",
            "application_credential"
        ])
    );
    assert_eq!(read["admin_project"], json!(["admin_domain", "admin"]));
    assert_eq!(read["policy_file"], "/etc/keystone/policy.yaml");
    assert_eq!(read["cache"], json!([["127.0.0.1:11212"], 3.0, true]));
    assert_eq!(
        read["healthcheck"],
        json!([["disable_by_file"], "/var/lib/keystone/charm-draining"])
    );
    assert_eq!(
        read["public_endpoint"],
        "https://keystone.example.com:5000/identity"
    );
    assert_eq!(
        read["sections"],
        json!([
            "DEFAULT",
            "auth",
            "cache",
            "catalog",
            "credential",
            "database",
            "federation",
            "fernet_receipts",
            "fernet_tokens",
            "healthcheck",
            "identity",
            "oslo_messaging_notifications",
            "oslo_middleware",
            "oslo_policy",
            "resource",
            "security_compliance",
            "token"
        ])
    );
}

/// What the relations add, read by Keystone: an option in a section the charm writes itself
/// (so the section appears twice), a new section, an item of `[auth] methods` and a
/// multi-valued option.
const READ_FRAGMENTS: &str = r#"
import json, sys
import keystone.conf
from oslo_config import cfg
CONF = keystone.conf.CONF
keystone.conf.configure()
# Keystone registers a protocol's remote_id_attribute when it first meets the protocol.
CONF.register_opt(cfg.StrOpt('remote_id_attribute'), group='openid')
CONF(args=[], project='keystone', default_config_files=[sys.argv[1]])
print(json.dumps({
    "drivers": CONF.identity.domain_specific_drivers_enabled,
    "domains": CONF.identity.domain_config_dir,
    "driver": CONF.identity.driver,
    "methods": CONF.auth.methods,
    "remote_id": CONF.openid.remote_id_attribute,
    "dashboards": CONF.federation.trusted_dashboard,
    "ttl": CONF.federation.default_authorization_ttl,
}))
"#;

#[test]
fn keystone_reads_what_the_relations_add() {
    use keystone_charm::render::ConfFragment;
    let config = Config::from_options(&support::config_defaults()).unwrap();
    let mut conf = KeystoneConf::from_config(&config, None);
    conf.fragments = vec![
        ConfFragment::set("identity", "domain_specific_drivers_enabled", "True"),
        ConfFragment::set("identity", "domain_config_dir", "/etc/keystone/domains"),
        ConfFragment::list_item("auth", "methods", "mapped"),
        ConfFragment::set("openid", "remote_id_attribute", "HTTP_OIDC_ISS"),
        ConfFragment::repeat(
            "federation",
            "trusted_dashboard",
            "https://a.example/websso/",
        ),
        ConfFragment::repeat(
            "federation",
            "trusted_dashboard",
            "https://b.example/websso/",
        ),
    ];
    let dir = TempDir::new("oslo-fragments");
    let text = Templates::bundled().keystone_conf(&conf).unwrap();
    let read = keystone_reads(READ_FRAGMENTS, &text, &dir);
    assert_eq!(read["drivers"], true);
    assert_eq!(read["domains"], "/etc/keystone/domains");
    // The charm's own options of the section a relation added to are still read.
    assert_eq!(read["driver"], "sql");
    assert_eq!(read["ttl"], config.default_authorization_ttl);
    assert_eq!(
        read["methods"].as_array().and_then(|m| m.last()),
        Some(&json!("mapped"))
    );
    assert_eq!(read["remote_id"], "HTTP_OIDC_ISS");
    assert_eq!(
        read["dashboards"],
        json!(["https://a.example/websso/", "https://b.example/websso/"])
    );
}
