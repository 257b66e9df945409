//! The one door to Juju: every hook tool the charm uses, as a trait.
//!
//! [`crate::juju::process::ProcessHookTools`] runs the real tools, or reaches the simulator's
//! unit agent in-process in tests.
//! Implementations do no caching: [`crate::juju::Juju`] layers the per-hook cache on top.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::ToolResult;
use super::types::{
    AppName, Bag, GoalState, LogLevel, NetworkInfo, RelationId, SecretOwner, SecretRead, SecretUri,
    Status, StatusScope, UnitName,
};
use crate::secret::Sensitive;

/// A relation data bag's content: string keys to string values.
pub type Databag = BTreeMap<String, String>;

/// Changes to a data bag: `None` deletes the key (Juju's empty value).
pub type DatabagChanges = BTreeMap<String, Option<String>>;

/// Options for `secret-add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecret {
    pub owner: SecretOwner,
    pub label: Option<String>,
    pub description: Option<String>,
}

/// Secret content: keys matching Juju's `^[a-z](-?[a-z0-9]){2,}$`, values kept out of logs.
pub type SecretContent = BTreeMap<String, Sensitive<String>>;

/// Every hook tool the charm calls. Method names follow the tools' names.
///
/// `Send + Sync` so one implementation can be shared with the logging layer (juju-log) and the
/// panic hook, which tracing and std require to be thread-safe.
pub trait HookTools: Send + Sync {
    /// `config-get --format=json`: every option that has a value.
    fn config_get(&self) -> ToolResult<Map<String, Value>>;
    /// `relation-ids --format=json <endpoint>`.
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>>;
    /// `relation-list --format=json -r <id>`: remote units in the relation.
    fn relation_list(&self, relation: &RelationId) -> ToolResult<Vec<UnitName>>;
    /// `relation-list --format=json -r <id> --app`: the remote application, if known.
    fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<AppName>>;
    /// `relation-get --format=json -r <id> [--app] - <unit-or-app>`.
    fn relation_get(&self, relation: &RelationId, bag: &Bag) -> ToolResult<Databag>;
    /// `relation-set -r <id> [--app] --file -`: merge changes into this unit's (or, as leader, this
    /// application's) bag.
    fn relation_set(
        &self,
        relation: &RelationId,
        app: bool,
        changes: &DatabagChanges,
    ) -> ToolResult<()>;
    /// `is-leader --format=json`.
    fn is_leader(&self) -> ToolResult<bool>;
    /// `leader-get --format=json -`.
    fn leader_get(&self) -> ToolResult<Databag>;
    /// `status-set [--application] <status> -- <message>`.
    fn status_set(&self, scope: StatusScope, status: &Status) -> ToolResult<()>;
    /// `application-version-set -- <version>`.
    fn application_version_set(&self, version: &str) -> ToolResult<()>;
    /// `juju-log --log-level <LEVEL> -- <message>`.
    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()>;
    /// `action-get --format=json`: the action's parameters, with defaults filled in by Juju.
    fn action_get(&self) -> ToolResult<Map<String, Value>>;
    /// `action-set key=value ...`; dotted keys nest.
    fn action_set(&self, results: &BTreeMap<String, String>) -> ToolResult<()>;
    /// `action-fail -- <message>`.
    fn action_fail(&self, message: &str) -> ToolResult<()>;
    /// `network-get --format=json <binding>`.
    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo>;
    /// `goal-state --format=json`: the units of this application Juju means to have.
    fn goal_state(&self) -> ToolResult<GoalState>;
    /// `secret-add [--owner] [--label] [--description] key#file=<path> ...`: prints the new URI.
    fn secret_add(&self, content: &SecretContent, options: &NewSecret) -> ToolResult<SecretUri>;
    /// `secret-get --format=json <uri> [--peek|--refresh]`.
    fn secret_get(&self, uri: &SecretUri, read: SecretRead) -> ToolResult<SecretContent>;
    /// `secret-set <uri> key#file=<path> ...`: a new revision if the content changed.
    fn secret_set(&self, uri: &SecretUri, content: &SecretContent) -> ToolResult<()>;
    /// `secret-grant <uri> -r <id>`: the relation's remote application may read it.
    fn secret_grant(&self, uri: &SecretUri, relation: &RelationId) -> ToolResult<()>;
    /// `secret-remove <uri>`: every revision of an owned secret.
    fn secret_remove(&self, uri: &SecretUri) -> ToolResult<()>;
    /// `resource-get <name>`, then the file it names: None when the operator attached no such
    /// resource (Juju cannot download it).
    fn resource_get(&self, name: &str) -> ToolResult<Option<Vec<u8>>>;
}
