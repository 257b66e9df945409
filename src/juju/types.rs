//! Juju's vocabulary as types: unit, application and relation names, statuses, log levels.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A unit name such as `keystone/0`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnitName(String);

impl UnitName {
    /// Accepts `<application>/<number>`, as Juju names units.
    pub fn parse(name: &str) -> Option<UnitName> {
        let (app, number) = name.split_once('/')?;
        let valid = AppName::parse(app).is_some()
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| UnitName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn app(&self) -> AppName {
        AppName(self.0.split('/').next().unwrap_or_default().to_owned())
    }

    /// The unit number, used to order units deterministically.
    pub fn number(&self) -> u32 {
        self.0
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An application name such as `keystone`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppName(String);

impl AppName {
    /// Juju application names: lowercase letters, digits and hyphens, starting with a letter.
    pub fn parse(name: &str) -> Option<AppName> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        (first_ok && rest_ok && !name.ends_with('-')).then(|| AppName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A relation id as the hook tools print it: `<endpoint>:<number>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelationId(String);

impl RelationId {
    pub fn parse(id: &str) -> Option<RelationId> {
        let (endpoint, number) = id.rsplit_once(':')?;
        let valid = !endpoint.is_empty()
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| RelationId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn endpoint(&self) -> &str {
        self.0.rsplit_once(':').map(|(e, _)| e).unwrap_or_default()
    }

    pub fn number(&self) -> u32 {
        self.0
            .rsplit_once(':')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0)
    }
}

impl fmt::Display for RelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which data bag of a relation: a unit's or an application's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bag {
    Unit(UnitName),
    App(AppName),
}

impl fmt::Display for Bag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bag::Unit(u) => write!(f, "{u}"),
            Bag::App(a) => write!(f, "{a} (application)"),
        }
    }
}

/// The workload states a charm may set (Juju refuses `error` and `unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusKind {
    Maintenance,
    Blocked,
    Waiting,
    Active,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Maintenance => "maintenance",
            StatusKind::Blocked => "blocked",
            StatusKind::Waiting => "waiting",
            StatusKind::Active => "active",
        }
    }
}

/// A workload status with its message, as `status-set` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub message: String,
}

impl Status {
    pub fn new(kind: StatusKind, message: impl Into<String>) -> Status {
        Status {
            kind,
            message: message.into(),
        }
    }
    pub fn active(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Active, message)
    }
    pub fn blocked(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Blocked, message)
    }
    pub fn waiting(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Waiting, message)
    }
    pub fn maintenance(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Maintenance, message)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// Whether a status is the unit's own or the application's (leader only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusScope {
    Unit,
    Application,
}

/// juju-log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }
}

/// A Juju secret URI (`secret:<id>` or `secret://<model>/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretUri(String);

impl SecretUri {
    pub fn parse(uri: &str) -> Option<SecretUri> {
        (uri.starts_with("secret:") && uri.len() > "secret:".len())
            .then(|| SecretUri(uri.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who owns a new secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOwner {
    Application,
    Unit,
}

/// Which revision `secret-get` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRead {
    /// The revision this unit tracks.
    Tracked,
    /// The latest revision, once, without tracking it.
    Peek,
    /// The latest revision, and track it from now on.
    Refresh,
}

/// What `goal-state` returns that the charm uses: this application's units and their status
/// (`active`, `waiting`, `maintenance`, `dying`...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct GoalState {
    #[serde(default)]
    pub units: BTreeMap<String, GoalUnit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct GoalUnit {
    #[serde(default)]
    pub status: String,
}

impl GoalState {
    /// The units Juju means to keep (not dying), by name.
    pub fn expected_units(&self) -> Vec<&str> {
        self.units
            .iter()
            .filter(|(_, u)| u.status != "dying")
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// What `network-get <binding>` returns that the charm uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct NetworkInfo {
    #[serde(rename = "bind-addresses", default)]
    pub bind_addresses: Vec<BindAddress>,
    #[serde(rename = "egress-subnets", default)]
    pub egress_subnets: Vec<String>,
    #[serde(rename = "ingress-addresses", default)]
    pub ingress_addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct BindAddress {
    #[serde(rename = "mac-address", default)]
    pub mac_address: String,
    #[serde(rename = "interface-name", default)]
    pub interface_name: String,
    #[serde(default)]
    pub addresses: Vec<InterfaceAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct InterfaceAddress {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub cidr: String,
}

impl NetworkInfo {
    /// The address other units should use to reach this one on the binding.
    pub fn ingress_address(&self) -> Option<&str> {
        self.ingress_addresses
            .first()
            .map(String::as_str)
            .or_else(|| {
                self.bind_addresses
                    .iter()
                    .flat_map(|b| b.addresses.iter())
                    .map(|a| a.value.as_str())
                    .next()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_are_app_slash_number() {
        let unit = UnitName::parse("keystone/12").expect("valid");
        assert_eq!(unit.app().as_str(), "keystone");
        assert_eq!(unit.number(), 12);
        for bad in [
            "keystone",
            "keystone/",
            "/0",
            "Keystone/0",
            "keystone/x",
            "key stone/0",
        ] {
            assert!(UnitName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn relation_ids_keep_endpoint_and_number() {
        let id = RelationId::parse("identity-service:10").expect("valid");
        assert_eq!(id.endpoint(), "identity-service");
        assert_eq!(id.number(), 10);
        assert!(RelationId::parse("identity-service").is_none());
        assert!(RelationId::parse(":3").is_none());
        assert!(RelationId::parse("db:x").is_none());
    }
}
