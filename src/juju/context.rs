//! The hook's environment: what Juju tells the charm through environment variables.
//!
//! Read through a lookup closure rather than `std::env` so tests can pass a map.

use std::cmp::Ordering;
use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::types::{AppName, RelationId, SecretUri, UnitName};

/// The environment is not a usable Juju hook environment.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ContextError {
    #[error("{variable} is not set; Juju always sets it for hooks and actions")]
    Missing { variable: &'static str },
    #[error("{variable}={value:?} is not valid: {why}")]
    Invalid {
        variable: &'static str,
        value: String,
        why: &'static str,
    },
}

/// A Juju agent version such as `3.6.1` or `3.1-beta2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JujuVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// Pre-release tag (`beta`, `rc`); a tagged version sorts before the release.
    pub tag: Option<String>,
    pub build: u32,
}

impl JujuVersion {
    /// Parses Juju's version format: `major.minor.patch[.build]` or `major.minor-tagpatch[.build]`.
    pub fn parse(text: &str) -> Option<JujuVersion> {
        let (major, rest) = text.split_once('.')?;
        let major = major.parse().ok()?;
        let (minor, tag, rest) = match rest.split_once('-') {
            Some((minor, tagged)) => {
                let split = tagged.find(|c: char| c.is_ascii_digit())?;
                let (tag, rest) = tagged.split_at(split);
                if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_lowercase()) {
                    return None;
                }
                (minor, Some(tag.to_owned()), rest)
            }
            None => {
                let (minor, rest) = rest.split_once('.')?;
                (minor, None, rest)
            }
        };
        let minor = minor.parse().ok()?;
        let (patch, build) = match rest.split_once('.') {
            Some((patch, build)) => (patch.parse().ok()?, build.parse().ok()?),
            None => (rest.parse().ok()?, 0),
        };
        Some(JujuVersion {
            major,
            minor,
            patch,
            tag,
            build,
        })
    }

    /// Juju secrets (secret-add and friends) arrived in 3.1.
    pub fn supports_secrets(&self) -> bool {
        (self.major, self.minor) >= (3, 1)
    }

    /// Secrets granted across a cross-model relation are readable from Juju 3.3.
    pub fn supports_cross_model_secrets(&self) -> bool {
        (self.major, self.minor) >= (3, 3)
    }
}

impl PartialOrd for JujuVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JujuVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor)
            .cmp(&(other.major, other.minor))
            .then_with(|| match (&self.tag, &other.tag) {
                (None, None) => self.patch.cmp(&other.patch),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(b).then(self.patch.cmp(&other.patch)),
            })
            .then(self.build.cmp(&other.build))
    }
}

impl fmt::Display for JujuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tag {
            Some(tag) => write!(f, "{}.{}-{tag}{}", self.major, self.minor, self.patch)?,
            None => write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?,
        }
        if self.build > 0 {
            write!(f, ".{}", self.build)?;
        }
        Ok(())
    }
}

/// Set in relation hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationContext {
    pub endpoint: String,
    pub id: RelationId,
    pub remote_app: Option<AppName>,
    /// Empty for -created, -broken and app-bag -changed events.
    pub remote_unit: Option<UnitName>,
    /// Only in -departed; may be this unit itself, which means it is being removed.
    pub departing_unit: Option<UnitName>,
}

/// Set in actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionContext {
    pub name: String,
    pub uuid: String,
}

/// Set in secret hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretContext {
    pub id: SecretUri,
    pub label: Option<String>,
    pub revision: Option<u32>,
}

/// Everything the environment says about the running hook or action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JujuContext {
    /// `hooks/<name>` or `actions/<name>`, normalised.
    pub dispatch_path: String,
    pub unit: UnitName,
    pub model_name: String,
    pub model_uuid: String,
    pub version: JujuVersion,
    pub charm_dir: PathBuf,
    pub relation: Option<RelationContext>,
    pub action: Option<ActionContext>,
    pub secret: Option<SecretContext>,
}

impl JujuContext {
    /// Reads the hook environment. `Ok(None)` means no Juju environment at all (run by hand):
    /// neither `JUJU_DISPATCH_PATH` nor `JUJU_UNIT_NAME` is set.
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<JujuContext>, ContextError> {
        // Juju exports some variables as empty strings; treat empty as absent.
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        if get("JUJU_DISPATCH_PATH").is_none() && get("JUJU_UNIT_NAME").is_none() {
            return Ok(None);
        }
        let require =
            |variable: &'static str| get(variable).ok_or(ContextError::Missing { variable });
        let invalid =
            |variable: &'static str, value: String, why: &'static str| ContextError::Invalid {
                variable,
                value,
                why,
            };

        let raw_path = require("JUJU_DISPATCH_PATH")?;
        let dispatch_path = normalise_dispatch_path(&raw_path).ok_or_else(|| {
            invalid(
                "JUJU_DISPATCH_PATH",
                raw_path.clone(),
                "expected hooks/<name> or actions/<name>",
            )
        })?;
        let unit_text = require("JUJU_UNIT_NAME")?;
        let unit = UnitName::parse(&unit_text).ok_or_else(|| {
            invalid(
                "JUJU_UNIT_NAME",
                unit_text.clone(),
                "expected <application>/<number>",
            )
        })?;
        let version_text = require("JUJU_VERSION")?;
        let version = JujuVersion::parse(&version_text).ok_or_else(|| {
            invalid(
                "JUJU_VERSION",
                version_text.clone(),
                "expected a version such as 3.6.1",
            )
        })?;
        let charm_dir = get("JUJU_CHARM_DIR")
            .or_else(|| get("CHARM_DIR"))
            .map(PathBuf::from)
            .ok_or(ContextError::Missing {
                variable: "JUJU_CHARM_DIR",
            })?;

        let relation = match get("JUJU_RELATION_ID") {
            None => None,
            Some(id_text) => {
                let endpoint = get("JUJU_RELATION")
                    .or_else(|| id_text.rsplit_once(':').map(|(e, _)| e.to_owned()))
                    .ok_or(ContextError::Missing {
                        variable: "JUJU_RELATION",
                    })?;
                // Accept a bare number as the tools do, naming the endpoint ourselves.
                let full = if id_text.contains(':') {
                    id_text.clone()
                } else {
                    format!("{endpoint}:{id_text}")
                };
                let id = RelationId::parse(&full).ok_or_else(|| {
                    invalid(
                        "JUJU_RELATION_ID",
                        id_text.clone(),
                        "expected <endpoint>:<number>",
                    )
                })?;
                let unit_var = |variable: &'static str| -> Result<Option<UnitName>, ContextError> {
                    get(variable)
                        .map(|v| {
                            UnitName::parse(&v)
                                .ok_or_else(|| invalid(variable, v.clone(), "expected a unit name"))
                        })
                        .transpose()
                };
                let remote_app = get("JUJU_REMOTE_APP")
                    .map(|v| {
                        AppName::parse(&v).ok_or_else(|| {
                            invalid("JUJU_REMOTE_APP", v.clone(), "expected an application name")
                        })
                    })
                    .transpose()?;
                Some(RelationContext {
                    endpoint,
                    id,
                    remote_app,
                    remote_unit: unit_var("JUJU_REMOTE_UNIT")?,
                    departing_unit: unit_var("JUJU_DEPARTING_UNIT")?,
                })
            }
        };

        let action = get("JUJU_ACTION_NAME").map(|name| ActionContext {
            name,
            uuid: get("JUJU_ACTION_UUID").unwrap_or_default(),
        });

        let secret = match get("JUJU_SECRET_ID") {
            None => None,
            Some(id_text) => {
                let id = SecretUri::parse(&id_text).ok_or_else(|| {
                    invalid("JUJU_SECRET_ID", id_text.clone(), "expected secret:<id>")
                })?;
                let revision = get("JUJU_SECRET_REVISION")
                    .map(|r| {
                        r.parse().map_err(|_| {
                            invalid("JUJU_SECRET_REVISION", r.clone(), "expected a number")
                        })
                    })
                    .transpose()?;
                Some(SecretContext {
                    id,
                    label: get("JUJU_SECRET_LABEL"),
                    revision,
                })
            }
        };

        Ok(Some(JujuContext {
            dispatch_path,
            unit,
            model_name: get("JUJU_MODEL_NAME").unwrap_or_default(),
            model_uuid: get("JUJU_MODEL_UUID").unwrap_or_default(),
            version,
            charm_dir,
            relation,
            action,
            secret,
        }))
    }
}

/// Reduces a dispatch path to `hooks/<name>` or `actions/<name>`.
///
/// Juju sets `hooks/<name>`, but Juju versions without dispatch run `hooks/<name>` directly and the
/// dispatch script passes its `$0`, which may be a full path such as
/// `/var/lib/juju/agents/unit-keystone-0/charm/hooks/install` or `./hooks/install`.
pub fn normalise_dispatch_path(path: &str) -> Option<String> {
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty() && *p != ".");
    let name = parts.next()?;
    let kind = parts.next()?;
    matches!(kind, "hooks" | "actions").then(|| format!("{kind}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("JUJU_DISPATCH_PATH", "hooks/install"),
        ("JUJU_HOOK_NAME", "install"),
        ("JUJU_UNIT_NAME", "keystone/0"),
        ("JUJU_MODEL_NAME", "openstack"),
        ("JUJU_MODEL_UUID", "0c7a4f9e-1b2d-4e5f-8a9b-0c1d2e3f4a5b"),
        ("JUJU_VERSION", "3.6.1"),
        (
            "JUJU_CHARM_DIR",
            "/var/lib/juju/agents/unit-keystone-0/charm",
        ),
        ("JUJU_REMOTE_UNIT", ""),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut all: Vec<_> = BASE.to_vec();
        all.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        all.extend_from_slice(extra);
        all
    }

    #[test]
    fn no_juju_variables_means_run_by_hand() {
        assert_eq!(
            JujuContext::from_env(env(&[("PATH", "/usr/bin")])),
            Ok(None)
        );
        assert_eq!(
            JujuContext::from_env(env(&[("JUJU_DISPATCH_PATH", "")])),
            Ok(None)
        );
    }

    #[test]
    fn reads_a_plain_hook() {
        let ctx = JujuContext::from_env(env(BASE)).unwrap().unwrap();
        assert_eq!(ctx.dispatch_path, "hooks/install");
        assert_eq!(ctx.unit.as_str(), "keystone/0");
        assert_eq!(ctx.model_name, "openstack");
        assert_eq!(ctx.version.to_string(), "3.6.1");
        assert!(ctx.relation.is_none() && ctx.action.is_none() && ctx.secret.is_none());
    }

    #[test]
    fn reads_a_relation_hook_with_empty_remote_unit() {
        let vars = with(&[
            ("JUJU_DISPATCH_PATH", "hooks/shared-db-relation-changed"),
            ("JUJU_RELATION", "shared-db"),
            ("JUJU_RELATION_ID", "shared-db:7"),
            ("JUJU_REMOTE_APP", "mysql"),
            ("JUJU_REMOTE_UNIT", ""),
        ]);
        let rel = JujuContext::from_env(env(&vars))
            .unwrap()
            .unwrap()
            .relation
            .unwrap();
        assert_eq!(rel.endpoint, "shared-db");
        assert_eq!(rel.id.as_str(), "shared-db:7");
        assert_eq!(rel.remote_app.unwrap().as_str(), "mysql");
        assert_eq!(rel.remote_unit, None);
        assert_eq!(rel.departing_unit, None);
    }

    #[test]
    fn reads_departing_unit_and_bare_relation_id() {
        let vars = with(&[
            ("JUJU_DISPATCH_PATH", "hooks/cluster-relation-departed"),
            ("JUJU_RELATION", "cluster"),
            ("JUJU_RELATION_ID", "3"),
            ("JUJU_REMOTE_APP", "keystone"),
            ("JUJU_REMOTE_UNIT", "keystone/1"),
            ("JUJU_DEPARTING_UNIT", "keystone/0"),
        ]);
        let rel = JujuContext::from_env(env(&vars))
            .unwrap()
            .unwrap()
            .relation
            .unwrap();
        assert_eq!(rel.id.as_str(), "cluster:3");
        assert_eq!(rel.remote_unit.unwrap().as_str(), "keystone/1");
        assert_eq!(rel.departing_unit.unwrap().as_str(), "keystone/0");
    }

    #[test]
    fn reads_action_and_secret_variables() {
        let vars = with(&[
            ("JUJU_DISPATCH_PATH", "actions/pause"),
            ("JUJU_HOOK_NAME", ""),
            ("JUJU_ACTION_NAME", "pause"),
            ("JUJU_ACTION_UUID", "42"),
        ]);
        let ctx = JujuContext::from_env(env(&vars)).unwrap().unwrap();
        assert_eq!(
            ctx.action,
            Some(ActionContext {
                name: "pause".into(),
                uuid: "42".into()
            })
        );

        let vars = with(&[
            ("JUJU_DISPATCH_PATH", "hooks/secret-remove"),
            ("JUJU_SECRET_ID", "secret:cs0b1p7mp25c77b1mq1g"),
            ("JUJU_SECRET_LABEL", ""),
            ("JUJU_SECRET_REVISION", "3"),
        ]);
        let secret = JujuContext::from_env(env(&vars))
            .unwrap()
            .unwrap()
            .secret
            .unwrap();
        assert_eq!(secret.id.as_str(), "secret:cs0b1p7mp25c77b1mq1g");
        assert_eq!(secret.label, None);
        assert_eq!(secret.revision, Some(3));
    }

    #[test]
    fn rejects_broken_environments_with_the_variable_named() {
        let vars = with(&[("JUJU_UNIT_NAME", "keystone")]);
        let err = JujuContext::from_env(env(&vars)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("JUJU_UNIT_NAME=\"keystone\" is not valid"),
            "{err}"
        );
        let vars: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| *k != "JUJU_VERSION")
            .collect();
        assert_eq!(
            JujuContext::from_env(env(&vars)),
            Err(ContextError::Missing {
                variable: "JUJU_VERSION"
            })
        );
    }

    #[test]
    fn old_juju_full_hook_paths_are_normalised() {
        for (given, want) in [
            ("hooks/install", Some("hooks/install")),
            (
                "/var/lib/juju/agents/unit-keystone-0/charm/hooks/config-changed",
                Some("hooks/config-changed"),
            ),
            ("./hooks/start", Some("hooks/start")),
            ("actions/pause", Some("actions/pause")),
            ("./dispatch", None),
            ("install", None),
            ("", None),
        ] {
            assert_eq!(normalise_dispatch_path(given).as_deref(), want, "{given}");
        }
    }

    #[test]
    fn versions_parse_and_order() {
        let v = |s: &str| JujuVersion::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(
            v("3.6.1"),
            JujuVersion {
                major: 3,
                minor: 6,
                patch: 1,
                tag: None,
                build: 0
            }
        );
        assert_eq!(v("2.9.42.1").build, 1);
        assert_eq!(v("3.1-beta2").tag.as_deref(), Some("beta"));
        assert!(v("3.1-beta2") < v("3.1.0"));
        assert!(v("3.6.10") > v("3.6.9"));
        assert!(v("3.1.0").supports_secrets());
        assert!(v("3.6.1").supports_secrets());
        assert!(v("4.0.0").supports_secrets());
        assert!(!v("3.0.3").supports_secrets());
        assert!(!v("2.9.42").supports_secrets());
        assert!(v("3.3.0").supports_cross_model_secrets());
        assert!(!v("3.2.4").supports_cross_model_secrets());
        for bad in ["3", "3.x.1", "three", "3.1-2", ""] {
            assert!(JujuVersion::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(v("3.1-rc1").to_string(), "3.1-rc1");
    }
}
