//! keystone.conf, its logging configuration and the Apache mod_wsgi vhost, rendered from the
//! charm's templates/ (tera, loaded at run time from the charm directory Juju unpacked).
//!
//! Rendering is pure: typed contexts in, text out. Every value that reaches a file is checked and
//! encoded here for the program that reads that file, whatever checked it before (the config
//! parser, the relation modules), so no config or relation value can start a line, a section or
//! a directive:
//! - no value may hold a control character or a Unicode line separator;
//! - keystone.conf values are written for oslo.config (`$` doubled, since oslo.config expands
//!   `$option`; values it would trim or unquote are quoted);
//! - the database URL takes only a host name or an IP address as its host, plain words as user
//!   and database, and refuses the two password characters it cannot carry (`@`, `%`);
//! - paths, host names and the path prefix must match a strict character set, so they are safe in
//!   Apache directives and in Python's logging configuration (which evaluates `args`).

use std::net::IpAddr;

use serde::Serialize;
use tera::{Context, Tera};

use crate::cache::SharedCache;
use crate::config::{Config, KeystoneLogLevel, SecurityCompliance};
use crate::paths;
use crate::secret::Sensitive;

pub mod fragments;

pub use fragments::{ConfFragment, ConfKind, Fragments, VhostFragment};

/// The templates, by file name in templates/.
pub const KEYSTONE_CONF: &str = "keystone.conf";
pub const LOGGING_CONF: &str = "logging.conf";
pub const VHOST: &str = "wsgi-keystone.conf";
pub const HAPROXY: &str = "haproxy.cfg";
pub const POLICY: &str = "policy.yaml";
pub const MEMCACHED_CONF: &str = "memcached.conf";
pub const CACHE_FIREWALL: &str = "cache-firewall.nft";

/// Every template, by file name in templates/, with the text this binary was built with.
pub const BUNDLED: [(&str, &str); 7] = [
    (KEYSTONE_CONF, include_str!("../templates/keystone.conf")),
    (LOGGING_CONF, include_str!("../templates/logging.conf")),
    (VHOST, include_str!("../templates/wsgi-keystone.conf")),
    (HAPROXY, include_str!("../templates/haproxy.cfg")),
    (POLICY, include_str!("../templates/policy.yaml")),
    (MEMCACHED_CONF, include_str!("../templates/memcached.conf")),
    (
        CACHE_FIREWALL,
        include_str!("../templates/cache-firewall.nft"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read the template {name}: {detail}; is the charm directory complete?")]
    Read { name: String, detail: String },
    #[error("the template {name} is not valid: {detail}")]
    Template { name: String, detail: String },
    #[error("{field} cannot go into {file}: {reason}")]
    Unsafe {
        field: &'static str,
        file: &'static str,
        reason: &'static str,
    },
    #[error(
        "a relation sets [{section}] {key} in keystone.conf, which the charm or another relation \
         sets already: remove it from what that relation sends"
    )]
    SetTwice { section: String, key: String },
}

/// The charm's templates.
pub struct Templates {
    tera: Tera,
}

impl Templates {
    /// The templates this binary was built with (the repository's templates/), for tests and
    /// tools that have no charm directory.
    pub fn bundled() -> Templates {
        match Templates::parse(|name| {
            BUNDLED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| "not bundled".to_owned())
        }) {
            Ok(templates) => templates,
            // The bundled templates are checked by every render test; this cannot happen in a
            // build that passed them.
            Err(err) => panic!("the bundled templates do not parse: {err}"),
        }
    }

    /// Parses every template, reading each by its file name in templates/.
    pub fn parse(read: impl Fn(&str) -> Result<String, String>) -> Result<Templates, RenderError> {
        let mut tera = Tera::new();
        // Configuration files, not HTML: nothing is HTML-escaped; values are encoded instead.
        tera.autoescape_on(Vec::<&str>::new());
        for (name, _) in BUNDLED {
            let text = read(name).map_err(|detail| RenderError::Read {
                name: name.to_owned(),
                detail,
            })?;
            tera.add_raw_template(name, &text)
                .map_err(|e| RenderError::Template {
                    name: name.to_owned(),
                    detail: e.to_string(),
                })?;
        }
        Ok(Templates { tera })
    }

    fn render(&self, name: &str, view: &impl Serialize) -> Result<String, RenderError> {
        let context = Context::from_serialize(view).map_err(|e| RenderError::Template {
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

    /// keystone.conf. The text holds the database password: write it, never log it.
    pub fn keystone_conf(&self, conf: &KeystoneConf) -> Result<String, RenderError> {
        let mut view = conf.view()?;
        if conf.fragments.is_empty() {
            return self.render(KEYSTONE_CONF, &view);
        }
        // The relations' options are checked against what the charm sets itself.
        let own = self.render(KEYSTONE_CONF, &view)?;
        let additions = fragments::conf_view(&conf.fragments, &own)?;
        // [auth] methods is the one list fragments may change (fragments::LIST_OPTIONS).
        let (added, removed): (Vec<_>, Vec<_>) =
            additions.list_edits.into_iter().partition(|edit| edit.add);
        for edit in added {
            if !view.auth_methods.contains(&edit.item) {
                view.auth_methods.push(edit.item);
            }
        }
        view.auth_methods
            .retain(|method| !removed.iter().any(|edit| edit.item == *method));
        view.fragments = additions.sections;
        self.render(KEYSTONE_CONF, &view)
    }

    /// The logging configuration keystone.conf's `log_config_append` names.
    pub fn logging_conf(&self, conf: &LoggingConf) -> Result<String, RenderError> {
        self.render(LOGGING_CONF, &conf.view()?)
    }

    /// The Apache site serving Keystone's two WSGI applications.
    pub fn vhost(&self, vhost: &Vhost) -> Result<String, RenderError> {
        self.render(VHOST, &vhost.view()?)
    }

    /// haproxy in front of Keystone's two ports.
    pub fn haproxy(&self, haproxy: &Haproxy) -> Result<String, RenderError> {
        self.render(HAPROXY, &haproxy.view()?)
    }

    /// Keystone's policy (oslo.policy's YAML).
    pub fn policy(&self, policy: &Policy) -> Result<String, RenderError> {
        self.render(POLICY, &policy.view()?)
    }

    /// memcached's configuration (Debian's /etc/memcached.conf).
    pub fn memcached_conf(&self, cache: &SharedCache) -> Result<String, RenderError> {
        self.render(MEMCACHED_CONF, &CacheView::of(cache))
    }

    /// The nftables table that lets only the application's units reach memcached.
    pub fn cache_firewall(&self, cache: &SharedCache) -> Result<String, RenderError> {
        self.render(CACHE_FIREWALL, &CacheView::of(cache))
    }
}

// ---------------------------------------------------------------------------------------------
// Checks and encodings.

fn unsafe_value<T>(
    field: &'static str,
    file: &'static str,
    reason: &'static str,
) -> Result<T, RenderError> {
    Err(RenderError::Unsafe {
        field,
        file,
        reason,
    })
}

/// A value that stays on its line: no control characters, no Unicode line or paragraph separator.
fn one_line(field: &'static str, file: &'static str, value: &str) -> Result<(), RenderError> {
    if value
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return unsafe_value(
            field,
            file,
            "it holds a newline or another control character",
        );
    }
    Ok(())
}

/// A keystone.conf value as oslo.config reads it back: `$` doubled (oslo.config expands
/// `$option` and turns `$$` into `$`), and quoted when oslo.config would otherwise trim it or take
/// its quotes off (it strips one pair of matching outer quotes).
fn ini_value(field: &'static str, value: &str) -> Result<String, RenderError> {
    one_line(field, KEYSTONE_CONF, value)?;
    if value.contains("\\$") {
        // oslo.config reads `\$` as `$$`; no encoding gives back a backslash before a dollar.
        return unsafe_value(
            field,
            KEYSTONE_CONF,
            "oslo.config cannot read a backslash followed by $",
        );
    }
    let escaped = value.replace('$', "$$");
    let needs_quotes = escaped.is_empty()
        || escaped.starts_with(char::is_whitespace)
        || escaped.ends_with(char::is_whitespace)
        || escaped.starts_with(['"', '\''])
        || escaped.ends_with(['"', '\'']);
    Ok(if needs_quotes {
        format!("\"{escaped}\"")
    } else {
        escaped
    })
}

/// An absolute path made only of characters that mean nothing to Apache, oslo.config, Python's
/// logging configuration or a URL query: letters, digits and `/._+,=@~-`.
fn path_value(field: &'static str, file: &'static str, value: &str) -> Result<String, RenderError> {
    one_line(field, file, value)?;
    if !value.starts_with('/') {
        return unsafe_value(field, file, "it must be an absolute path");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+,=@~-".contains(c))
    {
        return unsafe_value(
            field,
            file,
            "a path may hold only letters, digits and / . _ + , = @ ~ -",
        );
    }
    Ok(value.to_owned())
}

/// A host name or an IP address, as written in a URL or an Apache directive (IPv6 in brackets,
/// a name without the trailing dot a fully qualified one may have).
fn host_value(field: &'static str, file: &'static str, value: &str) -> Result<String, RenderError> {
    one_line(field, file, value)?;
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => return Ok(format!("[{ip}]")),
        Ok(IpAddr::V4(ip)) => return Ok(ip.to_string()),
        Err(_) => {}
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
    };
    // A fully qualified name may end in a dot (the config allows it); written without it.
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return unsafe_value(field, file, "it must be a host name or an IP address");
    }
    Ok(name.to_owned())
}

// ---------------------------------------------------------------------------------------------
// keystone.conf

/// The database connection, from the shared-db relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConnection {
    pub user: String,
    pub password: Sensitive<String>,
    /// `db_host`: a host name or an IP address.
    pub host: String,
    /// `db_port`, when the database sends one.
    pub port: Option<u16>,
    pub database: String,
    /// Files holding the TLS material the database sent (ssl_ca and optionally ssl_cert/ssl_key).
    pub tls: Option<DatabaseTls>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTls {
    pub ca_file: String,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

impl DatabaseConnection {
    /// The SQLAlchemy URL: `mysql+pymysql://user:password@host[:port]/database[?ssl_ca=…]`.
    ///
    /// The URL holds no `%`: keystone-manage db_sync hands it to alembic, whose ConfigParser
    /// rejects a `%` that is not an interpolation, while Keystone itself would need `%` to stay.
    /// So the password goes in as it is (SQLAlchemy reads everything up to the `@` before the
    /// host as the password) and may not hold `@` or `%`; the TLS file paths, whose character
    /// set needs no encoding, likewise.
    pub fn url(&self) -> Result<Sensitive<String>, RenderError> {
        let file = KEYSTONE_CONF;
        let host = host_value("the database host (db_host)", file, &self.host)?;
        let identifier = |value: &str| {
            !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        // SQLAlchemy does not unquote the database name; MySQL user names are plain words too.
        if !identifier(&self.database) {
            unsafe_value(
                "the database name",
                file,
                "it may hold only letters, digits, _ and -",
            )?;
        }
        if !identifier(&self.user) {
            unsafe_value(
                "the database user",
                file,
                "it may hold only letters, digits, _ and -",
            )?;
        }
        let password = self.password.expose();
        one_line("the database password", file, password)?;
        if password.contains("\\$") {
            unsafe_value(
                "the database password",
                file,
                "oslo.config cannot read a backslash followed by $ in it; have the database \
                 charm set another password",
            )?;
        }
        if password.contains(['@', '%']) {
            unsafe_value(
                "the database password",
                file,
                "it holds @ or %, which keystone-manage db_sync cannot read in a database URL; \
                 have the database charm set another password",
            )?;
        }
        let mut url = format!("mysql+pymysql://{}:{password}@{host}", self.user);
        if let Some(port) = self.port {
            url.push_str(&format!(":{port}"));
        }
        url.push('/');
        url.push_str(&self.database);
        if let Some(tls) = &self.tls {
            // SQLAlchemy reads the query as a form: `+` would become a space, `=` split a pair.
            let query_path = |field: &'static str, path: &str| {
                let path = path_value(field, file, path)?;
                if path.contains(['+', '=']) {
                    return unsafe_value(field, file, "a path in the URL may not hold + or =");
                }
                Ok(path)
            };
            let mut query = vec![format!(
                "ssl_ca={}",
                query_path("the database CA file", &tls.ca_file)?
            )];
            if let Some(cert) = &tls.cert_file {
                query.push(format!(
                    "ssl_cert={}",
                    query_path("the database client certificate file", cert)?
                ));
            }
            if let Some(key) = &tls.key_file {
                query.push(format!(
                    "ssl_key={}",
                    query_path("the database client key file", key)?
                ));
            }
            url.push('?');
            url.push_str(&query.join("&"));
        }
        Ok(Sensitive::new(url))
    }
}

/// Seconds Keystone waits for its cache (haproxy on loopback). Longer than haproxy may take to
/// reach the standby when a memcached vanishes (`templates/haproxy.cfg`: 8 tries 0.2 s apart):
/// a wait timed out inside the flush Keystone makes on reconnecting would fail the request.
const MEMCACHE_SOCKET_TIMEOUT: u32 = 3;

/// What keystone.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneConf {
    pub debug: bool,
    /// The logging configuration (see [`LoggingConf`]).
    pub log_config_file: String,
    /// While this file exists Keystone's /healthcheck answers 503, so haproxy sends the unit
    /// no new request (a unit draining before its upgrade).
    pub draining_marker: String,
    /// False renders an empty `notification_opt_out`, which notifies every event.
    pub notification_opt_out: bool,
    /// enable-notifications or audit-middleware: Keystone's notifications go to its log.
    pub notifications: bool,
    /// audit-middleware: notifications are CADF events.
    pub cadf: bool,
    /// None until shared-db is ready for this unit; Keystone then has no database.
    pub database: Option<DatabaseConnection>,
    pub token_expiration: u64,
    /// Token and receipt keys (receipts use the token keys every unit shares).
    pub fernet_key_repository: String,
    pub credential_key_repository: String,
    pub max_active_keys: u32,
    pub ec2_auth_ttl: u64,
    /// memcached servers (`host:port`), when enable-cache: haproxy on this unit, in front of
    /// the one cache every unit shares (see [`crate::cache`]).
    pub memcache_servers: Vec<String>,
    pub cache_expiration: u64,
    /// Whether Keystone caches token validations (off where the release cannot keep that
    /// cache coherent).
    pub token_caching: bool,
    /// Keystone's policy file (see [`Policy`]).
    pub policy_file: String,
    /// `[resource] admin_project_domain_name` and `admin_project_name`: tokens scoped to this
    /// project say `is_admin_project: true`, and only they.
    pub admin_project_domain: String,
    pub admin_project: String,
    /// The leader's `default_domain_id`, once the default domain is known.
    pub default_domain_id: Option<String>,
    /// `[DEFAULT] public_endpoint`: the base URL Keystone names itself by in its version
    /// documents, as the Python charm renders it. (Its `admin_endpoint` is no option of the
    /// Keystone releases this charm runs.)
    pub public_endpoint: Option<String>,
    pub identity_cache_time: Option<u64>,
    pub role_cache_time: Option<u64>,
    pub catalog_cache_time: u64,
    pub default_authorization_ttl: u64,
    /// `[security_compliance]` options (key, value), in a stable order.
    pub security_compliance: Vec<(String, String)>,
    /// What the relations add ([`fragments`]).
    pub fragments: Vec<ConfFragment>,
}

/// `[auth] methods` as the charm sets it; a relation may add its own ([`ConfKind::ListItem`])
/// and take one out ([`ConfKind::ListRemoval`]).
const AUTH_METHODS: [&str; 7] = [
    "external",
    "password",
    "token",
    "oauth1",
    "openid",
    "totp",
    "application_credential",
];

#[derive(Serialize)]
struct KeystoneConfView {
    debug: bool,
    log_config_file: String,
    draining_marker: String,
    notification_opt_out: bool,
    notifications: bool,
    cadf: bool,
    database_url: Option<String>,
    token_expiration: u64,
    fernet_key_repository: String,
    credential_key_repository: String,
    max_active_keys: u32,
    ec2_auth_ttl: u64,
    memcache_servers: Option<String>,
    cache_expiration: u64,
    token_caching: bool,
    memcache_socket_timeout: u32,
    policy_file: String,
    admin_project_domain: String,
    admin_project: String,
    default_domain_id: Option<String>,
    public_endpoint: Option<String>,
    identity_cache_time: Option<u64>,
    role_cache_time: Option<u64>,
    catalog_cache_time: u64,
    default_authorization_ttl: u64,
    security_compliance: Vec<ConfOption>,
    auth_methods: Vec<String>,
    fragments: Vec<fragments::SectionView>,
}

#[derive(Debug, Serialize)]
struct ConfOption {
    key: String,
    value: String,
}

impl KeystoneConf {
    /// keystone.conf for `config`; the caller adds what comes from relations and the leader.
    pub fn from_config(config: &Config, database: Option<DatabaseConnection>) -> KeystoneConf {
        KeystoneConf {
            debug: config.debug,
            log_config_file: paths::LOGGING_CONF.to_owned(),
            draining_marker: paths::DRAINING_MARKER.to_owned(),
            // An audit records every authentication, which Keystone opts out of by default.
            notification_opt_out: config.default_notification_opt_out && !config.audit_middleware,
            notifications: config.enable_notifications || config.audit_middleware,
            cadf: config.audit_middleware,
            database,
            token_expiration: config.token_expiration,
            fernet_key_repository: paths::FERNET_KEYS.to_owned(),
            credential_key_repository: paths::CREDENTIAL_KEYS.to_owned(),
            max_active_keys: config.fernet_max_active_keys,
            ec2_auth_ttl: config.ec2_auth_ttl,
            memcache_servers: if config.enable_cache {
                vec![crate::cache::KEYSTONE_MEMCACHE_SERVER.to_owned()]
            } else {
                Vec::new()
            },
            cache_expiration: config.dogpile_cache_expiration,
            token_caching: true,
            policy_file: paths::POLICY.to_owned(),
            admin_project_domain: crate::identity::ADMIN_DOMAIN.to_owned(),
            admin_project: crate::identity::ADMIN_PROJECT.to_owned(),
            default_domain_id: None,
            public_endpoint: None,
            identity_cache_time: config.identity_cache_expiration,
            role_cache_time: config.role_cache_expiration,
            catalog_cache_time: config.catalog_cache_expiration,
            default_authorization_ttl: config.default_authorization_ttl,
            security_compliance: config
                .security_compliance
                .as_ref()
                .map(security_compliance_options)
                .unwrap_or_default(),
            fragments: Vec::new(),
        }
    }

    fn view(&self) -> Result<KeystoneConfView, RenderError> {
        let file = KEYSTONE_CONF;
        let database_url = match &self.database {
            Some(db) => Some(ini_value("the database connection", db.url()?.expose())?),
            None => None,
        };
        let memcache_servers = if self.memcache_servers.is_empty() {
            None
        } else {
            let mut servers = Vec::new();
            for server in &self.memcache_servers {
                // A list option: a comma would add a server.
                if server.contains(',') || server.contains(char::is_whitespace) {
                    unsafe_value(
                        "memcache_servers",
                        file,
                        "a server may not hold , or spaces",
                    )?;
                }
                servers.push(ini_value("memcache_servers", server)?);
            }
            Some(servers.join(","))
        };
        let mut security_compliance = Vec::new();
        for (key, value) in &self.security_compliance {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                unsafe_value(
                    "a password-security-compliance key",
                    file,
                    "keys are lower-case words joined by _",
                )?;
            }
            security_compliance.push(ConfOption {
                key: key.clone(),
                value: ini_value("password-security-compliance", value)?,
            });
        }
        Ok(KeystoneConfView {
            debug: self.debug,
            log_config_file: path_value("the logging configuration", file, &self.log_config_file)?,
            draining_marker: path_value("the draining marker", file, &self.draining_marker)?,
            notification_opt_out: self.notification_opt_out,
            notifications: self.notifications,
            cadf: self.cadf,
            database_url,
            token_expiration: self.token_expiration,
            fernet_key_repository: path_value(
                "the fernet key repository",
                file,
                &self.fernet_key_repository,
            )?,
            credential_key_repository: path_value(
                "the credential key repository",
                file,
                &self.credential_key_repository,
            )?,
            max_active_keys: self.max_active_keys,
            ec2_auth_ttl: self.ec2_auth_ttl,
            memcache_servers,
            cache_expiration: self.cache_expiration,
            token_caching: self.token_caching,
            memcache_socket_timeout: MEMCACHE_SOCKET_TIMEOUT,
            policy_file: path_value("the policy file", file, &self.policy_file)?,
            admin_project_domain: ini_value(
                "the admin project's domain",
                &self.admin_project_domain,
            )?,
            admin_project: ini_value("the admin project", &self.admin_project)?,
            default_domain_id: self
                .default_domain_id
                .as_deref()
                .map(|id| ini_value("default_domain_id", id))
                .transpose()?,
            public_endpoint: self
                .public_endpoint
                .as_deref()
                .map(|url| ini_value("public_endpoint", url))
                .transpose()?,
            identity_cache_time: self.identity_cache_time,
            role_cache_time: self.role_cache_time,
            catalog_cache_time: self.catalog_cache_time,
            default_authorization_ttl: self.default_authorization_ttl,
            security_compliance,
            auth_methods: AUTH_METHODS.iter().map(|m| (*m).to_owned()).collect(),
            fragments: Vec::new(),
        })
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

// ---------------------------------------------------------------------------------------------
// policy.yaml

/// Keystone's policy: the Python charm's rules, in which the admin role is cloud-wide only on the
/// admin project, in admin_domain or on the service project (`cloud_admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// admin-role: the role the rules call admin.
    pub admin_role: String,
    /// admin_domain's id, once the leader has made it.
    pub admin_domain_id: Option<String>,
    /// The service project's id, once the leader has made it.
    pub service_project_id: Option<String>,
}

#[derive(Serialize)]
struct PolicyView {
    admin_role: String,
    admin_domain_id: Option<String>,
    service_project_id: Option<String>,
}

/// A word of oslo.policy's rule language, inside a quoted YAML string: a role name or an id can
/// hold nothing that would end the check (a space, a parenthesis, a quote) or the line.
fn policy_word(field: &'static str, value: &str) -> Result<String, RenderError> {
    one_line(field, POLICY, value)?;
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return unsafe_value(
            field,
            POLICY,
            "it may hold only letters, digits and _ - . in a policy rule",
        );
    }
    Ok(value.to_owned())
}

impl Policy {
    fn view(&self) -> Result<PolicyView, RenderError> {
        let id = |field, value: &Option<String>| {
            value.as_deref().map(|v| policy_word(field, v)).transpose()
        };
        Ok(PolicyView {
            admin_role: policy_word("admin-role", &self.admin_role)?,
            admin_domain_id: id("admin_domain's id", &self.admin_domain_id)?,
            service_project_id: id("the service project's id", &self.service_project_id)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// memcached and who may reach it

#[derive(Serialize)]
struct CacheView {
    listen: String,
    listen_v6: bool,
    port: u16,
    proxy_port: u16,
    members_v4: Vec<String>,
    members_v6: Vec<String>,
    clients: Vec<&'static str>,
    memcached_clients: Vec<&'static str>,
}

impl CacheView {
    // Every value is an IP address or a constant: nothing to check.
    fn of(cache: &SharedCache) -> CacheView {
        CacheView {
            listen: cache.listen.to_string(),
            listen_v6: cache.listen.is_ipv6(),
            port: crate::cache::MEMCACHED_PORT,
            proxy_port: crate::cache::CACHE_PROXY_PORT,
            members_v4: cache.members_v4(),
            members_v6: cache.members_v6(),
            clients: crate::cache::CACHE_CLIENTS.to_vec(),
            memcached_clients: crate::cache::MEMCACHED_CLIENTS.to_vec(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// logging.conf

/// Keystone's logging (Python's fileConfig format), named by keystone.conf's log_config_append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingConf {
    /// The root logger's level: log-level, or DEBUG when debug is set.
    pub level: KeystoneLogLevel,
    pub log_file: String,
    pub use_syslog: bool,
    /// Keystone's notifications (log driver) are logged at INFO whatever the level.
    pub notifications: bool,
}

#[derive(Serialize)]
struct LoggingConfView {
    level: &'static str,
    log_file: String,
    use_syslog: bool,
    notifications: bool,
}

impl LoggingConf {
    pub fn from_config(config: &Config) -> LoggingConf {
        LoggingConf {
            level: if config.debug {
                KeystoneLogLevel::Debug
            } else {
                config.log_level
            },
            log_file: paths::KEYSTONE_LOG.to_owned(),
            use_syslog: config.use_syslog,
            notifications: config.enable_notifications || config.audit_middleware,
        }
    }

    fn view(&self) -> Result<LoggingConfView, RenderError> {
        Ok(LoggingConfView {
            level: self.level.as_str(),
            // Python evaluates `args`: the path's character set keeps it a plain string literal.
            log_file: path_value("Keystone's log file", LOGGING_CONF, &self.log_file)?,
            use_syslog: self.use_syslog,
            notifications: self.notifications,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The Apache vhost

/// Keystone's two WSGI applications (the same application since Queens; two daemon groups so the
/// admin port keeps answering when the public one is busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WsgiApp {
    Public,
    Admin,
}

impl WsgiApp {
    pub fn as_str(self) -> &'static str {
        match self {
            WsgiApp::Public => "public",
            WsgiApp::Admin => "admin",
        }
    }
}

/// One virtual host: an application on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsgiApi {
    pub app: WsgiApp,
    pub port: u16,
    /// mod_wsgi daemon processes (worker multipliers, reference §8).
    pub processes: u32,
    /// The WSGI script: Debian's /usr/bin/keystone-wsgi-<app>, which reads
    /// /etc/keystone/keystone.conf.
    pub script: String,
}

/// What the Apache vhost says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vhost {
    /// Listen on this address only; None listens on every address.
    pub listen_address: Option<IpAddr>,
    pub server_name: String,
    /// service-path-prefix (`/api/idm`): Keystone is served under it as well as at `/`.
    pub path_prefix: Option<String>,
    pub apis: Vec<WsgiApi>,
    /// haproxy serves Keystone over TLS in front of Apache: Apache listens on loopback only and
    /// tells Keystone (and the modules relations add) that requests came over https.
    pub behind_tls: bool,
    pub log_dir: String,
    /// mod_wsgi names its daemon sockets anew at every restart (its default); off, a request an
    /// old Apache child accepted during a graceful reload reaches the new daemons.
    pub socket_rotation: bool,
    /// What the relations add to every virtual host ([`fragments`]).
    pub fragments: Vec<VhostFragment>,
}

#[derive(Serialize)]
struct VhostView {
    listen_address: String,
    server_name: String,
    path_prefix: Option<String>,
    apis: Vec<WsgiApiView>,
    behind_tls: bool,
    log_dir: String,
    socket_rotation: bool,
    includes: Vec<String>,
    aliases: Vec<String>,
}

#[derive(Serialize)]
struct WsgiApiView {
    name: &'static str,
    port: u16,
    processes: u32,
    script: String,
    script_dir: String,
    script_file: String,
}

/// Checks service-path-prefix: `/` and segments of URL-safe characters, no trailing `/`.
pub fn check_path_prefix(prefix: &str) -> Result<(), RenderError> {
    url_path("service-path-prefix", prefix)
}

/// A URL path the vhost serves: `/` and segments of URL-safe characters, no trailing `/`.
fn url_path(field: &'static str, prefix: &str) -> Result<(), RenderError> {
    one_line(field, VHOST, prefix)?;
    let Some(rest) = prefix.strip_prefix('/') else {
        return unsafe_value(field, VHOST, "it must start with /");
    };
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    };
    if !rest.split('/').all(segment_ok) {
        return unsafe_value(
            field,
            VHOST,
            "it must be /-separated segments of letters, digits and - . _ ~, with no trailing /",
        );
    }
    Ok(())
}

impl Vhost {
    /// The vhost for `config` on a machine with `cpus` CPUs: on every address, or on loopback
    /// only behind haproxy's TLS.
    pub fn from_config(config: &Config, cpus: u32, server_name: &str) -> Vhost {
        let workers = config.worker_counts(cpus);
        let behind_tls = config.tls.is_some();
        Vhost {
            listen_address: behind_tls.then_some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            server_name: server_name.to_owned(),
            path_prefix: (!config.service_path_prefix.is_empty())
                .then(|| config.service_path_prefix.clone()),
            apis: vec![
                WsgiApi {
                    app: WsgiApp::Public,
                    port: config.apache_service_port(),
                    processes: workers.public,
                    script: paths::WSGI_PUBLIC.to_owned(),
                },
                WsgiApi {
                    app: WsgiApp::Admin,
                    port: config.apache_admin_port(),
                    processes: workers.admin,
                    script: paths::WSGI_ADMIN.to_owned(),
                },
            ],
            behind_tls,
            log_dir: paths::APACHE_LOG_DIR.to_owned(),
            socket_rotation: config.wsgi_socket_rotation,
            fragments: Vec::new(),
        }
    }

    fn view(&self) -> Result<VhostView, RenderError> {
        let file = VHOST;
        if self.apis.is_empty() {
            unsafe_value("the vhost", file, "it needs at least one application")?;
        }
        let mut apis = Vec::new();
        for (i, api) in self.apis.iter().enumerate() {
            if self.apis[..i].iter().any(|other| other.port == api.port) {
                unsafe_value(
                    "service-port and admin-port",
                    file,
                    "two applications cannot listen on one port",
                )?;
            }
            if api.processes == 0 {
                unsafe_value("the WSGI process count", file, "it must be at least 1")?;
            }
            let script = path_value("the WSGI script", file, &api.script)?;
            let (dir, name) = script.rsplit_once('/').unwrap_or(("", &script));
            apis.push(WsgiApiView {
                name: api.app.as_str(),
                port: api.port,
                processes: api.processes,
                script_dir: if dir.is_empty() { "/" } else { dir }.to_owned(),
                script_file: name.to_owned(),
                script: script.clone(),
            });
        }
        let path_prefix = match &self.path_prefix {
            Some(prefix) => {
                check_path_prefix(prefix)?;
                Some(prefix.clone())
            }
            None => None,
        };
        let extra = fragments::vhost_view(&self.fragments)?;
        Ok(VhostView {
            listen_address: match self.listen_address {
                Some(IpAddr::V4(ip)) => format!("{ip}:"),
                Some(IpAddr::V6(ip)) => format!("[{ip}]:"),
                None => String::new(),
            },
            server_name: host_value("the server name", file, &self.server_name)?,
            path_prefix,
            apis,
            behind_tls: self.behind_tls,
            log_dir: path_value("the Apache log directory", file, &self.log_dir)?,
            socket_rotation: self.socket_rotation,
            includes: extra.includes,
            aliases: extra.aliases,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// haproxy.cfg.

/// One Keystone application behind haproxy: its port, Apache's behind it, and (with TLS) the
/// port where haproxy takes the other units' requests for this unit's Apache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyApi {
    pub app: WsgiApp,
    pub port: u16,
    pub backend_port: u16,
    pub peer_port: u16,
}

/// haproxy serves Keystone over TLS: the certificate with its chain and key in one file
/// (`crt`), and the CA it checks the other units' certificates against (`ca-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyTls {
    pub pem_file: String,
    pub ca_file: String,
}

/// A unit haproxy may send requests to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HaproxyServer {
    /// The unit's name (`keystone/0`).
    pub unit: String,
    pub address: IpAddr,
}

/// Requests that arrive on `network` (an os-*-network) go to the units' addresses in it, as the
/// Python charm routes them, so that each network's traffic stays on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyNetwork {
    /// The role whose network it is (`public`, `internal`, `admin`): the backends' suffix.
    pub name: &'static str,
    pub network: ipnet::IpNet,
    pub servers: Vec<HaproxyServer>,
}

/// haproxy on one unit: Keystone's ports, spread over the units that may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Haproxy {
    pub ipv6: bool,
    pub apis: Vec<HaproxyApi>,
    /// Where requests go by default: the units' cluster addresses.
    pub servers: Vec<HaproxyServer>,
    pub networks: Vec<HaproxyNetwork>,
    /// The health check's path: `<service-path-prefix>/v3`.
    pub check_path: String,
    /// haproxy serves TLS: to clients, and between the units (the health checks too); Apache
    /// then listens on loopback only.
    pub tls: Option<HaproxyTls>,
    pub timeouts: crate::config::HaproxyTimeouts,
    /// The statistics page, on loopback only.
    pub stats_port: u16,
    pub stats_password: Sensitive<String>,
    /// The cache every unit shares, which haproxy fronts on loopback (enable-cache).
    pub cache: Option<SharedCache>,
}

#[derive(Serialize)]
struct HaproxyCacheView {
    port: u16,
    memcached_port: u16,
    servers: Vec<HaproxyServerView>,
}

#[derive(Serialize)]
struct HaproxyView {
    admin_socket: &'static str,
    monitor_socket: &'static str,
    bind: &'static str,
    apis: Vec<HaproxyApiView>,
    /// `keystone-<api>` first, then `keystone-<api>-<network>` for each network.
    backends: Vec<HaproxyBackendView>,
    networks: Vec<HaproxyNetworkView>,
    check_path: String,
    tls: Option<HaproxyTlsView>,
    timeouts: HaproxyTimeoutsView,
    stats_port: u16,
    stats_password: String,
    cache: Option<HaproxyCacheView>,
}

#[derive(Serialize)]
struct HaproxyApiView {
    name: &'static str,
    port: u16,
    backend_port: u16,
    peer_port: u16,
}

#[derive(Serialize)]
struct HaproxyTlsView {
    pem_file: String,
    ca_file: String,
}

#[derive(Serialize)]
struct HaproxyServerView {
    name: String,
    address: String,
    /// This unit's Apache, over loopback; any other unit is reached through its haproxy when
    /// TLS is on.
    local: bool,
}

#[derive(Serialize)]
struct HaproxyNetworkView {
    name: &'static str,
    network: String,
}

#[derive(Serialize)]
struct HaproxyBackendView {
    suffix: String,
    servers: Vec<HaproxyServerView>,
}

/// A unit as haproxy names it: `<application>/<n>` with a dash, since haproxy names may not
/// hold a slash.
fn haproxy_servers(servers: &[HaproxyServer]) -> Result<Vec<HaproxyServerView>, RenderError> {
    servers
        .iter()
        .map(|server| {
            let name = server.unit.replace('/', "-");
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return unsafe_value("a unit name", HAPROXY, "it is not <application>/<number>");
            }
            Ok(HaproxyServerView {
                name,
                address: server.address.to_string(),
                local: server.address.is_loopback(),
            })
        })
        .collect()
}

#[derive(Serialize)]
struct HaproxyTimeoutsView {
    server: u32,
    client: u32,
    queue: u32,
    connect: u32,
    check: u32,
}

impl Haproxy {
    fn view(&self) -> Result<HaproxyView, RenderError> {
        let file = HAPROXY;
        let check_path = path_value("service-path-prefix", file, &self.check_path)?;
        if !self
            .stats_password
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
        {
            unsafe_value(
                "the statistics password",
                file,
                "it may hold only letters and digits",
            )?;
        }
        let mut backends = vec![HaproxyBackendView {
            suffix: String::new(),
            servers: haproxy_servers(&self.servers)?,
        }];
        for net in &self.networks {
            backends.push(HaproxyBackendView {
                suffix: format!("-{}", net.name),
                servers: haproxy_servers(&net.servers)?,
            });
        }
        let networks = self
            .networks
            .iter()
            .map(|net| HaproxyNetworkView {
                name: net.name,
                network: net.network.to_string(),
            })
            .collect();
        let t = self.timeouts;
        Ok(HaproxyView {
            admin_socket: paths::HAPROXY_ADMIN_SOCKET,
            monitor_socket: paths::HAPROXY_MONITOR_SOCKET,
            // `:::5000` is every IPv6 (and, by default, IPv4) address.
            bind: if self.ipv6 { "::" } else { "*" },
            apis: self
                .apis
                .iter()
                .map(|api| HaproxyApiView {
                    name: api.app.as_str(),
                    port: api.port,
                    backend_port: api.backend_port,
                    peer_port: api.peer_port,
                })
                .collect(),
            backends,
            networks,
            check_path,
            tls: match &self.tls {
                Some(tls) => Some(HaproxyTlsView {
                    pem_file: path_value("the certificate file", file, &tls.pem_file)?,
                    ca_file: path_value("the CA file", file, &tls.ca_file)?,
                }),
                None => None,
            },
            timeouts: HaproxyTimeoutsView {
                server: t.server,
                client: t.client,
                queue: t.queue,
                connect: t.connect,
                check: t.check,
            },
            stats_port: self.stats_port,
            stats_password: self.stats_password.expose().clone(),
            cache: match &self.cache {
                Some(cache) => {
                    let servers: Vec<HaproxyServer> = cache
                        .servers
                        .iter()
                        .map(|s| HaproxyServer {
                            unit: s.unit.clone(),
                            address: s.address,
                        })
                        .collect();
                    Some(HaproxyCacheView {
                        port: crate::cache::CACHE_PROXY_PORT,
                        memcached_port: crate::cache::MEMCACHED_PORT,
                        servers: haproxy_servers(&servers)?,
                    })
                }
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests;
