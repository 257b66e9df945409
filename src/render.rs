//! keystone.conf and the Apache mod_wsgi vhost, rendered from the charm's templates/ (tera).
//!
//! Rendering is pure: typed contexts in, text out. Every string that reaches a file is checked
//! here, whatever checked it before (the config parser, the relation modules): no value may
//! contain a control character, so none can start a new line, section or directive, and values
//! Apache reads inside quotes may not contain a quote or a backslash.

use std::path::Path;

use serde::Serialize;
use tera::{Context, Tera};

use crate::config::{Config, SecurityCompliance};

/// The templates, by file name in templates/.
pub const KEYSTONE_CONF: &str = "keystone.conf";
pub const VHOST: &str = "wsgi-keystone.conf";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read the template {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the template {name} is not valid: {detail}")]
    Template { name: String, detail: String },
    #[error("{field} must not contain {what}; it would change the meaning of {file}")]
    Unsafe {
        field: &'static str,
        what: &'static str,
        file: &'static str,
    },
}

/// The charm's templates.
pub struct Templates {
    tera: Tera,
}

impl Templates {
    /// Loads the templates from a charm's templates/ directory.
    pub fn load(dir: &Path) -> Result<Templates, RenderError> {
        let mut tera = Tera::new();
        // Configuration files, not HTML: nothing is escaped, values are checked instead.
        tera.autoescape_on(Vec::<&str>::new());
        for name in [KEYSTONE_CONF, VHOST] {
            let text =
                std::fs::read_to_string(dir.join(name)).map_err(|source| RenderError::Read {
                    name: name.to_owned(),
                    source,
                })?;
            tera.add_raw_template(name, &text)
                .map_err(|e| RenderError::Template {
                    name: name.to_owned(),
                    detail: e.to_string(),
                })?;
        }
        Ok(Templates { tera })
    }

    fn render(&self, name: &str, context: &impl Serialize) -> Result<String, RenderError> {
        let context = Context::from_serialize(context).map_err(|e| RenderError::Template {
            name: name.to_owned(),
            detail: e.to_string(),
        })?;
        self.tera
            .render(name, &context)
            .map_err(|e| RenderError::Template {
                name: name.to_owned(),
                detail: format!("{e:?}"),
            })
    }

    pub fn keystone_conf(&self, conf: &KeystoneConf) -> Result<String, RenderError> {
        conf.check()?;
        self.render(KEYSTONE_CONF, conf)
    }

    pub fn vhost(&self, vhost: &Vhost) -> Result<String, RenderError> {
        vhost.check()?;
        self.render(VHOST, vhost)
    }
}

/// A value on one line of a config file: no control characters.
fn one_line(field: &'static str, value: &str, file: &'static str) -> Result<(), RenderError> {
    if value.chars().any(char::is_control) {
        return Err(RenderError::Unsafe {
            field,
            what: "newlines or other control characters",
            file,
        });
    }
    Ok(())
}

/// A value Apache reads between double quotes.
fn quoted(field: &'static str, value: &str) -> Result<(), RenderError> {
    one_line(field, value, VHOST)?;
    if value.contains(['"', '\\']) {
        return Err(RenderError::Unsafe {
            field,
            what: "quotes or backslashes",
            file: VHOST,
        });
    }
    Ok(())
}

/// What keystone.conf says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeystoneConf {
    pub debug: bool,
    pub use_syslog: bool,
    /// False renders an empty `notification_opt_out`, which notifies every event.
    pub notification_opt_out: bool,
    /// The SQLAlchemy URL; None until the database relation is ready.
    pub database_url: Option<String>,
    pub token_expiration: u64,
    pub fernet_key_repository: String,
    pub credential_key_repository: String,
    pub max_active_keys: u32,
    pub ec2_auth_ttl: u64,
    /// `host:port`, when enable-cache.
    pub memcache_servers: Option<String>,
    pub cache_expiration: u64,
    pub identity_cache_time: Option<u64>,
    pub role_cache_time: Option<u64>,
    pub catalog_cache_time: u64,
    pub default_authorization_ttl: u64,
    pub notifications: bool,
    /// `[security_compliance]` options, in a stable order.
    pub security_compliance: Vec<(String, String)>,
}

impl KeystoneConf {
    pub fn from_config(config: &Config, database_url: Option<String>) -> KeystoneConf {
        KeystoneConf {
            debug: config.debug,
            use_syslog: config.use_syslog,
            notification_opt_out: config.default_notification_opt_out,
            database_url,
            token_expiration: config.token_expiration,
            fernet_key_repository: "/etc/keystone/fernet-keys/".to_owned(),
            credential_key_repository: "/etc/keystone/credential-keys/".to_owned(),
            max_active_keys: config.fernet_max_active_keys,
            ec2_auth_ttl: config.ec2_auth_ttl,
            memcache_servers: config.enable_cache.then(|| "127.0.0.1:11211".to_owned()),
            cache_expiration: config.dogpile_cache_expiration,
            identity_cache_time: config.identity_cache_expiration,
            role_cache_time: config.role_cache_expiration,
            catalog_cache_time: config.catalog_cache_expiration,
            default_authorization_ttl: config.default_authorization_ttl,
            notifications: config.enable_notifications,
            security_compliance: config
                .security_compliance
                .as_ref()
                .map(security_compliance_options)
                .unwrap_or_default(),
        }
    }

    fn check(&self) -> Result<(), RenderError> {
        let file = KEYSTONE_CONF;
        if let Some(url) = &self.database_url {
            one_line("the database connection", url, file)?;
        }
        one_line(
            "the fernet key repository",
            &self.fernet_key_repository,
            file,
        )?;
        one_line(
            "the credential key repository",
            &self.credential_key_repository,
            file,
        )?;
        if let Some(servers) = &self.memcache_servers {
            one_line("memcache_servers", servers, file)?;
        }
        for (key, value) in &self.security_compliance {
            one_line("password-security-compliance", key, file)?;
            one_line("password-security-compliance", value, file)?;
        }
        Ok(())
    }
}

fn security_compliance_options(sc: &SecurityCompliance) -> Vec<(String, String)> {
    let mut options = Vec::new();
    let mut int = |key: &str, value: Option<i64>| {
        if let Some(v) = value {
            options.push((key.to_owned(), v.to_string()));
        }
    };
    int("lockout_failure_attempts", sc.lockout_failure_attempts);
    int("lockout_duration", sc.lockout_duration);
    int(
        "disable_user_account_days_inactive",
        sc.disable_user_account_days_inactive,
    );
    int("password_expires_days", sc.password_expires_days);
    int("unique_last_password_count", sc.unique_last_password_count);
    int("minimum_password_age", sc.minimum_password_age);
    if let Some(v) = sc.change_password_upon_first_use {
        options.push(("change_password_upon_first_use".to_owned(), v.to_string()));
    }
    if let Some(v) = &sc.password_regex {
        options.push(("password_regex".to_owned(), v.clone()));
    }
    if let Some(v) = &sc.password_regex_description {
        options.push(("password_regex_description".to_owned(), v.clone()));
    }
    options
}

/// One of Keystone's two WSGI applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WsgiApi {
    /// `public` or `admin` (the entry point is /usr/bin/keystone-wsgi-<name>).
    pub name: &'static str,
    pub port: u16,
    pub processes: u32,
}

/// Certificate files the vhost points at (written by the charm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: Option<String>,
}

/// What the Apache vhost says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vhost {
    pub service_port: u16,
    pub admin_port: u16,
    pub server_name: String,
    /// `/` or the service-path-prefix.
    pub script_alias: String,
    pub apis: Vec<WsgiApi>,
    pub tls: Option<TlsFiles>,
}

impl Vhost {
    pub fn from_config(
        config: &Config,
        cpus: u32,
        server_name: &str,
        tls: Option<TlsFiles>,
    ) -> Vhost {
        let workers = config.worker_counts(cpus);
        let script_alias = if config.service_path_prefix.is_empty() {
            "/".to_owned()
        } else {
            config.service_path_prefix.clone()
        };
        Vhost {
            service_port: config.service_port,
            admin_port: config.admin_port,
            server_name: server_name.to_owned(),
            script_alias,
            apis: vec![
                WsgiApi {
                    name: "public",
                    port: config.service_port,
                    processes: workers.public,
                },
                WsgiApi {
                    name: "admin",
                    port: config.admin_port,
                    processes: workers.admin,
                },
            ],
            tls,
        }
    }

    fn check(&self) -> Result<(), RenderError> {
        quoted("the server name", &self.server_name)?;
        one_line("service-path-prefix", &self.script_alias, VHOST)?;
        if self.script_alias.contains(char::is_whitespace) || !self.script_alias.starts_with('/') {
            return Err(RenderError::Unsafe {
                field: "service-path-prefix",
                what: "white space, or a first character other than /",
                file: VHOST,
            });
        }
        if let Some(tls) = &self.tls {
            quoted("the certificate path", &tls.cert_file)?;
            quoted("the key path", &tls.key_file)?;
            if let Some(ca) = &tls.ca_file {
                quoted("the CA path", ca)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn templates() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"))
            .expect("templates")
    }

    fn config(changes: Value) -> Config {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml")).unwrap();
        let mut options: Map<String, Value> =
            crate::config::defaults_from_config_yaml(&text).unwrap();
        for (k, v) in changes.as_object().unwrap() {
            options.insert(k.clone(), v.clone());
        }
        Config::from_options(&options).expect("valid config")
    }

    /// Sections and keys of an INI file, to check a render's meaning rather than its text.
    fn ini(text: &str) -> Vec<(String, String)> {
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let key = line.split('=').next().unwrap_or_default().trim().to_owned();
            entries.push((section.clone(), key));
        }
        entries
    }

    const DB: &str = "mysql+pymysql://keystone:s3cret@10.0.0.5/keystone";

    #[test]
    fn keystone_conf_without_a_database() {
        let rendered = templates()
            .keystone_conf(&KeystoneConf::from_config(&config(json!({})), None))
            .unwrap();
        insta::assert_snapshot!("keystone_conf_defaults", rendered);
    }

    #[test]
    fn keystone_conf_with_mariadb_cache_off_compliance_and_notifications() {
        let config = config(json!({
            "enable-cache": false, "debug": true, "enable-notifications": true,
            "default-notification-opt-out": false, "identity-cache-expiration": 30,
            "role-cache-expiration": 40, "fernet-max-active-keys": 5, "token-expiration": 7200,
            "password-security-compliance": "lockout_failure_attempts: 5\npassword_regex: '^.{8,}$'",
        }));
        let rendered = templates()
            .keystone_conf(&KeystoneConf::from_config(&config, Some(DB.to_owned())))
            .unwrap();
        insta::assert_snapshot!("keystone_conf_mariadb_and_options", rendered);
    }

    #[test]
    fn vhost_variants() {
        let t = templates();
        let plain = t
            .vhost(&Vhost::from_config(
                &config(json!({})),
                2,
                "10.0.0.10",
                None,
            ))
            .unwrap();
        insta::assert_snapshot!("vhost_plain", plain);
        let tls = TlsFiles {
            cert_file: "/etc/apache2/ssl/keystone/cert".to_owned(),
            key_file: "/etc/apache2/ssl/keystone/key".to_owned(),
            ca_file: Some("/usr/local/share/ca-certificates/keystone_juju_ca_cert.crt".to_owned()),
        };
        let prefixed = t
            .vhost(&Vhost::from_config(
                &config(json!({"service-path-prefix": "/api/idm"})),
                2,
                "keystone.example.com",
                Some(tls),
            ))
            .unwrap();
        insta::assert_snapshot!("vhost_tls_and_prefix", prefixed);
    }

    #[test]
    fn hostile_values_never_change_the_meaning_of_a_file() {
        let t = templates();
        let base = KeystoneConf::from_config(&config(json!({})), Some(DB.to_owned()));
        let meaning = ini(&t.keystone_conf(&base).unwrap());
        for hostile in [
            "x\n[database]\nconnection = sqlite://",
            "x\r[DEFAULT]",
            "x\u{0}y",
        ] {
            let mut conf = base.clone();
            conf.database_url = Some(format!("mysql+pymysql://keystone:{hostile}@h/keystone"));
            assert!(
                matches!(t.keystone_conf(&conf), Err(RenderError::Unsafe { .. })),
                "{hostile:?}"
            );
            let mut conf = base.clone();
            conf.security_compliance = vec![("password_regex".to_owned(), hostile.to_owned())];
            assert!(t.keystone_conf(&conf).is_err(), "{hostile:?}");
        }
        // A value with brackets on its own line stays a value.
        let mut conf = base.clone();
        conf.security_compliance = vec![("password_regex".to_owned(), "[database]".to_owned())];
        let rendered = ini(&t.keystone_conf(&conf).unwrap());
        let sections: std::collections::BTreeSet<&str> =
            rendered.iter().map(|(s, _)| s.as_str()).collect();
        let expected: std::collections::BTreeSet<&str> = meaning
            .iter()
            .map(|(s, _)| s.as_str())
            .chain(["security_compliance"])
            .collect();
        assert_eq!(sections, expected);

        let vhost = Vhost::from_config(&config(json!({})), 2, "ks\n</VirtualHost>", None);
        assert!(t.vhost(&vhost).is_err());
        let vhost = Vhost::from_config(&config(json!({})), 2, "ks\" evil", None);
        assert!(t.vhost(&vhost).is_err());
        let tls = TlsFiles {
            cert_file: "/c\nSSLEngine off".to_owned(),
            key_file: "/k".to_owned(),
            ca_file: None,
        };
        let vhost = Vhost::from_config(&config(json!({})), 2, "ks", Some(tls));
        assert!(t.vhost(&vhost).is_err());
    }
}
