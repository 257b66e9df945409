//! The charm's configuration: config-get's JSON parsed into types and validated as a whole.
//!
//! Parsing never stops at the first problem: every option is read, every rule checked, and all
//! problems come back together, so one blocked status tells the operator everything to change.
//! Nothing in here touches the world; [`Config::from_options`] is a pure function of config-get's
//! output.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::certificate;
use crate::secret::Sensitive;

/// Keystone's log levels the charm accepts (the Python charm's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeystoneLogLevel {
    Warning,
    Info,
    Debug,
    Error,
}

impl KeystoneLogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            KeystoneLogLevel::Warning => "WARNING",
            KeystoneLogLevel::Info => "INFO",
            KeystoneLogLevel::Debug => "DEBUG",
            KeystoneLogLevel::Error => "ERROR",
        }
    }
}

/// The certificate Keystone is served with: ssl_cert / ssl_key decoded to PEM, or, when those
/// are unset, the one the `certificates` relation issued to this unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_pem: String,
    pub key_pem: Sensitive<String>,
    /// The CA that issued it (ssl_ca, or the relation's CA), installed in the system's store.
    pub ca_pem: Option<String>,
    pub source: TlsSource,
}

/// Where the certificate came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// ssl_cert and ssl_key: the operator's, which win over the relation's.
    Options,
    /// The `certificates` relation, issued by this application.
    Relation { issuer: String },
}

/// keystone.conf `[security_compliance]`, from password-security-compliance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityCompliance {
    pub lockout_failure_attempts: Option<i64>,
    pub lockout_duration: Option<i64>,
    pub disable_user_account_days_inactive: Option<i64>,
    pub change_password_upon_first_use: Option<bool>,
    pub password_expires_days: Option<i64>,
    pub password_regex: Option<String>,
    pub password_regex_description: Option<String>,
    pub unique_last_password_count: Option<i64>,
    pub minimum_password_age: Option<i64>,
}

/// The keys password-security-compliance accepts and whether each is an integer, a boolean or a
/// string (reference §9).
const SECURITY_COMPLIANCE_KEYS: [(&str, ValueKind); 9] = [
    ("lockout_failure_attempts", ValueKind::Int),
    ("lockout_duration", ValueKind::Int),
    ("disable_user_account_days_inactive", ValueKind::Int),
    ("change_password_upon_first_use", ValueKind::Bool),
    ("password_expires_days", ValueKind::Int),
    ("password_regex", ValueKind::Str),
    ("password_regex_description", ValueKind::Str),
    ("unique_last_password_count", ValueKind::Int),
    ("minimum_password_age", ValueKind::Int),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Int,
    Bool,
    Str,
}

/// How far below service-port and admin-port Apache listens, behind haproxy (4990 and 35347
/// by default, as with the Python charm).
pub const APACHE_PORT_OFFSET: u16 = 10;

/// How far below service-port and admin-port haproxy takes the other units' requests over TLS
/// when Keystone serves it (4980 and 35337 by default): haproxy holds the certificate, and
/// Apache then listens on loopback only.
pub const PEER_TLS_PORT_OFFSET: u16 = 20;

/// haproxy's timeouts, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HaproxyTimeouts {
    pub server: u32,
    pub client: u32,
    pub queue: u32,
    pub connect: u32,
    pub check: u32,
}

/// Validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub debug: bool,
    pub log_level: KeystoneLogLevel,
    pub use_syslog: bool,
    /// haproxy's public/internal port on every unit (Apache listens [`APACHE_PORT_OFFSET`]
    /// below it).
    pub service_port: u16,
    pub admin_port: u16,
    /// haproxy's timeouts (haproxy-*-timeout, healthcheck-timeout), in milliseconds.
    pub haproxy_timeouts: HaproxyTimeouts,
    pub admin_user: String,
    /// None when admin-password is unset (the string "None", any case, or blank).
    pub admin_password: Option<Sensitive<String>>,
    pub admin_role: String,
    pub token_expiration: u64,
    pub catalog_cache_expiration: u64,
    pub identity_cache_expiration: Option<u64>,
    pub role_cache_expiration: Option<u64>,
    pub dogpile_cache_expiration: u64,
    pub enable_cache: bool,
    /// wsgi-socket-rotation: false turns mod_wsgi's daemon socket rotation off.
    pub wsgi_socket_rotation: bool,
    pub fernet_max_active_keys: u32,
    pub service_tenant: String,
    pub service_admin_prefix: Option<String>,
    pub worker_multiplier: Option<f64>,
    pub admin_worker_multiplier: Option<f64>,
    pub public_worker_multiplier: Option<f64>,
    pub database: String,
    pub database_user: String,
    pub regions: Vec<String>,
    pub dns_ha: bool,
    pub vips: Vec<IpAddr>,
    pub vip_iface: String,
    pub vip_cidr: u8,
    pub os_admin_network: Option<String>,
    pub os_internal_network: Option<String>,
    pub os_public_network: Option<String>,
    pub os_admin_hostname: Option<String>,
    pub os_internal_hostname: Option<String>,
    pub os_public_hostname: Option<String>,
    /// Prefer this unit's IPv6 addresses where a binding has both.
    pub prefer_ipv6: bool,
    pub tls: Option<TlsConfig>,
    pub nagios_context: String,
    pub nagios_servicegroups: String,
    pub security_compliance: Option<SecurityCompliance>,
    pub default_authorization_ttl: u64,
    pub ec2_auth_ttl: u64,
    pub enable_notifications: bool,
    pub default_notification_opt_out: bool,
    /// audit-middleware: every API event, authentications included, is logged as a CADF event.
    pub audit_middleware: bool,
    /// use-policyd-override: the policyd-override resource's rules override Keystone's policy.
    pub use_policyd_override: bool,
    /// Empty, or `/segment[/segment...]` without a trailing slash.
    pub service_path_prefix: String,
    /// openstack-origin, as written; [`crate::origin`] reads it for the machine's series.
    pub openstack_origin: String,
    /// action-managed-upgrade: a newer release in openstack-origin waits for the
    /// openstack-upgrade action on each unit instead of upgrading on config-changed.
    pub action_managed_upgrade: bool,
    unimplemented_set: Vec<&'static str>,
}

/// A DNS name as RFC 1123 allows for a host: dot-separated labels of 1 to 63 letters, digits
/// and hyphens, no hyphen at either end of a label, 253 characters at most, a trailing dot allowed.
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// PEM and nothing else: BEGIN/END lines around base64 lines (and the `Name: value` headers of
/// encrypted keys), with at least one block. Anything else could be a line of another format.
pub fn is_pem(text: &str) -> bool {
    let mut blocks = 0;
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        let label = |marker: &str| {
            line.strip_prefix(marker)
                .and_then(|rest| rest.strip_suffix("-----"))
                .is_some_and(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_uppercase() || c == ' ')
                })
        };
        let base64 = line
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
        let header = line.contains(':')
            && line
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ,:-".contains(c));
        if label("-----BEGIN ") && !inside {
            inside = true;
        } else if label("-----END ") && inside {
            inside = false;
            blocks += 1;
        } else if !(inside && (base64 || header)) && !line.is_empty() {
            return false;
        }
    }
    blocks > 0 && !inside
}

/// Every problem found in the configuration, reported together in one blocked status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblems(pub Vec<String>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config: {}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigProblems {}

/// Why a rotation period cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationPeriodError {
    #[error("fernet-max-active-keys must be at least 3 (is {0})")]
    TooFewKeys(u32),
    #[error("token-expiration must be at least 1 second (is {0})")]
    NoExpiration(u64),
}

/// How often the leader rotates fernet keys: token-expiration ÷ (fernet-max-active-keys − 2),
/// in whole seconds (rounded down, at least one second).
///
/// With `n` keys there are the staged key, the primary and `n − 2` secondaries, so a token
/// issued just before a rotation stays decryptable for `n − 2` more rotations; this period
/// makes that span the token's whole lifetime.
pub fn fernet_rotation_period(
    token_expiration: u64,
    max_active_keys: u32,
) -> Result<Duration, RotationPeriodError> {
    if max_active_keys < 3 {
        return Err(RotationPeriodError::TooFewKeys(max_active_keys));
    }
    if token_expiration < 1 {
        return Err(RotationPeriodError::NoExpiration(token_expiration));
    }
    let period = token_expiration / u64::from(max_active_keys - 2);
    Ok(Duration::from_secs(period.max(1)))
}

/// WSGI daemon processes for the admin and public API groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerCounts {
    pub admin: u32,
    pub public: u32,
}

/// Worker processes from the multipliers, as the Python charm computes them: total =
/// cpus × (worker-multiplier or 2), at least 1 and at most 4 when the multiplier is unset;
/// admin a quarter and public three quarters of the total (rounded up), unless their own
/// multipliers are set.
pub fn worker_counts(
    cpus: u32,
    worker: Option<f64>,
    admin: Option<f64>,
    public: Option<f64>,
) -> WorkerCounts {
    let scaled = |m: f64| ((f64::from(cpus) * m) as u32).max(1);
    let total = match worker {
        Some(m) => scaled(m),
        None => scaled(2.0).min(4),
    };
    let share = |fraction: f64| ((f64::from(total) * fraction).ceil() as u32).max(1);
    WorkerCounts {
        admin: admin.map(scaled).unwrap_or_else(|| share(0.25)),
        public: public.map(scaled).unwrap_or_else(|| share(0.75)),
    }
}

impl Config {
    /// The CA a client of this unit's Keystone trusts: ssl_ca (or the relation's CA), else the
    /// certificate itself (self-signed); `None` without TLS.
    pub fn trusted_ca(&self) -> Option<String> {
        let tls = self.tls.as_ref()?;
        Some(tls.ca_pem.clone().unwrap_or(tls.cert_pem.clone()))
    }

    /// Serves the certificate the `certificates` relation issued, unless ssl_cert and ssl_key
    /// name the operator's own.
    pub fn serve_issued(&mut self, issued: &certificate::Issued) {
        if self
            .tls
            .as_ref()
            .is_some_and(|tls| tls.source == TlsSource::Options)
        {
            return;
        }
        self.tls = Some(TlsConfig {
            cert_pem: issued.certificate.clone(),
            key_pem: issued.key.clone(),
            ca_pem: issued.ca.clone(),
            source: TlsSource::Relation {
                issuer: issued.issuer.clone(),
            },
        });
    }

    /// Stops serving the relation's certificate (the relation is gone).
    pub fn forget_issued(&mut self) {
        if self
            .tls
            .as_ref()
            .is_some_and(|tls| matches!(tls.source, TlsSource::Relation { .. }))
        {
            self.tls = None;
        }
    }

    /// Where Apache serves the public API, behind haproxy on service-port.
    pub fn apache_service_port(&self) -> u16 {
        self.service_port - APACHE_PORT_OFFSET
    }

    /// Where Apache serves the admin API, behind haproxy on admin-port.
    pub fn apache_admin_port(&self) -> u16 {
        self.admin_port - APACHE_PORT_OFFSET
    }

    /// Where haproxy takes the other units' public API requests over TLS.
    pub fn peer_tls_service_port(&self) -> u16 {
        self.service_port - PEER_TLS_PORT_OFFSET
    }

    /// Where haproxy takes the other units' admin API requests over TLS.
    pub fn peer_tls_admin_port(&self) -> u16 {
        self.admin_port - PEER_TLS_PORT_OFFSET
    }

    /// Parses and validates config-get's output; all problems at once.
    pub fn from_options(options: &Map<String, Value>) -> Result<Config, ConfigProblems> {
        let mut r = Reader {
            options,
            problems: Vec::new(),
        };
        let config = r.read();
        if r.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigProblems(r.problems))
        }
    }

    /// Options this charm accepts for compatibility but does not act on, that are set to a
    /// value other than their default (config-changed logs these at WARNING).
    pub fn unimplemented_options_set(&self) -> Vec<&'static str> {
        self.unimplemented_set.clone()
    }

    /// How often the leader rotates fernet keys (see [`fernet_rotation_period`]).
    pub fn fernet_rotation_period(&self) -> Duration {
        // Both inputs were validated, so the fallback is never used.
        fernet_rotation_period(self.token_expiration, self.fernet_max_active_keys)
            .unwrap_or(Duration::from_secs(self.token_expiration.max(1)))
    }

    /// The first region: where bootstrap registers Keystone.
    pub fn default_region(&self) -> &str {
        self.regions
            .first()
            .map(String::as_str)
            .unwrap_or("RegionOne")
    }

    /// Worker processes for this machine's CPU count.
    pub fn worker_counts(&self, cpus: u32) -> WorkerCounts {
        worker_counts(
            cpus,
            self.worker_multiplier,
            self.admin_worker_multiplier,
            self.public_worker_multiplier,
        )
    }

    /// Whether HA is configured (a VIP or DNS HA).
    pub fn ha_configured(&self) -> bool {
        !self.vips.is_empty() || self.dns_ha
    }
}

/// Options accepted for compatibility that this charm does not act on, with their defaults as
/// config.yaml declares them (`Null` for options without a default).
fn unimplemented_defaults() -> [(&'static str, Value); 13] {
    [
        ("verbose", Value::Bool(false)),
        ("harden", Value::Null),
        ("keystone-admin-role", Value::from("Admin")),
        (
            "keystone-service-admin-role",
            Value::from("KeystoneServiceAdmin"),
        ),
        ("token-provider", Value::Null),
        ("ldap-server", Value::from("None")),
        ("ldap-user", Value::from("None")),
        ("ldap-password", Value::from("None")),
        ("ldap-suffix", Value::from("None")),
        ("ldap-config-flags", Value::from("None")),
        ("ldap-readonly", Value::Bool(true)),
        ("ha-bindiface", Value::from("eth0")),
        ("ha-mcastport", Value::from(5434)),
    ]
}

/// Every option the charm knows, implemented or not. A test checks this against config.yaml.
pub const KNOWN_OPTIONS: [&str; 71] = [
    "debug",
    "verbose",
    "audit-middleware",
    "log-level",
    "use-syslog",
    "openstack-origin",
    "action-managed-upgrade",
    "harden",
    "service-port",
    "admin-port",
    "keystone-admin-role",
    "keystone-service-admin-role",
    "admin-user",
    "admin-password",
    "admin-role",
    "token-provider",
    "token-expiration",
    "catalog-cache-expiration",
    "identity-cache-expiration",
    "role-cache-expiration",
    "dogpile-cache-expiration",
    "enable-cache",
    "fernet-max-active-keys",
    "service-tenant",
    "service-admin-prefix",
    "worker-multiplier",
    "admin-worker-multiplier",
    "public-worker-multiplier",
    "preferred-api-version",
    "haproxy-server-timeout",
    "haproxy-client-timeout",
    "haproxy-queue-timeout",
    "haproxy-connect-timeout",
    "database",
    "database-user",
    "region",
    "identity-backend",
    "assignment-backend",
    "ldap-server",
    "ldap-user",
    "ldap-password",
    "ldap-suffix",
    "ldap-config-flags",
    "ldap-readonly",
    "dns-ha",
    "vip",
    "vip_iface",
    "vip_cidr",
    "ha-bindiface",
    "ha-mcastport",
    "os-admin-network",
    "os-internal-network",
    "os-public-network",
    "os-public-hostname",
    "os-internal-hostname",
    "os-admin-hostname",
    "prefer-ipv6",
    "ssl_cert",
    "ssl_key",
    "ssl_ca",
    "nagios_context",
    "nagios_servicegroups",
    "use-policyd-override",
    "password-security-compliance",
    "default-authorization-ttl",
    "ec2-auth-ttl",
    "wsgi-socket-rotation",
    "enable-notifications",
    "default-notification-opt-out",
    "healthcheck-timeout",
    "service-path-prefix",
];

/// Reads options one by one, collecting problems instead of stopping.
struct Reader<'a> {
    options: &'a Map<String, Value>,
    problems: Vec<String>,
}

/// The options of HA, read together since they depend on each other.
struct Ha {
    dns_ha: bool,
    prefer_ipv6: bool,
    vips: Vec<IpAddr>,
    vip_iface: String,
    vip_cidr: u8,
    os_admin_hostname: Option<String>,
    os_internal_hostname: Option<String>,
    os_public_hostname: Option<String>,
}

impl Reader<'_> {
    fn present(&self, name: &str) -> Option<&Value> {
        self.options.get(name).filter(|v| !v.is_null())
    }

    fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.present(name) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problems.push(format!(
                    "{name} must be true or false (is {})",
                    json_shown(other)
                ));
                default
            }
        }
    }

    fn opt_int(&mut self, name: &str) -> Option<i64> {
        match self.present(name) {
            None => None,
            Some(v) => match v.as_i64() {
                Some(n) => Some(n),
                None => {
                    self.problems.push(format!(
                        "{name} must be a whole number (is {})",
                        json_shown(v)
                    ));
                    None
                }
            },
        }
    }

    fn int(&mut self, name: &str, default: i64) -> i64 {
        self.opt_int(name).unwrap_or(default)
    }

    /// A non-negative integer option.
    fn count(&mut self, name: &str, default: u64) -> u64 {
        let value = self.int(name, default as i64);
        u64::try_from(value).unwrap_or_else(|_| {
            self.problems
                .push(format!("{name} must not be negative (is {value})"));
            default
        })
    }

    fn opt_count(&mut self, name: &str) -> Option<u64> {
        let value = self.opt_int(name)?;
        match u64::try_from(value) {
            Ok(n) => Some(n),
            Err(_) => {
                self.problems
                    .push(format!("{name} must not be negative (is {value})"));
                None
            }
        }
    }

    fn opt_float(&mut self, name: &str) -> Option<f64> {
        match self.present(name) {
            None => None,
            Some(v) => match v.as_f64() {
                Some(n) => Some(n),
                None => {
                    self.problems
                        .push(format!("{name} must be a number (is {})", json_shown(v)));
                    None
                }
            },
        }
    }

    /// A string option that may reach a config file or relation data: no control characters
    /// and no Unicode line or paragraph separator, so it cannot add a line to anything written
    /// from it (the same rule as [`crate::render`]'s).
    fn opt_string(&mut self, name: &str) -> Option<String> {
        let value = self.opt_text(name)?;
        if value
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
        {
            self.problems.push(format!(
                "{name} must not contain newlines or other control characters"
            ));
            return None;
        }
        Some(value)
    }

    /// A string option that is parsed rather than copied into a file (YAML, base64), so it may
    /// span lines.
    fn opt_text(&mut self, name: &str) -> Option<String> {
        match self.present(name) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problems.push(format!(
                    "{name} must be a string (is {})",
                    json_shown(other)
                ));
                None
            }
        }
    }

    fn string(&mut self, name: &str, default: &str) -> String {
        self.opt_string(name).unwrap_or_else(|| default.to_owned())
    }

    /// A string that is unset when empty or blank.
    fn opt_nonblank(&mut self, name: &str) -> Option<String> {
        self.opt_string(name)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// An optional DNS name or IP address (os-*-hostname): it goes into URLs every consumer
    /// uses, the vhost's ServerName and DNS records, so anything else is refused.
    fn hostname(&mut self, name: &str) -> Option<String> {
        let value = self.opt_nonblank(name)?;
        if is_dns_name(&value) || value.parse::<IpAddr>().is_ok() {
            return Some(value);
        }
        self.problems.push(format!(
            "{name} must be a DNS name such as keystone.example.com (labels of letters, digits \
             and inner hyphens, at most 253 characters) or an IP address (is {})",
            shown(&value)
        ));
        None
    }

    /// A string option that must not be blank.
    fn required_string(&mut self, name: &str, default: &str) -> String {
        let value = self.string(name, default);
        if value.trim().is_empty() {
            self.problems.push(format!("{name} must not be empty"));
        }
        value.trim().to_owned()
    }

    /// A port haproxy takes; Apache listens [`APACHE_PORT_OFFSET`] below it and, with TLS,
    /// haproxy's port for the other units [`PEER_TLS_PORT_OFFSET`] below it, so it must be
    /// above both.
    fn port(&mut self, name: &str, default: u16) -> u16 {
        let value = self.int(name, i64::from(default));
        let lowest = PEER_TLS_PORT_OFFSET + 1;
        match u16::try_from(value) {
            Ok(port) if port >= lowest => port,
            _ => {
                self.problems.push(format!(
                    "{name} must be between {lowest} and 65535 (is {value}); Apache listens \
                     {APACHE_PORT_OFFSET} below it and, with TLS, haproxy takes the other \
                     units' requests {PEER_TLS_PORT_OFFSET} below it"
                ));
                default
            }
        }
    }

    /// A timeout in milliseconds, at least 1; `default` when unset.
    fn millis(&mut self, name: &str, default: u32) -> u32 {
        let value = self.opt_int(name).unwrap_or(i64::from(default));
        match u32::try_from(value) {
            Ok(ms) if ms >= 1 => ms,
            _ => {
                self.problems.push(format!(
                    "{name} must be a number of milliseconds, at least 1 (is {value})"
                ));
                default
            }
        }
    }

    /// Base64 of PEM (ssl_cert, ssl_key, ssl_ca). The value is never echoed: it may be a key.
    fn base64_pem(&mut self, name: &str) -> Option<String> {
        let raw = self.opt_text(name).filter(|s| !s.trim().is_empty())?;
        let compact: String = raw.split_whitespace().collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match decoded {
            Some(pem) if is_pem(&pem) => Some(pem),
            _ => {
                self.problems
                    .push(format!("{name} must be base64-encoded PEM"));
                None
            }
        }
    }

    /// ssl_cert must hold a certificate and ssl_key one private key: haproxy would not start
    /// with anything else.
    fn tls_pair(&mut self, cert_pem: String, key_pem: String) -> Option<TlsConfig> {
        let certificate_ok = match certificate::names(&cert_pem) {
            Ok(_) => true,
            Err(err) => {
                self.problems
                    .push(format!("ssl_cert must be a PEM certificate: {err}"));
                false
            }
        };
        if !certificate::is_private_key(&key_pem) {
            self.problems
                .push("ssl_key must be one unencrypted PEM private key".to_owned());
            return None;
        }
        if !certificate_ok {
            return None;
        }
        Some(TlsConfig {
            cert_pem,
            key_pem: Sensitive::new(key_pem),
            ca_pem: None,
            source: TlsSource::Options,
        })
    }

    /// debug, use-syslog and log-level.
    fn logging(&mut self) -> (bool, bool, KeystoneLogLevel) {
        let debug = self.bool("debug", false);
        let use_syslog = self.bool("use-syslog", false);

        let log_level_text = self.string("log-level", "WARNING");
        let log_level = match log_level_text.as_str() {
            "WARNING" => KeystoneLogLevel::Warning,
            "INFO" => KeystoneLogLevel::Info,
            "DEBUG" => KeystoneLogLevel::Debug,
            "ERROR" => KeystoneLogLevel::Error,
            other => {
                self.problems.push(format!(
                    "log-level must be one of WARNING, INFO, DEBUG, ERROR (is {})",
                    shown(other)
                ));
                KeystoneLogLevel::Warning
            }
        };
        (debug, use_syslog, log_level)
    }

    /// vip and dns-ha, and what they need.
    fn ha(&mut self) -> Ha {
        let dns_ha = self.bool("dns-ha", false);
        let prefer_ipv6 = self.bool("prefer-ipv6", false);
        let vip_text = self.opt_nonblank("vip");
        let mut vips = Vec::new();
        for entry in vip_text.iter().flat_map(|v| v.split_whitespace()) {
            match entry.parse::<IpAddr>() {
                Ok(ip) => vips.push(ip),
                Err(_) => self
                    .problems
                    .push(format!("vip entry {} is not an IP address", shown(entry))),
            }
        }
        let os_admin_hostname = self.hostname("os-admin-hostname");
        let os_internal_hostname = self.hostname("os-internal-hostname");
        let os_public_hostname = self.hostname("os-public-hostname");
        if vip_text.is_some() && dns_ha {
            self.problems
                .push("vip and dns-ha are mutually exclusive".to_owned());
        }
        if dns_ha
            && os_admin_hostname.is_none()
            && os_internal_hostname.is_none()
            && os_public_hostname.is_none()
        {
            self.problems.push(
                "dns-ha needs at least one of os-admin-hostname, os-internal-hostname, os-public-hostname"
                    .to_owned(),
            );
        }
        let vip_iface = self.string("vip_iface", "eth0");
        let vip_cidr_value = self.int("vip_cidr", 24);
        let max_cidr = if vips.iter().any(IpAddr::is_ipv6) {
            128
        } else {
            32
        };
        let vip_cidr = match u8::try_from(vip_cidr_value) {
            Ok(n) if n >= 1 && i64::from(n) <= max_cidr => n,
            _ => {
                self.problems.push(format!(
                    "vip_cidr must be between 1 and {max_cidr} (is {vip_cidr_value})"
                ));
                24
            }
        };
        Ha {
            dns_ha,
            prefer_ipv6,
            vips,
            vip_iface,
            vip_cidr,
            os_admin_hostname,
            os_internal_hostname,
            os_public_hostname,
        }
    }

    /// fernet-max-active-keys and token-expiration.
    fn tokens(&mut self) -> (u32, u64) {
        let fernet_keys_value = self.int("fernet-max-active-keys", 3);
        let fernet_max_active_keys = match u32::try_from(fernet_keys_value) {
            Ok(n) if n >= 3 => n,
            _ => {
                self.problems.push(format!(
                    "fernet-max-active-keys must be at least 3 (is {fernet_keys_value})"
                ));
                3
            }
        };
        let token_expiration_value = self.int("token-expiration", 3600);
        let token_expiration = match u64::try_from(token_expiration_value) {
            Ok(n) if n >= 1 => n,
            _ => {
                self.problems.push(format!(
                    "token-expiration must be at least 1 second (is {token_expiration_value})"
                ));
                3600
            }
        };
        (fernet_max_active_keys, token_expiration)
    }

    /// The ports, and haproxy's timeouts.
    fn ports(&mut self) -> (u16, u16, HaproxyTimeouts) {
        let service_port = self.port("service-port", 5000);
        let admin_port = self.port("admin-port", 35357);
        if service_port == admin_port {
            self.problems.push(format!(
                "service-port and admin-port must differ (both are {service_port})"
            ));
        } else if [APACHE_PORT_OFFSET, PEER_TLS_PORT_OFFSET]
            .contains(&service_port.abs_diff(admin_port))
        {
            self.problems.push(format!(
                "service-port and admin-port must not be {APACHE_PORT_OFFSET} or \
                 {PEER_TLS_PORT_OFFSET} apart (they are {service_port} and {admin_port}): \
                 Apache and haproxy take the ports that far below each"
            ));
        }
        // The Python charm's defaults when unset.
        let haproxy_timeouts = HaproxyTimeouts {
            server: self.millis("haproxy-server-timeout", 90_000),
            client: self.millis("haproxy-client-timeout", 90_000),
            queue: self.millis("haproxy-queue-timeout", 9_000),
            connect: self.millis("haproxy-connect-timeout", 9_000),
            check: self.millis("healthcheck-timeout", 5_000),
        };
        (service_port, admin_port, haproxy_timeouts)
    }

    /// The WSGI worker multipliers.
    fn workers(&mut self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let multiplier = |r: &mut Self, name: &str| {
            let value = r.opt_float(name);
            match value {
                Some(m) if m <= 0.0 || !m.is_finite() => {
                    r.problems
                        .push(format!("{name} must be greater than 0 (is {m})"));
                    None
                }
                other => other,
            }
        };
        let worker_multiplier = multiplier(self, "worker-multiplier");
        let admin_worker_multiplier = multiplier(self, "admin-worker-multiplier");
        let public_worker_multiplier = multiplier(self, "public-worker-multiplier");
        (
            worker_multiplier,
            admin_worker_multiplier,
            public_worker_multiplier,
        )
    }

    /// region: one or more, space-separated.
    fn regions(&mut self) -> Vec<String> {
        let region_text = self.string("region", "RegionOne");
        let regions: Vec<String> = region_text.split_whitespace().map(str::to_owned).collect();
        if regions.is_empty() {
            self.problems
                .push("region must name at least one region".to_owned());
        }
        regions
    }

    /// ssl_cert, ssl_key and ssl_ca.
    fn tls(&mut self) -> Option<TlsConfig> {
        let cert_set = self
            .present("ssl_cert")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        let key_set = self
            .present("ssl_key")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        let tls = match (cert_set, key_set) {
            (true, false) => {
                self.problems
                    .push("ssl_cert is set but ssl_key is not: set both or neither".to_owned());
                None
            }
            (false, true) => {
                self.problems
                    .push("ssl_key is set but ssl_cert is not: set both or neither".to_owned());
                None
            }
            (false, false) => None,
            (true, true) => {
                let cert = self.base64_pem("ssl_cert");
                let key = self.base64_pem("ssl_key");
                match (cert, key) {
                    (Some(cert_pem), Some(key_pem)) => self.tls_pair(cert_pem, key_pem),
                    _ => None,
                }
            }
        };
        // Checked even without ssl_cert, so a bad value is said before it is needed.
        let ssl_ca = self.base64_pem("ssl_ca");
        tls.map(|tls| TlsConfig {
            ca_pem: ssl_ca,
            ..tls
        })
    }

    /// Options only SQL and the v3 API are served for: refusing others beats silently using SQL.
    fn unsupported_backends(&mut self) {
        for name in ["identity-backend", "assignment-backend"] {
            let value = self.string(name, "sql");
            if value != "sql" {
                self.problems.push(format!(
                    "{name} must be sql (is {}); use a domain-specific backend for LDAP",
                    shown(&value)
                ));
            }
        }
        if let Some(version) = self.opt_int("preferred-api-version")
            && version != 3
        {
            self.problems.push(format!(
                "preferred-api-version must be 3 or unset (is {version})"
            ));
        }
    }

    /// The os-*-network options, in CIDR form.
    fn networks(&mut self) -> (Option<String>, Option<String>, Option<String>) {
        let network = |r: &mut Self, name: &str| {
            let value = r.opt_nonblank(name)?;
            if is_cidr(&value) {
                Some(value)
            } else {
                r.problems.push(format!(
                    "{name} must be a network in CIDR form such as 10.0.0.0/24 (is {})",
                    shown(&value)
                ));
                None
            }
        };
        let os_admin_network = network(self, "os-admin-network");
        let os_internal_network = network(self, "os-internal-network");
        let os_public_network = network(self, "os-public-network");
        (os_admin_network, os_internal_network, os_public_network)
    }

    /// service-path-prefix.
    fn path_prefix(&mut self) -> String {
        let service_path_prefix = self.string("service-path-prefix", "");
        if !valid_path_prefix(&service_path_prefix) {
            self.problems.push(format!(
                "service-path-prefix must be empty or like /api/idm: a leading /, no trailing /, \
                 only letters, digits and - . _ ~ (is {})",
                shown(&service_path_prefix)
            ));
        }
        service_path_prefix
    }

    fn read(&mut self) -> Config {
        // One concern after another, in the order the operator is told of problems.
        let (debug, use_syslog, log_level) = self.logging();
        let ha = self.ha();
        let (fernet_max_active_keys, token_expiration) = self.tokens();
        let (service_port, admin_port, haproxy_timeouts) = self.ports();
        let (worker_multiplier, admin_worker_multiplier, public_worker_multiplier) = self.workers();
        let regions = self.regions();
        let tls = self.tls();
        let security_compliance = self
            .opt_text("password-security-compliance")
            .filter(|s| !s.trim().is_empty())
            .and_then(|text| self.security_compliance(&text));
        self.unsupported_backends();
        let (os_admin_network, os_internal_network, os_public_network) = self.networks();
        let service_path_prefix = self.path_prefix();
        let admin_password = self.admin_password();
        let admin_user = self.required_string("admin-user", "admin");
        let admin_role = self.required_string("admin-role", "Admin");
        let service_tenant = self.required_string("service-tenant", "services");
        let service_admin_prefix = self.opt_nonblank("service-admin-prefix");
        let database = self.required_string("database", "keystone");
        let database_user = self.required_string("database-user", "keystone");
        let nagios_context = self.string("nagios_context", "juju");
        let nagios_servicegroups = self.string("nagios_servicegroups", "");

        let catalog_cache_expiration = self.count("catalog-cache-expiration", 60);
        let identity_cache_expiration = self.opt_count("identity-cache-expiration");
        let role_cache_expiration = self.opt_count("role-cache-expiration");
        let dogpile_cache_expiration = self.count("dogpile-cache-expiration", 600);
        let enable_cache = self.bool("enable-cache", true);
        let wsgi_socket_rotation = self.bool("wsgi-socket-rotation", true);
        let default_authorization_ttl = self.count("default-authorization-ttl", 0);
        let ec2_auth_ttl = self.count("ec2-auth-ttl", 15);
        let enable_notifications = self.bool("enable-notifications", false);
        let default_notification_opt_out = self.bool("default-notification-opt-out", true);
        let audit_middleware = self.bool("audit-middleware", false);
        let use_policyd_override = self.bool("use-policyd-override", false);
        let unimplemented_set = self.unimplemented_set();

        Config {
            debug,
            log_level,
            use_syslog,
            service_port,
            admin_port,
            haproxy_timeouts,
            admin_user,
            admin_password,
            admin_role,
            token_expiration,
            catalog_cache_expiration,
            identity_cache_expiration,
            role_cache_expiration,
            dogpile_cache_expiration,
            enable_cache,
            wsgi_socket_rotation,
            fernet_max_active_keys,
            service_tenant,
            service_admin_prefix,
            worker_multiplier,
            admin_worker_multiplier,
            public_worker_multiplier,
            database,
            database_user,
            regions,
            dns_ha: ha.dns_ha,
            vips: ha.vips,
            vip_iface: ha.vip_iface,
            vip_cidr: ha.vip_cidr,
            os_admin_network,
            os_internal_network,
            os_public_network,
            os_admin_hostname: ha.os_admin_hostname,
            os_internal_hostname: ha.os_internal_hostname,
            os_public_hostname: ha.os_public_hostname,
            prefer_ipv6: ha.prefer_ipv6,
            tls,
            nagios_context,
            nagios_servicegroups,
            security_compliance,
            default_authorization_ttl,
            ec2_auth_ttl,
            enable_notifications,
            default_notification_opt_out,
            audit_middleware,
            use_policyd_override,
            service_path_prefix,
            openstack_origin: self.string("openstack-origin", "caracal"),
            action_managed_upgrade: self.bool("action-managed-upgrade", false),
            unimplemented_set,
        }
    }

    /// admin-password: "None" (any case) or blank means unset; white space around it is
    /// dropped (the Python charm's bug #1895004). Never echoed in messages.
    fn admin_password(&mut self) -> Option<Sensitive<String>> {
        match self.present("admin-password") {
            None => None,
            Some(Value::String(s)) => {
                let trimmed = s.trim();
                if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
                    None
                } else if trimmed.chars().any(char::is_control) {
                    self.problems.push(
                        "admin-password must not contain newlines or other control characters"
                            .to_owned(),
                    );
                    None
                } else {
                    Some(Sensitive::new(trimmed.to_owned()))
                }
            }
            Some(_) => {
                self.problems
                    .push("admin-password must be a string".to_owned());
                None
            }
        }
    }

    fn security_compliance(&mut self, text: &str) -> Option<SecurityCompliance> {
        const OPTION: &str = "password-security-compliance";
        let parsed: serde_norway::Value = match serde_norway::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                self.problems.push(format!("{OPTION} is not valid YAML"));
                return None;
            }
        };
        let serde_norway::Value::Mapping(mapping) = parsed else {
            self.problems.push(format!(
                "{OPTION} must be a YAML mapping such as {{lockout_failure_attempts: 5}}"
            ));
            return None;
        };
        let mut result = SecurityCompliance::default();
        let mut ok = true;
        for (key, value) in &mapping {
            let Some(key) = key.as_str() else {
                self.problems
                    .push(format!("{OPTION}: keys must be strings"));
                ok = false;
                continue;
            };
            let Some((_, kind)) = SECURITY_COMPLIANCE_KEYS.iter().find(|(k, _)| *k == key) else {
                let known: Vec<&str> = SECURITY_COMPLIANCE_KEYS.iter().map(|(k, _)| *k).collect();
                self.problems.push(format!(
                    "{OPTION}: unknown key {} (known keys: {})",
                    shown(key),
                    known.join(", ")
                ));
                ok = false;
                continue;
            };
            let fits = match kind {
                ValueKind::Int => value.as_i64().is_some(),
                ValueKind::Bool => value.as_bool().is_some(),
                ValueKind::Str => value
                    .as_str()
                    .is_some_and(|s| !s.chars().any(char::is_control)),
            };
            if !fits {
                let wanted = match kind {
                    ValueKind::Int => "a whole number",
                    ValueKind::Bool => "true or false",
                    ValueKind::Str => "a single-line string",
                };
                self.problems
                    .push(format!("{OPTION}: {key} must be {wanted}"));
                ok = false;
                continue;
            }
            let int = value.as_i64();
            match key {
                "lockout_failure_attempts" => result.lockout_failure_attempts = int,
                "lockout_duration" => result.lockout_duration = int,
                "disable_user_account_days_inactive" => {
                    result.disable_user_account_days_inactive = int
                }
                "change_password_upon_first_use" => {
                    result.change_password_upon_first_use = value.as_bool()
                }
                "password_expires_days" => result.password_expires_days = int,
                "password_regex" => result.password_regex = value.as_str().map(str::to_owned),
                "password_regex_description" => {
                    result.password_regex_description = value.as_str().map(str::to_owned)
                }
                "unique_last_password_count" => result.unique_last_password_count = int,
                "minimum_password_age" => result.minimum_password_age = int,
                _ => {}
            }
        }
        ok.then_some(result)
    }

    fn unimplemented_set(&self) -> Vec<&'static str> {
        unimplemented_defaults()
            .into_iter()
            .filter(|(name, default)| {
                let value = self.options.get(*name).unwrap_or(&Value::Null);
                value != default
            })
            .map(|(name, _)| name)
            .collect()
    }
}

/// How many characters of a value a problem quotes: a problem stays one short status line
/// whatever was typed.
const SHOWN: usize = 64;

/// A typed value as a problem quotes it (Debug-quoted), cut after [`SHOWN`] characters.
fn shown(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(SHOWN).collect();
    match chars.next() {
        None => format!("{head:?}"),
        Some(_) => format!("{head:?}..."),
    }
}

/// A JSON value as a problem quotes it, cut after [`SHOWN`] characters.
fn json_shown(value: &Value) -> String {
    let text = value.to_string();
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(SHOWN).collect();
    match chars.next() {
        None => head,
        Some(_) => format!("{head}..."),
    }
}

/// `a.b.c.d/n` or an IPv6 network.
fn is_cidr(value: &str) -> bool {
    let Some((address, bits)) = value.split_once('/') else {
        return false;
    };
    let Ok(ip) = address.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv6() { 128 } else { 32 };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

/// Empty, or `/seg[/seg]` with URL-path-safe unreserved characters only.
fn valid_path_prefix(prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let Some(rest) = prefix.strip_prefix('/') else {
        return false;
    };
    !rest.is_empty()
        && rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
                && segment != "."
                && segment != ".."
        })
}

/// config-get's answer for the defaults of a config.yaml document: every option with a
/// default, none without (as Juju prints it). Used by tests and the simulator's twin.
pub fn defaults_from_config_yaml(text: &str) -> Result<Map<String, Value>, String> {
    #[derive(serde::Deserialize)]
    struct ConfigYaml {
        options: BTreeMap<String, OptionYaml>,
    }
    #[derive(serde::Deserialize)]
    struct OptionYaml {
        default: Option<Value>,
    }
    let parsed: ConfigYaml =
        serde_norway::from_str(text).map_err(|e| format!("config.yaml is not valid: {e}"))?;
    Ok(parsed
        .options
        .into_iter()
        .filter_map(|(name, option)| option.default.map(|d| (name, d)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for good in [
            "keystone",
            "keystone.example.com",
            "keystone.example.com.",
            "ks-1.region-one.example",
            "1.example.com",
        ] {
            assert!(is_dns_name(good), "{good}");
        }
        let long_label = format!("{}.example.com", "a".repeat(64));
        let long_name = ["abcdefghi"; 26].join(".");
        for bad in [
            "",
            ".",
            "a..b",
            "-a.example.com",
            "a-.example.com",
            "a_b.example.com",
            "a b",
            "a\nb",
            "[::1]",
            "10.0.0.1:5000",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_dns_name(bad), "{bad:?}");
        }
    }
    use serde_json::json;

    fn defaults() -> Map<String, Value> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
            .expect("config.yaml");
        defaults_from_config_yaml(&text).expect("valid config.yaml")
    }

    fn with(changes: Value) -> Map<String, Value> {
        let mut options = defaults();
        for (k, v) in changes.as_object().expect("object") {
            options.insert(k.clone(), v.clone());
        }
        options
    }

    fn problems(changes: Value) -> String {
        match Config::from_options(&with(changes)) {
            Ok(_) => "accepted".to_owned(),
            Err(p) => p.to_string(),
        }
    }

    #[test]
    fn only_pem_passes_as_pem() {
        assert!(is_pem(CERT_PEM));
        assert!(is_pem(&format!("{CERT_PEM}\n{CERT_PEM}")));
        for hostile in [
            "-----BEGIN CERTIFICATE-----\n[database]\nconnection = x\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nInclude /etc/passwd\n",
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
            "MIIB",
        ] {
            assert!(!is_pem(hostile), "{hostile:?}");
        }
    }

    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn the_defaults_in_config_yaml_are_valid() {
        let config = Config::from_options(&defaults()).expect("defaults validate");
        assert_eq!(config.service_port, 5000);
        assert_eq!(config.admin_port, 35357);
        assert_eq!(config.admin_password, None, "the string None means unset");
        assert_eq!(config.regions, vec!["RegionOne"]);
        assert!(config.unimplemented_options_set().is_empty());
        assert_eq!(config.fernet_rotation_period(), Duration::from_secs(3600));
    }

    #[test]
    fn all_problems_are_reported_together_in_a_stable_order() {
        let message = problems(json!({
            "vip": "10.0.0.100", "dns-ha": true, "os-admin-hostname": "a.example.com",
            "fernet-max-active-keys": 2, "log-level": "LOUD"
        }));
        assert_eq!(
            message,
            "config: log-level must be one of WARNING, INFO, DEBUG, ERROR (is \"LOUD\"); \
             vip and dns-ha are mutually exclusive; fernet-max-active-keys must be at least 3 (is 2)"
        );
    }

    #[test]
    fn secrets_never_appear_in_messages() {
        let message = problems(json!({"ssl_cert": b64(CERT_PEM), "ssl_key": "c2VjcmV0LWtleQ=="}));
        assert!(!message.contains("c2VjcmV0LWtleQ"), "{message}");
        let config =
            Config::from_options(&with(json!({"admin-password": "  s3cret  "}))).expect("valid");
        assert_eq!(
            config.admin_password.as_ref().map(|p| p.expose().as_str()),
            Some("s3cret"),
            "white space is trimmed"
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn tls_and_compliance_are_decoded() {
        let (cert, key) = crate::testing::tls_pair(&["keystone.example.com"]);
        let config = Config::from_options(&with(json!({
            "ssl_cert": b64(&cert), "ssl_key": b64(&key), "ssl_ca": b64(&cert),
            "password-security-compliance": "lockout_failure_attempts: 5\nchange_password_upon_first_use: true\npassword_regex: '^.{8,}$'"
        })))
        .expect("valid");
        let tls = config.tls.expect("tls");
        assert_eq!(tls.cert_pem, cert);
        assert_eq!(tls.key_pem.expose(), &key);
        assert_eq!(tls.ca_pem.as_deref(), Some(cert.as_str()));
        assert_eq!(tls.source, TlsSource::Options);
        let sc = config.security_compliance.expect("compliance");
        assert_eq!(sc.lockout_failure_attempts, Some(5));
        assert_eq!(sc.change_password_upon_first_use, Some(true));
        assert_eq!(sc.password_regex.as_deref(), Some("^.{8,}$"));
    }

    #[test]
    fn unimplemented_options_set_to_other_values_are_listed() {
        let config = Config::from_options(&with(json!({
            "haproxy-server-timeout": 90000, "action-managed-upgrade": true,
            "wsgi-socket-rotation": false, "healthcheck-timeout": 1000, "verbose": true
        })))
        .expect("valid");
        assert_eq!(
            config.unimplemented_options_set(),
            vec!["verbose"],
            "the haproxy timeouts, wsgi-socket-rotation and action-managed-upgrade are implemented"
        );
        assert!(config.action_managed_upgrade);
    }

    #[test]
    fn haproxy_timeouts_default_as_the_python_charm_and_refuse_nonsense() {
        let config = Config::from_options(&with(json!({}))).unwrap();
        assert_eq!(
            config.haproxy_timeouts,
            HaproxyTimeouts {
                server: 90_000,
                client: 90_000,
                queue: 9_000,
                connect: 9_000,
                check: 5_000
            }
        );
        assert_eq!(
            (config.apache_service_port(), config.apache_admin_port()),
            (4990, 35347)
        );
        let problems = Config::from_options(&with(json!({
            "healthcheck-timeout": 0, "haproxy-queue-timeout": -5, "service-port": 20, "admin-port": 40
        })))
        .unwrap_err()
        .to_string();
        assert!(
            problems.contains("healthcheck-timeout must be a number of milliseconds, at least 1"),
            "{problems}"
        );
        assert!(
            problems.contains("haproxy-queue-timeout must be"),
            "{problems}"
        );
        assert!(
            problems.contains("service-port must be between 21 and 65535 (is 20)"),
            "{problems}"
        );
    }

    #[test]
    fn rotation_period_is_expiration_over_keys_minus_two() {
        let period = |e, k| fernet_rotation_period(e, k).map(|d| d.as_secs());
        assert_eq!(period(3600, 3), Ok(3600));
        assert_eq!(period(3600, 5), Ok(1200));
        assert_eq!(period(86400, 6), Ok(21600));
        assert_eq!(period(60, 3), Ok(60));
        assert_eq!(period(3600, 2), Err(RotationPeriodError::TooFewKeys(2)));
        assert_eq!(period(0, 3), Err(RotationPeriodError::NoExpiration(0)));
        assert_eq!(period(2, 5), Ok(1), "never zero");
    }

    #[test]
    fn worker_counts_follow_the_python_charm() {
        assert_eq!(
            worker_counts(2, None, None, None),
            WorkerCounts {
                admin: 1,
                public: 3
            }
        );
        assert_eq!(
            worker_counts(8, None, None, None),
            WorkerCounts {
                admin: 1,
                public: 3
            },
            "capped at 4 in all"
        );
        assert_eq!(
            worker_counts(8, Some(1.0), None, None),
            WorkerCounts {
                admin: 2,
                public: 6
            }
        );
        assert_eq!(
            worker_counts(4, None, Some(0.5), Some(1.0)),
            WorkerCounts {
                admin: 2,
                public: 4
            }
        );
    }

    #[test]
    fn config_yaml_declares_exactly_the_known_options_with_python_types() {
        #[derive(serde::Deserialize)]
        struct ConfigYaml {
            options: BTreeMap<String, OptionYaml>,
        }
        #[derive(serde::Deserialize)]
        struct OptionYaml {
            #[serde(rename = "type")]
            kind: String,
            default: Option<Value>,
        }
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
            .expect("config.yaml");
        let parsed: ConfigYaml = serde_norway::from_str(&text).expect("valid");
        let mut declared: Vec<&str> = parsed.options.keys().map(String::as_str).collect();
        let mut known = KNOWN_OPTIONS.to_vec();
        declared.sort_unstable();
        known.sort_unstable();
        assert_eq!(declared, known);
        // Spot checks of the Python charm's types and defaults, quirks included.
        let option = |name: &str| &parsed.options[name];
        assert_eq!(option("admin-password").default, Some(json!("None")));
        assert_eq!(option("ldap-server").default, Some(json!("None")));
        assert_eq!(option("vip").default, None);
        assert_eq!(option("vip_cidr").kind, "int");
        assert_eq!(option("worker-multiplier").kind, "float");
        assert_eq!(option("enable-cache").default, Some(json!(true)));
        assert_eq!(option("nagios_servicegroups").default, Some(json!("")));
        assert_eq!(option("openstack-origin").default, Some(json!("caracal")));
        assert_eq!(option("healthcheck-timeout").default, Some(json!(5000)));
        // 70 options of the Python charm plus service-path-prefix.
        assert_eq!(parsed.options.len(), 71);
        // Every unimplemented option's recorded default matches config.yaml.
        for (name, default) in unimplemented_defaults() {
            let declared = option(name).default.clone().unwrap_or(Value::Null);
            assert_eq!(declared, default, "{name}");
        }
    }
}
