//! Keystone's policy file on every unit: the Python charm's rules ([`Policy`]), which need the
//! ids of admin_domain and the service project. The leader learns them when it ensures the admin
//! identity and keeps them in the peer application bag; every unit renders the policy from
//! there. Until they are known only the admin project (and system scope) makes a cloud admin,
//! so no unit ever serves Keystone's in-code defaults, under which the admin role on any
//! project is cloud-wide.

use anyhow::{Context as _, Result};

use crate::config::Config;
use crate::host::fs::{DesiredFile, write_files};
use crate::identity::{ADMIN_DOMAIN, Ids, SERVICE_DOMAIN};
use crate::juju::Databag;
use crate::paths;
use crate::peer_keys;
use crate::render::{Policy, RenderError, Templates};

use crate::step::Hook;

/// The policy for `config` with the ids the peer application bag holds.
pub fn of(config: &Config, peer_bag: Option<&Databag>) -> Policy {
    let id = |key: &str| peer_bag.and_then(|bag| bag.get(key)).cloned();
    Policy {
        admin_role: config.admin_role.clone(),
        admin_domain_id: id(peer_keys::ADMIN_DOMAIN_ID),
        service_project_id: id(peer_keys::SERVICE_PROJECT_ID),
    }
}

/// Whether the peer application bag holds both ids.
pub fn ids_known(peer_bag: &Databag) -> bool {
    peer_bag.contains_key(peer_keys::ADMIN_DOMAIN_ID)
        && peer_bag.contains_key(peer_keys::SERVICE_PROJECT_ID)
}

/// The policy file, root:keystone 0640 like keystone.conf.
pub fn file(templates: &Templates, policy: &Policy) -> Result<DesiredFile, RenderError> {
    Ok(DesiredFile::keystone_readable(
        paths::POLICY,
        templates.policy(policy)?,
    ))
}

/// The leader, once it has ensured the admin identity: keeps the ids `ensured` found in the peer
/// application bag for every unit and, when they changed, writes its own policy file now
/// (its keystone-files step ran before it knew them).
pub fn keep_ids(hook: &Hook<'_>, ensured: &Ids) -> Result<()> {
    let peers = hook.peers()?;
    let service_tenant = &hook.config.service_tenant;
    let found = [
        (peer_keys::ADMIN_DOMAIN_ID, ensured.domain(ADMIN_DOMAIN)),
        (
            peer_keys::SERVICE_PROJECT_ID,
            ensured.project(SERVICE_DOMAIN, service_tenant),
        ),
    ];
    if found
        .iter()
        .all(|(key, id)| peers.get(key).as_deref() == *id)
    {
        return Ok(());
    }
    let changes: Vec<(&str, Option<String>)> = found
        .iter()
        .map(|(key, id)| (*key, id.map(str::to_owned)))
        .collect();
    peers.set_shared(&changes)?;
    let policy = Policy {
        admin_role: hook.config.admin_role.clone(),
        admin_domain_id: found[0].1.map(str::to_owned),
        service_project_id: found[1].1.map(str::to_owned),
    };
    // Once in a deployment's life: the templates are parsed again rather than passed down.
    let templates = hook.machine.templates()?;
    let file = file(&templates, &policy).context("cannot render Keystone's policy")?;
    write_files(hook.machine.files.as_ref(), &[], [&file])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;

    fn policy_of(sim: &Sim, unit: &str) -> String {
        sim.file(unit, paths::POLICY)
    }

    #[test]
    fn every_unit_names_the_ids_the_leader_made_and_kept() {
        let sim = Sim::ready(2);
        let bag = sim.peer_app_bag();
        let (domain, project) = (
            &bag[peer_keys::ADMIN_DOMAIN_ID],
            &bag[peer_keys::SERVICE_PROJECT_ID],
        );
        assert_ne!(domain, project);
        let cloud_admin = format!(
            "\"cloud_admin\": \"rule:admin_required and (is_admin_project:True or \
             domain_id:{domain} or project_id:{project})\"\n"
        );
        for unit in ["keystone/0", "keystone/1"] {
            let policy = policy_of(&sim, unit);
            assert!(policy.contains(&cloud_admin), "{unit}: {policy}");
        }
    }

    #[test]
    fn a_leader_upgraded_from_a_charm_without_a_policy_keeps_the_ids_in_its_next_hook() {
        let mut sim = Sim::ready(1);
        let relation = sim.model.relation_id("keystone", "cluster").unwrap();
        // As a leader of the previous revision left the bag: the identity applied, no ids.
        {
            let mut world = sim.model.world();
            let bag = world
                .relations
                .get_mut(&relation)
                .and_then(|r| r.app_data.get_mut("keystone"))
                .expect("the peer application bag");
            bag.remove(peer_keys::ADMIN_DOMAIN_ID);
            bag.remove(peer_keys::SERVICE_PROJECT_ID);
        }
        assert!(!ids_known(&sim.peer_app_bag()));
        assert!(sim.run("keystone/0", "upgrade-charm"));
        assert!(ids_known(&sim.peer_app_bag()));
        assert!(policy_of(&sim, "keystone/0").contains(" or project_id:"));
    }
}
