//! An in-memory twin of one unit's view of the model, for tests: config, leadership, relations and
//! their data bags, secrets, statuses, logs, action parameters and results, ports and networks.
//!
//! It enforces Juju's access rules with Juju's error text and exit codes, and records every call.
//! Writes apply at once; committing only on a successful hook is the simulator's job (issue 3).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Map, Value};

use super::error::{HookToolError, ToolResult};
use super::process::is_valid_secret_key;
use super::tools::{Databag, DatabagChanges, HookTools, NewSecret, SecretContent};
use super::types::{
    AppName, Bag, LogLevel, NetworkInfo, Port, RelationId, SecretOwner, SecretRead, SecretUri,
    Status, StatusScope, UnitName,
};

/// One relation as this unit sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRelation {
    pub id: RelationId,
    /// For a peer relation, this unit's own application.
    pub remote_app: AppName,
    pub local_unit_data: Databag,
    /// This application's bag (for a peer relation, the bag every peer reads).
    pub local_app_data: Databag,
    pub remote_app_data: Databag,
    /// Remote units in the relation (peers, for a peer relation) and their bags.
    pub remote_units: BTreeMap<UnitName, Databag>,
}

/// A secret this unit owns or can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySecret {
    pub uri: SecretUri,
    /// `None`: owned by another application and readable here.
    pub owner: Option<SecretOwner>,
    pub label: Option<String>,
    pub description: Option<String>,
    /// Every revision's content, oldest first (revision n is at index n-1).
    pub revisions: Vec<SecretContent>,
    /// Index into `revisions` of the revision a consumer tracks.
    pub tracked: usize,
    pub grants: Vec<(RelationId, Option<UnitName>)>,
}

/// A running action's parameters and what the charm reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemoryAction {
    pub params: Map<String, Value>,
    pub results: BTreeMap<String, String>,
    pub failure: Option<String>,
    pub logs: Vec<String>,
}

/// One hook-tool call, with arguments as the real tool would get them (secret values left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub tool: &'static str,
    pub args: Vec<String>,
}

/// The model as one unit sees it. Public fields: tests set it up and inspect it directly.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryState {
    pub unit: UnitName,
    pub leader: bool,
    /// config-get's answer: option name to typed value.
    pub config: Map<String, Value>,
    pub relations: Vec<MemoryRelation>,
    pub leader_settings: Databag,
    pub secrets: Vec<MemorySecret>,
    pub unit_status: Option<Status>,
    pub app_status: Option<Status>,
    /// Every status-set, in order.
    pub status_history: Vec<(StatusScope, Status)>,
    pub workload_version: Option<String>,
    pub logs: Vec<(LogLevel, String)>,
    /// Set when the dispatch is an action.
    pub action: Option<MemoryAction>,
    pub opened_ports: BTreeSet<Port>,
    pub networks: BTreeMap<String, NetworkInfo>,
    /// unit-get's `private-address` and `public-address`.
    pub addresses: BTreeMap<String, String>,
    pub goal_state: Value,
    pub calls: Vec<ToolCall>,
    next_relation: u32,
    next_secret: u32,
}

impl MemoryState {
    pub fn new(unit: UnitName) -> MemoryState {
        MemoryState {
            unit,
            leader: false,
            config: Map::new(),
            relations: Vec::new(),
            leader_settings: Databag::new(),
            secrets: Vec::new(),
            unit_status: None,
            app_status: None,
            status_history: Vec::new(),
            workload_version: None,
            logs: Vec::new(),
            action: None,
            opened_ports: BTreeSet::new(),
            networks: BTreeMap::new(),
            addresses: BTreeMap::new(),
            goal_state: serde_json::json!({"units": {}, "relations": {}}),
            calls: Vec::new(),
            next_relation: 0,
            next_secret: 0,
        }
    }

    /// Adds a relation on `endpoint` to `remote_app` (this unit's own app for a peer relation)
    /// with no units yet, and returns its id.
    pub fn add_relation(&mut self, endpoint: &str, remote_app: AppName) -> RelationId {
        let number = self.next_relation;
        self.next_relation += 1;
        // Test set-up code passes endpoint names from metadata.yaml; anything else is a test bug.
        let id = RelationId::parse(&format!("{endpoint}:{number}"))
            .unwrap_or_else(|| panic!("add_relation: {endpoint:?} is not an endpoint name"));
        self.relations.push(MemoryRelation {
            id: id.clone(),
            remote_app,
            local_unit_data: Databag::new(),
            local_app_data: Databag::new(),
            remote_app_data: Databag::new(),
            remote_units: BTreeMap::new(),
        });
        id
    }

    pub fn relation(&self, id: &RelationId) -> Option<&MemoryRelation> {
        self.relations.iter().find(|r| &r.id == id)
    }

    pub fn relation_mut(&mut self, id: &RelationId) -> Option<&mut MemoryRelation> {
        self.relations.iter_mut().find(|r| &r.id == id)
    }

    /// Adds a secret another application owns and granted to this unit.
    pub fn add_consumed_secret(&mut self, content: SecretContent) -> SecretUri {
        let uri = self.new_secret_uri();
        self.secrets.push(MemorySecret {
            uri: uri.clone(),
            owner: None,
            label: None,
            description: None,
            revisions: vec![content],
            tracked: 0,
            grants: Vec::new(),
        });
        uri
    }

    fn new_secret_uri(&mut self) -> SecretUri {
        self.next_secret += 1;
        // Real ids are 20-character xids; these keep the shape and are deterministic.
        let id = format!("secret:cmem{:016}", self.next_secret);
        SecretUri::parse(&id).unwrap_or_else(|| panic!("{id} is a secret URI"))
    }

    /// The hook tools called, in order.
    pub fn tools_called(&self) -> Vec<&'static str> {
        self.calls.iter().map(|c| c.tool).collect()
    }

    /// juju-log lines at `level` or above.
    pub fn log_lines(&self, level: LogLevel) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|(l, _)| *l >= level)
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

/// [`HookTools`] over a [`MemoryState`].
#[derive(Debug)]
pub struct MemoryHookTools {
    state: Mutex<MemoryState>,
}

fn failed(tool: &'static str, code: i32, message: impl AsRef<str>) -> HookToolError {
    HookToolError::Failed {
        tool,
        code,
        stderr: format!("ERROR {}", message.as_ref()),
    }
}

fn relation_not_found(tool: &'static str, id: &RelationId) -> HookToolError {
    failed(
        tool,
        2,
        format!("invalid value \"{id}\" for flag -r: relation not found"),
    )
}

const NOT_IN_ACTION: &str = "not running an action";
const NOT_LEADER: &str = "this unit is not the leader";
const RESERVED_ACTION_KEYS: [&str; 4] = ["stdout", "stdout-encoding", "stderr", "stderr-encoding"];

fn apply_changes(bag: &mut Databag, changes: &DatabagChanges) {
    for (key, value) in changes {
        match value.as_deref() {
            None | Some("") => bag.remove(key),
            Some(v) => bag.insert(key.clone(), v.to_owned()),
        };
    }
}

fn change_args(changes: &DatabagChanges) -> impl Iterator<Item = String> + '_ {
    changes
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
}

fn valid_action_key(key: &str) -> bool {
    key.split('.').all(|segment| {
        let edge_ok =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        edge_ok(segment.chars().next())
            && edge_ok(segment.chars().last())
            && segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

impl MemoryHookTools {
    pub fn new(unit: UnitName) -> MemoryHookTools {
        MemoryHookTools::from_state(MemoryState::new(unit))
    }

    pub fn from_state(state: MemoryState) -> MemoryHookTools {
        MemoryHookTools {
            state: Mutex::new(state),
        }
    }

    /// The state, to set up or inspect. Do not hold it across a call to a tool.
    pub fn state(&self) -> MutexGuard<'_, MemoryState> {
        // A test that panicked while holding the lock leaves valid data; keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of the state, for assertions.
    pub fn snapshot(&self) -> MemoryState {
        self.state().clone()
    }

    /// Records the call and hands the state to `f`.
    fn call<T>(
        &self,
        tool: &'static str,
        args: impl IntoIterator<Item = String>,
        f: impl FnOnce(&mut MemoryState) -> ToolResult<T>,
    ) -> ToolResult<T> {
        let mut state = self.state();
        state.calls.push(ToolCall {
            tool,
            args: args.into_iter().collect(),
        });
        f(&mut state)
    }
}

fn s(text: &str) -> String {
    text.to_owned()
}

impl HookTools for MemoryHookTools {
    fn config_get(&self) -> ToolResult<Map<String, Value>> {
        self.call("config-get", [s("--format=json")], |st| {
            Ok(st.config.clone())
        })
    }

    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        self.call("relation-ids", [s("--format=json"), s(endpoint)], |st| {
            let mut ids: Vec<RelationId> = st
                .relations
                .iter()
                .filter(|r| r.id.endpoint() == endpoint)
                .map(|r| r.id.clone())
                .collect();
            // Juju sorts the ids as strings: db:10 before db:2.
            ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Ok(ids)
        })
    }

    fn relation_list(&self, relation: &RelationId) -> ToolResult<Vec<UnitName>> {
        let tool = "relation-list";
        self.call(
            tool,
            [s("--format=json"), s("-r"), relation.to_string()],
            |st| {
                let rel = st
                    .relation(relation)
                    .ok_or_else(|| relation_not_found(tool, relation))?;
                Ok(rel.remote_units.keys().cloned().collect())
            },
        )
    }

    fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<AppName>> {
        let tool = "relation-list";
        let args = [
            s("--format=json"),
            s("-r"),
            relation.to_string(),
            s("--app"),
        ];
        self.call(tool, args, |st| {
            let rel = st
                .relation(relation)
                .ok_or_else(|| relation_not_found(tool, relation))?;
            Ok(Some(rel.remote_app.clone()))
        })
    }

    fn relation_get(&self, relation: &RelationId, bag: &Bag) -> ToolResult<Databag> {
        let tool = "relation-get";
        let mut args = vec![s("--format=json"), s("-r"), relation.to_string()];
        let target = match bag {
            Bag::Unit(u) => u.to_string(),
            Bag::App(a) => {
                args.push(s("--app"));
                a.to_string()
            }
        };
        args.extend([s("-"), target]);
        self.call(tool, args, |st| {
            let own_unit = st.unit.clone();
            let own_app = own_unit.app();
            let leader = st.leader;
            let rel = st
                .relation(relation)
                .ok_or_else(|| relation_not_found(tool, relation))?;
            let peer = rel.remote_app == own_app;
            match bag {
                Bag::Unit(u) if *u == own_unit => Ok(rel.local_unit_data.clone()),
                Bag::Unit(u) => rel
                    .remote_units
                    .get(u)
                    .cloned()
                    .ok_or_else(|| failed(tool, 1, "permission denied")),
                Bag::App(a) if *a == own_app && (leader || peer) => Ok(rel.local_app_data.clone()),
                Bag::App(a) if *a == rel.remote_app => Ok(rel.remote_app_data.clone()),
                Bag::App(_) => Err(failed(tool, 1, "permission denied")),
            }
        })
    }

    fn relation_set(
        &self,
        relation: &RelationId,
        app: bool,
        changes: &DatabagChanges,
    ) -> ToolResult<()> {
        let tool = "relation-set";
        let mut args = vec![s("-r"), relation.to_string()];
        if app {
            args.push(s("--app"));
        }
        args.extend(change_args(changes));
        self.call(tool, args, |st| {
            let leader = st.leader;
            let rel = st
                .relation_mut(relation)
                .ok_or_else(|| relation_not_found(tool, relation))?;
            if app && !leader {
                return Err(failed(tool, 1, "cannot write relation settings"));
            }
            let bag = if app {
                &mut rel.local_app_data
            } else {
                &mut rel.local_unit_data
            };
            apply_changes(bag, changes);
            Ok(())
        })
    }

    fn is_leader(&self) -> ToolResult<bool> {
        self.call("is-leader", [s("--format=json")], |st| Ok(st.leader))
    }

    fn leader_get(&self) -> ToolResult<Databag> {
        self.call("leader-get", [s("--format=json"), s("-")], |st| {
            Ok(st.leader_settings.clone())
        })
    }

    fn leader_set(&self, changes: &DatabagChanges) -> ToolResult<()> {
        let tool = "leader-set";
        self.call(tool, change_args(changes).collect::<Vec<_>>(), |st| {
            if !st.leader {
                return Err(failed(
                    tool,
                    1,
                    "cannot write leadership settings: cannot write settings: not the leader",
                ));
            }
            apply_changes(&mut st.leader_settings, changes);
            Ok(())
        })
    }

    fn status_set(&self, scope: StatusScope, status: &Status) -> ToolResult<()> {
        let tool = "status-set";
        let mut args = Vec::new();
        if scope == StatusScope::Application {
            args.push(s("--application"));
        }
        args.extend([s(status.kind.as_str()), s("--"), status.message.clone()]);
        self.call(tool, args, |st| {
            match scope {
                StatusScope::Application if !st.leader => return Err(failed(tool, 1, NOT_LEADER)),
                StatusScope::Application => st.app_status = Some(status.clone()),
                StatusScope::Unit => st.unit_status = Some(status.clone()),
            }
            st.status_history.push((scope, status.clone()));
            Ok(())
        })
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.call("application-version-set", [s("--"), s(version)], |st| {
            st.workload_version = Some(version.to_owned());
            Ok(())
        })
    }

    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        let args = [s("--log-level"), s(level.as_str()), s("--"), s(message)];
        self.call("juju-log", args, |st| {
            st.logs.push((level, message.to_owned()));
            Ok(())
        })
    }

    fn action_get(&self) -> ToolResult<Map<String, Value>> {
        let tool = "action-get";
        self.call(tool, [s("--format=json")], |st| {
            let action = st
                .action
                .as_ref()
                .ok_or_else(|| failed(tool, 1, NOT_IN_ACTION))?;
            Ok(action.params.clone())
        })
    }

    fn action_set(&self, results: &BTreeMap<String, String>) -> ToolResult<()> {
        let tool = "action-set";
        let args: Vec<String> = results.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.call(tool, args, |st| {
            for key in results.keys() {
                if !valid_action_key(key) {
                    return Err(failed(
                        tool,
                        2,
                        format!(
                            "key \"{key}\" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods"
                        ),
                    ));
                }
                if let Some(reserved) = key.split('.').find(|seg| RESERVED_ACTION_KEYS.contains(seg)) {
                    return Err(failed(tool, 2, format!("cannot set reserved action key \"{reserved}\"")));
                }
            }
            let action = st.action.as_mut().ok_or_else(|| failed(tool, 1, NOT_IN_ACTION))?;
            action.results.extend(results.clone());
            Ok(())
        })
    }

    fn action_fail(&self, message: &str) -> ToolResult<()> {
        let tool = "action-fail";
        self.call(tool, [s("--"), s(message)], |st| {
            let action = st
                .action
                .as_mut()
                .ok_or_else(|| failed(tool, 1, NOT_IN_ACTION))?;
            action.failure = Some(if message.is_empty() {
                s("action failed without reason given, check action for errors")
            } else {
                s(message)
            });
            Ok(())
        })
    }

    fn action_log(&self, message: &str) -> ToolResult<()> {
        let tool = "action-log";
        self.call(tool, [s("--"), s(message)], |st| {
            let action = st
                .action
                .as_mut()
                .ok_or_else(|| failed(tool, 1, NOT_IN_ACTION))?;
            action.logs.push(message.to_owned());
            Ok(())
        })
    }

    fn open_port(&self, port: Port) -> ToolResult<()> {
        self.call("open-port", [port.to_string()], |st| {
            st.opened_ports.insert(port);
            Ok(())
        })
    }

    fn close_port(&self, port: Port) -> ToolResult<()> {
        self.call("close-port", [port.to_string()], |st| {
            st.opened_ports.remove(&port);
            Ok(())
        })
    }

    fn opened_ports(&self) -> ToolResult<Vec<Port>> {
        self.call("opened-ports", [s("--format=json")], |st| {
            Ok(st.opened_ports.iter().copied().collect())
        })
    }

    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        let tool = "network-get";
        self.call(tool, [s("--format=json"), s(binding)], |st| {
            st.networks.get(binding).cloned().ok_or_else(|| {
                failed(
                    tool,
                    1,
                    format!("no network config found for binding \"{binding}\""),
                )
            })
        })
    }

    fn unit_get(&self, key: &str) -> ToolResult<String> {
        let tool = "unit-get";
        self.call(tool, [s("--format=json"), s(key)], |st| {
            let what = match key {
                "private-address" => "private address",
                "public-address" => "public address",
                _ => return Err(failed(tool, 2, format!("unknown setting \"{key}\""))),
            };
            st.addresses
                .get(key)
                .cloned()
                .ok_or_else(|| failed(tool, 1, format!("{what} not found")))
        })
    }

    fn goal_state(&self) -> ToolResult<Value> {
        self.call("goal-state", [s("--format=json")], |st| {
            Ok(st.goal_state.clone())
        })
    }

    fn secret_add(&self, content: &SecretContent, options: &NewSecret) -> ToolResult<SecretUri> {
        let tool = "secret-add";
        let owner = match options.owner {
            SecretOwner::Application => "application",
            SecretOwner::Unit => "unit",
        };
        let mut args = vec![s("--owner"), s(owner)];
        if let Some(label) = &options.label {
            args.extend([s("--label"), label.clone()]);
        }
        if let Some(description) = &options.description {
            args.extend([s("--description"), description.clone()]);
        }
        args.extend(content.keys().map(|k| format!("{k}#file=<{k}>")));
        self.call(tool, args, |st| {
            if content.is_empty() {
                return Err(failed(tool, 2, "missing secret value or filename"));
            }
            if let Some(bad) = content.keys().find(|k| !is_valid_secret_key(k)) {
                return Err(failed(tool, 2, format!("key \"{bad}\" not valid")));
            }
            if options.owner == SecretOwner::Application && !st.leader {
                return Err(failed(tool, 1, NOT_LEADER));
            }
            let uri = st.new_secret_uri();
            st.secrets.push(MemorySecret {
                uri: uri.clone(),
                owner: Some(options.owner),
                label: options.label.clone(),
                description: options.description.clone(),
                revisions: vec![content.clone()],
                tracked: 0,
                grants: Vec::new(),
            });
            Ok(uri)
        })
    }

    fn secret_get(&self, uri: &SecretUri, read: SecretRead) -> ToolResult<SecretContent> {
        let tool = "secret-get";
        let mut args = vec![s("--format=json"), uri.to_string()];
        match read {
            SecretRead::Tracked => {}
            SecretRead::Peek => args.push(s("--peek")),
            SecretRead::Refresh => args.push(s("--refresh")),
        }
        self.call(tool, args, |st| {
            let not_found = || failed(tool, 1, format!("secret \"{uri}\" not found"));
            let secret = st
                .secrets
                .iter_mut()
                .find(|x| &x.uri == uri)
                .ok_or_else(not_found)?;
            let latest = secret.revisions.len().saturating_sub(1);
            let index = match (secret.owner, read) {
                // Owners always see the latest revision.
                (Some(_), _) | (None, SecretRead::Peek) => latest,
                (None, SecretRead::Refresh) => {
                    secret.tracked = latest;
                    latest
                }
                (None, SecretRead::Tracked) => secret.tracked,
            };
            secret.revisions.get(index).cloned().ok_or_else(not_found)
        })
    }

    fn secret_set(&self, uri: &SecretUri, content: &SecretContent) -> ToolResult<()> {
        let tool = "secret-set";
        let mut args = vec![uri.to_string()];
        args.extend(content.keys().map(|k| format!("{k}#file=<{k}>")));
        self.call(tool, args, |st| {
            let leader = st.leader;
            let secret = st
                .secrets
                .iter_mut()
                .find(|x| &x.uri == uri)
                .ok_or_else(|| failed(tool, 1, format!("secret \"{uri}\" not found")))?;
            match secret.owner {
                None => return Err(failed(tool, 1, "permission denied")),
                Some(SecretOwner::Application) if !leader => {
                    return Err(failed(tool, 1, NOT_LEADER));
                }
                Some(_) => {}
            }
            if let Some(bad) = content.keys().find(|k| !is_valid_secret_key(k)) {
                return Err(failed(tool, 2, format!("key \"{bad}\" not valid")));
            }
            // Juju makes a new revision only when the content changed.
            if secret.revisions.last() != Some(content) {
                secret.revisions.push(content.clone());
            }
            Ok(())
        })
    }

    fn secret_grant(
        &self,
        uri: &SecretUri,
        relation: &RelationId,
        unit: Option<&UnitName>,
    ) -> ToolResult<()> {
        let tool = "secret-grant";
        let mut args = vec![uri.to_string(), s("-r"), relation.to_string()];
        if let Some(unit) = unit {
            args.extend([s("--unit"), unit.to_string()]);
        }
        self.call(tool, args, |st| {
            let leader = st.leader;
            let remote_app = st
                .relation(relation)
                .ok_or_else(|| relation_not_found(tool, relation))?
                .remote_app
                .clone();
            if let Some(unit) = unit
                && unit.app() != remote_app
            {
                return Err(failed(
                    tool,
                    1,
                    format!(
                        "cannot specify unit \"{unit}\" in relation to application \"{remote_app}\""
                    ),
                ));
            }
            let secret = st
                .secrets
                .iter_mut()
                .find(|x| &x.uri == uri)
                .ok_or_else(|| failed(tool, 1, format!("secret \"{uri}\" not found")))?;
            match secret.owner {
                None => return Err(failed(tool, 1, "permission denied")),
                Some(SecretOwner::Application) if !leader => {
                    return Err(failed(tool, 1, NOT_LEADER));
                }
                Some(_) => {}
            }
            secret.grants.push((relation.clone(), unit.cloned()));
            Ok(())
        })
    }

    fn secret_ids(&self) -> ToolResult<Vec<SecretUri>> {
        self.call("secret-ids", [s("--format=json")], |st| {
            Ok(st
                .secrets
                .iter()
                .filter(|x| x.owner.is_some())
                .map(|x| x.uri.clone())
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Sensitive;

    fn unit(name: &str) -> UnitName {
        UnitName::parse(name).unwrap()
    }

    fn app(name: &str) -> AppName {
        AppName::parse(name).unwrap()
    }

    fn changes(pairs: &[(&str, &str)]) -> DatabagChanges {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn non_leader_cannot_write_or_read_its_app_bag_but_peers_read_theirs() {
        let tools = MemoryHookTools::new(unit("keystone/1"));
        let (db, peers) = {
            let mut st = tools.state();
            (
                st.add_relation("shared-db", app("mysql")),
                st.add_relation("cluster", app("keystone")),
            )
        };
        let err = tools
            .relation_set(&db, true, &changes(&[("a", "b")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "relation-set failed (exit 1): ERROR cannot write relation settings"
        );
        assert!(err.is_permission_denied());
        let err = tools
            .relation_get(&db, &Bag::App(app("keystone")))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "relation-get failed (exit 1): ERROR permission denied"
        );
        assert!(
            tools
                .relation_get(&peers, &Bag::App(app("keystone")))
                .unwrap()
                .is_empty()
        );
        assert!(
            tools
                .relation_get(&db, &Bag::App(app("mysql")))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn leader_writes_merge_and_empty_deletes() {
        let tools = MemoryHookTools::new(unit("keystone/0"));
        let rel = {
            let mut st = tools.state();
            st.leader = true;
            st.add_relation("identity-service", app("nova"))
        };
        tools
            .relation_set(&rel, true, &changes(&[("a", "1"), ("b", "2")]))
            .unwrap();
        tools
            .relation_set(
                &rel,
                true,
                &[
                    ("a".to_owned(), None),
                    ("b".to_owned(), Some(String::new())),
                ]
                .into(),
            )
            .unwrap();
        tools
            .relation_set(&rel, false, &changes(&[("c", "3")]))
            .unwrap();
        let st = tools.snapshot();
        let r = st.relation(&rel).unwrap();
        assert!(r.local_app_data.is_empty());
        assert_eq!(
            r.local_unit_data,
            Databag::from([("c".to_owned(), "3".to_owned())])
        );
        assert_eq!(
            tools
                .relation_get(&rel, &Bag::Unit(unit("keystone/0")))
                .unwrap()["c"],
            "3"
        );
    }

    #[test]
    fn unknown_relations_and_strangers_fail_as_juju_does() {
        let tools = MemoryHookTools::new(unit("keystone/0"));
        let rel = tools.state().add_relation("shared-db", app("mysql"));
        let gone = RelationId::parse("shared-db:99").unwrap();
        let err = tools.relation_list(&gone).unwrap_err();
        assert!(err.is_relation_not_found());
        assert_eq!(
            err.to_string(),
            "relation-list failed (exit 2): ERROR invalid value \"shared-db:99\" for flag -r: relation not found"
        );
        let err = tools
            .relation_get(&rel, &Bag::Unit(unit("mysql/7")))
            .unwrap_err();
        assert!(matches!(err, HookToolError::Failed { code: 1, .. }));
    }

    #[test]
    fn relation_ids_sort_as_strings() {
        let tools = MemoryHookTools::new(unit("keystone/0"));
        {
            let mut st = tools.state();
            for _ in 0..11 {
                st.add_relation("shared-db", app("mysql"));
            }
        }
        let ids = tools.relation_ids("shared-db").unwrap();
        assert_eq!(ids[0].as_str(), "shared-db:0");
        assert_eq!(ids[1].as_str(), "shared-db:1");
        assert_eq!(ids[2].as_str(), "shared-db:10");
        assert!(tools.relation_ids("ha").unwrap().is_empty());
    }

    #[test]
    fn application_status_and_leader_settings_are_leader_only() {
        let tools = MemoryHookTools::new(unit("keystone/1"));
        let err = tools
            .status_set(StatusScope::Application, &Status::active("Unit is ready"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "status-set failed (exit 1): ERROR this unit is not the leader"
        );
        let err = tools.leader_set(&changes(&[("a", "b")])).unwrap_err();
        assert!(err.is_permission_denied());
        tools
            .status_set(StatusScope::Unit, &Status::waiting("x"))
            .unwrap();
        assert_eq!(tools.snapshot().unit_status, Some(Status::waiting("x")));
    }

    #[test]
    fn action_tools_need_an_action_and_check_keys() {
        let tools = MemoryHookTools::new(unit("keystone/0"));
        let err = tools.action_get().unwrap_err();
        assert_eq!(
            err.to_string(),
            "action-get failed (exit 1): ERROR not running an action"
        );
        tools.state().action = Some(MemoryAction::default());
        let err = tools
            .action_set(&[("stdout".to_owned(), "x".to_owned())].into())
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("ERROR cannot set reserved action key \"stdout\"")
        );
        let err = tools
            .action_set(&[("Foo".to_owned(), "x".to_owned())].into())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("must start and end with lowercase alphanumeric")
        );
        tools
            .action_set(&[("a.b".to_owned(), "1".to_owned())].into())
            .unwrap();
        tools.action_fail("").unwrap();
        let action = tools.snapshot().action.unwrap();
        assert_eq!(action.results["a.b"], "1");
        assert_eq!(
            action.failure.as_deref(),
            Some("action failed without reason given, check action for errors")
        );
    }

    #[test]
    fn secrets_follow_ownership_and_revisions() {
        let tools = MemoryHookTools::new(unit("keystone/0"));
        let content = |v: &str| -> SecretContent {
            [("fernet-0".to_owned(), Sensitive::new(v.to_owned()))].into()
        };
        let new = NewSecret {
            owner: SecretOwner::Application,
            label: Some("fernet-keys".into()),
            description: None,
        };
        let err = tools.secret_add(&content("a"), &new).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret-add failed (exit 1): ERROR this unit is not the leader"
        );
        tools.state().leader = true;
        let uri = tools.secret_add(&content("a"), &new).unwrap();
        tools.secret_set(&uri, &content("a")).unwrap();
        tools.secret_set(&uri, &content("b")).unwrap();
        assert_eq!(tools.snapshot().secrets[0].revisions.len(), 2);
        assert_eq!(
            tools.secret_get(&uri, SecretRead::Tracked).unwrap()["fernet-0"].expose(),
            "b"
        );
        assert_eq!(tools.secret_ids().unwrap(), vec![uri.clone()]);
        // Values never reach the call record.
        assert!(
            tools
                .snapshot()
                .calls
                .iter()
                .all(|c| c.args.iter().all(|a| !a.contains("=b") && a != "b"))
        );

        let consumed = tools.state().add_consumed_secret(content("x"));
        tools.state().secrets[1].revisions.push(content("y"));
        assert_eq!(
            tools.secret_get(&consumed, SecretRead::Tracked).unwrap()["fernet-0"].expose(),
            "x"
        );
        assert_eq!(
            tools.secret_get(&consumed, SecretRead::Peek).unwrap()["fernet-0"].expose(),
            "y"
        );
        assert_eq!(
            tools.secret_get(&consumed, SecretRead::Tracked).unwrap()["fernet-0"].expose(),
            "x"
        );
        assert_eq!(
            tools.secret_get(&consumed, SecretRead::Refresh).unwrap()["fernet-0"].expose(),
            "y"
        );
        assert_eq!(
            tools.secret_get(&consumed, SecretRead::Tracked).unwrap()["fernet-0"].expose(),
            "y"
        );
        let err = tools.secret_set(&consumed, &content("z")).unwrap_err();
        assert!(err.to_string().ends_with("ERROR permission denied"));
        let missing = SecretUri::parse("secret:nope").unwrap();
        assert!(
            tools
                .secret_get(&missing, SecretRead::Tracked)
                .unwrap_err()
                .is_secret_not_found()
        );
    }

    #[test]
    fn every_call_is_recorded() {
        let tools = MemoryHookTools::new(unit("keystone/0"));
        tools.config_get().unwrap();
        tools.is_leader().unwrap();
        tools.juju_log(LogLevel::Info, "hello").unwrap();
        let st = tools.snapshot();
        assert_eq!(st.tools_called(), ["config-get", "is-leader", "juju-log"]);
        assert_eq!(st.calls[2].args, ["--log-level", "INFO", "--", "hello"]);
        assert_eq!(st.log_lines(LogLevel::Info), ["hello"]);
    }
}
