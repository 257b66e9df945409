//! Everything the charm knows about Juju: names, the hook environment, and the hook tools.
//!
//! [`Juju`] is the per-hook facade the rest of the charm uses. Each hook-tool call is a process
//! start and a round trip to the unit agent, so it caches every read for the hook, makes writes
//! visible to later reads (as Juju does within a hook), drops writes that change nothing, and
//! counts the calls it makes.

pub mod context;
pub mod error;
pub mod memory;
pub mod process;
pub mod tools;
pub mod types;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

pub use context::{
    ActionContext, ContextError, JujuContext, JujuVersion, RelationContext, SecretContext,
};
pub use error::{HookToolError, ToolResult};
pub use memory::{MemoryHookTools, MemoryState};
pub use process::ProcessHookTools;
pub use tools::{Databag, DatabagChanges, HookTools, NewSecret, SecretContent};
pub use types::*;

/// Hook-tool calls made so far, per tool, shared by the facade and its log sink.
#[derive(Debug, Default)]
struct CallCounts(Mutex<BTreeMap<&'static str, u32>>);

impl CallCounts {
    fn add(&self, tool: &'static str) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(tool).or_default() += 1;
    }

    fn get(&self) -> BTreeMap<&'static str, u32> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A thread-safe handle that sends lines to juju-log through the facade's tools, counted with
/// the facade's calls. The logging layer holds one.
#[derive(Clone)]
pub struct JujuLogSink {
    tools: Arc<dyn HookTools>,
    counts: Arc<CallCounts>,
}

impl JujuLogSink {
    pub fn log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.counts.add("juju-log");
        self.tools.juju_log(level, message)
    }
}

/// What this hook has read or written so far.
#[derive(Debug, Default)]
struct Cache {
    config: Option<Map<String, Value>>,
    is_leader: Option<bool>,
    relation_ids: BTreeMap<String, Vec<RelationId>>,
    relation_units: BTreeMap<RelationId, Vec<UnitName>>,
    remote_apps: BTreeMap<RelationId, Option<AppName>>,
    relation_data: BTreeMap<(RelationId, Bag), Databag>,
    leader_settings: Option<Databag>,
    statuses: Vec<(bool, Status)>,
    action_params: Option<Map<String, Value>>,
    opened_ports: Option<BTreeSet<Port>>,
    networks: BTreeMap<String, NetworkInfo>,
    unit_values: BTreeMap<String, String>,
    goal_state: Option<Value>,
    secrets: BTreeMap<SecretUri, SecretContent>,
    secret_ids: Option<Vec<SecretUri>>,
}

/// Keeps only the changes that differ from `known`; `None` and `""` both mean absent.
fn effective_changes(known: &Databag, changes: &DatabagChanges) -> DatabagChanges {
    changes
        .iter()
        .filter(|(key, value)| {
            let wanted = value.as_deref().filter(|v| !v.is_empty());
            known.get(*key).map(String::as_str) != wanted
        })
        .map(|(k, v)| (k.clone(), v.clone().filter(|v| !v.is_empty())))
        .collect()
}

fn apply_changes(bag: &mut Databag, changes: &DatabagChanges) {
    for (key, value) in changes {
        match value {
            Some(v) => bag.insert(key.clone(), v.clone()),
            None => bag.remove(key),
        };
    }
}

/// The per-hook view of Juju, over any [`HookTools`].
pub struct Juju {
    tools: Arc<dyn HookTools>,
    unit: UnitName,
    secrets: bool,
    cache: RefCell<Cache>,
    counts: Arc<CallCounts>,
}

impl Juju {
    /// The facade for `unit`, on a Juju with secrets (see [`Juju::on_version`]).
    pub fn new(tools: Arc<dyn HookTools>, unit: UnitName) -> Juju {
        Juju {
            tools,
            unit,
            secrets: true,
            cache: RefCell::new(Cache::default()),
            counts: Arc::new(CallCounts::default()),
        }
    }

    /// What the running Juju supports, from its version.
    pub fn on_version(mut self, version: &JujuVersion) -> Juju {
        self.secrets = version.supports_secrets();
        self
    }

    /// Juju ≥ 3.1: secrets exist (older Juju keeps shared secrets in the peer bag).
    pub fn supports_secrets(&self) -> bool {
        self.secrets
    }

    /// This unit.
    pub fn unit(&self) -> &UnitName {
        &self.unit
    }

    /// This unit's application.
    pub fn app(&self) -> AppName {
        self.unit.app()
    }

    /// A juju-log handle for the logging layer, counted with this facade's calls.
    pub fn log_sink(&self) -> JujuLogSink {
        JujuLogSink {
            tools: Arc::clone(&self.tools),
            counts: Arc::clone(&self.counts),
        }
    }

    /// Hook-tool calls made through this facade (and its log sink), per tool name.
    pub fn calls(&self) -> BTreeMap<&'static str, u32> {
        self.counts.get()
    }

    /// All hook-tool calls made through this facade (and its log sink).
    pub fn total_calls(&self) -> u32 {
        self.calls().values().sum()
    }

    fn count(&self, tool: &'static str) -> &dyn HookTools {
        self.counts.add(tool);
        self.tools.as_ref()
    }

    /// Reads through the cache: `get` picks the cached slot, `fetch` fills it.
    fn cached<T: Clone>(
        &self,
        get: impl Fn(&mut Cache) -> &mut Option<T>,
        fetch: impl FnOnce() -> ToolResult<T>,
    ) -> ToolResult<T> {
        if let Some(value) = get(&mut self.cache.borrow_mut()).clone() {
            return Ok(value);
        }
        let value = fetch()?;
        *get(&mut self.cache.borrow_mut()) = Some(value.clone());
        Ok(value)
    }

    /// Keyed variant of [`Juju::cached`].
    fn cached_in<K: Ord + Clone, T: Clone>(
        &self,
        map: impl Fn(&mut Cache) -> &mut BTreeMap<K, T>,
        key: &K,
        fetch: impl FnOnce() -> ToolResult<T>,
    ) -> ToolResult<T> {
        if let Some(value) = map(&mut self.cache.borrow_mut()).get(key) {
            return Ok(value.clone());
        }
        let value = fetch()?;
        map(&mut self.cache.borrow_mut()).insert(key.clone(), value.clone());
        Ok(value)
    }

    /// config-get: every option that has a value.
    pub fn config(&self) -> ToolResult<Map<String, Value>> {
        self.cached(|c| &mut c.config, || self.count("config-get").config_get())
    }

    pub fn is_leader(&self) -> ToolResult<bool> {
        self.cached(|c| &mut c.is_leader, || self.count("is-leader").is_leader())
    }

    pub fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        self.cached_in(
            |c| &mut c.relation_ids,
            &endpoint.to_owned(),
            || self.count("relation-ids").relation_ids(endpoint),
        )
    }

    /// The remote units in a relation (the other peers, for a peer relation).
    pub fn relation_units(&self, relation: &RelationId) -> ToolResult<Vec<UnitName>> {
        self.cached_in(
            |c| &mut c.relation_units,
            relation,
            || self.count("relation-list").relation_list(relation),
        )
    }

    pub fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<AppName>> {
        self.cached_in(
            |c| &mut c.remote_apps,
            relation,
            || self.count("relation-list").relation_remote_app(relation),
        )
    }

    /// One data bag of a relation.
    pub fn relation_data(&self, relation: &RelationId, bag: &Bag) -> ToolResult<Databag> {
        self.cached_in(
            |c| &mut c.relation_data,
            &(relation.clone(), bag.clone()),
            || self.count("relation-get").relation_get(relation, bag),
        )
    }

    /// Merges `changes` into this unit's bag (`app = false`) or, as leader, this application's.
    /// Changes that match a bag already read in this hook are not sent; nothing left, no call.
    pub fn relation_set(
        &self,
        relation: &RelationId,
        app: bool,
        changes: &DatabagChanges,
    ) -> ToolResult<()> {
        let bag = if app {
            Bag::App(self.app())
        } else {
            Bag::Unit(self.unit.clone())
        };
        let key = (relation.clone(), bag);
        let known = self.cache.borrow().relation_data.get(&key).cloned();
        let to_send = match &known {
            Some(known) => effective_changes(known, changes),
            None => changes.clone(),
        };
        if to_send.is_empty() {
            return Ok(());
        }
        self.count("relation-set")
            .relation_set(relation, app, &to_send)?;
        if let Some(bag) = self.cache.borrow_mut().relation_data.get_mut(&key) {
            apply_changes(bag, &to_send);
        }
        Ok(())
    }

    /// Leadership settings (legacy, but the Python charm keeps its state there).
    pub fn leader_get(&self) -> ToolResult<Databag> {
        self.cached(
            |c| &mut c.leader_settings,
            || self.count("leader-get").leader_get(),
        )
    }

    /// Writes leadership settings, skipping keys that already hold the value.
    pub fn leader_set(&self, changes: &DatabagChanges) -> ToolResult<()> {
        let known = self.cache.borrow().leader_settings.clone();
        let to_send = match &known {
            Some(known) => effective_changes(known, changes),
            None => changes.clone(),
        };
        if to_send.is_empty() {
            return Ok(());
        }
        self.count("leader-set").leader_set(&to_send)?;
        if let Some(settings) = self.cache.borrow_mut().leader_settings.as_mut() {
            apply_changes(settings, &to_send);
        }
        Ok(())
    }

    /// Sets the unit's (or, as leader, the application's) status; a repeat within the hook is
    /// not sent.
    pub fn status_set(&self, scope: StatusScope, status: &Status) -> ToolResult<()> {
        let app = scope == StatusScope::Application;
        let last = self
            .cache
            .borrow()
            .statuses
            .iter()
            .rev()
            .find(|(a, _)| *a == app)
            .map(|(_, s)| s.clone());
        if last.as_ref() == Some(status) {
            return Ok(());
        }
        self.count("status-set").status_set(scope, status)?;
        self.cache.borrow_mut().statuses.push((app, status.clone()));
        Ok(())
    }

    pub fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.count("application-version-set")
            .application_version_set(version)
    }

    pub fn log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.count("juju-log").juju_log(level, message)
    }

    pub fn action_params(&self) -> ToolResult<Map<String, Value>> {
        self.cached(
            |c| &mut c.action_params,
            || self.count("action-get").action_get(),
        )
    }

    pub fn action_set(&self, results: &BTreeMap<String, String>) -> ToolResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        self.count("action-set").action_set(results)
    }

    pub fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.count("action-fail").action_fail(message)
    }

    pub fn action_log(&self, message: &str) -> ToolResult<()> {
        self.count("action-log").action_log(message)
    }

    /// Ports opened by this unit, as of the hook's start plus this hook's own changes.
    pub fn opened_ports(&self) -> ToolResult<BTreeSet<Port>> {
        self.cached(
            |c| &mut c.opened_ports,
            || {
                Ok(self
                    .count("opened-ports")
                    .opened_ports()?
                    .into_iter()
                    .collect())
            },
        )
    }

    /// Opens `port`, unless this hook already knows it is open.
    pub fn open_port(&self, port: Port) -> ToolResult<()> {
        if self
            .cache
            .borrow()
            .opened_ports
            .as_ref()
            .is_some_and(|p| p.contains(&port))
        {
            return Ok(());
        }
        self.count("open-port").open_port(port)?;
        if let Some(ports) = self.cache.borrow_mut().opened_ports.as_mut() {
            ports.insert(port);
        }
        Ok(())
    }

    /// Closes `port`, unless this hook already knows it is closed.
    pub fn close_port(&self, port: Port) -> ToolResult<()> {
        if self
            .cache
            .borrow()
            .opened_ports
            .as_ref()
            .is_some_and(|p| !p.contains(&port))
        {
            return Ok(());
        }
        self.count("close-port").close_port(port)?;
        if let Some(ports) = self.cache.borrow_mut().opened_ports.as_mut() {
            ports.remove(&port);
        }
        Ok(())
    }

    pub fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        self.cached_in(
            |c| &mut c.networks,
            &binding.to_owned(),
            || self.count("network-get").network_get(binding),
        )
    }

    /// unit-get `private-address` or `public-address`.
    pub fn unit_get(&self, key: &str) -> ToolResult<String> {
        self.cached_in(
            |c| &mut c.unit_values,
            &key.to_owned(),
            || self.count("unit-get").unit_get(key),
        )
    }

    pub fn goal_state(&self) -> ToolResult<Value> {
        self.cached(
            |c| &mut c.goal_state,
            || self.count("goal-state").goal_state(),
        )
    }

    /// Creates a secret; its content is then known to this hook.
    pub fn secret_add(
        &self,
        content: &SecretContent,
        options: &NewSecret,
    ) -> ToolResult<SecretUri> {
        let uri = self.count("secret-add").secret_add(content, options)?;
        let mut cache = self.cache.borrow_mut();
        cache.secrets.insert(uri.clone(), content.clone());
        if let Some(ids) = cache.secret_ids.as_mut() {
            ids.push(uri.clone());
        }
        Ok(uri)
    }

    /// Reads a secret. Tracked reads are cached; `Peek` and `Refresh` always ask Juju (they exist
    /// to see a newer revision), and a refresh becomes the cached tracked content.
    pub fn secret_get(&self, uri: &SecretUri, read: SecretRead) -> ToolResult<SecretContent> {
        if read == SecretRead::Tracked {
            return self.cached_in(
                |c| &mut c.secrets,
                uri,
                || self.count("secret-get").secret_get(uri, read),
            );
        }
        let content = self.count("secret-get").secret_get(uri, read)?;
        if read == SecretRead::Refresh {
            self.cache
                .borrow_mut()
                .secrets
                .insert(uri.clone(), content.clone());
        }
        Ok(content)
    }

    /// Sets an owned secret's content, unless this hook knows it already holds exactly that.
    pub fn secret_set(&self, uri: &SecretUri, content: &SecretContent) -> ToolResult<()> {
        if self.cache.borrow().secrets.get(uri) == Some(content) {
            return Ok(());
        }
        self.count("secret-set").secret_set(uri, content)?;
        self.cache
            .borrow_mut()
            .secrets
            .insert(uri.clone(), content.clone());
        Ok(())
    }

    pub fn secret_grant(
        &self,
        uri: &SecretUri,
        relation: &RelationId,
        unit: Option<&UnitName>,
    ) -> ToolResult<()> {
        self.count("secret-grant").secret_grant(uri, relation, unit)
    }

    pub fn secret_ids(&self) -> ToolResult<Vec<SecretUri>> {
        self.cached(
            |c| &mut c.secret_ids,
            || self.count("secret-ids").secret_ids(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Sensitive;

    fn setup(leader: bool) -> (Arc<MemoryHookTools>, Juju, RelationId) {
        let unit = UnitName::parse("keystone/0").unwrap();
        let tools = Arc::new(MemoryHookTools::new(unit.clone()));
        let rel = {
            let mut st = tools.state();
            st.leader = leader;
            st.config.insert("debug".into(), Value::Bool(false));
            let rel = st.add_relation("identity-service", AppName::parse("nova").unwrap());
            let r = st.relation_mut(&rel).unwrap();
            r.remote_units
                .insert(UnitName::parse("nova/0").unwrap(), Databag::new());
            r.local_unit_data
                .insert("private-address".into(), "10.0.0.1".into());
            rel
        };
        let juju = Juju::new(tools.clone(), unit);
        (tools, juju, rel)
    }

    fn set(pairs: &[(&str, Option<&str>)]) -> DatabagChanges {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn reads_are_cached_for_the_hook() {
        let (tools, juju, rel) = setup(true);
        for _ in 0..3 {
            juju.config().unwrap();
            juju.is_leader().unwrap();
            juju.relation_ids("identity-service").unwrap();
            juju.relation_units(&rel).unwrap();
            juju.relation_data(&rel, &Bag::Unit(UnitName::parse("nova/0").unwrap()))
                .unwrap();
            juju.leader_get().unwrap();
            juju.goal_state().unwrap();
        }
        assert_eq!(
            tools.snapshot().tools_called(),
            [
                "config-get",
                "is-leader",
                "relation-ids",
                "relation-list",
                "relation-get",
                "leader-get",
                "goal-state"
            ]
        );
        assert_eq!(juju.total_calls(), 7);
        assert_eq!(juju.calls()["relation-get"], 1);
    }

    #[test]
    fn writes_are_visible_to_later_reads_and_no_ops_are_not_sent() {
        let (tools, juju, rel) = setup(true);
        let own = Bag::Unit(juju.unit().clone());
        let before = juju.relation_data(&rel, &own).unwrap();
        assert_eq!(before["private-address"], "10.0.0.1");
        juju.relation_set(&rel, false, &set(&[("service_port", Some("5000"))]))
            .unwrap();
        assert_eq!(
            juju.relation_data(&rel, &own).unwrap()["service_port"],
            "5000"
        );
        // Same value again, and deleting an absent key: nothing to send.
        juju.relation_set(
            &rel,
            false,
            &set(&[("service_port", Some("5000")), ("gone", None)]),
        )
        .unwrap();
        juju.relation_set(&rel, false, &set(&[("service_port", Some(""))]))
            .unwrap();
        assert!(
            !juju
                .relation_data(&rel, &own)
                .unwrap()
                .contains_key("service_port")
        );
        let st = tools.snapshot();
        assert_eq!(
            st.tools_called(),
            ["relation-get", "relation-set", "relation-set"]
        );
        assert_eq!(
            st.calls[1].args,
            ["-r", "identity-service:0", "service_port=5000"]
        );
        let stored = &st.relation(&rel).unwrap().local_unit_data;
        assert!(!stored.contains_key("service_port"));
    }

    #[test]
    fn unread_bags_are_written_as_asked() {
        let (tools, juju, rel) = setup(true);
        juju.relation_set(&rel, true, &set(&[("a", Some("1"))]))
            .unwrap();
        assert_eq!(tools.snapshot().tools_called(), ["relation-set"]);
        let app = Bag::App(juju.app());
        assert_eq!(juju.relation_data(&rel, &app).unwrap()["a"], "1");
    }

    #[test]
    fn failures_pass_through_untouched() {
        let (_, juju, rel) = setup(false);
        let err = juju
            .relation_set(&rel, true, &set(&[("a", Some("1"))]))
            .unwrap_err();
        assert!(err.is_permission_denied());
        let err = juju
            .status_set(StatusScope::Application, &Status::active("Unit is ready"))
            .unwrap_err();
        assert!(matches!(err, HookToolError::Failed { code: 1, .. }));
    }

    #[test]
    fn leader_settings_statuses_ports_and_secrets_skip_repeats() {
        let (tools, juju, _) = setup(true);
        juju.leader_get().unwrap();
        juju.leader_set(&set(&[("db-initialised", Some("True"))]))
            .unwrap();
        juju.leader_set(&set(&[("db-initialised", Some("True"))]))
            .unwrap();
        assert_eq!(juju.leader_get().unwrap()["db-initialised"], "True");

        juju.status_set(StatusScope::Unit, &Status::active("Unit is ready"))
            .unwrap();
        juju.status_set(StatusScope::Unit, &Status::active("Unit is ready"))
            .unwrap();

        juju.opened_ports().unwrap();
        juju.open_port(Port::tcp(5000)).unwrap();
        juju.open_port(Port::tcp(5000)).unwrap();
        assert!(juju.opened_ports().unwrap().contains(&Port::tcp(5000)));
        juju.close_port(Port::tcp(35357)).unwrap();

        let content: SecretContent =
            [("fernet-0".to_owned(), Sensitive::new("k".to_owned()))].into();
        let options = NewSecret {
            owner: SecretOwner::Application,
            label: None,
            description: None,
        };
        let uri = juju.secret_add(&content, &options).unwrap();
        juju.secret_set(&uri, &content).unwrap();
        assert_eq!(juju.secret_get(&uri, SecretRead::Tracked).unwrap(), content);

        assert_eq!(
            tools.snapshot().tools_called(),
            [
                "leader-get",
                "leader-set",
                "status-set",
                "opened-ports",
                "open-port",
                "secret-add"
            ]
        );
    }

    #[test]
    fn the_log_sink_counts_with_the_facade() {
        let (tools, juju, _) = setup(false);
        juju.log_sink().log(LogLevel::Warning, "careful").unwrap();
        assert_eq!(juju.calls()["juju-log"], 1);
        assert_eq!(
            tools.snapshot().logs,
            [(LogLevel::Warning, "careful".to_owned())]
        );
    }
}
