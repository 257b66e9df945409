//! Snapshots of every rendered variant, and hostile values read back the way oslo.config reads
//! keystone.conf (sections, keys, values), so a test fails if any value changes a file's meaning.

use super::*;
use serde_json::{Map, Value, json};

fn templates() -> Templates {
    Templates::bundled()
}

fn config(changes: Value) -> Config {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml")).unwrap();
    let mut options: Map<String, Value> = crate::config::defaults_from_config_yaml(&text).unwrap();
    for (k, v) in changes.as_object().unwrap() {
        options.insert(k.clone(), v.clone());
    }
    Config::from_options(&options).expect("valid config")
}

/// (section, key, value) of an INI file as oslo.config's parser reads it: one pair of matching
/// outer quotes removed, `$$` read as `$`. Lines it would read as continuations or reject fail
/// the test.
fn oslo_ini(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        assert!(
            !line.starts_with([' ', '\t']),
            "continuation line: {line:?}"
        );
        if let Some(name) = line.strip_prefix('[') {
            section = name.strip_suffix(']').expect("section end").to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        let mut value = value.trim().to_owned();
        if value.len() >= 2
            && value.starts_with(['"', '\''])
            && value.chars().next() == value.chars().last()
        {
            value = value[1..value.len() - 1].to_owned();
        }
        entries.push((
            section.clone(),
            key.trim().to_owned(),
            value.replace("$$", "$"),
        ));
    }
    entries
}

/// The sections and keys of a file: what a hostile value must never change.
fn shape(text: &str) -> Vec<(String, String)> {
    oslo_ini(text).into_iter().map(|(s, k, _)| (s, k)).collect()
}

fn value_of(text: &str, section: &str, key: &str) -> String {
    oslo_ini(text)
        .into_iter()
        .find(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v)
        .unwrap_or_else(|| panic!("[{section}] {key} missing"))
}

fn mariadb() -> DatabaseConnection {
    DatabaseConnection {
        user: "keystone".to_owned(),
        password: Sensitive::new("s3cret".to_owned()),
        host: "10.0.0.5".to_owned(),
        port: None,
        database: "keystone".to_owned(),
        tls: None,
    }
}

fn db_tls() -> DatabaseTls {
    DatabaseTls {
        ca_file: crate::paths::DB_CLIENT_CA.to_owned(),
        cert_file: Some(crate::paths::DB_CLIENT_CERT.to_owned()),
        key_file: Some(crate::paths::DB_CLIENT_KEY.to_owned()),
    }
}

fn conf(config_changes: Value, database: Option<DatabaseConnection>) -> String {
    templates()
        .keystone_conf(&KeystoneConf::from_config(
            &config(config_changes),
            database,
        ))
        .unwrap()
}

#[test]
fn keystone_conf_without_a_database() {
    let rendered = conf(json!({}), None);
    assert!(!rendered.contains("connection ="));
    insta::assert_snapshot!("keystone_conf_defaults", rendered);
}

#[test]
fn keystone_conf_with_mariadb() {
    insta::assert_snapshot!("keystone_conf_mariadb", conf(json!({}), Some(mariadb())));
}

#[test]
fn keystone_conf_with_mariadb_over_tls_and_a_port() {
    let db = DatabaseConnection {
        port: Some(3307),
        tls: Some(db_tls()),
        ..mariadb()
    };
    let rendered = conf(json!({}), Some(db));
    assert_eq!(
        value_of(&rendered, "database", "connection"),
        "mysql+pymysql://keystone:s3cret@10.0.0.5:3307/keystone?ssl_ca=/etc/keystone/db-client.ca\
         &ssl_cert=/etc/keystone/db-client.cert&ssl_key=/etc/keystone/db-client.key"
    );
    insta::assert_snapshot!("keystone_conf_mariadb_tls", rendered);
}

#[test]
fn keystone_conf_cache_off_and_options() {
    let rendered = conf(
        json!({
            "enable-cache": false, "debug": true, "enable-notifications": true,
            "default-notification-opt-out": false, "identity-cache-expiration": 30,
            "role-cache-expiration": 40, "fernet-max-active-keys": 5, "token-expiration": 7200,
        }),
        Some(mariadb()),
    );
    assert_eq!(value_of(&rendered, "cache", "enabled"), "false");
    assert!(!rendered.contains("memcache_servers"));
    insta::assert_snapshot!("keystone_conf_cache_off_and_options", rendered);
}

#[test]
fn keystone_conf_cache_on() {
    let rendered = conf(json!({"enable-cache": true}), None);
    assert_eq!(value_of(&rendered, "cache", "enabled"), "true");
    assert_eq!(
        value_of(&rendered, "cache", "memcache_servers"),
        "127.0.0.1:11212",
        "haproxy on the unit, in front of the cache every unit shares"
    );
}

#[test]
fn keystone_conf_with_security_compliance() {
    let rendered = conf(
        json!({"password-security-compliance":
            "lockout_failure_attempts: 5\nchange_password_upon_first_use: true\n\
             password_regex: '^(?=.*\\d)[a-zA-Z\\d$]{8,}$'\n\
             password_regex_description: ' at least 8 letters or digits '"}),
        None,
    );
    // oslo.config reads back exactly what was configured: `$` survives its expansion and the
    // spaces around the description survive its trimming.
    assert_eq!(
        value_of(&rendered, "security_compliance", "password_regex"),
        "^(?=.*\\d)[a-zA-Z\\d$]{8,}$"
    );
    assert_eq!(
        value_of(
            &rendered,
            "security_compliance",
            "password_regex_description"
        ),
        " at least 8 letters or digits "
    );
    insta::assert_snapshot!("keystone_conf_security_compliance", rendered);
}

#[test]
fn keystone_conf_default_domain() {
    let mut keystone = KeystoneConf::from_config(&config(json!({})), None);
    keystone.default_domain_id = Some("8f2c0a6e4b3d4c5e9a1b2c3d4e5f6a7b".to_owned());
    let rendered = templates().keystone_conf(&keystone).unwrap();
    assert_eq!(
        value_of(&rendered, "identity", "default_domain_id"),
        "8f2c0a6e4b3d4c5e9a1b2c3d4e5f6a7b"
    );
}

#[test]
fn logging_conf_variants() {
    let t = templates();
    let default = t
        .logging_conf(&LoggingConf::from_config(&config(json!({}))))
        .unwrap();
    insta::assert_snapshot!("logging_conf_defaults", default);
    let all = t
        .logging_conf(&LoggingConf::from_config(&config(json!({
            "debug": true, "use-syslog": true, "enable-notifications": true,
        }))))
        .unwrap();
    insta::assert_snapshot!("logging_conf_debug_syslog_notifications", all);
    let info = t
        .logging_conf(&LoggingConf::from_config(&config(
            json!({"log-level": "INFO"}),
        )))
        .unwrap();
    assert!(info.contains("[logger_root]\nlevel = INFO\n"), "{info}");
}

#[test]
fn vhost_variants() {
    let t = templates();
    let plain = t
        .vhost(&Vhost::from_config(&config(json!({})), 2, "10.0.0.10"))
        .unwrap();
    insta::assert_snapshot!("vhost_plain", plain);
    let mut behind_tls = Vhost::from_config(&config(json!({})), 2, "keystone.example.com");
    behind_tls.behind_tls = true;
    behind_tls.listen_address = Some("127.0.0.1".parse().unwrap());
    let tls = t.vhost(&behind_tls).unwrap();
    insta::assert_snapshot!("vhost_behind_tls", tls);
    let prefixed = t
        .vhost(&Vhost::from_config(
            &config(json!({"service-path-prefix": "/api/idm", "worker-multiplier": 2.0})),
            4,
            "keystone.example.com",
        ))
        .unwrap();
    insta::assert_snapshot!("vhost_path_prefix", prefixed);
    let mut loopback = Vhost::from_config(&config(json!({})), 1, "::1");
    loopback.listen_address = Some("::1".parse().unwrap());
    let loopback = t.vhost(&loopback).unwrap();
    assert!(loopback.contains("Listen [::1]:4990\nListen [::1]:35347\n"));
    assert!(loopback.contains("ServerName [::1]\n"));
}

#[test]
fn socket_rotation_is_mod_wsgis_unless_wsgi_socket_rotation_is_false() {
    let t = templates();
    let vhost = |changes: Value| {
        t.vhost(&Vhost::from_config(&config(changes), 2, "keystone-0"))
            .unwrap()
    };
    assert!(!vhost(json!({})).contains("WSGISocketRotation"));
    let off = vhost(json!({"wsgi-socket-rotation": false}));
    assert!(off.contains("\nWSGISocketRotation Off\n"), "{off}");
    assert!(
        off.find("WSGISocketRotation") < off.find("<VirtualHost"),
        "a server-wide directive, outside the virtual hosts: {off}"
    );
}

#[test]
fn the_prefix_is_served_before_the_root() {
    let rendered = templates()
        .vhost(&Vhost::from_config(
            &config(json!({"service-path-prefix": "/api/idm"})),
            2,
            "ks",
        ))
        .unwrap();
    let prefix = rendered.find("WSGIScriptAlias /api/idm ").unwrap();
    let root = rendered.find("WSGIScriptAlias / ").unwrap();
    assert!(prefix < root);
}

#[test]
fn path_prefixes() {
    for good in ["/api/idm", "/identity", "/a/b-c/d.e_f~g"] {
        check_path_prefix(good).unwrap();
    }
    for bad in [
        "",
        "/",
        "api",
        "/api/",
        "//api",
        "/api//idm",
        "/a b",
        "/a\"b",
        "/a/../b",
        "/a/./b",
        "/a\n/b",
        "/${X}",
        "/a%20b",
    ] {
        assert!(check_path_prefix(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn database_passwords_read_back_unchanged() {
    let t = templates();
    let expected_shape = shape(&conf(json!({}), Some(mariadb())));
    for password in [
        "pass:w/rd?#&=+",
        "dollar$debug ${debug} $$",
        "[database]",
        "'quoted'",
        " spaced ",
        "ünïcode",
    ] {
        let db = DatabaseConnection {
            password: Sensitive::new(password.to_owned()),
            ..mariadb()
        };
        let rendered = t
            .keystone_conf(&KeystoneConf::from_config(&config(json!({})), Some(db)))
            .unwrap();
        assert_eq!(shape(&rendered), expected_shape, "{password:?}");
        let url = value_of(&rendered, "database", "connection");
        // SQLAlchemy: the password runs from the first `:` after the user to the `@`.
        let read_back = url
            .strip_prefix("mysql+pymysql://keystone:")
            .and_then(|u| u.strip_suffix("@10.0.0.5/keystone"))
            .unwrap_or_else(|| panic!("{url}"));
        assert_eq!(read_back, password);
        assert!(!url.contains('%'));
    }
}

#[test]
fn database_passwords_the_url_cannot_carry_are_refused_with_a_reason() {
    for password in ["p@ss", "100%", "new\nline\n[database]"] {
        let db = DatabaseConnection {
            password: Sensitive::new(password.to_owned()),
            ..mariadb()
        };
        let err = db.url().unwrap_err().to_string();
        assert!(
            err.starts_with("the database password cannot go into keystone.conf"),
            "{err}"
        );
        assert!(
            !err.contains(password),
            "the password is in the error: {err}"
        );
    }
}

const HOSTILE: [&str; 5] = [
    "x\n[database]\nconnection = sqlite://",
    "x\r[DEFAULT]",
    "x\u{0}y",
    "x\u{2028}[database]",
    "x\u{85}[database]",
];

fn is_unsafe<T: std::fmt::Debug>(result: Result<T, RenderError>) -> bool {
    matches!(result, Err(RenderError::Unsafe { .. }))
}

#[test]
fn hostile_relation_values_are_refused() {
    let t = templates();
    let config = config(json!({}));
    for hostile in HOSTILE {
        for db in [
            DatabaseConnection {
                host: hostile.to_owned(),
                ..mariadb()
            },
            DatabaseConnection {
                database: hostile.to_owned(),
                ..mariadb()
            },
            DatabaseConnection {
                user: hostile.to_owned(),
                ..mariadb()
            },
            DatabaseConnection {
                password: Sensitive::new(hostile.to_owned()),
                ..mariadb()
            },
            DatabaseConnection {
                tls: Some(DatabaseTls {
                    ca_file: format!("/etc/keystone/{hostile}"),
                    ..db_tls()
                }),
                ..mariadb()
            },
        ] {
            assert!(
                is_unsafe(t.keystone_conf(&KeystoneConf::from_config(&config, Some(db)))),
                "{hostile:?}"
            );
        }
    }
    let plus = DatabaseConnection {
        tls: Some(DatabaseTls {
            ca_file: "/etc/keystone/a+b".to_owned(),
            ..db_tls()
        }),
        ..mariadb()
    };
    assert!(is_unsafe(plus.url()));
    // A host that is not a host name would change the URL (user, port, database or query).
    for host in ["h/other", "h?ssl=0", "u@h", "h:1", "h#", "-h", "h..i", ""] {
        let db = DatabaseConnection {
            host: host.to_owned(),
            ..mariadb()
        };
        assert!(
            is_unsafe(t.keystone_conf(&KeystoneConf::from_config(&config, Some(db)))),
            "{host:?}"
        );
    }
    let v6 = DatabaseConnection {
        host: "fd00::5".to_owned(),
        ..mariadb()
    };
    assert_eq!(
        v6.url().unwrap().expose(),
        "mysql+pymysql://keystone:s3cret@[fd00::5]/keystone"
    );
}

#[test]
fn hostile_config_values_are_refused() {
    let t = templates();
    let base = KeystoneConf::from_config(&config(json!({})), Some(mariadb()));
    for hostile in HOSTILE {
        let mut conf = base.clone();
        conf.security_compliance = vec![("password_regex".to_owned(), hostile.to_owned())];
        assert!(is_unsafe(t.keystone_conf(&conf)), "{hostile:?}");
        let mut conf = base.clone();
        conf.default_domain_id = Some(hostile.to_owned());
        assert!(is_unsafe(t.keystone_conf(&conf)), "{hostile:?}");
        let mut conf = base.clone();
        conf.memcache_servers = vec![hostile.to_owned()];
        assert!(is_unsafe(t.keystone_conf(&conf)), "{hostile:?}");
        let mut conf = base.clone();
        conf.fernet_key_repository = format!("/etc/keystone/{hostile}");
        assert!(is_unsafe(t.keystone_conf(&conf)), "{hostile:?}");

        let mut logging = LoggingConf::from_config(&config(json!({})));
        logging.log_file = format!("/var/log/{hostile}");
        assert!(is_unsafe(t.logging_conf(&logging)), "{hostile:?}");
    }
    // Python evaluates the log file's `args`: a quote would end the string.
    let mut logging = LoggingConf::from_config(&config(json!({})));
    logging.log_file = "/var/log/k.log', 'a'); import os; ('".to_owned();
    assert!(is_unsafe(t.logging_conf(&logging)));
    // A list value: a comma would add a memcached server.
    let mut conf = base.clone();
    conf.memcache_servers = vec!["127.0.0.1:11211,10.9.9.9:11211".to_owned()];
    assert!(is_unsafe(t.keystone_conf(&conf)));
    let mut conf = base;
    conf.security_compliance = vec![("password_regex\nx".to_owned(), "1".to_owned())];
    assert!(is_unsafe(t.keystone_conf(&conf)));
}

#[test]
fn a_bracketed_value_stays_a_value() {
    let t = templates();
    let mut conf = KeystoneConf::from_config(&config(json!({})), Some(mariadb()));
    let before: Vec<_> = shape(&t.keystone_conf(&conf).unwrap());
    conf.security_compliance = vec![("password_regex".to_owned(), "[database]".to_owned())];
    let rendered = t.keystone_conf(&conf).unwrap();
    let mut expected = before;
    expected.push((
        "security_compliance".to_owned(),
        "password_regex".to_owned(),
    ));
    assert_eq!(shape(&rendered), expected);
    assert_eq!(
        value_of(&rendered, "security_compliance", "password_regex"),
        "[database]"
    );
}

#[test]
fn the_region_never_reaches_a_file() {
    // The config parser refuses a newline in region; what it accepts (any word, even one that
    // looks like a section) is used for bootstrap and endpoints, never in a rendered file.
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml")).unwrap();
    let mut options = crate::config::defaults_from_config_yaml(&text).unwrap();
    options.insert("region".into(), json!("RegionOne\n[database]"));
    assert!(Config::from_options(&options).is_err());
    let hostile = config(json!({"region": "RegionOne [database] connection=sqlite://"}));
    let plain = config(json!({}));
    let t = templates();
    assert_eq!(
        t.keystone_conf(&KeystoneConf::from_config(&hostile, None))
            .unwrap(),
        t.keystone_conf(&KeystoneConf::from_config(&plain, None))
            .unwrap()
    );
    assert_eq!(
        t.vhost(&Vhost::from_config(&hostile, 2, "ks")).unwrap(),
        t.vhost(&Vhost::from_config(&plain, 2, "ks")).unwrap()
    );
}

#[test]
fn hostile_vhost_values_are_refused() {
    let t = templates();
    let config = config(json!({}));
    for hostile in HOSTILE.iter().copied().chain([
        "ks\" evil",
        "ks evil",
        "${APACHE_LOG_DIR}",
        "ks</VirtualHost>",
    ]) {
        let vhost = Vhost::from_config(&config, 2, hostile);
        assert!(is_unsafe(t.vhost(&vhost)), "server name {hostile:?}");
        let mut vhost = Vhost::from_config(&config, 2, "ks");
        vhost.path_prefix = Some(format!("/api{hostile}"));
        assert!(is_unsafe(t.vhost(&vhost)), "prefix {hostile:?}");
    }
    let mut same_port = Vhost::from_config(&config, 2, "ks");
    same_port.apis[1].port = same_port.apis[0].port;
    assert!(is_unsafe(t.vhost(&same_port)));
}

#[test]
fn a_missing_template_names_itself() {
    let err = match Templates::parse(|_| Err("No such file or directory".to_owned())) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("templates loaded from nothing"),
    };
    assert_eq!(
        err,
        "cannot read the template keystone.conf: No such file or directory; is the charm directory complete?"
    );
}

/// What an LDAP domain, a federation protocol and a trusted dashboard would add.
fn federation_fragments() -> Fragments {
    Fragments {
        conf: vec![
            ConfFragment::set("identity", "domain_specific_drivers_enabled", "True"),
            ConfFragment::set("identity", "domain_config_dir", "/etc/keystone/domains"),
            ConfFragment::list_item("auth", "methods", "mapped"),
            ConfFragment::list_item("auth", "methods", "openid"),
            ConfFragment::list_removal("auth", "methods", "external"),
            ConfFragment::set("openid", "remote_id_attribute", "HTTP_OIDC_ISS"),
            ConfFragment::repeat(
                "federation",
                "trusted_dashboard",
                "https://a.example/auth/websso/",
            ),
            ConfFragment::repeat(
                "federation",
                "trusted_dashboard",
                "https://b.example/auth/websso/",
            ),
        ],
        vhost: vec![
            VhostFragment::IncludeOptional("/etc/apache2/mellon*/sp-location*.conf".to_owned()),
            VhostFragment::IncludeOptional("/etc/apache2/openidc*/openidc-*.conf".to_owned()),
            VhostFragment::KeystoneAlias("/krb".to_owned()),
        ],
        restart: Vec::new(),
    }
}

#[test]
fn the_relations_fragments_join_keystone_conf_and_the_vhost() {
    let t = templates();
    let mut conf = KeystoneConf::from_config(&config(json!({})), Some(mariadb()));
    let own = t.keystone_conf(&conf).unwrap();
    conf.fragments = federation_fragments().conf;
    let rendered = t.keystone_conf(&conf).unwrap();
    insta::assert_snapshot!("keystone_conf_fragments", rendered);
    // The charm's own options are all still there, once; the list grew by the new method and
    // lost the one taken out.
    let entries = oslo_ini(&rendered);
    for (section, key) in shape(&own) {
        let count = entries
            .iter()
            .filter(|(s, k, _)| *s == section && *k == key)
            .count();
        assert_eq!(count, 1, "[{section}] {key}");
    }
    assert_eq!(
        value_of(&rendered, "auth", "methods"),
        "password,token,oauth1,openid,totp,application_credential,mapped"
    );
    assert_eq!(
        value_of(&rendered, "identity", "domain_config_dir"),
        "/etc/keystone/domains"
    );
    let dashboards: Vec<_> = entries
        .iter()
        .filter(|(s, k, _)| s == "federation" && k == "trusted_dashboard")
        .map(|(_, _, v)| v.as_str())
        .collect();
    assert_eq!(
        dashboards,
        [
            "https://a.example/auth/websso/",
            "https://b.example/auth/websso/"
        ]
    );
    // No fragment: the file is what it always was.
    assert_eq!(own, conf_without_fragments(&t));

    let mut vhost = Vhost::from_config(&config(json!({})), 2, "keystone-0");
    vhost.fragments = federation_fragments().vhost;
    let rendered = t.vhost(&vhost).unwrap();
    insta::assert_snapshot!("vhost_fragments", rendered);
    for (port, app) in [(4990, "public"), (35347, "admin")] {
        let host = rendered
            .split(&format!("<VirtualHost *:{port}>"))
            .nth(1)
            .and_then(|rest| rest.split("</VirtualHost>").next())
            .unwrap();
        let krb = host
            .find(&format!(
                "WSGIScriptAlias /krb \"/usr/bin/keystone-wsgi-{app}\"\n"
            ))
            .unwrap();
        let root = host.find("WSGIScriptAlias / ").unwrap();
        assert!(krb < root, "the /krb alias comes before /");
        assert!(host.contains("\n    IncludeOptional /etc/apache2/mellon*/sp-location*.conf\n"));
    }
}

fn conf_without_fragments(t: &Templates) -> String {
    t.keystone_conf(&KeystoneConf::from_config(
        &config(json!({})),
        Some(mariadb()),
    ))
    .unwrap()
}

#[test]
fn a_fragment_cannot_change_the_files_meaning_or_override_the_charm() {
    let t = templates();
    let conf_with = |fragment: ConfFragment| {
        let mut conf = KeystoneConf::from_config(&config(json!({})), Some(mariadb()));
        conf.fragments = vec![fragment];
        t.keystone_conf(&conf)
    };
    // A second setting of what the charm sets: refused, naming it.
    for (section, key) in [("token", "provider"), ("database", "connection")] {
        let rendered = conf_with(ConfFragment::set(section, key, "x"));
        assert!(
            matches!(&rendered, Err(RenderError::SetTwice { section: s, key: k }) if s == section && k == key),
            "{rendered:?}"
        );
        let message = rendered.unwrap_err().to_string();
        assert!(message.contains(&format!("[{section}] {key}")), "{message}");
    }
    for refused in [
        // Names and values that would end the line or the header.
        ConfFragment::set("ldap]\n[database", "url", "x"),
        ConfFragment::set("ldap", "url\nconnection", "x"),
        ConfFragment::set(
            "ldap",
            "url",
            "ldap://x\n[database]\nconnection = sqlite://",
        ),
        ConfFragment::set("ldap", "URL", "x"),
        ConfFragment::set("", "url", "x"),
        // A list item that would add two, or a list the charm does not render.
        ConfFragment::list_item("auth", "methods", "mapped,external"),
        ConfFragment::list_item("auth", "methods", "mapped x"),
        ConfFragment::list_item("identity", "driver", "ldap"),
        ConfFragment::list_removal("identity", "driver", "sql"),
        ConfFragment::list_removal("auth", "methods", "password\n[x]"),
    ] {
        let shown = format!("{refused:?}");
        assert!(is_unsafe(conf_with(refused)), "{shown} was rendered");
    }
    // Two relations setting one option.
    let mut conf = KeystoneConf::from_config(&config(json!({})), None);
    conf.fragments = vec![
        ConfFragment::set("ldap", "url", "ldap://a"),
        ConfFragment::set("ldap", "url", "ldap://b"),
    ];
    assert!(matches!(
        t.keystone_conf(&conf),
        Err(RenderError::SetTwice { .. })
    ));
    // A value full of the characters oslo.config gives a meaning reads back as given.
    let value = "$user ${x} ; # [x] 'q' \"d\"";
    let rendered = conf_with(ConfFragment::set("ldap", "user", value)).unwrap();
    assert_eq!(value_of(&rendered, "ldap", "user"), value);

    let vhost_with = |fragment: VhostFragment| {
        let mut vhost = Vhost::from_config(&config(json!({})), 2, "keystone-0");
        vhost.fragments = vec![fragment];
        t.vhost(&vhost)
    };
    for refused in [
        VhostFragment::IncludeOptional("relative/*.conf".to_owned()),
        VhostFragment::IncludeOptional("/etc/apache2/x.conf\n</VirtualHost>".to_owned()),
        VhostFragment::IncludeOptional("/etc/apache2/x y.conf".to_owned()),
        VhostFragment::IncludeOptional("/etc/apache2/\"x\".conf".to_owned()),
        VhostFragment::IncludeOptional("/etc/apache2/{a,b}.conf".to_owned()),
        VhostFragment::KeystoneAlias("krb".to_owned()),
        VhostFragment::KeystoneAlias("/krb \"/etc/shadow".to_owned()),
        VhostFragment::KeystoneAlias("/krb/../x".to_owned()),
    ] {
        let shown = format!("{refused:?}");
        assert!(is_unsafe(vhost_with(refused)), "{shown} was rendered");
    }
}
