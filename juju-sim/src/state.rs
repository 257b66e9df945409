//! The model's state: applications, units, relations and their data bags, secrets, statuses,
//! and the hook that is running now with its uncommitted changes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::charm::{CharmMeta, Role};

/// A relation data bag.
pub type Bag = BTreeMap<String, String>;

/// How an application's units run their hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharmKind {
    /// A real charm directory: Juju execs its `dispatch`.
    Dir(PathBuf),
    /// A remote charm scripted in Rust inside the test (see [`crate::scripted`]).
    Scripted,
    /// A charm's own code called inside the test process (see [`crate::InProcessCharm`]), with
    /// its charm directory for the metadata and `JUJU_CHARM_DIR`.
    InProcess(PathBuf),
    /// An application of another model, seen across a cross-model relation (see
    /// [`crate::controller`]): its units run no hooks here; their data is copied in by the
    /// controller.
    Remote(RemoteApp),
}

/// Where a remote application of a model really lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteApp {
    /// The model it lives in.
    pub model: String,
    /// Its name in that model.
    pub app: String,
    /// The offer URL this model consumed it by (`admin/<model>.<offer>`): set on the consuming
    /// side (a SAAS), unset for the synthetic `remote-<token>` application of the offering side.
    pub offer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusRecord {
    pub status: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub meta: CharmMeta,
    pub charm: CharmKind,
    /// Values set with `juju config` (defaults come from the metadata).
    pub config: Map<String, Value>,
    pub leader: Option<String>,
    pub status: StatusRecord,
    pub version: String,
    pub leader_settings: Bag,
    pub next_unit: u32,
    /// What `juju attach-resource` uploaded, by resource name.
    pub resources: BTreeMap<String, Vec<u8>>,
}

impl App {
    /// A newly deployed (or newly seen remote) application: no leader, no units yet, status
    /// unknown.
    pub fn new(name: &str, meta: CharmMeta, charm: CharmKind, config: Map<String, Value>) -> App {
        App {
            name: name.to_owned(),
            meta,
            charm,
            config,
            leader: None,
            status: StatusRecord {
                status: "unknown".to_owned(),
                message: String::new(),
            },
            version: String::new(),
            leader_settings: Bag::new(),
            next_unit: 0,
            resources: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Unit {
    pub name: String,
    pub app: String,
    pub address: String,
    pub status: StatusRecord,
    pub ports: BTreeSet<String>,
    pub queue: VecDeque<HookEvent>,
    /// The hook that failed and is retried before anything else (Juju blocks the queue).
    pub failed: Option<(HookEvent, u32)>,
    /// False once the unit's `remove` hook has run.
    pub alive: bool,
    /// Being removed: it runs its teardown hooks but takes part in nothing new.
    pub dying: bool,
    /// `hook failed: "<hook>"` while a failed hook waits for its retry.
    pub agent_error: Option<String>,
    /// Its machine is down ([`crate::Model::stop_machine`]): its agent runs nothing, its hooks
    /// wait, and Pacemaker moves what it held.
    pub machine_down: bool,
    /// Its unit agent is stopped ([`crate::Model::stop_agent`]): its hooks wait, while its
    /// machine and services go on.
    pub agent_stopped: bool,
}

/// One hook (or action) to run on a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    /// `install`, `cluster-relation-joined`, ... or the action name for actions.
    pub name: String,
    pub relation: Option<u32>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    pub secret: Option<(String, Option<String>, u32)>,
    pub action: Option<u64>,
}

impl HookEvent {
    pub fn simple(name: &str) -> HookEvent {
        HookEvent {
            name: name.to_owned(),
            relation: None,
            remote_unit: None,
            remote_app: None,
            departing_unit: None,
            secret: None,
            action: None,
        }
    }
}

/// One side of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationEnd {
    pub app: String,
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct Relation {
    pub id: u32,
    /// One end for a peer relation, two otherwise.
    pub ends: Vec<RelationEnd>,
    pub unit_data: BTreeMap<String, Bag>,
    pub app_data: BTreeMap<String, Bag>,
    /// Units that entered scope (relation-created ran or is queued).
    pub in_scope: BTreeSet<String>,
    /// For each unit, the remote units it has seen join and not yet depart.
    pub joined: BTreeMap<String, BTreeSet<String>>,
    pub container_scope: bool,
    pub dying: bool,
}

impl Relation {
    pub fn is_peer(&self) -> bool {
        self.ends.len() == 1
    }

    pub fn end_of(&self, app: &str) -> Option<&RelationEnd> {
        self.ends.iter().find(|e| e.app == app)
    }

    /// The other application seen from `app` (itself for a peer relation).
    pub fn remote_app(&self, app: &str) -> Option<&str> {
        if self.is_peer() {
            return self.ends.first().map(|e| e.app.as_str());
        }
        self.ends
            .iter()
            .find(|e| e.app != app)
            .map(|e| e.app.as_str())
    }

    pub fn involves(&self, app: &str) -> bool {
        self.ends.iter().any(|e| e.app == app)
    }
}

#[derive(Debug, Clone)]
pub struct Secret {
    pub id: String,
    /// `application:<app>` or `unit:<unit>`.
    pub owner: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub rotate: Option<String>,
    /// Revision n is at index n - 1.
    pub revisions: Vec<BTreeMap<String, String>>,
    /// Apps (or units) granted read access, with the relation that carries the grant.
    pub grants: BTreeMap<String, u32>,
    /// The revision each consumer unit tracks.
    pub tracked: BTreeMap<String, u32>,
    /// Labels consumers gave the secret.
    pub consumer_labels: BTreeMap<String, String>,
    /// The UUID of the model the secret lives in, when its URI names it
    /// (`secret://<uuid>/<id>`): set for the secrets of a model of a [`crate::Controller`],
    /// whose URIs reach across models; unset for a standalone model's (`secret:<id>`). A
    /// secret whose model is another one is a consumer's copy of a secret granted across a
    /// cross-model relation.
    pub source_model: Option<String>,
}

impl Secret {
    /// The URI its owner gets from `secret-add`.
    pub fn uri(&self) -> String {
        match &self.source_model {
            Some(model) => format!("secret://{model}/{}", self.id),
            None => format!("secret:{}", self.id),
        }
    }
    pub fn latest(&self) -> u32 {
        self.revisions.len() as u32
    }
}

/// A juju-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub unit: String,
    pub level: String,
    pub message: String,
}

/// What one hook run did.
#[derive(Debug, Clone, PartialEq)]
pub struct HookRun {
    pub unit: String,
    pub hook: String,
    pub exit_code: i32,
    pub duration: std::time::Duration,
    /// When it ended: wall times across several hooks (e.g. until a change reached every unit).
    pub ended: std::time::Instant,
    pub tool_calls: Vec<String>,
    pub stdout: String,
    pub stderr: String,
}

/// An action task and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionTask {
    pub id: u64,
    pub unit: String,
    pub name: String,
    pub params: Map<String, Value>,
    pub status: String,
    pub message: Option<String>,
    pub results: Map<String, Value>,
    pub logs: Vec<String>,
    pub stdout: String,
    pub stderr: String,
}

impl ActionTask {
    /// What `juju run` prints for a task that failed (`Action id <id> failed: <message>`), or
    /// None when it did not fail.
    pub fn failure(&self) -> Option<String> {
        (self.status == "failed").then(|| {
            format!(
                "Action id {} failed: {}",
                self.id,
                self.message.as_deref().unwrap_or_default()
            )
        })
    }
}

/// A change made by the running hook that Juju commits only if the hook exits 0.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    RelationSet {
        relation: u32,
        /// A unit name or an application name.
        bag: String,
        key: String,
        value: Option<String>,
    },
    OpenPort(String),
    ClosePort(String),
    SecretAdd(String),
    SecretSet {
        id: String,
        content: BTreeMap<String, String>,
    },
    SecretMeta {
        id: String,
        label: Option<String>,
        description: Option<String>,
    },
    SecretGrant {
        id: String,
        target: String,
        relation: u32,
    },
    SecretRevoke {
        id: String,
        target: String,
    },
    SecretRemove(String),
}

/// The hook running now.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub id: String,
    pub unit: String,
    pub event: HookEvent,
    pub pending: Vec<Pending>,
    pub calls: Vec<String>,
}

/// The next call of `tool` by `unit` fails with `code` and `ERROR <message>`, as the unit agent
/// does when it cannot answer (an agent restarting, a controller away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFault {
    pub unit: String,
    pub tool: String,
    pub code: i32,
    pub message: String,
}

/// The whole model.
#[derive(Debug, Clone)]
pub struct World {
    pub model_name: String,
    pub model_uuid: String,
    pub juju_version: String,
    pub apps: BTreeMap<String, App>,
    pub units: BTreeMap<String, Unit>,
    pub relations: BTreeMap<u32, Relation>,
    pub secrets: BTreeMap<String, Secret>,
    pub logs: Vec<LogLine>,
    pub hook_log: Vec<HookRun>,
    pub actions: BTreeMap<u64, ActionTask>,
    pub current: Option<HookContext>,
    /// Tool calls that will fail, once each (see [`crate::Model::fail_tool`]).
    pub tool_faults: Vec<ToolFault>,
    /// Where `resource-get` puts each unit's copy of a resource (set by the model).
    pub resource_dir: Option<std::path::PathBuf>,
    /// The virtual IPs each principal application asked its hacluster for (IPaddr2
    /// resources), which the model places on one of its live units' machines.
    pub vips: BTreeMap<String, Vec<std::net::Ipv4Addr>>,
    pub next_relation: u32,
    pub next_address: u32,
    /// Unit addresses are `127.0.<block>.<n>`: 1 for a standalone model; the models of a
    /// [`crate::Controller`] each have their own block.
    pub address_block: u8,
    /// Whether `secret-add` names the model in the URIs it gives (see [`Secret::source_model`]).
    pub secret_uris_name_model: bool,
    pub next_secret: u64,
    pub next_action: u64,
    pub next_context: u64,
}

impl World {
    pub fn new(juju_version: &str) -> World {
        World {
            model_name: "sim".to_owned(),
            model_uuid: "5a1d9c2e-0000-4000-8000-00000000cafe".to_owned(),
            juju_version: juju_version.to_owned(),
            apps: BTreeMap::new(),
            units: BTreeMap::new(),
            relations: BTreeMap::new(),
            secrets: BTreeMap::new(),
            logs: Vec::new(),
            hook_log: Vec::new(),
            actions: BTreeMap::new(),
            current: None,
            tool_faults: Vec::new(),
            resource_dir: None,
            vips: BTreeMap::new(),
            next_relation: 0,
            next_address: 1,
            address_block: 1,
            secret_uris_name_model: false,
            next_secret: 1,
            next_action: 1,
            next_context: 1,
        }
    }

    /// Adds a relation between `ends` (one end for a peer relation); returns its id.
    pub fn add_relation(&mut self, ends: Vec<RelationEnd>, container_scope: bool) -> u32 {
        let id = self.next_relation;
        self.next_relation += 1;
        self.relations.insert(
            id,
            Relation {
                id,
                ends,
                unit_data: BTreeMap::new(),
                app_data: BTreeMap::new(),
                in_scope: BTreeSet::new(),
                joined: BTreeMap::new(),
                container_scope,
                dying: false,
            },
        );
        id
    }

    pub(crate) fn version_at_least(&self, wanted: (u32, u32)) -> bool {
        let mut parts = self
            .juju_version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(0);
        let minor = parts.next().unwrap_or(0);
        (major, minor) >= wanted
    }

    /// Whether the model's Juju has secrets (3.1 and later).
    pub fn supports_secrets(&self) -> bool {
        self.version_at_least((3, 1))
    }

    /// Whether the model's Juju runs `dispatch` (2.8 and later); before, it runs
    /// `hooks/<hook>` and `actions/<action>` with no `JUJU_DISPATCH_PATH`.
    pub fn runs_dispatch(&self) -> bool {
        self.version_at_least((2, 8))
    }

    /// Whether `app` is another model's application seen across a cross-model relation.
    pub fn is_remote_app(&self, app: &str) -> bool {
        self.apps
            .get(app)
            .is_some_and(|a| matches!(a.charm, CharmKind::Remote(_)))
    }

    /// Whether `unit` runs hooks in this model: a unit of a local application. A remote unit
    /// stands for a unit of another model and runs none here.
    pub fn runs_hooks(&self, unit: &str) -> bool {
        self.units.contains_key(unit) && !self.is_remote_app(Self::app_of(unit))
    }

    /// Whether `secret` is this model's own, not a copy of another model's secret granted to
    /// one of its applications.
    pub fn owns_secret(&self, secret: &Secret) -> bool {
        secret
            .source_model
            .as_ref()
            .is_none_or(|m| *m == self.model_uuid)
    }

    pub fn app_of(unit: &str) -> &str {
        unit.split('/').next().unwrap_or(unit)
    }

    pub fn live_units_of(&self, app: &str) -> Vec<String> {
        self.units
            .values()
            .filter(|u| u.app == app && u.alive && !u.dying)
            .map(|u| u.name.clone())
            .collect()
    }

    pub fn is_leader(&self, unit: &str) -> bool {
        self.apps
            .get(Self::app_of(unit))
            .and_then(|a| a.leader.as_deref())
            == Some(unit)
    }

    /// Effective config of an app: defaults overlaid with set values.
    pub fn config_of(&self, app: &str) -> Map<String, Value> {
        let Some(app) = self.apps.get(app) else {
            return Map::new();
        };
        let mut config = Map::new();
        for (name, option) in &app.meta.options {
            if let Some(default) = &option.default {
                config.insert(name.clone(), default.clone());
            }
        }
        for (name, value) in &app.config {
            config.insert(name.clone(), value.clone());
        }
        config
    }

    /// Queues a hook on a unit of this model (nothing for a dead or remote unit).
    pub fn queue(&mut self, unit: &str, event: HookEvent) {
        if !self.runs_hooks(unit) {
            return;
        }
        if let Some(u) = self.units.get_mut(unit)
            && u.alive
        {
            u.queue.push_back(event);
        }
    }

    /// The committed content of a bag, as another unit would read it.
    pub fn bag(&self, relation: u32, bag: &str) -> Bag {
        let Some(rel) = self.relations.get(&relation) else {
            return Bag::new();
        };
        if bag.contains('/') {
            rel.unit_data.get(bag).cloned().unwrap_or_default()
        } else {
            rel.app_data.get(bag).cloned().unwrap_or_default()
        }
    }

    /// The relations an application takes part in, live ones only.
    pub fn relations_of(&self, app: &str) -> Vec<u32> {
        self.relations
            .values()
            .filter(|r| r.involves(app) && !r.dying)
            .map(|r| r.id)
            .collect()
    }

    /// Units on the other side of a relation, as seen by `unit` (its peers in a peer
    /// relation), alive ones.
    pub fn remote_units(&self, relation: u32, unit: &str) -> Vec<String> {
        let Some(rel) = self.relations.get(&relation) else {
            return Vec::new();
        };
        let app = Self::app_of(unit);
        let Some(remote_app) = rel.remote_app(app) else {
            return Vec::new();
        };
        let mut units = self.live_units_of(remote_app);
        units.retain(|u| u != unit);
        if rel.container_scope {
            // A subordinate relation pairs units on the same machine: here, same number.
            let number = unit.rsplit('/').next().unwrap_or_default();
            units.retain(|u| u.rsplit('/').next() == Some(number));
        }
        units
    }

    /// Endpoint name of a relation for `app`.
    pub fn endpoint_of(&self, relation: u32, app: &str) -> Option<String> {
        self.relations
            .get(&relation)
            .and_then(|r| r.end_of(app))
            .map(|e| e.endpoint.clone())
    }

    /// The role of a relation for an app (peer relations are peers).
    pub fn role_of(&self, relation: u32, app: &str) -> Option<Role> {
        let endpoint = self.endpoint_of(relation, app)?;
        self.apps.get(app)?.meta.endpoint(&endpoint).map(|e| e.role)
    }
}
