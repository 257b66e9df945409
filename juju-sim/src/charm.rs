//! What the simulator reads from a charm directory: metadata.yaml, config.yaml, actions.yaml.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

/// An endpoint's role in a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Provides,
    Requires,
    Peers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointMeta {
    pub name: String,
    pub interface: String,
    pub role: Role,
    /// `scope: container` (subordinate relations).
    pub container_scope: bool,
}

/// The type of a config option, as config.yaml declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionType {
    String,
    Int,
    Float,
    Boolean,
    Secret,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OptionMeta {
    pub kind: OptionType,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionMeta {
    /// JSON-schema properties of the params.
    pub params: Map<String, Value>,
    pub required: Vec<String>,
}

/// Everything Juju knows about a charm.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CharmMeta {
    pub name: String,
    pub subordinate: bool,
    pub endpoints: Vec<EndpointMeta>,
    pub extra_bindings: Vec<String>,
    pub options: BTreeMap<String, OptionMeta>,
    pub actions: BTreeMap<String, ActionMeta>,
    /// The resources metadata.yaml declares, by name.
    pub resources: BTreeMap<String, ResourceMeta>,
}

/// A resource a charm declares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceMeta {
    /// `file` or `oci-image`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What a `file` resource's local copy is named.
    #[serde(default)]
    pub filename: Option<String>,
}

#[derive(Deserialize)]
struct MetadataYaml {
    name: String,
    #[serde(default)]
    subordinate: bool,
    #[serde(default)]
    provides: BTreeMap<String, RelationYaml>,
    #[serde(default)]
    requires: BTreeMap<String, RelationYaml>,
    #[serde(default)]
    peers: BTreeMap<String, RelationYaml>,
    #[serde(default, rename = "extra-bindings")]
    extra_bindings: BTreeMap<String, Option<Value>>,
    #[serde(default)]
    resources: BTreeMap<String, ResourceMeta>,
}

#[derive(Deserialize)]
struct RelationYaml {
    interface: String,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ConfigYaml {
    #[serde(default)]
    options: BTreeMap<String, ConfigOptionYaml>,
}

#[derive(Deserialize)]
struct ConfigOptionYaml {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    default: Option<Value>,
}

#[derive(Deserialize)]
struct ActionYaml {
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default)]
    required: Vec<String>,
}

impl CharmMeta {
    /// Reads a charm directory.
    pub fn load(dir: &Path) -> Result<CharmMeta> {
        let read = |name: &str| -> Result<Option<String>> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
            }
        };
        let metadata = read("metadata.yaml")?
            .with_context(|| format!("{} has no metadata.yaml", dir.display()))?;
        let mut meta = CharmMeta::from_yaml(&metadata, read("config.yaml")?.as_deref())?;
        if let Some(actions) = read("actions.yaml")? {
            meta.actions = parse_actions(&actions)?;
        }
        Ok(meta)
    }

    /// Builds the metadata of a charm from YAML text (scripted charms use this too).
    pub fn from_yaml(metadata: &str, config: Option<&str>) -> Result<CharmMeta> {
        let parsed: MetadataYaml =
            serde_norway::from_str(metadata).context("metadata.yaml is not valid")?;
        let mut endpoints = Vec::new();
        for (role, map) in [
            (Role::Provides, parsed.provides),
            (Role::Requires, parsed.requires),
            (Role::Peers, parsed.peers),
        ] {
            for (name, relation) in map {
                endpoints.push(EndpointMeta {
                    name,
                    interface: relation.interface,
                    role,
                    container_scope: relation.scope.as_deref() == Some("container"),
                });
            }
        }
        let mut options = BTreeMap::new();
        if let Some(text) = config {
            let parsed: ConfigYaml =
                serde_norway::from_str(text).context("config.yaml is not valid")?;
            for (name, option) in parsed.options {
                let kind = match option.kind.as_str() {
                    "string" => OptionType::String,
                    "int" => OptionType::Int,
                    "float" => OptionType::Float,
                    "boolean" => OptionType::Boolean,
                    "secret" => OptionType::Secret,
                    other => bail!("config.yaml: option {name} has unknown type {other:?}"),
                };
                options.insert(
                    name,
                    OptionMeta {
                        kind,
                        default: option.default.filter(|d| !d.is_null()),
                    },
                );
            }
        }
        Ok(CharmMeta {
            name: parsed.name,
            subordinate: parsed.subordinate,
            endpoints,
            extra_bindings: parsed.extra_bindings.into_keys().collect(),
            options,
            actions: BTreeMap::new(),
            resources: parsed.resources,
        })
    }

    pub fn endpoint(&self, name: &str) -> Option<&EndpointMeta> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    pub fn peer_endpoints(&self) -> impl Iterator<Item = &EndpointMeta> {
        self.endpoints.iter().filter(|e| e.role == Role::Peers)
    }

    /// Checks a value as `juju config` does, converting strings given on the command line.
    pub fn check_option(&self, name: &str, value: &Value) -> Result<Value> {
        let Some(option) = self.options.get(name) else {
            bail!("unknown option {name:?}");
        };
        let ok = match option.kind {
            OptionType::String | OptionType::Secret => value.is_string(),
            OptionType::Int => value.is_i64() || value.is_u64(),
            OptionType::Float => value.is_number(),
            OptionType::Boolean => value.is_boolean(),
        };
        if !ok {
            let wanted = match option.kind {
                OptionType::String | OptionType::Secret => "string",
                OptionType::Int => "int",
                OptionType::Float => "float",
                OptionType::Boolean => "bool",
            };
            bail!("option {name:?} expected {wanted}, got {value}");
        }
        Ok(value.clone())
    }

    /// Validates action params against actions.yaml and fills in defaults, as Juju does before
    /// queueing the task.
    pub fn action_params(
        &self,
        action: &str,
        given: &Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        let Some(meta) = self.actions.get(action) else {
            bail!(
                "action {action:?} not defined on application {:?}",
                self.name
            );
        };
        let mut params = Map::new();
        for (name, value) in given {
            let Some(schema) = meta.params.get(name) else {
                bail!("additional property \"{name}\" is not allowed");
            };
            if let Some(kind) = schema.get("type").and_then(Value::as_str) {
                let ok = match kind {
                    "string" => value.is_string(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    "boolean" => value.is_boolean(),
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    _ => true,
                };
                if !ok {
                    bail!("{name}: invalid type, expected {kind}, given {value}");
                }
            }
            params.insert(name.clone(), value.clone());
        }
        for (name, schema) in &meta.params {
            if !params.contains_key(name)
                && let Some(default) = schema.get("default")
            {
                params.insert(name.clone(), default.clone());
            }
        }
        for name in &meta.required {
            if !params.contains_key(name) {
                bail!("missing required property \"{name}\"");
            }
        }
        Ok(params)
    }
}

fn parse_actions(text: &str) -> Result<BTreeMap<String, ActionMeta>> {
    let parsed: Option<BTreeMap<String, ActionYaml>> =
        serde_norway::from_str(text).context("actions.yaml is not valid")?;
    Ok(parsed
        .unwrap_or_default()
        .into_iter()
        .map(|(name, action)| {
            (
                name,
                ActionMeta {
                    params: action.params,
                    required: action.required,
                },
            )
        })
        .collect())
}
