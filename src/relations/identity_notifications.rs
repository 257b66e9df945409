//! The `identity-notifications` relation (interface `keystone-notifications`): listeners learn
//! that a service's endpoints changed. For every service registered on identity-service, the
//! leader sets `<service>-endpoint-changed` to the SHA-256 of its public, admin and internal
//! URLs, in its unit bag and the application bag, and only when one changed.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::event::Endpoint;
use crate::juju::Databag;
use crate::peer_keys;
use crate::relations::consumers::{self, Inputs, Reply};
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::IdentityNotifications;

/// `<service>-endpoint-changed` for every registered service, from the leader's records.
pub fn checksums(peer_bag: &Databag) -> Reply {
    let mut services: BTreeMap<String, [String; 3]> = BTreeMap::new();
    for text in consumers::records(peer_bag, peer_keys::IDENTITY_SERVICE_ENDPOINTS).values() {
        if let Ok(map) = serde_json::from_str::<BTreeMap<String, [String; 3]>>(text) {
            services.extend(map);
        }
    }
    services
        .into_iter()
        .map(|(service, [public, admin, internal])| {
            let mut hash = Sha256::new();
            hash.update(public.as_bytes());
            hash.update(admin.as_bytes());
            hash.update(internal.as_bytes());
            let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
            (format!("{service}-endpoint-changed"), Some(hex))
        })
        .collect()
}

/// The identity-notifications step: [`run`].
pub const STEP: Step =
    Step::new("identity-notifications", run).reads(crate::relations::consumers::READS);

/// Step: the leader publishes the checksums on every relation when they changed.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if !hook.leader {
        return Ok(Vec::new());
    }
    let Some(peer_bag) = hook.peers.as_ref().map(|peers| peers.app()) else {
        return Ok(Vec::new());
    };
    let reply = checksums(&peer_bag);
    let inputs = Inputs {
        digest: consumers::digest(&[&reply]),
        address: None,
    };
    let Some(relations) = consumers::relations_to_serve(hook, ENDPOINT, &inputs)? else {
        return Ok(Vec::new());
    };
    for relation in &relations {
        consumers::publish(hook, relation, &reply)?;
        let app = crate::juju::Bag::App(hook.juju.app());
        let published = hook
            .juju
            .relation_data(relation, &app)
            .with_context(|| format!("cannot read the application's data on {relation}"))?;
        let mut changes = reply.clone();
        for key in published.keys() {
            changes.entry(key.clone()).or_insert(None);
        }
        hook.juju
            .relation_set(relation, true, &changes)
            .with_context(|| format!("cannot notify {relation}"))?;
    }
    consumers::remember(hook, ENDPOINT, &inputs)?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;
    use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};

    /// A listener: keeps what the keystone application last said.
    struct Listener(std::sync::Arc<std::sync::Mutex<Databag>>);

    impl juju_sim::scripted::ScriptedCharm for Listener {
        fn metadata(&self) -> &str {
            "name: listener\nrequires:\n  notifications:\n    interface: keystone-notifications\n"
        }

        fn handle(
            &mut self,
            hook: &mut juju_sim::scripted::ScriptedHook<'_>,
        ) -> anyhow::Result<()> {
            if let Some(relation) = hook.relation()
                && hook.hook_name() == "notifications-relation-changed"
            {
                let bag = hook.relation_get(&relation, "keystone", true)?;
                *self.0.lock().unwrap() = bag.into_iter().collect();
            }
            Ok(())
        }
    }

    #[test]
    fn listeners_hear_of_a_changed_endpoint_and_only_of_that() {
        let mut sim = Sim::ready(1);
        let heard = std::sync::Arc::default();
        sim.model
            .deploy_scripted(
                "listener",
                Box::new(Listener(std::sync::Arc::clone(&heard))),
                1,
            )
            .unwrap();
        sim.model.relate("keystone", "listener").unwrap();
        let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
        sim.model
            .deploy_scripted("nova", Box::new(nova), 1)
            .unwrap();
        sim.model.relate("keystone", "nova").unwrap();
        sim.settle();
        let first = heard.lock().unwrap().clone();
        let checksum = first
            .get("nova-endpoint-changed")
            .cloned()
            .expect("nova's checksum");
        assert_eq!(checksum.len(), 64);

        // A hook in which nothing changed sends nothing.
        let id = sim.model.relation_id("listener", "notifications").unwrap();
        assert!(sim.run("keystone/0", "config-changed"));
        let sets = |sim: &Sim| {
            sim.model
                .hook_log()
                .iter()
                .filter(|r| r.unit == "keystone/0")
                .flat_map(|r| r.tool_calls.clone())
                .filter(|c| c.starts_with(&format!("relation-set -r identity-notifications:{id}")))
                .count()
        };
        let before = sets(&sim);
        assert!(sim.run("keystone/0", "config-changed"));
        assert_eq!(sets(&sim), before);

        // nova moves: its checksum changes.
        let nova_relation = sim.model.relation_id("nova", "identity-service").unwrap();
        {
            let mut world = sim.model.world();
            let bag = world
                .relations
                .get_mut(&nova_relation)
                .unwrap()
                .unit_data
                .get_mut("nova/0")
                .unwrap();
            bag.insert(
                "public_url".into(),
                "http://nova.example.com:8774/v2.1".into(),
            );
        }
        // As Juju tells keystone of it: relation-changed from nova/0.
        let mut event = juju_sim::state::HookEvent::simple("identity-service-relation-changed");
        event.relation = Some(nova_relation);
        event.remote_unit = Some("nova/0".into());
        event.remote_app = Some("nova".into());
        sim.model.world().queue("keystone/0", event);
        sim.settle();
        let after = heard.lock().unwrap().clone();
        assert_ne!(
            after.get("nova-endpoint-changed"),
            Some(&checksum),
            "{after:?}"
        );
    }
}
