//! The charm's configuration: config-get's JSON parsed into types and validated as a whole.
//!
//! STUB: the config helper replaces this module; the interface below is what the rest of the
//! charm codes against.

use serde_json::{Map, Value};
use std::fmt;

/// Validated configuration. Fields are added by the config module's owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub debug: bool,
    pub token_expiration: u64,
    pub fernet_max_active_keys: u32,
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

impl Config {
    /// Parses and validates config-get's output; all problems at once.
    pub fn from_options(options: &Map<String, Value>) -> Result<Config, ConfigProblems> {
        let debug = options
            .get("debug")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // One real rule, so the hook orchestration's blocked path can be exercised before the
        // config module lands.
        let vip = options
            .get("vip")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        let dns_ha = options
            .get("dns-ha")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if vip && dns_ha {
            return Err(ConfigProblems(vec![
                "vip and dns-ha are mutually exclusive".to_owned(),
            ]));
        }
        Ok(Config {
            debug,
            token_expiration: 3600,
            fernet_max_active_keys: 3,
        })
    }

    /// Options this charm accepts for compatibility but does not act on, that are set to a
    /// value other than their default (config-changed logs these at WARNING).
    pub fn unimplemented_options_set(&self) -> Vec<&'static str> {
        Vec::new()
    }
}
