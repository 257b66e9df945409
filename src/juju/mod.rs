//! Everything the charm knows about Juju: names, the hook environment, and the hook tools.
//!
//! [`Juju`] is the per-hook facade the rest of the charm uses. Each hook-tool call is a process
//! start and a round trip to the unit agent, so it caches every read for the hook, makes writes
//! visible to later reads (as Juju does within a hook), drops writes that change nothing, sends
//! relation data once per bag when the hook ends ([`Juju::commit`]; Juju itself publishes it
//! only then), and counts the calls it makes.

pub mod context;
pub mod error;
pub mod process;
pub mod tools;
pub mod types;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

pub use context::{
    ActionContext, ContextError, JujuContext, JujuVersion, RelationContext, SecretContext,
};
pub use error::{HookToolError, ToolResult};
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
    networks: BTreeMap<String, NetworkInfo>,
    secrets: BTreeMap<SecretUri, SecretContent>,
    /// Secrets this hook read with `--refresh` (their latest revision, in `secrets`).
    refreshed: std::collections::BTreeSet<SecretUri>,
    /// Secrets this hook set, with the content it set.
    secrets_set: BTreeMap<SecretUri, SecretContent>,
    /// Relation data this hook set, by relation and bag (true: the application's), sent by
    /// [`Juju::commit`].
    pending: BTreeMap<(RelationId, bool), DatabagChanges>,
    resources: BTreeMap<String, Option<Vec<u8>>>,
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
    cross_model_secrets: bool,
    model_name: String,
    relation: Option<RelationContext>,
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
            cross_model_secrets: true,
            model_name: String::new(),
            relation: None,
            cache: RefCell::new(Cache::default()),
            counts: Arc::new(CallCounts::default()),
        }
    }

    /// The running hook's context: what its Juju supports (from the version) and its relation.
    pub fn in_context(mut self, ctx: &JujuContext) -> Juju {
        self.secrets = ctx.version.supports_secrets();
        self.cross_model_secrets = ctx.version.supports_cross_model_secrets();
        self.model_name = ctx.model_name.clone();
        self.relation = ctx.relation.clone();
        self
    }

    /// The relation of the running relation hook.
    pub fn relation_id(&self) -> Option<RelationId> {
        self.relation.as_ref().map(|r| r.id.clone())
    }

    /// Juju ≥ 3.1: secrets exist (older Juju keeps shared secrets in the peer bag).
    pub fn supports_secrets(&self) -> bool {
        self.secrets
    }

    /// Juju ≥ 3.3: a secret granted across a cross-model relation can be read on the other
    /// side.
    pub fn supports_cross_model_secrets(&self) -> bool {
        self.cross_model_secrets
    }

    /// The model this unit runs in (`JUJU_MODEL_NAME`; empty when Juju did not say).
    pub fn model_name(&self) -> &str {
        &self.model_name
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

    /// The remote application of a relation.
    pub fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<AppName>> {
        self.cached_in(
            |c| &mut c.remote_apps,
            relation,
            || self.count("relation-list").relation_remote_app(relation),
        )
    }

    /// Lets the relation's remote application read an owned secret.
    pub fn secret_grant(&self, uri: &SecretUri, relation: &RelationId) -> ToolResult<()> {
        self.count("secret-grant").secret_grant(uri, relation)
    }

    /// Removes an owned secret, every revision (nobody can read it afterwards).
    pub fn secret_remove(&self, uri: &SecretUri) -> ToolResult<()> {
        self.count("secret-remove").secret_remove(uri)?;
        let mut cache = self.cache.borrow_mut();
        cache.secrets.remove(uri);
        cache.refreshed.remove(uri);
        cache.secrets_set.remove(uri);
        Ok(())
    }

    /// One data bag of a relation (with what this hook set in it).
    pub fn relation_data(&self, relation: &RelationId, bag: &Bag) -> ToolResult<Databag> {
        self.cached_in(
            |c| &mut c.relation_data,
            &(relation.clone(), bag.clone()),
            || {
                let mut data = self.count("relation-get").relation_get(relation, bag)?;
                if let Some(app) = self.own_bag(bag)
                    && let Some(changes) = self.cache.borrow().pending.get(&(relation.clone(), app))
                {
                    apply_changes(&mut data, changes);
                }
                Ok(data)
            },
        )
    }

    /// Whether `bag` is this unit's (false) or, as it may write it, this application's (true).
    fn own_bag(&self, bag: &Bag) -> Option<bool> {
        match bag {
            Bag::Unit(unit) => (*unit == self.unit).then_some(false),
            Bag::App(app) => (*app == self.app()).then_some(true),
        }
    }

    /// Merges `changes` into this unit's bag (`app = false`) or, as leader, this application's,
    /// when the hook ends ([`Juju::commit`]); later reads in this hook see them. Changes that
    /// match a bag already read in this hook are dropped.
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
        // Juju refuses a non-leader's application data at once: so does this.
        if app && !self.is_leader()? {
            return self
                .count("relation-set")
                .relation_set(relation, app, &to_send);
        }
        let mut cache = self.cache.borrow_mut();
        cache
            .pending
            .entry((relation.clone(), app))
            .or_default()
            .extend(to_send.clone());
        if let Some(bag) = cache.relation_data.get_mut(&key) {
            apply_changes(bag, &to_send);
        }
        Ok(())
    }

    /// Sends the relation data this hook set: one `relation-set` per bag. Called once the hook
    /// or action has done its work; a hook that fails sends none, as Juju discards a failed
    /// hook's relation data.
    pub fn commit(&self) -> ToolResult<()> {
        let pending = std::mem::take(&mut self.cache.borrow_mut().pending);
        for ((relation, app), changes) in &pending {
            self.count("relation-set")
                .relation_set(relation, *app, changes)?;
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

    /// An attached resource's content (None: none was attached); read once per hook.
    pub fn resource_get(&self, name: &str) -> ToolResult<Option<Vec<u8>>> {
        self.cached_in(
            |c| &mut c.resources,
            &name.to_owned(),
            || self.count("resource-get").resource_get(name),
        )
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

    pub fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        self.cached_in(
            |c| &mut c.networks,
            &binding.to_owned(),
            || self.count("network-get").network_get(binding),
        )
    }

    /// The units of this application Juju means to have (`goal-state`).
    pub fn goal_state(&self) -> ToolResult<GoalState> {
        self.count("goal-state").goal_state()
    }

    /// Creates a secret; its content is then known to this hook.
    pub fn secret_add(
        &self,
        content: &SecretContent,
        options: &NewSecret,
    ) -> ToolResult<SecretUri> {
        let uri = self.count("secret-add").secret_add(content, options)?;
        self.cache
            .borrow_mut()
            .secrets
            .insert(uri.clone(), content.clone());
        Ok(uri)
    }

    /// Reads a secret. Tracked reads are cached; `Peek` and `Refresh` always ask Juju (they exist
    /// to see a newer revision), and a refresh becomes the cached tracked content.
    pub fn secret_get(&self, uri: &SecretUri, read: SecretRead) -> ToolResult<SecretContent> {
        // What this hook set is what the secret holds once the hook commits; Juju itself would
        // still show the old revision until then.
        if let Some(content) = self.cache.borrow().secrets_set.get(uri) {
            return Ok(content.clone());
        }
        if read == SecretRead::Tracked {
            return self.cached_in(
                |c| &mut c.secrets,
                uri,
                || self.count("secret-get").secret_get(uri, read),
            );
        }
        if read == SecretRead::Refresh
            && self.cache.borrow().refreshed.contains(uri)
            && let Some(content) = self.cache.borrow().secrets.get(uri)
        {
            return Ok(content.clone());
        }
        let content = self.count("secret-get").secret_get(uri, read)?;
        if read == SecretRead::Refresh {
            let mut cache = self.cache.borrow_mut();
            cache.secrets.insert(uri.clone(), content.clone());
            cache.refreshed.insert(uri.clone());
        }
        Ok(content)
    }

    /// Sets an owned secret's content, unless this hook knows it already holds exactly that.
    pub fn secret_set(&self, uri: &SecretUri, content: &SecretContent) -> ToolResult<()> {
        if self.cache.borrow().secrets.get(uri) == Some(content) {
            return Ok(());
        }
        self.count("secret-set").secret_set(uri, content)?;
        let mut cache = self.cache.borrow_mut();
        cache.secrets.insert(uri.clone(), content.clone());
        cache.secrets_set.insert(uri.clone(), content.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Sensitive;
    use crate::testing::Sim;

    const LEADER: &str = "keystone/0";
    const OTHER: &str = "keystone/1";

    fn setup() -> (Sim, RelationId) {
        Sim::keystone_and_nova()
    }

    fn set(pairs: &[(&str, Option<&str>)]) -> DatabagChanges {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn reads_are_cached_for_the_hook() {
        let (mut sim, rel) = setup();
        assert!(sim.with_hook(LEADER, "config-changed", move |juju, _, _| {
            for _ in 0..3 {
                juju.config().unwrap();
                juju.is_leader().unwrap();
                juju.relation_ids("identity-service").unwrap();
                juju.relation_units(&rel).unwrap();
                juju.relation_data(&rel, &Bag::Unit(UnitName::parse("nova/0").unwrap()))
                    .unwrap();
                juju.leader_get().unwrap();
            }
            assert_eq!(juju.total_calls(), 6);
            assert_eq!(juju.calls()["relation-get"], 1);
            true
        }));
        assert_eq!(
            sim.tools_called(LEADER),
            [
                "config-get",
                "is-leader",
                "relation-ids",
                "relation-list",
                "relation-get",
                "leader-get"
            ]
        );
    }

    #[test]
    fn writes_are_visible_to_later_reads_and_no_ops_are_not_sent() {
        let (mut sim, rel) = setup();
        let id = rel.as_str().to_owned();
        assert!(sim.with_hook(LEADER, "config-changed", move |juju, _, _| {
            let own = Bag::Unit(juju.unit().clone());
            let before = juju.relation_data(&rel, &own).unwrap();
            assert!(before.contains_key("private-address"), "{before:?}");
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
            true
        }));
        // The bag's changes go once, when the hook ends.
        let run = sim.model.hook_log().pop().unwrap();
        assert_eq!(
            run.tool_calls,
            [
                format!("relation-get --format=json -r {id} - keystone/0"),
                format!("relation-set -r {id} --file -"),
            ]
        );
        let number = id.rsplit(':').next().unwrap().parse().unwrap();
        let stored = sim.model.relation_data(number, LEADER);
        assert!(!stored.contains_key("service_port"), "{stored:?}");
    }

    #[test]
    fn unread_bags_are_written_as_asked() {
        let (mut sim, rel) = setup();
        assert!(sim.with_hook(LEADER, "config-changed", move |juju, _, _| {
            juju.relation_set(&rel, true, &set(&[("a", Some("1"))]))
                .unwrap();
            let app = Bag::App(juju.app());
            assert_eq!(juju.relation_data(&rel, &app).unwrap()["a"], "1");
            true
        }));
        // The bag's other keys are unknown, so the read fetches it (and shows the write); the
        // write is sent as asked when the hook ends.
        assert_eq!(
            sim.tools_called(LEADER),
            ["is-leader", "relation-get", "relation-set"]
        );
    }

    #[test]
    fn failures_pass_through_untouched() {
        let (mut sim, rel) = setup();
        assert!(sim.with_hook(OTHER, "config-changed", move |juju, _, _| {
            let err = juju
                .relation_set(&rel, true, &set(&[("a", Some("1"))]))
                .unwrap_err();
            assert!(err.is_permission_denied(), "{err}");
            let err = juju
                .status_set(StatusScope::Application, &Status::active("Unit is ready"))
                .unwrap_err();
            assert!(
                matches!(err, HookToolError::Failed { code: 1, .. }),
                "{err}"
            );
            true
        }));
    }

    #[test]
    fn leader_settings_statuses_and_secrets_skip_repeats() {
        let (mut sim, _) = setup();
        assert!(sim.with_hook(LEADER, "config-changed", |juju, _, _| {
            juju.leader_get().unwrap();
            juju.leader_get().unwrap();
            juju.status_set(StatusScope::Unit, &Status::active("Unit is ready"))
                .unwrap();
            juju.status_set(StatusScope::Unit, &Status::active("Unit is ready"))
                .unwrap();

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
            // A new content set in this hook is what every later read sees, refresh included.
            let newer: SecretContent =
                [("fernet-0".to_owned(), Sensitive::new("k2".to_owned()))].into();
            juju.secret_set(&uri, &newer).unwrap();
            assert_eq!(juju.secret_get(&uri, SecretRead::Refresh).unwrap(), newer);
            true
        }));
        assert_eq!(
            sim.tools_called(LEADER),
            ["leader-get", "status-set", "secret-add", "secret-set"]
        );
    }

    #[test]
    fn the_log_sink_counts_with_the_facade() {
        let (mut sim, _) = setup();
        assert!(sim.with_hook(OTHER, "config-changed", |juju, _, _| {
            juju.log_sink().log(LogLevel::Warning, "careful").unwrap();
            juju.calls()["juju-log"] == 1
        }));
        assert_eq!(sim.logs(OTHER, "WARNING"), ["careful"]);
    }
}
