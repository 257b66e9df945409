//! The `cluster` peer relation as one hook sees it: [`Peers`], read when the hook starts and
//! held on the hook, through which every step reads and writes the relation's bags. Its keys
//! are in [`crate::peer_keys`]; what each means belongs to the module named there.
//!
//! The application bag is read once. Only the leader writes it; what it writes is visible to
//! every later read in the hook, and reaches Juju in one `relation-set` when the hook ends
//! ([`Juju::commit`]). The unit bags are read only when a step asks (the leader reads the
//! others' acknowledgements only when a rotation is due), through Juju's per-hook cache.

use std::cell::RefCell;

use anyhow::{Context, Result};

use crate::juju::{Bag, Databag, DatabagChanges, Juju, RelationId, UnitName};

/// The peer relation's endpoint.
pub const ENDPOINT: &str = "cluster";

/// The peer relation and its application bag, as this hook has read and written it.
pub struct Peers<'a> {
    juju: &'a Juju,
    relation: RelationId,
    app: RefCell<Databag>,
}

impl<'a> Peers<'a> {
    /// Reads the application bag; None before cluster-relation-created (nobody to share with).
    pub fn read(juju: &'a Juju) -> Result<Option<Peers<'a>>> {
        let Some(relation) = juju
            .relation_ids(ENDPOINT)
            .context("cannot list the cluster relation")?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let app = juju
            .relation_data(&relation, &Bag::App(juju.app()))
            .context("cannot read the cluster application data")?;
        Ok(Some(Peers {
            juju,
            relation,
            app: RefCell::new(app),
        }))
    }

    /// One key of the application bag.
    pub fn get(&self, key: &str) -> Option<String> {
        self.app.borrow().get(key).cloned()
    }

    /// The application bag as it stands now.
    pub fn app(&self) -> Databag {
        self.app.borrow().clone()
    }

    /// The leader's: sets (Some) or deletes (None) keys of the application bag.
    pub fn set_shared(&self, changes: &[(&str, Option<String>)]) -> Result<()> {
        let changes: DatabagChanges = changes
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        self.juju
            .relation_set(&self.relation, true, &changes)
            .context("cannot update the cluster application data")?;
        let mut app = self.app.borrow_mut();
        for (key, value) in changes {
            match value {
                Some(value) => app.insert(key, value),
                None => app.remove(&key),
            };
        }
        Ok(())
    }

    /// The other units of the relation.
    pub fn units(&self) -> Result<Vec<UnitName>> {
        self.juju
            .relation_units(&self.relation)
            .context("cannot list the cluster relation's units")
    }

    /// A unit's own bag (this unit's with what the hook set in it).
    pub fn unit_bag(&self, unit: &UnitName) -> Result<Databag> {
        self.juju
            .relation_data(&self.relation, &Bag::Unit(unit.clone()))
            .with_context(|| format!("cannot read {unit}'s cluster data"))
    }

    /// This unit's own bag.
    pub fn own_bag(&self) -> Result<Databag> {
        self.unit_bag(self.juju.unit())
    }

    /// Sets (Some) or deletes (None) keys of this unit's own bag.
    pub fn set_own(&self, changes: &DatabagChanges) -> Result<()> {
        self.juju
            .relation_set(&self.relation, false, changes)
            .context("cannot update this unit's cluster data")
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::Sim;
    use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
    use serde_json::json;

    /// Every hook of a deployment's life, on the leader and the others: the cluster
    /// application bag is read at most once, and each cluster bag written at most once.
    #[test]
    fn each_hook_reads_the_peer_application_bag_once_and_writes_each_peer_bag_once() {
        let mut sim = Sim::ready(3);
        // A consumer served, a rotation and a config change, after the deployment itself.
        let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
        sim.model
            .deploy_scripted("nova", Box::new(nova), 1)
            .unwrap();
        sim.model.relate("keystone", "nova").unwrap();
        sim.settle();
        let task = sim.action("keystone/0", "rotate-fernet", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        sim.settle();
        let expiration = json!({"token-expiration": 7200});
        sim.model
            .set_config("keystone", expiration.as_object().cloned().unwrap())
            .unwrap();
        sim.settle();
        let cluster = sim.model.relation_id("keystone", "cluster").unwrap();
        let app_read = format!("relation-get --format=json -r cluster:{cluster} --app - keystone");
        let app_write = format!("relation-set -r cluster:{cluster} --app --file -");
        let unit_write = format!("relation-set -r cluster:{cluster} --file -");
        let log = sim.model.hook_log();
        let mut hooks = 0;
        for run in &log {
            if !run.unit.starts_with("keystone/") {
                continue;
            }
            hooks += 1;
            let count = |wanted: &str| run.tool_calls.iter().filter(|c| *c == wanted).count();
            let (reads, app_writes, unit_writes) =
                (count(&app_read), count(&app_write), count(&unit_write));
            assert!(
                reads <= 1 && app_writes <= 1 && unit_writes <= 1,
                "{} on {}: {reads} reads, {app_writes} + {unit_writes} writes: {:#?}",
                run.hook,
                run.unit,
                run.tool_calls
            );
        }
        let reads = log.iter().flat_map(|r| &r.tool_calls);
        assert!(reads.filter(|c| **c == app_read).count() > 30);
        assert!(hooks > 30, "only {hooks} keystone hooks ran");
    }
}
